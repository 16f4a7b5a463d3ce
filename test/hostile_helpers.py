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
"""Hostile input for the tests: malformed frames, bombs and broken files, made for real."""

import json
import struct
import zlib

import cv2
import numpy as np

from multiexit_ros.replay import RecordingWriter

H, W = 48, 64
GOOD = np.random.default_rng(7).integers(0, 256, (H, W, 3), dtype=np.uint8)
T0 = 1000.0


def encode(ext, pixels=GOOD) -> bytes:
    """Encode ``pixels`` (BGR order) with OpenCV."""
    ok, buf = cv2.imencode(ext, pixels)
    assert ok
    return buf.tobytes()


def jpeg_bomb(height=65000, width=65000) -> bytes:
    """Return a real small JPEG whose frame header claims height x width."""
    data = bytearray(encode('.jpg'))
    sof = data.find(b'\xff\xc0')
    data[sof + 5:sof + 9] = struct.pack('>HH', height, width)
    return bytes(data)


def png_bomb(height=100_000, width=100_000) -> bytes:
    """Return a real small PNG whose IHDR (with a valid CRC) claims height x width."""
    data = bytearray(encode('.png'))
    data[16:24] = struct.pack('>II', width, height)
    data[29:33] = struct.pack('>I', zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def corrupt(data: bytes) -> bytes:
    """Keep the header, scramble the compressed body."""
    rng = np.random.default_rng(1)
    body = rng.integers(0, 256, len(data) - 200, dtype=np.uint8).tobytes()
    return data[:200] + body


# name -> (format, data): every one must become a rejected frame with a reason.
BAD_COMPRESSED = {
    'empty': ('jpeg', b''),
    'corrupt jpeg': ('jpeg', corrupt(encode('.jpg'))),
    'corrupt png': ('png', corrupt(encode('.png'))),
    'truncated jpeg': ('jpeg', encode('.jpg')[:300]),
    'truncated png': ('png', encode('.png')[:60]),
    'jpeg header only': ('jpeg', encode('.jpg')[:4]),
    'jpeg bomb': ('jpeg', jpeg_bomb()),
    'png bomb': ('png', png_bomb()),
    'tiff': ('png', encode('.tiff')),
    'garbage': ('jpeg', b'hello, not an image at all'),
}

# name -> changes to a good rgb8 Image (height, width, encoding, step, data): each
# must become a rejected frame with a reason.
_ROW = W * 3
BAD_RAW = {
    'zero width': {'width': 0, 'step': 0, 'data': b''},
    'zero height': {'height': 0, 'data': b''},
    'width 2^32-5': {'width': 2 ** 32 - 5},
    'huge width and step': {'width': 2 ** 32 - 5, 'step': 2 ** 32 - 1},
    'step smaller than a row': {'step': _ROW - 1},
    'data shorter than step*height': {'data': GOOD.tobytes()[:-1]},
    'odd width for yuv422': {'encoding': 'yuv422', 'width': W - 1, 'step': (W - 1) * 2,
                             'data': bytes((W - 1) * 2 * H)},
    '32FC1': {'encoding': '32FC1', 'step': W * 4, 'data': bytes(W * 4 * H)},
    'unknown encoding': {'encoding': 'hsv8'},
}


def raw_fields(change: dict) -> dict:
    """Return the fields of a good rgb8 frame with ``change`` applied."""
    fields = {'height': H, 'width': W, 'encoding': 'rgb8', 'step': _ROW, 'data': GOOD.tobytes()}
    fields.update(change)
    return fields


def write_frames(path, storage, entries, speeds=None, compressed=False, camera='/cam'):
    """Write a recording of camera messages (raw field dicts, or (format, bytes)).

    Returns:
        The path.
    """
    with RecordingWriter(path, storage) as bag:
        kind = 'CompressedImage' if compressed else 'Image'
        bag.add_topic(camera, f'sensor_msgs/msg/{kind}')
        if speeds is not None:
            bag.add_topic('/speed', 'std_msgs/msg/Float64')
        for i, entry in enumerate(entries):
            t = T0 + i / 10
            if speeds is not None:
                bag.write('/speed', int(t * 1e9) - 1000,
                          bag.types['std_msgs/msg/Float64'](data=float(speeds[i])))
            if compressed:
                fmt, data = entry
                msg = bag.types['sensor_msgs/msg/CompressedImage'](
                    header=bag.header(t), format=fmt, data=np.frombuffer(data, np.uint8))
            else:
                fields = dict(entry)
                fields['data'] = np.frombuffer(fields['data'], np.uint8)
                msg = bag.types['sensor_msgs/msg/Image'](header=bag.header(t),
                                                         is_bigendian=0, **fields)
            bag.write(camera, int(t * 1e9), msg)
    return path


def read_frames(out) -> list:
    """Return the per-frame records of a replay."""
    return [json.loads(line) for line in (out / 'frames.jsonl').read_text().splitlines()]
