# Copyright 2026 The multiexit_ros Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Hostile frames and speeds, in the converters, the node's handler and the replay.

Every bad frame is a counted, rejected frame with a one-line reason; the good frames
around it are processed as if it had not been there. Recordings and checkpoints:
``test_hostile_recordings.py``.
"""

import json
import types

import numpy as np
import pytest

from hostile_helpers import (BAD_COMPRESSED, BAD_RAW, encode, GOOD, H, raw_fields, read_frames,
                             W, write_frames)
from msgs_helpers import compressed, header, image, T
from multiexit_ros.cli import main
from multiexit_ros.errors import ImageError
from multiexit_ros.messages import compressed_to_array, image_to_array
from multiexit_ros.node_logic import FrameHandler
from node_fixtures import tiny_pipeline
from replay_helpers import write_profile


@pytest.fixture(scope='module')
def profile(tmp_path_factory):
    # fast exits: at 10 Hz no frame is ever dropped, so every good frame is processed
    return write_profile(tmp_path_factory.mktemp('profile') / 'p.json', [1, 2, 3, 4, 5])


@pytest.fixture(scope='module')
def pipeline(tmp_path_factory):
    return tiny_pipeline(tmp_path_factory.mktemp('node'))


def raw_msg(change):
    f = raw_fields(change)
    return image(f['data'], f['height'], f['width'], f['encoding'], f['step'])


def negative(width):
    """Return an Image-like object with a negative width (rclpy refuses one; a bug may not)."""
    return types.SimpleNamespace(header=header(), height=H, width=width, encoding='rgb8',
                                 is_bigendian=0, step=W * 3, data=GOOD.tobytes())


def one_line(err) -> str:
    text = str(err.value)
    assert text and '\n' not in text
    return text


@pytest.mark.parametrize('name', sorted(BAD_RAW))
def test_bad_raw_images_are_one_line_image_errors(name):
    with pytest.raises(ImageError) as err:
        image_to_array(raw_msg(BAD_RAW[name]))
    one_line(err)


@pytest.mark.parametrize('width', [-1, -W])
def test_negative_widths_are_image_errors(width):
    with pytest.raises(ImageError) as err:
        image_to_array(negative(width))
    assert 'empty' in one_line(err)


@pytest.mark.parametrize('name', sorted(BAD_COMPRESSED))
def test_bad_compressed_images_are_one_line_image_errors(name):
    fmt, data = BAD_COMPRESSED[name]
    with pytest.raises(ImageError) as err:
        compressed_to_array(compressed(data, fmt))
    assert fmt in one_line(err)


def interleave(bad: list, good) -> list:
    """good, bad[0], good, bad[1], ..., good."""
    out = [good]
    for entry in bad:
        out += [entry, good]
    return out


@pytest.mark.parametrize('kind', ['raw', 'compressed'])
def test_the_node_handler_rejects_each_bad_frame_and_keeps_going(pipeline, kind):
    warnings = []
    is_compressed = kind == 'compressed'
    handler = FrameHandler(pipeline, T['sensor_msgs/msg/Image'], compressed=is_compressed,
                           warn=warnings.append, log_period_s=0.0, clock=lambda: 12.35)
    if is_compressed:
        bad = [compressed(d, f) for f, d in BAD_COMPRESSED.values()]
        good = compressed(encode('.png'), 'png')
    else:
        bad = [raw_msg(c) for c in BAD_RAW.values()] + [negative(-1)]
        good = raw_msg({})
    outputs = [handler.handle_frame(m) for m in interleave(bad, good)]
    assert [o is None for o in outputs] == [i % 2 == 1 for i in range(len(outputs))]
    assert handler.rejected == len(bad) == len(warnings)
    assert all('\n' not in w and 'camera frame rejected' in w for w in warnings)
    assert all(o.mask.height == H for o in outputs[::2])


@pytest.mark.parametrize('kind', ['raw', 'compressed'])
def test_the_replay_rejects_each_bad_frame_and_keeps_every_good_one(tmp_path, ckpt, profile,
                                                                    kind, capsys):
    is_compressed = kind == 'compressed'
    if is_compressed:
        bad, good = list(BAD_COMPRESSED.values()), ('png', encode('.png'))
    else:
        bad, good = list(BAD_RAW.values()), {}
    entries = interleave(bad, good)
    if not is_compressed:
        entries = [raw_fields(e) for e in entries]
    rec = write_frames(tmp_path / 'bag', 'mcap', entries, compressed=is_compressed)
    out = tmp_path / 'out'
    assert main(['replay', str(rec), '--model', str(ckpt), '--profile', str(profile),
                 '--out', str(out), '--no-progress', '--no-plots', '--strict']) == 0
    assert 'error' not in capsys.readouterr().err
    records = read_frames(out)
    assert len(records) == len(entries)
    for i, rec_ in enumerate(records):
        for name, result in rec_['policies'].items():
            if i % 2:
                assert result['status'] == 'rejected', (i, name)
                assert result['reason'].startswith('undecodable image (') and \
                    '\n' not in result['reason']
            else:
                assert result['status'] == 'processed', (i, name)
    summary = json.loads((out / 'summary.json').read_text())
    for policy in summary['policies']:
        assert policy['processed'] == len(bad) + 1 and policy['rejected'] == len(bad)
        assert sum(policy['reasons'].values()) == len(bad)


SPEEDS = [float('nan'), float('inf'), -float('inf'), -5.0, 1e9, 3.4e38, 0.0, 12.0]


def test_the_node_handler_rejects_nan_and_inf_speeds_and_keeps_the_last_good_one(pipeline):
    warnings = []
    handler = FrameHandler(pipeline, T['sensor_msgs/msg/Image'],
                           speed_type='std_msgs/msg/Float64', warn=warnings.append,
                           log_period_s=0.0, clock=lambda: 100.0)
    accepted = [handler.handle_speed(T['std_msgs/msg/Float64'](data=v)) for v in SPEEDS]
    assert accepted == [False, False, False, True, True, True, True, True]
    assert handler.rejected_speeds == 3 and len(warnings) == 3
    assert all('\n' not in w and 'speed rejected' in w for w in warnings)


def test_the_replay_counts_bad_speeds_and_huge_ones_give_the_smallest_budget(tmp_path, ckpt,
                                                                             profile, capsys):
    rec = write_frames(tmp_path / 'bag', 'sqlite3', [raw_fields({})] * len(SPEEDS),
                       speeds=SPEEDS)
    out = tmp_path / 'out'
    argv = ['replay', str(rec), '--model', str(ckpt), '--profile', str(profile), '--out',
            str(out), '--no-progress', '--no-plots', '--policies', 'speed']
    assert main(argv) == 0
    (warning,) = [line for line in capsys.readouterr().err.splitlines() if 'warning' in line]
    assert '3 of 8 speed messages were rejected' in warning
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['speeds'] == {'messages': 8, 'rejected': 3, 'reasons': {'nan': 1, 'inf': 2}}
    records = read_frames(out)
    assert [r['policies']['speed']['status'] for r in records] == ['processed'] * 8
    speed_budget = [r['policies']['speed']['speed_budget_s'] for r in records]
    assert speed_budget[4] == speed_budget[5] == pytest.approx(0.015)  # 1e9, 3.4e38 m/s
    assert speed_budget[6] == pytest.approx(0.2)  # standing still
    assert np.isfinite(speed_budget).all()
    assert main(argv + ['--strict', '--out', str(tmp_path / 'strict')]) == 1
