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
"""Image size limits and decoder failures: every one is an ImageError, never a crash."""

import struct
import zlib

import cv2
import numpy as np
import pytest

from msgs_helpers import compressed, image, T
from multiexit_ros.compressed import claimed_size
from multiexit_ros.errors import ConfigError, ImageError
from multiexit_ros.messages import compressed_to_array, image_to_array
from multiexit_ros.node_logic import FrameHandler
from multiexit_ros.runtime import PipelineConfig
from node_fixtures import tiny_pipeline

RGB = np.random.default_rng(3).integers(0, 256, (24, 40, 3), dtype=np.uint8)


def encode(ext, pixels=RGB):
    ok, buf = cv2.imencode(ext, pixels)
    assert ok
    return bytearray(buf.tobytes())


def jpeg_claiming(height, width) -> bytes:
    """Return a small real JPEG whose frame header is edited to claim height x width."""
    data = encode('.jpg')
    sof = data.find(b'\xff\xc0')
    data[sof + 5:sof + 9] = struct.pack('>HH', height, width)
    return bytes(data)


def png_claiming(height, width) -> bytes:
    """Return a small real PNG whose IHDR claims height x width (with a correct CRC)."""
    data = encode('.png')
    data[16:24] = struct.pack('>II', width, height)
    data[29:33] = struct.pack('>I', zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def one_line(err) -> str:
    text = str(err.value)
    assert '\n' not in text and text
    return text


def test_jpeg_claiming_over_a_gigapixel_is_an_image_error_not_a_cv2_error():
    # 65000 x 65000 is beyond OpenCV's own limit: imdecode raised cv2.error here.
    with pytest.raises(ImageError) as err:
        compressed_to_array(compressed(jpeg_claiming(65000, 65000), 'jpeg'))
    text = one_line(err)
    assert '65000x65000' in text and 'max_image_megapixels' in text and 'JPEG' in text


@pytest.mark.parametrize('make', [jpeg_claiming, png_claiming])
def test_claimed_size_is_checked_against_the_limit_before_decoding(make):
    data = make(3000, 4000)  # 12 megapixels claimed, a few hundred bytes of data
    assert claimed_size(np.frombuffer(data, np.uint8))[1:] == (3000, 4000)
    with pytest.raises(ImageError) as err:
        compressed_to_array(compressed(data, 'jpeg'), max_pixels=10_000_000)
    assert '12 megapixels' in one_line(err) and 'limit of 10' in one_line(err)


def test_frames_within_the_limit_still_decode():
    for ext in ('.png', '.jpg'):
        out = compressed_to_array(compressed(bytes(encode(ext)), 'png'), max_pixels=24 * 40)
        assert out.shape == (24, 40, 3)
    with pytest.raises(ImageError, match='limit'):
        compressed_to_array(compressed(bytes(encode('.png')), 'png'), max_pixels=24 * 40 - 1)


def test_raw_images_obey_the_same_limit():
    msg = image(RGB.tobytes(), 24, 40, 'rgb8', 120)
    assert image_to_array(msg, max_pixels=960).shape == (24, 40, 3)
    with pytest.raises(ImageError) as err:
        image_to_array(msg, max_pixels=959)
    assert '24x40 (HxW)' in one_line(err)


@pytest.mark.parametrize('ext, name', [('.tiff', 'TIFF'), ('.bmp', 'BMP')])
def test_other_formats_opencv_could_decode_are_refused_by_name(ext, name):
    with pytest.raises(ImageError) as err:
        compressed_to_array(compressed(bytes(encode(ext)), 'png'))
    assert f'{name} data, not JPEG or PNG' in one_line(err)


@pytest.mark.parametrize('cut', [2, 3, 10, 100])
def test_truncated_jpeg_headers_are_image_errors(cut):
    with pytest.raises(ImageError) as err:
        compressed_to_array(compressed(jpeg_claiming(24, 40)[:cut], 'jpeg'))
    assert 'JPEG' in one_line(err)


def test_the_limit_is_a_pipeline_parameter():
    assert PipelineConfig().max_image_pixels == 64_000_000
    assert PipelineConfig.from_params({'max_image_megapixels': 2.5}).max_image_pixels == 2_500_000
    with pytest.raises(ConfigError, match='max_image_megapixels'):
        PipelineConfig.from_params({'max_image_megapixels': 0.0})


@pytest.fixture(scope='module')
def small_limit_pipeline(tmp_path_factory):
    return tiny_pipeline(tmp_path_factory.mktemp('model'), max_image_megapixels=0.01)


def test_node_handler_survives_a_bomb_and_keeps_going(small_limit_pipeline):
    warnings = []
    handler = FrameHandler(small_limit_pipeline, T['sensor_msgs/msg/Image'], compressed=True,
                           warn=warnings.append, log_period_s=0.0, clock=lambda: 12.35,
                           max_pixels=64_000_000)
    assert handler.handle_frame(compressed(jpeg_claiming(65000, 65000), 'jpeg')) is None
    assert handler.rejected == 1 and 'max_image_megapixels' in warnings[0]
    out = handler.handle_frame(compressed(bytes(encode('.png')), 'png'))
    assert out is not None and out.mask.height == 24


def test_node_handler_takes_the_limit_from_the_pipeline_config(small_limit_pipeline):
    warnings = []
    handler = FrameHandler(small_limit_pipeline, T['sensor_msgs/msg/Image'],
                           warn=warnings.append, log_period_s=0.0, clock=lambda: 12.35)
    assert handler.max_pixels == 10_000
    big = np.zeros((101, 100, 3), np.uint8)
    assert handler.handle_frame(image(big.tobytes(), 101, 100, 'rgb8', 300)) is None
    assert handler.rejected == 1 and '101x100 (HxW)' in warnings[0]
