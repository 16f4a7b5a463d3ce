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
"""End to end on a real ROS 2: a perception_node on a JPEG/PNG camera.

Started once with ``ros2 launch ... image_transport:=compressed`` in the namespace
``jpeg``, with TwistStamped speeds from a best-effort publisher.
"""

import struct
import threading

import pytest

import ros_helpers as rh

rh.require_ros()

import cv2  # noqa: E402, I100 (after the skip)
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
import numpy as np  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from node_fixtures import tiny_checkpoint  # noqa: E402

NODE = '/jpeg/perception_node'
MASK = f'{NODE}/mask'
H, W = 48, 64
PIXELS = np.random.default_rng(3).integers(0, 256, (H, W, 3), dtype=np.uint8)


def encoded(ext: str) -> bytes:
    ok, data = cv2.imencode(ext, PIXELS)
    assert ok
    return data.tobytes()


def claiming(height: int, width: int) -> bytes:
    """Return a valid small JPEG whose frame header (SOF0) claims height x width."""
    data = bytearray(encoded('.jpg'))
    sof = data.index(b'\xff\xc0')
    data[sof + 5:sof + 9] = struct.pack('>HH', height, width)
    return bytes(data)


@pytest.fixture(scope='module')
def jpeg(tmp_path_factory):
    folder = tmp_path_factory.mktemp('jpeg')
    launched = rh.launch_perception(
        folder / 'launch.log', tiny_checkpoint(folder), rh.write_config(folder),
        namespace='jpeg', image_transport='compressed', image_topic='/jpeg/camera',
        speed_topic='/jpeg/speed', speed_type='geometry_msgs/msg/TwistStamped')
    probe = rh.Probe('jpeg_probe')
    probe.listen(Image, MASK)
    probe.listen(DiagnosticArray, '/diagnostics')
    camera = probe.publisher(CompressedImage, '/jpeg/camera')
    speed = probe.publisher(TwistStamped, '/jpeg/speed', best_effort=True)

    def roundtrip(data=None, fmt='jpeg', timeout=30.0):
        data = data or encoded('.jpg')
        return rh.send_until_mask(probe, camera, lambda s: rh.compressed_msg(s, data, fmt),
                                  MASK, timeout=timeout, launched=launched)
    try:
        roundtrip(timeout=rh.START_S)
        yield probe, camera, speed, roundtrip, launched
    finally:
        launched.interrupt()
        probe.close()


@pytest.mark.parametrize('fmt', ['jpeg', 'png'])
def test_compressed_frames_give_masks_at_the_camera_size_with_its_header(jpeg, fmt):
    _, _, _, roundtrip, _ = jpeg
    sent, mask = roundtrip(encoded('.jpg' if fmt == 'jpeg' else '.png'), fmt)
    assert (mask.height, mask.width, mask.encoding) == (H, W, 'mono8')
    assert mask.header.frame_id == 'camera' and mask.header.stamp == sent.header.stamp


@pytest.mark.parametrize('bad', ['corrupt', 'claims 60000x60000'])
def test_an_undecodable_jpeg_is_counted_and_the_node_keeps_publishing(jpeg, bad):
    probe, camera, _, roundtrip, launched = jpeg
    data = b'\xff\xd8\xff\xe0' + bytes(range(256)) * 4 if bad == 'corrupt' else \
        claiming(60000, 60000)
    before = rh.counter(probe, NODE, 'frames_rejected')
    camera.publish(rh.compressed_msg(probe.stamp(), data))
    rh.wait_for(lambda: rh.counter(probe, NODE, 'frames_rejected') > before, 20.0,
                f'frames_rejected to count the {bad} JPEG', launched=launched)
    roundtrip()
    assert 'Traceback' not in launched.output()
    assert launched.proc.poll() is None


def test_a_best_effort_speed_publisher_connects(jpeg):
    probe, _, speed, roundtrip, launched = jpeg

    def budget_follows_speed():
        msg = TwistStamped()
        msg.header.stamp = probe.stamp()
        msg.twist.linear.x, msg.twist.linear.y = 6.0, 8.0  # 10 m/s
        speed.publish(msg)
        roundtrip()
        reports = rh.diagnostics(probe, NODE)
        return reports and reports[-1].get('speed_mps') == '10'
    rh.wait_for(budget_follows_speed, 30.0, 'the best-effort speed to reach the node',
                step=0.3, launched=launched)
    assert float(rh.diagnostics(probe, NODE)[-1]['speed_budget_s']) == pytest.approx(0.1)


def test_diagnostics_keep_coming_while_frames_arrive_faster_than_processed(jpeg):
    """A flat 720x1280 JPEG is small to publish but takes the node a while to process."""
    probe, camera, _, _, launched = jpeg
    ok, data = cv2.imencode('.jpg', np.full((720, 1280, 3), 90, np.uint8))
    msg = rh.compressed_msg(probe.stamp(), data.tobytes())
    before = len(rh.diagnostics(probe, NODE))
    stop = threading.Event()

    def flood():
        while not stop.is_set():
            msg.header.stamp = probe.stamp()
            camera.publish(msg)
    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    try:
        rh.wait_for(lambda: len(rh.diagnostics(probe, NODE)) >= before + 3, 30.0,
                    'three diagnostics messages during the flood', launched=launched)
    finally:
        stop.set()
        thread.join()
    assert float(rh.diagnostics(probe, NODE)[-1]['frames_dropped']) > 0
