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
"""Message conversion on real rosbags message objects: images, compressed images, speeds."""

import array
import math
import types

import cv2
import numpy as np
import pytest

from msgs_helpers import compressed, header, image, padded, speed_message, T, TS
from multiexit_ros.errors import ConfigError, ImageError, MultiExitError
from multiexit_ros.messages import (array_to_image, compressed_to_array, IMAGE_ENCODINGS,
                                    image_to_array, normalize_speed_type, sec_to_stamp,
                                    speed_from_msg, SPEED_TYPES, stamp_to_sec)

H, W = 6, 10
RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
RGB16 = RNG.integers(0, 65536, (H, W, 3), dtype=np.uint16)

EIGHT_BIT = {  # encoding -> (pixels as stored, expected result)
    'rgb8': (RGB, RGB),
    'bgr8': (RGB[:, :, ::-1], RGB),
    '8UC3': (RGB[:, :, ::-1], RGB),
    'rgba8': (np.dstack([RGB, np.full((H, W), 7, np.uint8)]), RGB),
    'bgra8': (np.dstack([RGB[:, :, ::-1], np.full((H, W), 7, np.uint8)]), RGB),
    '8UC4': (np.dstack([RGB[:, :, ::-1], np.full((H, W), 7, np.uint8)]), RGB),
    'mono8': (RGB[:, :, :1], RGB[:, :, 0]),
    '8UC1': (RGB[:, :, :1], RGB[:, :, 0]),
}
SIXTEEN_BIT = {
    'rgb16': (RGB16, RGB16),
    'bgr16': (RGB16[:, :, ::-1], RGB16),
    'rgba16': (np.dstack([RGB16, np.full((H, W), 9, np.uint16)]), RGB16),
    'bgra16': (np.dstack([RGB16[:, :, ::-1], np.full((H, W), 9, np.uint16)]), RGB16),
    'mono16': (RGB16[:, :, :1], RGB16[:, :, 0]),
    '16UC1': (RGB16[:, :, :1], RGB16[:, :, 0]),
}


@pytest.mark.parametrize('pad', [0, 5])
@pytest.mark.parametrize('encoding', sorted(EIGHT_BIT))
def test_8bit_encodings_honour_row_padding(encoding, pad):
    stored, expected = EIGHT_BIT[encoding]
    data, step = padded(np.ascontiguousarray(stored).reshape(H, -1), pad)
    msg = image(data, H, W, encoding, step)
    out = image_to_array(msg)
    assert out.dtype == np.uint8 and out.flags.c_contiguous and out.flags.writeable
    assert not np.shares_memory(out, msg.data)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize('big_endian', [0, 1])
@pytest.mark.parametrize('encoding', sorted(SIXTEEN_BIT))
def test_16bit_encodings_honour_byte_order_and_padding(encoding, big_endian):
    stored, expected = SIXTEEN_BIT[encoding]
    raw = np.ascontiguousarray(stored).astype('>u2' if big_endian else '<u2')
    data, step = padded(raw.view(np.uint8).reshape(H, -1), 3)
    out = image_to_array(image(data, H, W, encoding, step, is_bigendian=big_endian))
    np.testing.assert_array_equal(out, (expected >> 8).astype(np.uint8))


def test_16bit_byte_order_matters():
    values = np.full((2, 4), 0x1280, np.uint16)
    data = values.astype('>u2').tobytes()
    assert image_to_array(image(data, 2, 4, 'mono16', 8, is_bigendian=1)).max() == 0x12
    assert image_to_array(image(data, 2, 4, 'mono16', 8, is_bigendian=0)).max() == 0x80


COLOUR = (200, 100, 30)


def bayer_mosaic(pattern: str, height=8, width=12) -> np.ndarray:
    """Sample the solid COLOUR through a ROS Bayer pattern (top-left 2x2 block)."""
    value = dict(zip('rgb', COLOUR))
    mosaic = np.zeros((height, width), np.uint16)
    for i in range(2):
        for j in range(2):
            mosaic[i::2, j::2] = value[pattern[2 * i + j]]
    return mosaic


@pytest.mark.parametrize('bits', [8, 16])
@pytest.mark.parametrize('pattern', ['rggb', 'bggr', 'gbrg', 'grbg'])
def test_bayer_patterns_demosaic_to_the_right_colour(pattern, bits):
    mosaic = bayer_mosaic(pattern)
    if bits == 16:
        raw = (mosaic * 256).astype('>u2')
        msg = image(raw.tobytes(), 8, 12, f'bayer_{pattern}16', 24, is_bigendian=1)
    else:
        data, step = padded(mosaic.astype(np.uint8), 4)
        msg = image(data, 8, 12, f'bayer_{pattern}8', step)
    out = image_to_array(msg)
    assert out.shape == (8, 12, 3)
    np.testing.assert_array_equal(out[2:-2, 2:-2].reshape(-1, 3).min(0), COLOUR)
    np.testing.assert_array_equal(out[2:-2, 2:-2].reshape(-1, 3).max(0), COLOUR)


def yuv_of(rgb):
    """BT.601 studio-swing YUV of an RGB triple, as cameras write it."""
    r, g, b = rgb
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    return [int(round(c)) for c in (y, u, v)]


@pytest.mark.parametrize('encoding,order', [('yuv422', 'uyvy'), ('uyvy', 'uyvy'),
                                            ('yuv422_yuy2', 'yuyv'), ('yuyv', 'yuyv')])
def test_yuv422_layouts(encoding, order):
    y, u, v = yuv_of(COLOUR)
    macro = {'uyvy': [u, y, v, y], 'yuyv': [y, u, y, v]}[order]
    rows = np.tile(np.array(macro, np.uint8), (4, 3))  # 4 rows, 6 pixels
    data, step = padded(rows, 2)
    out = image_to_array(image(data, 4, 6, encoding, step))
    assert out.shape == (4, 6, 3)
    assert np.abs(out.astype(int) - COLOUR).max() <= 3


def test_every_listed_encoding_is_tested():
    tested = set(EIGHT_BIT) | set(SIXTEEN_BIT) | {'yuv422', 'uyvy', 'yuv422_yuy2', 'yuyv'} | {
        f'bayer_{p}{b}' for p in ('rggb', 'bggr', 'gbrg', 'grbg') for b in (8, 16)}
    assert set(IMAGE_ENCODINGS) == tested


def test_rclpy_style_data_fields():
    """Accept uint8[] as rclpy holds it (array.array('B')) and as plain bytes."""
    for data in (array.array('B', RGB.tobytes()), RGB.tobytes()):
        msg = types.SimpleNamespace(height=H, width=W, encoding='rgb8', is_bigendian=0,
                                    step=W * 3, data=data)
        np.testing.assert_array_equal(image_to_array(msg), RGB)


@pytest.mark.parametrize('change,words', [
    ({'encoding': 'fancy42'}, ['fancy42', 'unknown encoding']),
    ({'step': W * 3 - 1}, ['step 29', 'smaller']),
    ({'data': RGB.tobytes()[:-1]}, ['179 bytes', 'step*height']),
    ({'data': RGB.tobytes() + b'x'}, ['181 bytes']),
    ({'height': 0, 'data': b''}, ['empty']),
    ({'encoding': 'yuv422', 'width': 9, 'step': 18, 'data': bytes(18 * H)}, ['even width']),
])
def test_malformed_images_raise_one_line_image_errors(change, words):
    fields = {'data': RGB.tobytes(), 'height': H, 'width': W, 'encoding': 'rgb8', 'step': W * 3}
    fields.update(change)
    with pytest.raises(ImageError) as info:
        image_to_array(image(fields['data'], fields['height'], fields['width'],
                             fields['encoding'], fields['step']))
    text = str(info.value)
    assert '\n' not in text and fields['encoding'] in text
    for word in words:
        assert word in text


def encode(ext, pixels):
    ok, buf = cv2.imencode(ext, pixels)
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize('fmt', ['png', 'bgr8; png compressed bgr8', 'rgb8; png compressed bgr8'])
def test_png_decodes_exactly(fmt):
    out = compressed_to_array(compressed(encode('.png', RGB[:, :, ::-1]), fmt))
    np.testing.assert_array_equal(out, RGB)


def test_png_holding_rgb_order_is_not_swapped():
    msg = compressed(encode('.png', RGB), 'rgb8; png compressed rgb8')
    np.testing.assert_array_equal(compressed_to_array(msg), RGB)


@pytest.mark.parametrize('fmt', ['jpeg', 'rgb8; jpeg compressed bgr8'])
def test_jpeg_decodes_to_rgb(fmt):
    smooth = np.zeros((32, 48, 3), np.uint8)
    smooth[...] = COLOUR
    smooth[:, 24:] = (20, 60, 220)
    out = compressed_to_array(compressed(encode('.jpg', smooth[:, :, ::-1]), fmt))
    assert out.shape == (32, 48, 3)
    assert np.abs(out.astype(int) - smooth).mean() < 4  # lossy, but in RGB order


def test_mono_png_decodes_to_rgb():
    gray = RGB[:, :, 0]
    out = compressed_to_array(compressed(encode('.png', gray), 'mono8; png compressed mono8'))
    np.testing.assert_array_equal(out, np.dstack([gray] * 3))


@pytest.mark.parametrize('data,fmt,word', [
    (b'\x00\x01garbage' * 10, 'jpeg', 'decode'),
    (b'', 'png', 'no data'),
    (encode('.png', RGB)[:40], 'png', 'decode'),
    (encode('.png', RGB), '16UC1; compressedDepth png', 'depth'),
])
def test_undecodable_compressed_images_raise(data, fmt, word):
    with pytest.raises(ImageError, match=word) as info:
        compressed_to_array(compressed(data, fmt))
    assert fmt in str(info.value) and '\n' not in str(info.value)


@pytest.mark.parametrize('encoding,pixels', [
    ('mono8', RGB[:, :, 0]), ('rgb8', RGB), ('bgr8', RGB), ('rgba8', RGB[:, :, [0, 1, 2, 0]]),
    ('mono16', RGB16[:, :, 0]),
])
def test_array_to_image_round_trips_through_cdr(encoding, pixels):
    hdr = header(sec=99, nanosec=5)
    msg = array_to_image(pixels, encoding, hdr, T['sensor_msgs/msg/Image'])
    assert msg.header is hdr and (msg.height, msg.width) == (H, W)
    again = TS.deserialize_cdr(TS.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)
    assert again.encoding == encoding and again.header.stamp.nanosec == 5
    out = image_to_array(again)
    expected = {'mono16': (pixels >> 8).astype(np.uint8), 'bgr8': RGB[:, :, ::-1],
                'rgba8': RGB}.get(encoding, pixels)
    np.testing.assert_array_equal(out, expected)


class RclpyLikeImage:
    """Stands in for rclpy's generated class: keyword constructor, no dataclass."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


def test_array_to_image_gives_rclpy_classes_an_array_array():
    msg = array_to_image(RGB, 'rgb8', 'hdr', RclpyLikeImage)
    assert isinstance(msg.data, array.array) and msg.data.typecode == 'B'
    assert msg.step == W * 3 and msg.header == 'hdr' and msg.is_bigendian == 0
    np.testing.assert_array_equal(image_to_array(msg), RGB)


@pytest.mark.parametrize('pixels,encoding', [
    (RGB, 'mono8'), (RGB[:, :, 0], 'rgb8'), (RGB16, 'rgb8'), (RGB[:, :, 0], 'yuv422'),
    (np.zeros((0, 4), np.uint8), 'mono8'),
])
def test_array_to_image_rejects_mismatched_arrays(pixels, encoding):
    with pytest.raises(ImageError, match=encoding):
        array_to_image(pixels, encoding, header(), T['sensor_msgs/msg/Image'])


@pytest.mark.parametrize('speed_type', SPEED_TYPES)
def test_every_speed_type(speed_type):
    msg = speed_message(speed_type, 3.0, 4.0 if 'Float' not in speed_type else 0.0,
                        hdr=header(sec=7, nanosec=250_000_000))
    speed, stamp = speed_from_msg(msg, speed_type)
    if 'Float' in speed_type:
        assert speed == 3.0 and stamp is None
    else:
        assert speed == pytest.approx(5.0) and stamp == pytest.approx(7.25)


@pytest.mark.parametrize('speed_type', SPEED_TYPES)
def test_reversing_counts_as_speed_and_nan_passes_through(speed_type):
    assert speed_from_msg(speed_message(speed_type, -2.5), speed_type)[0] == 2.5
    assert math.isnan(speed_from_msg(speed_message(speed_type, math.nan), speed_type)[0])


def test_speed_type_names():
    assert normalize_speed_type('std_msgs/Float32') == 'std_msgs/msg/Float32'
    assert normalize_speed_type(' nav_msgs/msg/Odometry ') == 'nav_msgs/msg/Odometry'
    with pytest.raises(ConfigError, match='sensor_msgs/msg/Imu'):
        normalize_speed_type('sensor_msgs/msg/Imu')


def test_speed_message_of_the_wrong_type_is_a_clear_error():
    msg = speed_message('std_msgs/msg/Float64', 1.0)
    with pytest.raises(ConfigError, match='nav_msgs/msg/Odometry'):
        speed_from_msg(msg, 'nav_msgs/msg/Odometry')


def test_stamps():
    stamp = T['builtin_interfaces/msg/Time'](sec=1_700_000_000, nanosec=123_456_789)
    t = stamp_to_sec(stamp)
    assert t == pytest.approx(1_700_000_000.123456789, abs=1e-6)
    sec, nanosec = sec_to_stamp(t)
    assert sec == 1_700_000_000 and abs(nanosec - 123_456_789) < 1000
    assert sec_to_stamp(2.5) == (2, 500_000_000)
    assert sec_to_stamp(1.9999999999) == (2, 0)
    assert all(isinstance(v, int) for v in sec_to_stamp(0.1))
    with pytest.raises(MultiExitError, match='nan'):
        sec_to_stamp(math.nan)
