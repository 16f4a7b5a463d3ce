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
"""The ``multiexit replay`` and ``multiexit demo`` commands: exit codes, outputs, errors."""

import json

import cv2
import numpy as np
import pytest

from multiexit_ros.cli import main
from replay_helpers import frames, tiny_checkpoint, write_profile, write_recording


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp('model') / 'tiny.safetensors')


def one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith('multiexit ') and 'error:' in err and '\n' not in err, err
    assert 'Traceback' not in err
    return err


def test_replay_writes_summary_and_exits_zero(tmp_path, ckpt, capsys):
    rec = write_recording(tmp_path / 'bag', speeds=[0, 5, 10, 20, 30, 36, 36, 20])
    profile = write_profile(tmp_path / 'p.json', [20, 40, 60, 80, 120])
    out = tmp_path / 'out'
    rc = main(['replay', str(rec), '--model', str(ckpt), '--profile', str(profile),
               '--out', str(out), '--no-progress', '--write-bag',
               '--param', 'budget.blind_distance_m=2'])
    assert rc == 0
    printed = capsys.readouterr().out
    assert '| speed |' in printed and str(out / 'summary.md') in printed
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['frames'] == 8 and summary['budget']['blind_distance_m'] == 2
    assert {p['policy'] for p in summary['policies']} == {
        'speed', 'exit0', 'exit1', 'exit2', 'exit3', 'final'}
    for name in ('summary.md', 'frames.jsonl', 'timeline.png', 'quality.png', 'profile.json'):
        assert (out / name).stat().st_size > 0, name
    assert (out / 'replay_bag' / 'metadata.yaml').is_file()


def test_replay_policies_subset_and_preset(tmp_path, capsys):
    rec = write_recording(tmp_path / 'bag', images=frames(3))
    out = tmp_path / 'out'
    assert main(['replay', str(rec), '--preset', 'tiny', '--out', str(out), '--no-progress',
                 '--policies', 'speed,final', '--no-plots', '--param',
                 'profile_samples=2', '--param', 'profile_warmup=0']) == 0
    summary = json.loads((out / 'summary.json').read_text())
    assert [p['policy'] for p in summary['policies']] == ['speed', 'final']
    assert 'measured at start-up on cpu' in summary['latency_source']


@pytest.mark.parametrize('argv, expect', [
    (['replay', '{tmp}/missing'], 'recording not found'),
    (['replay', '{bag}', '--camera-topic', '/nope'], '--camera-topic /nope is not in'),
    (['replay', '{bag}', '--policies', 'exit9'], "unknown policy 'exit9'"),
    (['replay', '{bag}', '--param', 'budget.blind_distance_m'], 'needs NAME=VALUE'),
    (['replay', '{bag}', '--profile', '{tmp}/none.json'], 'latency profile not found'),
])
def test_replay_bad_input_is_one_line_exit_one(tmp_path, ckpt, capsys, argv, expect):
    bag = write_recording(tmp_path / 'bag', images=frames(2))
    argv = [a.format(tmp=tmp_path, bag=bag) for a in argv]
    rc = main(argv + ['--model', str(ckpt), '--out', str(tmp_path / 'o'), '--no-progress'])
    assert rc == 1
    assert expect in one_line_error(capsys)


def test_replay_real_bag_without_camera(shared_data, ckpt, tmp_path, capsys):
    bag = shared_data / 'bags' / 'talker_sqlite3'
    if not bag.is_dir():
        pytest.skip(f'{bag} not present')
    assert main(['replay', str(bag), '--model', str(ckpt), '--out', str(tmp_path / 'o')]) == 1
    err = one_line_error(capsys)
    assert 'no camera topic' in err and '/topic (std_msgs/msg/String)' in err


def test_missing_shipped_model_says_how_to_get_one(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr('multiexit_ros.default_model_path',
                        lambda: tmp_path / 'models' / 'multiexit_camvid.safetensors')
    bag = write_recording(tmp_path / 'bag', images=frames(2))
    assert main(['replay', str(bag), '--out', str(tmp_path / 'o')]) == 1
    err = one_line_error(capsys)
    assert 'shipped model is missing' in err and '--model' in err


def test_demo_from_a_folder_of_frames(tmp_path, capsys):
    src, annot = tmp_path / 'val', tmp_path / 'valannot'
    src.mkdir()
    annot.mkdir()
    rng = np.random.default_rng(0)
    for i, img in enumerate(frames(5)):
        cv2.imwrite(str(src / f'f{i:03d}.png'), img)
        label = rng.integers(0, 12, img.shape[:2], dtype=np.uint8)
        cv2.imwrite(str(annot / f'f{i:03d}.png'), label)
    out = tmp_path / 'demo'
    assert main(['demo', '--out', str(out), '--source', str(src), '--frames', '5',
                 '--preset', 'tiny', '--no-progress', '--no-plots']) == 0
    printed = capsys.readouterr().out
    assert 'demo target device' in printed and '| speed |' in printed
    summary = json.loads((out / 'replay' / 'summary.json').read_text())
    assert summary['frames'] == 5 and summary['quality_reference'] == 'labels'
    assert summary['labelled_frames'] == 5 and summary['topics']['speed'] == '/vehicle/twist'


def test_demo_generated_smoke(tmp_path, capsys):
    out = tmp_path / 'demo'
    assert main(['demo', '--out', str(out), '--frames', '8', '--size', '48x64',
                 '--preset', 'tiny', '--no-progress']) == 0
    summary = json.loads((out / 'replay' / 'summary.json').read_text())
    assert summary['frames'] == 8 and summary['labelled_frames'] == 8
    speeds = [r['policies']['speed']['speed_mps'] for r in
              map(json.loads, (out / 'replay' / 'frames.jsonl').read_text().splitlines())]
    assert speeds[0] == 0 and max(speeds) > 30  # standstill to motorway speed
    assert (out / 'replay' / 'timeline.png').is_file()


def test_demo_bad_source_is_one_line_error(tmp_path, capsys):
    assert main(['demo', '--out', str(tmp_path / 'd'), '--source', str(tmp_path / 'none'),
                 '--preset', 'tiny']) == 1
    assert 'frame folder not found' in one_line_error(capsys)
