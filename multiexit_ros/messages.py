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
"""Conversion between ROS messages and NumPy arrays, shared by the node and the replay.

Nothing here imports ROS: every function works on any object with the message's
fields, so rclpy messages and the ``rosbags`` typestore dataclasses are handled alike.
Image conversion uses NumPy and OpenCV only (no cv_bridge).
"""

import array
import dataclasses
import math
import sys

import numpy as np

from .compressed import (byte_view as _byte_view, check_pixels as _check_pixels,
                         compressed_to_array, cv_reason as _cv_reason, MAX_IMAGE_PIXELS)
from .errors import ConfigError, ImageError, MultiExitError

__all__ = [
    'IMAGE_ENCODINGS',
    'MAX_IMAGE_PIXELS',
    'SPEED_TYPES',
    'array_to_image',
    'compressed_to_array',
    'image_to_array',
    'normalize_speed_type',
    'sec_to_stamp',
    'speed_from_msg',
    'stamp_to_sec',
]

# encoding -> (channels, bytes per channel, layout). Layouts: rgb/bgr/rgba/bgra/mono
# are plain pixel orders; bayer_XX and yuv_XX need a demosaic / colour conversion.
_ENCODINGS = {
    'rgb8': (3, 1, 'rgb'), 'bgr8': (3, 1, 'bgr'), '8UC3': (3, 1, 'bgr'),
    'rgba8': (4, 1, 'rgba'), 'bgra8': (4, 1, 'bgra'), '8UC4': (4, 1, 'bgra'),
    'mono8': (1, 1, 'mono'), '8UC1': (1, 1, 'mono'),
    'rgb16': (3, 2, 'rgb'), 'bgr16': (3, 2, 'bgr'), 'rgba16': (4, 2, 'rgba'),
    'bgra16': (4, 2, 'bgra'), 'mono16': (1, 2, 'mono'), '16UC1': (1, 2, 'mono'),
    'yuv422': (2, 1, 'yuv_uyvy'), 'uyvy': (2, 1, 'yuv_uyvy'),
    'yuv422_yuy2': (2, 1, 'yuv_yuyv'), 'yuyv': (2, 1, 'yuv_yuyv'),
}
for _pattern in ('rggb', 'bggr', 'gbrg', 'grbg'):
    _ENCODINGS[f'bayer_{_pattern}8'] = (1, 1, f'bayer_{_pattern}')
    _ENCODINGS[f'bayer_{_pattern}16'] = (1, 2, f'bayer_{_pattern}')

IMAGE_ENCODINGS = tuple(_ENCODINGS)

# OpenCV names a Bayer pattern by the 2x2 block starting at the second row and column,
# so ROS's (top-left) 'rggb' is OpenCV's 'BG'. These older names exist in every OpenCV 4.
_BAYER_CODES = {'bayer_rggb': 'COLOR_BayerBG2RGB', 'bayer_bggr': 'COLOR_BayerRG2RGB',
                'bayer_gbrg': 'COLOR_BayerGR2RGB', 'bayer_grbg': 'COLOR_BayerGB2RGB'}
_YUV_CODES = {'yuv_uyvy': 'COLOR_YUV2RGB_UYVY', 'yuv_yuyv': 'COLOR_YUV2RGB_YUYV'}

SPEED_TYPES = (
    'std_msgs/msg/Float32',
    'std_msgs/msg/Float64',
    'geometry_msgs/msg/TwistStamped',
    'geometry_msgs/msg/TwistWithCovarianceStamped',
    'nav_msgs/msg/Odometry',
    'autoware_vehicle_msgs/msg/VelocityReport',
)


def _cv2():
    import cv2
    return cv2


def image_to_array(msg, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Convert a ``sensor_msgs/Image`` into an RGB (H, W, 3) or mono (H, W) uint8 array.

    16-bit data is scaled to 8 bit by keeping the high byte (value / 256, the same
    scale for every frame); alpha is dropped; Bayer patterns are demosaiced; YUV 4:2:2
    (``yuv422``/``uyvy``, ``yuv422_yuy2``/``yuyv``) is converted to RGB.

    Args:
        msg: an Image message (rclpy or rosbags): height, width, encoding, is_bigendian,
            step and data.
        max_pixels: largest height x width accepted.

    Returns:
        A new C-contiguous uint8 array: (H, W) for mono encodings, (H, W, 3) RGB otherwise.

    Raises:
        ImageError: unknown encoding, empty image, more than ``max_pixels`` pixels,
            ``step`` smaller than a row, data length other than ``step * height``, an odd
            width for YUV 4:2:2, or a conversion OpenCV refuses.
    """
    encoding, height, width, step = msg.encoding, int(msg.height), int(msg.width), int(msg.step)
    what = f'image {height}x{width} (HxW) {encoding!r}'
    if encoding not in _ENCODINGS:
        raise ImageError(f'{what}: unknown encoding (supported: {", ".join(IMAGE_ENCODINGS)})')
    channels, depth, layout = _ENCODINGS[encoding]
    if height <= 0 or width <= 0:
        raise ImageError(f'{what}: empty image')
    _check_pixels(what, height, width, max_pixels)
    row = width * channels * depth
    if step < row:
        raise ImageError(f'{what}: step {step} is smaller than a row of {row} bytes')
    data = _byte_view(msg.data)
    if data.size != step * height:
        raise ImageError(f'{what}: data has {data.size} bytes, expected step*height = '
                         f'{step}*{height} = {step * height}')
    if layout.startswith('yuv') and width % 2:
        raise ImageError(f'{what}: YUV 4:2:2 needs an even width')
    pixels = data.reshape(height, step)[:, :row]
    if depth == 2:
        order = '>' if msg.is_bigendian else '<'
        pixels = np.ascontiguousarray(pixels).view(f'{order}u2')
        pixels = (pixels >> 8).astype(np.uint8)
    pixels = pixels.reshape(height, width, channels)
    # np.array copies exactly once: the result never aliases the message's buffer.
    if layout == 'mono':
        return np.array(pixels[:, :, 0], order='C')
    if layout in ('rgb', 'rgba'):
        return np.array(pixels[:, :, :3], order='C')
    if layout in ('bgr', 'bgra'):
        return np.array(pixels[:, :, 2::-1], order='C')
    cv2 = _cv2()
    try:
        if layout in _BAYER_CODES:
            return cv2.cvtColor(np.ascontiguousarray(pixels[:, :, 0]),
                                getattr(cv2, _BAYER_CODES[layout]))
        return cv2.cvtColor(np.ascontiguousarray(pixels), getattr(cv2, _YUV_CODES[layout]))
    except cv2.error as err:
        raise ImageError(f'{what}: OpenCV cannot convert it ({_cv_reason(err)})') from None


# encoding -> (channels, dtype) accepted by array_to_image.
_PACKABLE = {
    'mono8': (1, np.uint8), '8UC1': (1, np.uint8), 'rgb8': (3, np.uint8),
    'bgr8': (3, np.uint8), '8UC3': (3, np.uint8), 'rgba8': (4, np.uint8),
    'bgra8': (4, np.uint8), 'mono16': (1, np.uint16), '16UC1': (1, np.uint16),
}


def array_to_image(array_: np.ndarray, encoding: str, header, msg_class):
    """Build an Image message of ``msg_class`` holding ``array_`` (no colour conversion).

    Args:
        array_: (H, W) for one-channel encodings or (H, W, C) pixels already in the
            encoding's channel order, of the encoding's dtype (uint8, or uint16 for
            mono16 / 16UC1, written in this machine's byte order).
        encoding: mono8, 8UC1, rgb8, bgr8, 8UC3, rgba8, bgra8, mono16 or 16UC1.
        header: the header to put on the message (e.g. the camera image's).
        msg_class: rclpy's ``sensor_msgs.msg.Image`` or the rosbags typestore's class.

    Returns:
        A new message of ``msg_class``.

    Raises:
        ImageError: unsupported encoding, or an array whose shape or dtype does not fit it.
    """
    if encoding not in _PACKABLE:
        raise ImageError(f'cannot write images as {encoding!r} (supported: '
                         f'{", ".join(_PACKABLE)})')
    channels, dtype = _PACKABLE[encoding]
    arr = np.asarray(array_)
    shape_ok = arr.ndim == 2 if channels == 1 else (arr.ndim == 3 and arr.shape[2] == channels)
    if channels == 1 and arr.ndim == 3 and arr.shape[2] == 1:
        arr, shape_ok = arr[:, :, 0], True
    if not shape_ok or arr.dtype != dtype or arr.size == 0:
        raise ImageError(f'array of shape {arr.shape} and dtype {arr.dtype} cannot be written '
                         f'as {encoding!r} ({channels} channel(s) of {np.dtype(dtype).name})')
    arr = np.ascontiguousarray(arr)
    height, width = arr.shape[:2]
    flat = arr.reshape(-1).view(np.uint8)
    # rosbags serializes uint8[] from NumPy; rclpy stores it as array.array('B').
    data = flat.copy() if dataclasses.is_dataclass(msg_class) else array.array('B', flat.tobytes())
    return msg_class(header=header, height=height, width=width, encoding=encoding,
                     is_bigendian=int(arr.dtype.itemsize > 1 and sys.byteorder == 'big'),
                     step=width * channels * arr.dtype.itemsize, data=data)


def normalize_speed_type(speed_type: str) -> str:
    """Return the full name of a speed message type (``std_msgs/Float32`` is accepted).

    Raises:
        ConfigError: the type is not one of :data:`SPEED_TYPES`.
    """
    name = str(speed_type).strip()
    parts = name.split('/')
    if len(parts) == 2:
        name = f'{parts[0]}/msg/{parts[1]}'
    if name not in SPEED_TYPES:
        raise ConfigError(f'unsupported speed type {speed_type!r} (supported: '
                          f'{", ".join(SPEED_TYPES)})')
    return name


def speed_from_msg(msg, speed_type: str) -> tuple[float, float | None]:
    """Read a speed in m/s and its header stamp from a speed message.

    The speed is the magnitude of the planar velocity, so reversing also counts:
    ``|data|`` for Float32/Float64, ``hypot(linear.x, linear.y)`` for twists and
    odometry, ``hypot(longitudinal_velocity, lateral_velocity)`` for Autoware's
    VelocityReport. NaN and inf pass through unchanged for the pipeline to reject.

    Args:
        msg: a message of ``speed_type``.
        speed_type: one of :data:`SPEED_TYPES` (or its short ``pkg/Type`` form).

    Returns:
        ``(speed_mps, stamp_s)``; ``stamp_s`` is None for types without a header.

    Raises:
        ConfigError: an unsupported type, or a message without the type's fields.
    """
    kind = normalize_speed_type(speed_type)
    try:
        if kind in ('std_msgs/msg/Float32', 'std_msgs/msg/Float64'):
            return abs(float(msg.data)), None
        if kind == 'autoware_vehicle_msgs/msg/VelocityReport':
            speed = math.hypot(float(msg.longitudinal_velocity), float(msg.lateral_velocity))
        else:
            twist = msg.twist if kind == 'geometry_msgs/msg/TwistStamped' else msg.twist.twist
            speed = math.hypot(float(twist.linear.x), float(twist.linear.y))
        return speed, stamp_to_sec(msg.header.stamp)
    except AttributeError as exc:
        raise ConfigError(f'speed message {type(msg).__name__} is not a {kind}: {exc}') from None


def stamp_to_sec(stamp) -> float:
    """Return a ``builtin_interfaces/Time`` (sec, nanosec) as float seconds."""
    return int(stamp.sec) + int(stamp.nanosec) * 1e-9


def sec_to_stamp(t: float) -> tuple[int, int]:
    """Split float seconds into ``(sec, nanosec)`` with 0 <= nanosec < 1e9.

    Raises:
        MultiExitError: ``t`` is NaN or infinite.
    """
    if not math.isfinite(t):
        raise MultiExitError(f'time {t!r} is not a finite number of seconds')
    return divmod(int(round(t * 1e9)), 1_000_000_000)
