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
import struct

import cv2
import numpy as np
import pytest

from multiexit_ros.cli import main
from multiexit_ros.replay import RecordingWriter
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
    assert 'measured here on cpu' in printed and '| speed |' in printed
    assert printed.index('streaming mIoU') < printed.index('| processed |')  # leads
    summary = json.loads((out / 'replay' / 'summary.json').read_text())
    assert summary['frames'] == 5 and summary['quality_reference'] == 'labels'
    assert summary['labelled_frames'] == 5 and summary['topics']['speed'] == '/vehicle/twist'


def test_demo_generated_smoke(tmp_path, capsys):
    out = tmp_path / 'demo'
    assert main(['demo', '--out', str(out), '--frames', '8', '--size', '48x64',
                 '--preset', 'tiny', '--no-progress']) == 0
    summary = json.loads((out / 'replay' / 'summary.json').read_text())
    assert summary['frames'] == 8 and summary['labelled_frames'] == 8
    speeds = [r['policies']['speed'].get('speed_mps') for r in  # None: frame dropped
              map(json.loads, (out / 'replay' / 'frames.jsonl').read_text().splitlines())]
    speeds = [v for v in speeds if v is not None]
    assert speeds[0] == 0 and max(speeds) > 30  # standstill to motorway speed
    assert (out / 'replay' / 'timeline.png').is_file()


def test_demo_bad_source_is_one_line_error(tmp_path, capsys):
    assert main(['demo', '--out', str(tmp_path / 'd'), '--source', str(tmp_path / 'none'),
                 '--preset', 'tiny']) == 1
    assert 'frame folder not found' in one_line_error(capsys)


def break_second_chunk(recording):
    """Give the second mcap chunk a wrong checksum: the recording fails part way."""
    data_file = next(recording.glob('*.mcap'))
    blob = bytearray(data_file.read_bytes())
    pos, chunks = 8, []  # after the magic: records of opcode (1 byte), length (8), content
    while pos + 9 <= len(blob):
        (length,) = struct.unpack_from('<Q', blob, pos + 1)
        if blob[pos] == 0x06:
            chunks.append(pos)
        pos += 9 + length
    assert len(chunks) >= 2, 'the recording needs two chunks'
    struct.pack_into('<I', blob, chunks[1] + 9 + 24, 1)  # uncompressed_crc
    data_file.write_bytes(bytes(blob))


def test_replay_failing_part_way_keeps_a_partial_report(tmp_path, ckpt, capsys):
    rec = tmp_path / 'bag'
    with RecordingWriter(rec, 'mcap') as bag:
        bag.add_topic('/cam/image_raw', 'sensor_msgs/msg/Image')
        bag.add_topic('/padding', 'std_msgs/msg/String')
        for i, img in enumerate(frames(8)):
            t_ns = 10**12 + i * 10**8
            bag.write('/cam/image_raw', t_ns, bag.image(img, 'rgb8', t_ns * 1e-9))
            if i == 2:  # over 1 MiB: the writer starts a second chunk after frame 2
                bag.write('/padding', t_ns + 1, bag.types['std_msgs/msg/String'](
                    data='x' * (1 << 20)))
    break_second_chunk(rec)
    out = tmp_path / 'out'
    profile = write_profile(tmp_path / 'p.json', [1, 2, 3, 4, 5])
    rc = main(['replay', str(rec), '--model', str(ckpt), '--out', str(out), '--no-progress',
               '--no-plots', '--profile', str(profile)])
    assert rc == 1
    err = one_line_error(capsys)
    assert 'corrupt or truncated recording' in err and 'the 3 frames replayed so far' in err
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['complete'] is False and 'corrupt' in summary['stopped']
    assert summary['frames'] == 3 == len((out / 'frames.jsonl').read_text().splitlines())
    assert 'Incomplete' in (out / 'summary.md').read_text()


def test_interrupted_replay_keeps_what_it_did(tmp_path, ckpt, capsys, monkeypatch):
    from multiexit_ros.replay import evaluate

    rec = write_recording(tmp_path / 'bag', images=frames(8))
    out = tmp_path / 'out'
    argv = ['replay', str(rec), '--model', str(ckpt), '--out', str(out), '--no-progress',
            '--no-plots', '--write-bag',
            '--profile', str(write_profile(tmp_path / 'p.json', [1, 2, 3, 4, 5]))]
    assert main(argv) == 0  # an earlier complete run in the same folder
    on_frame = evaluate._Run.on_frame

    def ctrl_c_at_frame_5(run, *args):
        if run.count == 5:
            raise KeyboardInterrupt
        return on_frame(run, *args)

    monkeypatch.setattr(evaluate._Run, 'on_frame', ctrl_c_at_frame_5)
    capsys.readouterr()
    assert main(argv) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith('multiexit replay: interrupted') and 'replayed so far' in err
    assert '\n' not in err
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['complete'] is False and summary['stopped'] == 'interrupted'
    assert summary['frames'] == 5 == len((out / 'frames.jsonl').read_text().splitlines())
    assert (out / 'replay_bag' / 'metadata.yaml').is_file()  # the masks so far


def test_an_undecodable_speed_message_is_skipped(tmp_path, ckpt, capsys):
    rec = tmp_path / 'bag'
    with RecordingWriter(rec, 'mcap') as bag:
        bag.add_topic('/cam/image_raw', 'sensor_msgs/msg/Image')
        bag.add_topic('/vehicle/speed', 'std_msgs/msg/Float32')
        for i, img in enumerate(frames(4)):
            t_ns = 10**12 + i * 10**8
            speed = bag.types['std_msgs/msg/Float32'](data=5.0)
            bag.write('/vehicle/speed', t_ns - 1000, speed)
            if i == 1:
                bag.write_raw('/vehicle/speed', t_ns - 500, b'\x00\x01\x00\x00\x01')
            bag.write('/cam/image_raw', t_ns, bag.image(img, 'rgb8', t_ns * 1e-9))
    out = tmp_path / 'out'
    assert main(['replay', str(rec), '--model', str(ckpt), '--out', str(out), '--no-progress',
                 '--no-plots', '--profile', str(write_profile(tmp_path / 'p.json',
                                                              [1, 2, 3, 4, 5]))]) == 0
    assert json.loads((out / 'summary.json').read_text())['frames'] == 4


def test_camera_topic_without_messages_is_one_line_error(tmp_path, ckpt, capsys):
    rec = tmp_path / 'bag'
    with RecordingWriter(rec, 'mcap') as bag:
        bag.add_topic('/cam/image_raw', 'sensor_msgs/msg/Image')
    assert main(['replay', str(rec), '--model', str(ckpt), '--out', str(tmp_path / 'o'),
                 '--profile', str(write_profile(tmp_path / 'p.json', [1, 2, 3, 4, 5]))]) == 1
    assert 'camera topic /cam/image_raw has no messages' in one_line_error(capsys)
    assert not (tmp_path / 'o').exists()


def test_undecodable_first_frames_say_why(tmp_path, ckpt, capsys):
    rec = write_recording(tmp_path / 'bag', images=frames(3), bad=(0, 1, 2))
    assert main(['replay', str(rec), '--model', str(ckpt), '--out', str(tmp_path / 'o'),
                 '--param', 'profile_samples=1', '--param', 'profile_warmup=0']) == 1
    err = one_line_error(capsys)
    assert 'none of the first camera frames' in err and 'data has 10 bytes' in err


def test_a_policy_named_twice_runs_once(tmp_path, ckpt, capsys):
    rec = write_recording(tmp_path / 'bag', images=frames(4))
    out = tmp_path / 'out'
    assert main(['replay', str(rec), '--model', str(ckpt), '--out', str(out), '--no-progress',
                 '--no-plots', '--policies', 'speed,final,speed',
                 '--profile', str(write_profile(tmp_path / 'p.json', [1, 2, 3, 4, 5]))]) == 0
    summary = json.loads((out / 'summary.json').read_text())
    assert [p['policy'] for p in summary['policies']] == ['speed', 'final']
    assert summary['policies'][0]['processed'] == 4
    assert len((out / 'frames.jsonl').read_text().splitlines()) == 4


def test_labels_with_foreign_class_ids_are_reported(tmp_path, ckpt, caplog):
    images = frames(3)
    labels = [np.full(img.shape[:2], 200, np.uint8) for img in images]  # CamVid has 0..10
    rec = write_recording(tmp_path / 'bag', images=images, labels=labels)
    with caplog.at_level('WARNING'):
        assert main(['replay', str(rec), '--model', str(ckpt), '--out', str(tmp_path / 'o'),
                     '--no-progress', '--no-plots',
                     '--profile', str(write_profile(tmp_path / 'p.json', [1, 2, 3, 4, 5]))]) == 0
    warned = [r.getMessage() for r in caplog.records if 'class ids 200' in r.getMessage()]
    assert len(warned) == 1 and 'not scored' in warned[0]
