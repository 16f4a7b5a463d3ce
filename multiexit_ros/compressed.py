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
"""Compressed camera frames (JPEG, PNG): the claimed size checked, then decoded.

A JPEG or PNG header may claim any size (a JPEG up to 65535x65535, a PNG up to 2^31-1
on each side) in a few hundred bytes: a decompression bomb. Reading the claimed size
first lets the caller refuse such a frame before OpenCV allocates for it. Only JPEG and
PNG are camera formats here; other formats OpenCV could decode (TIFF, BMP, WebP, ...)
are refused by name. Every OpenCV failure becomes an :class:`ImageError` with its
reason, so the node and the replay count the frame as rejected and go on.
"""

import array

import numpy as np

from .errors import ImageError

__all__ = ['MAX_IMAGE_PIXELS', 'byte_view', 'check_pixels', 'claimed_size',
           'compressed_to_array', 'cv_reason']

# Largest camera image (height x width) converted by default: 64 megapixels, 16 times a
# 2048x2048 camera; the pipeline config's ``max_image_megapixels`` sets it.
MAX_IMAGE_PIXELS = 64_000_000


PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_OTHER_FORMATS = ((b'II*\x00', 'TIFF'), (b'MM\x00*', 'TIFF'), (b'BM', 'BMP'),
                  (b'GIF8', 'GIF'), (b'RIFF', 'RIFF/WebP'), (b'\x00\x00\x00\x0cjP', 'JPEG 2000'),
                  (b'P5', 'PGM'), (b'P6', 'PPM'), (b'#?RADIANCE', 'HDR'),
                  (b'v/1\x01', 'OpenEXR'))
# Start-of-frame markers (baseline, progressive, lossless, arithmetic): the segment that
# holds the frame's height and width. C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers that stand alone, without a length field.
_JPEG_STANDALONE = frozenset([0x01, 0xD8, *range(0xD0, 0xD8)])


def claimed_size(data) -> tuple:
    """Return ``(format, height, width)`` as the JPEG or PNG header of ``data`` claims.

    Args:
        data: the compressed bytes (bytes, or a uint8 NumPy array).

    Returns:
        ``('JPEG' or 'PNG', height, width)``, both positive.

    Raises:
        ImageError: the data is neither JPEG nor PNG (the format is named when known),
            its header is cut short or malformed, or it claims a zero size.
    """
    view = memoryview(data).cast('B') if not isinstance(data, bytes) else data
    head = bytes(view[:16])
    if head[:2] == b'\xff\xd8':
        kind, (height, width) = 'JPEG', _jpeg_size(view)
    elif head[:8] == PNG_SIGNATURE:
        kind, (height, width) = 'PNG', _png_size(view)
    else:
        other = next((name for magic, name in _OTHER_FORMATS if head.startswith(magic)), None)
        if other:
            raise ImageError(f'{other} data, not JPEG or PNG')
        raise ImageError(f'{len(view)} bytes that are neither JPEG nor PNG data (first bytes '
                         f'{head[:4].hex()}), cannot decode')
    if height <= 0 or width <= 0:
        raise ImageError(f'{kind} header claims an empty image of {height}x{width} (HxW)')
    return kind, height, width


def _png_size(view) -> tuple:
    """Read IHDR, which must be the first chunk: width and height, 4 bytes each."""
    if len(view) < 24:
        raise ImageError(f'PNG cut short in its header ({len(view)} bytes), cannot decode')
    if bytes(view[12:16]) != b'IHDR':
        raise ImageError('PNG whose first chunk is not IHDR, cannot decode')
    width = int.from_bytes(view[16:20], 'big')
    height = int.from_bytes(view[20:24], 'big')
    return height, width


def _jpeg_size(view) -> tuple:
    """Walk the JPEG segments up to the first start-of-frame and read its size."""
    n, i = len(view), 2
    while True:
        if i >= n:
            raise ImageError('JPEG cut short before its frame header, cannot decode')
        if view[i] != 0xFF:
            raise ImageError(f'JPEG with a malformed segment at byte {i}, cannot decode')
        while i < n and view[i] == 0xFF:  # fill bytes before a marker
            i += 1
        if i >= n:
            raise ImageError('JPEG cut short before its frame header, cannot decode')
        marker, i = view[i], i + 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data with no frame header
            raise ImageError('JPEG without a frame header, cannot decode')
        if i + 2 > n:
            raise ImageError('JPEG cut short before its frame header, cannot decode')
        length = (view[i] << 8) | view[i + 1]
        if length < 2:
            raise ImageError(f'JPEG with a malformed segment at byte {i}, cannot decode')
        if marker in _JPEG_SOF:
            if i + 7 > n:
                raise ImageError('JPEG cut short in its frame header, cannot decode')
            return (view[i + 3] << 8) | view[i + 4], (view[i + 5] << 8) | view[i + 6]
        i += length


def byte_view(data) -> np.ndarray:
    """Return the message's ``data`` field as a flat uint8 array without copying."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data, dtype=np.uint8).reshape(-1)
    if isinstance(data, (bytes, bytearray, memoryview, array.array)):
        return np.frombuffer(data, np.uint8)
    return np.asarray(data, dtype=np.uint8).reshape(-1)


def cv_reason(err) -> str:
    """Return an OpenCV error as one line without its source location."""
    text = ' '.join(str(err).split())
    return text.split(' error: ', 1)[-1] or type(err).__name__


def check_pixels(what: str, height: int, width: int, max_pixels: int) -> None:
    """Raise ImageError naming ``what`` when height x width exceeds ``max_pixels``."""
    if height * width > max_pixels:
        raise ImageError(f'{what}: {height}x{width} (HxW) is {height * width / 1e6:.4g} '
                         f'megapixels, more than the limit of {max_pixels / 1e6:.4g} '
                         '(max_image_megapixels)')


def compressed_to_array(msg, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (JPEG or PNG) into an (H, W, 3) RGB array.

    ``format`` is read as image_transport writes it (``'jpeg'``, ``'png'``,
    ``'rgb8; jpeg compressed bgr8'``); the encoding after ``compressed`` tells the
    channel order inside the file (OpenCV writes BGR, so ``bgr8`` is the usual one).

    The size the JPEG or PNG header claims is checked against ``max_pixels`` before
    anything is decoded, so a decompression bomb costs a few hundred bytes of parsing.

    Args:
        msg: a CompressedImage message with ``format`` and ``data``.
        max_pixels: largest height x width accepted.

    Returns:
        A new (H, W, 3) uint8 RGB array.

    Raises:
        ImageError: empty data, data that is not JPEG or PNG, a header claiming more than
            ``max_pixels`` pixels, data OpenCV cannot decode (every OpenCV failure ends
            here), or a depth image (``compressedDepth``).
    """
    fmt = str(msg.format)
    what = f'compressed image (format {fmt!r})'
    if 'compresseddepth' in fmt.lower():
        raise ImageError(f'{what}: compressed depth images are not camera images')
    data = byte_view(msg.data)
    if data.size == 0:
        raise ImageError(f'{what}: no data')
    try:
        kind, height, width = claimed_size(data)
    except ImageError as err:
        raise ImageError(f'{what}: {err}') from None
    what = f'{what}, {kind}'
    check_pixels(what, height, width, max_pixels)
    import cv2

    try:
        decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error as err:
        raise ImageError(f'{what}: OpenCV cannot decode it ({cv_reason(err)})') from None
    if decoded is None:
        raise ImageError(f'{what}: {data.size} bytes OpenCV cannot decode (corrupt or cut '
                         'short)')
    inner = fmt.split('compressed', 1)[1].strip().lower() if 'compressed' in fmt else 'bgr8'
    if inner.startswith('rgb'):
        return np.ascontiguousarray(decoded)
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
