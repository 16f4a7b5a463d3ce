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
"""Hostile recordings and checkpoints: exit status, one line, nothing processed lost."""

import json
import struct

import cv2
import numpy as np
import pytest

from hostile_helpers import encode, GOOD, H, read_frames, W
from multiexit_ros.cli import main
from multiexit_ros.messages import IMAGE_ENCODINGS
from multiexit_ros.replay import RecordingWriter
from multiexit_ros.replay.recording import Recording
from replay_helpers import frames, replay_cli, write_profile, write_recording


@pytest.fixture(scope='module')
def profile(tmp_path_factory):
    return write_profile(tmp_path_factory.mktemp('profile') / 'p.json', [1, 2, 3, 4, 5])


def error_line(capsys, command='replay') -> str:
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith('multiexit ')]
    assert len(lines) == 1 and f'multiexit {command}: error: ' in lines[0], lines
    assert 'Traceback' not in lines[0]
    return lines[0]


FRAMES = 20


@pytest.fixture(scope='module')
def recordings(tmp_path_factory):
    """One intact recording per storage, with 20 frames and a speed each."""
    folder = tmp_path_factory.mktemp('recordings')
    return {storage: write_recording(folder / ('drive.bag' if storage == 'ros1' else storage),
                                     storage, images=frames(FRAMES), speeds=[5] * FRAMES)
            for storage in ('mcap', 'sqlite3', 'ros1')}


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3', 'ros1'])
@pytest.mark.parametrize('fraction', [0.1, 0.5, 0.9])
def test_truncated_recordings(tmp_path, ckpt, profile, recordings, capsys, storage, fraction):
    src = recordings[storage]
    files = [src] if storage == 'ros1' else [p for p in src.iterdir()
                                             if p.suffix in ('.mcap', '.db3')]
    data = files[0].read_bytes()
    target = tmp_path / files[0].name
    target.write_bytes(data[:int(len(data) * fraction)])
    out = tmp_path / 'out'
    assert replay_cli(target, out, ckpt, profile) == 1
    err = error_line(capsys)
    assert 'truncated or corrupt recording' in err or 'cannot read' in err or 'camera' in err
    if fraction < 0.5 and not (out / 'summary.json').exists():
        return  # nothing readable to replay: the one line says why
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['complete'] is False and 'truncated' in summary['stopped']
    # what was read is all there, in order: no frame lost before the damage
    assert FRAMES * fraction - 3 <= summary['frames'] < FRAMES
    records = read_frames(out)
    assert [r['frame'] for r in records] == list(range(summary['frames']))
    assert all(p['status'] == 'processed' for r in records for p in r['policies'].values())


def test_a_recording_with_only_a_speed_topic(tmp_path, ckpt, profile, capsys):
    rec = tmp_path / 'speed_only'
    with RecordingWriter(rec, 'mcap') as bag:
        bag.add_topic('/speed', 'std_msgs/msg/Float64')
        bag.write('/speed', 10 ** 9, bag.types['std_msgs/msg/Float64'](data=3.0))
    assert replay_cli(rec, tmp_path / 'out', ckpt, profile) == 1
    err = error_line(capsys)
    assert 'no camera topic' in err and '/speed (std_msgs/msg/Float64)' in err


def camera_message(bag, encoding: str, t: float):
    """Return a frame of ``encoding`` (or 'jpeg' / 'png' compressed)."""
    if encoding in ('jpeg', 'png'):
        return bag.compressed(GOOD, t, encoding)
    from multiexit_ros.messages import _ENCODINGS

    channels, depth, _ = _ENCODINGS[encoding]
    data = np.random.default_rng(0).integers(0, 256, H * W * channels * depth, dtype=np.uint8)
    return bag.types['sensor_msgs/msg/Image'](
        header=bag.header(t), height=H, width=W, encoding=encoding, is_bigendian=0,
        step=W * channels * depth, data=data)


ALL = list(IMAGE_ENCODINGS) + ['jpeg', 'png']


@pytest.fixture(scope='module')
def every_camera(tmp_path_factory):
    """Write a recording holding one camera of every supported encoding, 3 frames each."""
    rec = tmp_path_factory.mktemp('every') / 'every'
    with RecordingWriter(rec, 'mcap') as bag:
        for enc in ALL:
            kind = 'CompressedImage' if enc in ('jpeg', 'png') else 'Image'
            bag.add_topic(f'/cam_{enc}', f'sensor_msgs/msg/{kind}')
        for i in range(3):
            for enc in ALL:
                t = 1000 + i / 10
                bag.write(f'/cam_{enc}', int(t * 1e9), camera_message(bag, enc, t))
    return rec


def test_every_camera_type_in_one_recording_decodes(every_camera):
    from multiexit_ros.messages import compressed_to_array, image_to_array

    with Recording(every_camera) as rec:
        assert len(rec.topics) == len(ALL)
        seen = set()
        for topic, _, msg in rec.messages():
            decode = compressed_to_array if hasattr(msg, 'format') else image_to_array
            assert decode(msg).shape[:2] == (H, W)
            seen.add(topic)
    assert len(seen) == len(ALL)


@pytest.mark.parametrize('camera', [None, '/cam_bayer_rggb16', '/cam_yuv422', '/cam_jpeg',
                                    '/cam_mono16'])
def test_every_camera_type_replays(tmp_path, ckpt, profile, every_camera, camera):
    extra = ['--camera-topic', camera] if camera else []
    assert replay_cli(every_camera, tmp_path / 'out', ckpt, profile, '--policies', 'final',
                      *extra) == 0
    summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert summary['policies'][0]['processed'] == 3
    if camera is None:  # the first by name, and the choice is said
        assert summary['topics']['camera'] == '/cam_16UC1'
        assert any('first by name of' in n for n in summary['notes'])


def edit_metadata(path, change):
    """Rewrite a checkpoint with its multiexit_ros metadata changed (length fixed up)."""
    blob = path.read_bytes()
    (n,) = struct.unpack('<Q', blob[:8])
    header = json.loads(blob[8:8 + n])
    doc = json.loads(header['__metadata__']['multiexit_ros'])
    change(doc)
    header['__metadata__']['multiexit_ros'] = json.dumps(doc)
    text = json.dumps(header).encode()
    text += b' ' * (-len(text) % 8)
    path.write_bytes(struct.pack('<Q', len(text)) + text + blob[8 + n:])


def bad_checkpoint(kind, ckpt, tmp_path):
    path = tmp_path / 'bad.safetensors'
    blob = bytearray(ckpt.read_bytes())
    if kind == 'truncated':
        path.write_bytes(bytes(blob[:len(blob) // 2]))
    elif kind == 'bit flip in the weights':
        blob[-100] ^= 0x10
        path.write_bytes(bytes(blob))
    elif kind == 'bit flip in the header':
        blob[20] ^= 0x80
        path.write_bytes(bytes(blob))
    elif kind == 'edited metadata':
        path.write_bytes(bytes(blob))
        edit_metadata(path, lambda doc: doc['model'].update(num_classes=5))
    elif kind == 'edited checksum':
        path.write_bytes(bytes(blob))
        edit_metadata(path, lambda doc: doc.update(tensors_sha256='0' * 64))
    elif kind == 'json file':
        path = tmp_path / 'model.json'
        path.write_text(json.dumps({'model': {'preset': 'tiny'}, 'weights': [0.5] * 100}))
    elif kind == 'folder':
        path = tmp_path / 'model_folder'
        path.mkdir()
        (path / 'model.safetensors').write_bytes(bytes(blob))
    return path


CHECKPOINTS = ['truncated', 'bit flip in the weights', 'bit flip in the header',
               'edited metadata', 'edited checksum', 'json file', 'folder']


@pytest.mark.parametrize('kind', CHECKPOINTS)
@pytest.mark.parametrize('command', ['replay', 'info'])
def test_bad_checkpoints_are_one_line_and_exit_one(tmp_path, ckpt, profile, capsys, kind,
                                                   command):
    path = bad_checkpoint(kind, ckpt, tmp_path)
    if command == 'replay':
        rec = write_recording(tmp_path / 'bag', images=frames(2))
        rc = main(['replay', str(rec), '--model', str(path), '--out', str(tmp_path / 'o'),
                   '--no-progress'])
        assert not (tmp_path / 'o' / 'summary.json').exists()
    else:
        rc = main(['info', '--model', str(path), '--no-latency'])
    assert rc == 1
    err = error_line(capsys, command)
    assert str(path) in err
    if kind == 'json file':
        assert 'not a checkpoint (a JSON or text file' in err
    assert ckpt.is_file()


def test_out_that_cannot_be_written_names_out(tmp_path, ckpt, profile, capsys):
    rec = write_recording(tmp_path / 'bag', images=frames(2))
    assert replay_cli(rec, '/proc/multiexit_out', ckpt, profile) == 1
    assert '--out /proc/multiexit_out: cannot write in /proc' in error_line(capsys)


def test_image_header_bombs_in_a_compressed_recording(tmp_path, ckpt, profile):
    from hostile_helpers import jpeg_bomb, write_frames

    good = ('jpeg', encode('.jpg'))
    rec = write_frames(tmp_path / 'drive.bag', 'ros1', [good, ('jpeg', jpeg_bomb()), good],
                       compressed=True)
    assert replay_cli(rec, tmp_path / 'out', ckpt, profile) == 0
    records = read_frames(tmp_path / 'out')
    reason = records[1]['policies']['speed']['reason']
    assert 'max_image_megapixels' in reason and '65000x65000 (HxW)' in reason
    assert records[2]['policies']['speed']['status'] == 'processed'
    assert cv2.imdecode(np.frombuffer(good[1], np.uint8), 1).shape == (H, W, 3)
