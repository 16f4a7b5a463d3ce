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
"""Recordings made elsewhere: ROS 1 bags, old rosbag2 type names, truncated files."""

import json

import numpy as np
import pytest

from multiexit_ros.replay.recording import Recording
from replay_helpers import frames, replay_cli, write_profile, write_recording


@pytest.fixture(scope='module')
def profile(tmp_path_factory):
    return write_profile(tmp_path_factory.mktemp('profile') / 'p.json', [20, 40, 60, 80, 120])


def test_write_bag_from_a_ros1_recording_copies_every_message(tmp_path, ckpt, profile):
    images = frames(6)
    rec = write_recording(tmp_path / 'drive.bag', 'ros1', images=images, speeds=[3] * 6)
    assert replay_cli(rec, tmp_path / 'out', ckpt, profile, '--write-bag') == 0
    summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert summary['format'] == 'ros1' and summary['complete']
    with Recording(tmp_path / 'out' / 'replay_bag') as out, Recording(rec) as src:
        assert not out.is_ros1
        got = list(out.messages(['/cam/image_raw']))
        want = list(src.messages(['/cam/image_raw']))
        assert len(got) == 6 and out.message_count('/multiexit/mask') == 6
        assert out.message_count('/vehicle/speed') == 6
        for (_, t_out, a), (_, t_in, b), img in zip(got, want, images):
            assert t_out == t_in and a.header.stamp == b.header.stamp
            np.testing.assert_array_equal(a.data.reshape(img.shape), img)


def old_rosbag2(path, images, speeds):
    """Write a rosbag2 folder as Dashing did: schema 1, metadata version 1, no /msg/."""
    import sqlite3

    import yaml

    new = write_recording(path.with_name(path.name + '_new'), 'sqlite3', images=images,
                          speeds=speeds)
    src = sqlite3.connect(next(new.glob('*.db3')))
    path.mkdir()
    dst = sqlite3.connect(path / 'old.db3')
    dst.executescript('CREATE TABLE topics(id INTEGER PRIMARY KEY, name TEXT NOT NULL, '
                      'type TEXT NOT NULL, serialization_format TEXT NOT NULL);'
                      'CREATE TABLE messages(id INTEGER PRIMARY KEY, topic_id INTEGER NOT '
                      'NULL, timestamp INTEGER NOT NULL, data BLOB NOT NULL);')
    topics = []
    for tid, name, typ in src.execute('SELECT id, name, type FROM topics'):
        old = typ.replace('/msg/', '/')
        dst.execute('INSERT INTO topics VALUES (?, ?, ?, ?)', (tid, name, old, 'cdr'))
        count = src.execute('SELECT count(*) FROM messages WHERE topic_id = ?',
                            (tid,)).fetchone()[0]
        topics.append({'topic_metadata': {'name': name, 'type': old,
                                          'serialization_format': 'cdr'},
                       'message_count': count})
    rows = src.execute('SELECT id, topic_id, timestamp, data FROM messages').fetchall()
    dst.executemany('INSERT INTO messages VALUES (?, ?, ?, ?)', rows)
    dst.commit()
    t = [r[2] for r in rows]
    (path / 'metadata.yaml').write_text(yaml.safe_dump({'rosbag2_bagfile_information': {
        'version': 1, 'storage_identifier': 'sqlite3', 'relative_file_paths': ['old.db3'],
        'duration': {'nanoseconds': max(t) - min(t)},
        'starting_time': {'nanoseconds_since_epoch': min(t)}, 'message_count': len(rows),
        'topics_with_message_count': topics}}))
    return path


@pytest.mark.parametrize('given', [False, True])
def test_old_rosbag2_type_names_are_understood(tmp_path, ckpt, profile, given):
    rec = old_rosbag2(tmp_path / 'dashing', frames(5), [2] * 5)
    with Recording(rec) as bag:
        assert bag.topics == {'/cam/image_raw': 'sensor_msgs/msg/Image',
                              '/vehicle/speed': 'std_msgs/msg/Float32'}
    extra = ['--camera-topic', '/cam/image_raw'] if given else []
    assert replay_cli(rec, tmp_path / 'out', ckpt, profile, *extra) == 0
    summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert summary['frames'] == 5 and summary['topics']['speed'] == '/vehicle/speed'
    assert summary['policies'][0]['processed'] == 5


def truncate(rec, fraction):
    """Cut the storage file of a rosbag2 folder to ``fraction`` of its size."""
    (data_file,) = [p for p in rec.iterdir() if p.suffix in ('.mcap', '.db3')]
    data = data_file.read_bytes()
    data_file.write_bytes(data[:int(len(data) * fraction)])
    return data_file


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_a_truncated_recording_replays_what_can_be_read(tmp_path, ckpt, profile, storage,
                                                        capsys):
    rec = write_recording(tmp_path / 'bag', storage, images=frames(20), speeds=[4] * 20)
    truncate(rec, 0.5)
    out = tmp_path / 'out'
    assert replay_cli(rec, out, ckpt, profile) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert 'truncated or corrupt recording' in err and 'replayed so far' in err
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['complete'] is False and 'truncated' in summary['stopped']
    assert 5 <= summary['frames'] < 20
    records = [json.loads(line) for line in (out / 'frames.jsonl').read_text().splitlines()]
    assert [r['frame'] for r in records] == list(range(summary['frames']))
    stamps = [r['stamp'] for r in records]
    assert stamps == sorted(stamps)  # in recorded order


def test_a_folder_without_metadata_names_the_file_to_pass(tmp_path, ckpt, profile, capsys):
    rec = write_recording(tmp_path / 'bag', 'mcap', images=frames(2))
    (rec / 'metadata.yaml').unlink()
    assert replay_cli(rec, tmp_path / 'out', ckpt, profile) == 1
    err = capsys.readouterr().err.strip()
    assert 'no metadata.yaml' in err and f'pass {rec / "bag.mcap"} instead' in err
    assert replay_cli(rec / 'bag.mcap', tmp_path / 'out', ckpt, profile) == 0
