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
"""Replay outcomes that must not pass in silence: rejected frames and speeds, sources."""

import json
import logging

import numpy as np
import pytest

from multiexit_ros.replay import RecordingWriter
from replay_helpers import frames, replay_cli, write_profile, write_recording


@pytest.fixture(scope='module')
def profile(tmp_path_factory):
    return write_profile(tmp_path_factory.mktemp('profile') / 'p.json', [20, 40, 60, 80, 120])


def warnings(capsys) -> list:
    return [line for line in capsys.readouterr().err.splitlines()
            if line.startswith('multiexit replay: warning:')]


@pytest.mark.parametrize('strict', [False, True])
def test_a_replay_that_rejects_every_frame_warns_and_strict_fails(tmp_path, ckpt, profile,
                                                                  capsys, strict):
    rec = write_recording(tmp_path / 'bag', images=frames(4), bad=range(4))
    out = tmp_path / 'out'
    assert replay_cli(rec, out, ckpt, profile, *(['--strict'] if strict else [])) == int(strict)
    (line,) = warnings(capsys)
    assert 'no frame was processed' in line and '4 frames' in line and 'data has 10 bytes' in line
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['frames'] == 4 and summary['policies'][0]['rejected'] == 4


def test_rejected_speeds_are_counted_and_warned_about_once(tmp_path, ckpt, profile, capsys,
                                                           caplog):
    speeds = [float('nan'), float('inf'), 5, -float('inf'), 7, 7]
    rec = write_recording(tmp_path / 'bag', images=frames(6), speeds=speeds)
    out = tmp_path / 'out'
    with caplog.at_level(logging.WARNING):
        assert replay_cli(rec, out, ckpt, profile) == 0
    logged = [r for r in caplog.records if 'speed' in r.getMessage()
              and 'reject' in r.getMessage()]
    assert len(logged) == 1  # once for the replay, not once per policy
    summary = json.loads((out / 'summary.json').read_text())
    # Float32 speeds are |data|, so -inf arrives as inf
    assert summary['speeds'] == {'messages': 6, 'rejected': 3,
                                 'reasons': {'nan': 1, 'inf': 2}}
    assert 'speed messages: 6, rejected 3 (inf: 2, nan: 1)' in (out / 'summary.md').read_text()
    (line,) = warnings(capsys)
    assert '3 of 6 speed messages were rejected' in line
    assert replay_cli(rec, tmp_path / 'strict', ckpt, profile, '--strict') == 1


def test_measured_latency_with_a_profile_says_it_was_measured(tmp_path, ckpt, profile):
    rec = write_recording(tmp_path / 'bag', images=frames(3))
    out = tmp_path / 'out'
    assert replay_cli(rec, out, ckpt, profile, '--latency', 'measured',
                      '--policies', 'speed') == 0
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['latency_source'].startswith('measured per frame on cpu')
    assert '- latency: measured per frame' in (out / 'summary.md').read_text()


def test_the_reasons_of_image_rejections_are_kept(tmp_path, ckpt, profile):
    odd = tmp_path / 'odd'
    with RecordingWriter(odd, 'mcap') as bag:
        bag.add_topic('/cam/image_raw', 'sensor_msgs/msg/Image')
        for i, img in enumerate(frames(3)):
            msg = bag.image(img, 'rgb8', 1000 + i / 10)
            if i == 1:
                msg.encoding = '32FC1'
            if i == 2:
                msg.data = np.zeros(7, np.uint8)
            bag.write('/cam/image_raw', int((1000 + i / 10) * 1e9), msg)
    out = tmp_path / 'out'
    assert replay_cli(odd, out, ckpt, profile, '--policies', 'final') == 0
    reasons = json.loads((out / 'summary.json').read_text())['policies'][0]['reasons']
    assert len(reasons) == 2 and sum(reasons.values()) == 2
    assert any('unknown encoding' in r for r in reasons)
    assert any('data has 7 bytes' in r and '48x64 (HxW)' in r for r in reasons)
