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
"""Replay evaluation: formats, topic discovery, timing, accounting, quality, bad input."""

import json
from pathlib import Path

import numpy as np
import pytest

from multiexit_ros.errors import BagError
from multiexit_ros.messages import SPEED_TYPES
from multiexit_ros.replay import choose_topics, Recording, replay, ReplayOptions
from multiexit_ros.replay.timing import Frame, NodeTimeline, Outcome, SpeedLog
from multiexit_ros.runtime import PipelineConfig
from replay_helpers import frames, tiny_checkpoint, write_profile, write_recording

FAST = [1, 2, 3, 4, 5]          # ms per exit: nothing is dropped at 10 Hz
SLOW = [60, 90, 120, 150, 180]  # the deeper exits outlast the 100 ms frame period


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp('model') / 'tiny.safetensors')


def run(recording, out, ckpt, profile, **kw):
    config = PipelineConfig(model_path=str(ckpt), device='cpu', precision='fp32',
                            profile_path=str(profile))
    kw.setdefault('plots', False)
    return replay(ReplayOptions(recording=recording, out_dir=out, config=config,
                                progress=False, **kw))


def records(out):
    return [json.loads(line) for line in (Path(out) / 'frames.jsonl').read_text().splitlines()]


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3', 'ros1'])
def test_each_format_is_read_and_every_frame_accounted(tmp_path, ckpt, storage):
    name = 'drive.bag' if storage == 'ros1' else 'drive'
    rec = write_recording(tmp_path / name, storage, speeds=[0, 5, 10, 20, 30, 36, 36, 20])
    profile = write_profile(tmp_path / 'p.json', SLOW)
    summary = run(rec, tmp_path / 'out', ckpt, profile)
    assert summary['format'] == ('ros1' if storage == 'ros1' else 'rosbag2')
    assert summary['topics'] == {'camera': '/cam/image_raw', 'speed': '/vehicle/speed',
                                 'label': None}
    assert summary['frames'] == 8
    for p in summary['policies']:
        assert p['processed'] + p['dropped'] + p['rejected'] == 8, p
    final = next(p for p in summary['policies'] if p['policy'] == 'final')
    assert final['dropped'] > 0  # 180 ms per frame at 10 Hz cannot keep up
    assert final['miou'] == pytest.approx(1.0)  # reference is the final exit itself
    assert len(records(tmp_path / 'out')) == 8


def test_timeline_latest_frame_wins():
    done = []
    tl = NodeTimeline('p', lambda f, now: Outcome('processed', 'ok', exit=0, latency_s=0.25),
                      SpeedLog(), lambda *a: None, lambda f, o: done.append((f.index, o)))
    for i in range(6):
        tl.arrive(Frame(i, i / 10, i / 10, np.zeros((2, 2, 3), np.uint8)))
    tl.finish()
    got = {i: (o.status, o.start) for i, o in done}
    assert [i for i, (s, _) in sorted(got.items()) if s == 'processed'] == [0, 2, 4, 5]
    assert [i for i, (s, _) in sorted(got.items()) if s == 'dropped'] == [1, 3]
    assert [round(got[i][1], 6) for i in (0, 2, 4, 5)] == [0.0, 0.25, 0.5, 0.75]
    assert tl.counts == {'processed': 4, 'dropped': 2, 'rejected': 0}


def test_timeline_feeds_speeds_up_to_the_start_time():
    seen = []
    speeds = SpeedLog()
    for t, v in [(0.0, 1.0), (0.05, 2.0), (0.3, 3.0)]:
        speeds.add(t, v, None)
    tl = NodeTimeline('p', lambda f, now: Outcome('processed', '', exit=0, latency_s=0.0),
                      speeds, lambda v, stamp, t: seen.append(v), lambda f, o: None)
    tl.arrive(Frame(0, 0.1, 0.1, np.zeros((2, 2), np.uint8)))
    assert seen == [1.0, 2.0]


def test_malformed_frame_is_rejected_with_reason(tmp_path, ckpt):
    rec = write_recording(tmp_path / 'bag', bad=(0, 5))
    summary = run(rec, tmp_path / 'out', ckpt, write_profile(tmp_path / 'p.json', FAST))
    for p in summary['policies']:
        assert (p['processed'], p['dropped'], p['rejected']) == (6, 0, 2)
    rows = records(tmp_path / 'out')
    for i in (0, 5):
        for outcome in rows[i]['policies'].values():
            assert outcome['status'] == 'rejected'
            assert 'undecodable' in outcome['reason'] and 'rgb8' in outcome['reason']


def test_results_are_deterministic_with_a_profile(tmp_path, ckpt):
    rec = write_recording(tmp_path / 'bag', speeds=[0, 10, 36, 36, 30, 10, 5, 0])
    profile = write_profile(tmp_path / 'p.json', SLOW)
    a = run(rec, tmp_path / 'a', ckpt, profile)
    b = run(rec, tmp_path / 'b', ckpt, profile)
    assert a['policies'] == b['policies']
    assert records(tmp_path / 'a') == records(tmp_path / 'b')
    speed = a['policies'][0]
    assert speed['policy'] == 'speed' and sum(speed['exit_histogram']) == speed['processed']


def test_labels_equal_to_final_exit_give_full_miou(tmp_path, ckpt):
    from multiexit_ros.runtime import Engine

    images = frames(6, seed=3)
    engine = Engine.from_checkpoint(ckpt, device='cpu')
    labels = [engine.infer(img, engine.num_exits - 1).mask for img in images]
    rec = write_recording(tmp_path / 'bag', images=images, labels=labels)
    summary = run(rec, tmp_path / 'out', ckpt, write_profile(tmp_path / 'p.json', FAST),
                  write_bag=True)
    assert summary['topics']['label'] == '/cam/labels'
    assert summary['quality_reference'] == 'labels' and summary['labelled_frames'] == 6
    final = next(p for p in summary['policies'] if p['policy'] == 'final')
    assert final['processed'] == 6 and final['miou'] == 1.0
    exit0 = next(p for p in summary['policies'] if p['policy'] == 'exit0')
    assert exit0['miou'] < 1.0
    with Recording(tmp_path / 'out' / 'replay_bag') as out:
        assert '/multiexit/mask' in out.topics and '/cam/image_raw' in out.topics
        assert out.message_count('/multiexit/mask') == 6


def test_topic_discovery():
    topics = {'/b/image': 'sensor_msgs/msg/Image',
              '/a/image/compressed': 'sensor_msgs/msg/CompressedImage',
              '/a/labels': 'sensor_msgs/msg/Image',
              '/odom': 'nav_msgs/msg/Odometry', '/can/speed': 'std_msgs/msg/Float64',
              '/chatter': 'std_msgs/msg/String'}
    c = choose_topics(topics, SPEED_TYPES)
    assert (c.camera, c.speed, c.label) == ('/a/image/compressed', '/can/speed', '/a/labels')
    assert any('first by name' in n and '/b/image' in n for n in c.notes)
    c = choose_topics(topics, SPEED_TYPES, camera='/b/image', speed='/odom', label='')
    assert (c.camera, c.speed_type, c.label) == ('/b/image', 'nav_msgs/msg/Odometry', None)
    with pytest.raises(BagError, match='/nope is not in the recording.*/chatter'):
        choose_topics(topics, SPEED_TYPES, camera='/nope')
    with pytest.raises(BagError, match='has type std_msgs/msg/String'):
        choose_topics(topics, SPEED_TYPES, speed='/chatter')
    with pytest.raises(BagError, match=r'no camera topic.*/chatter \(std_msgs/msg/String\)'):
        choose_topics({'/chatter': 'std_msgs/msg/String'}, SPEED_TYPES)


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_truncated_recording_is_a_one_line_error(tmp_path, ckpt, storage):
    rec = write_recording(tmp_path / 'bag', storage, images=frames(6))
    data = next(p for p in rec.iterdir() if p.suffix in ('.mcap', '.db3'))
    data.write_bytes(data.read_bytes()[:len(data.read_bytes()) // 2])
    with pytest.raises(BagError) as err:
        run(rec, tmp_path / 'out', ckpt, write_profile(tmp_path / 'p.json', FAST))
    assert '\n' not in str(err.value) and str(rec) in str(err.value)


def test_garbage_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / 'drive.bag'
    bad.write_bytes(b'not a bag at all' * 10)
    with pytest.raises(BagError, match='drive.bag') as err:
        Recording(bad)
    assert '\n' not in str(err.value)


@pytest.mark.parametrize('name', ['talker_sqlite3', 'talker_mcap'])
def test_real_recorder_bag_without_camera(shared_data, name):
    bag = shared_data / 'bags' / name
    if not bag.is_dir():
        pytest.skip(f'{bag} not present')
    with Recording(bag) as rec:
        with pytest.raises(BagError) as err:
            choose_topics(rec.topics, SPEED_TYPES, path=rec.path)
    msg = str(err.value)
    assert 'no camera topic' in msg and '/topic (std_msgs/msg/String)' in msg
    assert '/rosout' in msg and '\n' not in msg
