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
"""End to end on a real ROS 2: one perception_node (raw camera, Float32 speed).

Started once with ``ros2 launch multiexit_ros perception.launch.py device:=cpu ...`` in
the namespace ``raw`` and fed by real publishers; the tests run in file order and the
last one stops it with SIGINT.
"""

import math
import subprocess
import time

import pytest

import ros_helpers as rh

rh.require_ros()

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402, I100 (after the skip)
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Float32  # noqa: E402

from multiexit_ros.messages import IMAGE_ENCODINGS  # noqa: E402
from node_fixtures import tiny_checkpoint  # noqa: E402

NODE = '/raw/perception_node'
MASK, COLOR = f'{NODE}/mask', f'{NODE}/color_mask'
H, W = 48, 64


class Raw:
    """The launched node and the probe that talks to it."""

    def __init__(self, folder):
        model = tiny_checkpoint(folder)
        config = rh.write_config(folder, **{'budget.speed_timeout_s': 0.5})
        self.launched = rh.launch_perception(
            folder / 'launch.log', model, config, namespace='raw', image_topic='/raw/camera',
            speed_topic='/raw/speed', speed_type='std_msgs/msg/Float32')
        self.probe = rh.Probe('raw_probe')
        self.probe.listen(Image, MASK)
        self.probe.listen(DiagnosticArray, '/diagnostics')
        self.camera = self.probe.publisher(Image, '/raw/camera')
        self.speed = self.probe.publisher(Float32, '/raw/speed')

    def roundtrip(self, encoding='rgb8', timeout=30.0, **kw):
        return rh.send_until_mask(
            self.probe, self.camera, lambda s: rh.image_msg(s, encoding, H, W, **kw), MASK,
            timeout=timeout, launched=self.launched)

    def report_after(self, received: float, timeout=20.0) -> dict:
        """Return the first diagnostics report counting more than ``received`` frames."""
        return rh.wait_for(
            lambda: next((r for r in rh.diagnostics(self.probe, NODE)
                          if float(r.get('frames_received') or 0) > received), None),
            timeout, f'a diagnostics report after {received:g} frames', launched=self.launched)

    def received(self) -> float:
        return rh.counter(self.probe, NODE, 'frames_received')

    def param(self, *args) -> subprocess.CompletedProcess:
        return subprocess.run(['ros2', 'param', *args, '--no-daemon', '--spin-time', '5'],
                              capture_output=True, text=True, timeout=120)


@pytest.fixture(scope='module')
def raw(tmp_path_factory):
    node = Raw(tmp_path_factory.mktemp('raw'))
    try:
        node.roundtrip(timeout=rh.START_S)  # started and connected
        yield node
    finally:
        node.launched.interrupt()
        node.probe.close()


@pytest.mark.parametrize('encoding', IMAGE_ENCODINGS)
def test_mask_is_mono8_at_the_camera_size_with_its_header(raw, encoding):
    sent, mask = raw.roundtrip(encoding, frame_id=f'cam_{encoding}', seed=len(encoding))
    assert (mask.height, mask.width, mask.encoding, mask.step) == (H, W, 'mono8', W)
    assert len(mask.data) == H * W
    assert mask.header.frame_id == f'cam_{encoding}'
    assert (mask.header.stamp.sec, mask.header.stamp.nanosec) == (
        sent.header.stamp.sec, sent.header.stamp.nanosec)


@pytest.mark.parametrize('bad', ['short data', 'unknown encoding'])
def test_a_malformed_frame_is_counted_and_the_node_keeps_publishing(raw, bad):
    before = rh.counter(raw.probe, NODE, 'frames_rejected')
    stamp = raw.probe.stamp()
    msg = rh.image_msg(stamp, 'rgb8', H, W, data=bytes(H * W)) if bad == 'short data' else \
        rh.image_msg(stamp, 'rgb7', H, W)
    raw.camera.publish(msg)
    rh.wait_for(lambda: rh.counter(raw.probe, NODE, 'frames_rejected') > before, 20.0,
                f'frames_rejected to count the {bad} frame', launched=raw.launched)
    raw.roundtrip()  # and still publishing


def test_the_color_mask_is_computed_only_while_someone_subscribes(raw):
    raw.roundtrip()
    report = raw.report_after(raw.received())
    built = float(report['color_masks'])
    for _ in range(3):
        raw.roundtrip()
    report = raw.report_after(raw.received())
    assert float(report['color_masks']) == built  # nobody listened: none built
    sub = raw.probe.listen(Image, COLOR)
    sent, _ = rh.send_until_mask(
        raw.probe, raw.camera, lambda s: rh.image_msg(s, 'bgr8', H, W), COLOR, timeout=30.0,
        launched=raw.launched)
    (color,) = [c for c in raw.probe.messages(COLOR) if c.header.stamp == sent.header.stamp]
    assert (color.height, color.width, color.encoding) == (H, W, 'rgb8')
    assert color.header.frame_id == 'camera'
    raw.probe.node.destroy_subscription(sub)

    def stops_building():
        count = float(raw.report_after(raw.received())['color_masks'])
        raw.roundtrip()
        return float(raw.report_after(raw.received())['color_masks']) == count
    rh.wait_for(stops_building, 30.0, 'colour masks to stop once unsubscribed')


def test_ros2_param_set_changes_a_runtime_parameter_and_refuses_a_read_only_one(raw):
    done = raw.param('set', NODE, 'publish_color', 'false')
    assert done.returncode == 0 and 'successful' in done.stdout, done.stdout + done.stderr
    assert 'False' in raw.param('get', NODE, 'publish_color').stdout
    raw.probe.listen(Image, COLOR)
    raw.roundtrip()
    before = float(raw.report_after(raw.received())['color_masks'])
    colors = len(raw.probe.messages(COLOR))
    for _ in range(3):
        raw.roundtrip()
    assert float(raw.report_after(raw.received())['color_masks']) == before
    assert len(raw.probe.messages(COLOR)) == colors
    assert 'successful' in raw.param('set', NODE, 'publish_color', 'true').stdout

    refused = raw.param('set', NODE, 'device', 'cuda')
    assert 'failed' in (refused.stdout + refused.stderr).lower()
    assert 'read-only' in (refused.stdout + refused.stderr)
    assert 'cpu' in raw.param('get', NODE, 'device').stdout
    raw.roundtrip()  # and still working


def test_speed_sets_the_budget_stale_and_nan_give_the_smallest(raw):
    for _ in range(3):
        raw.speed.publish(Float32(data=10.0))
    time.sleep(0.2)
    raw.roundtrip()
    report = raw.report_after(raw.received())
    assert float(report['speed_mps']) == pytest.approx(10.0)
    assert float(report['speed_budget_s']) == pytest.approx(0.1)  # 1 m at 10 m/s

    time.sleep(0.7)  # older than budget.speed_timeout_s (0.5 s): stale
    raw.roundtrip()
    report = raw.report_after(raw.received())
    assert float(report['speed_budget_s']) == pytest.approx(0.015)  # min_budget_s
    assert 'speed stale' in report['last_reason'] and report['speed_mps'] == ''

    rejected = rh.counter(raw.probe, NODE, 'speeds_rejected')
    raw.speed.publish(Float32(data=math.nan))
    rh.wait_for(lambda: rh.counter(raw.probe, NODE, 'speeds_rejected') > rejected, 20.0,
                'the NaN speed to be counted', launched=raw.launched)
    warned = [r for r in rh.diagnostics(raw.probe, NODE) if 'speeds rejected' in r['_message']]
    assert warned and warned[-1]['_level'] == b'\x01'  # WARN
    raw.roundtrip()
    assert float(raw.report_after(raw.received())['speed_budget_s']) == pytest.approx(0.015)


def test_frames_from_a_recording_come_back_with_their_headers(raw, tmp_path):
    """A rosbag2 recording (mcap), read with rosbags and published with rclpy."""
    from builtin_interfaces.msg import Time
    from rosbags.highlevel import AnyReader

    from multiexit_ros.replay.demo import build_drive, CAMERA

    build_drive(tmp_path / 'drive', frames=4, hz=10.0, size=(H, W))
    with AnyReader([tmp_path / 'drive']) as reader:
        conns = [c for c in reader.connections if c.topic == CAMERA]
        recorded = [reader.deserialize(data, conn.msgtype)
                    for conn, _, data in reader.messages(connections=conns)]
    assert len(recorded) == 4
    for frame in recorded:
        msg = Image(height=frame.height, width=frame.width, encoding=frame.encoding,
                    is_bigendian=frame.is_bigendian, step=frame.step, data=frame.data.tobytes())
        msg.header.frame_id = frame.header.frame_id
        msg.header.stamp = Time(sec=frame.header.stamp.sec, nanosec=frame.header.stamp.nanosec)
        _, mask = rh.send_until_mask(raw.probe, raw.camera, lambda _: msg, MASK, timeout=30.0,
                                     launched=raw.launched)
        assert mask.header == msg.header
        assert (mask.height, mask.width) == (frame.height, frame.width)


def test_sigint_stops_the_node_with_exit_status_0(raw):
    status = raw.launched.interrupt()
    out = raw.launched.output()
    assert 'process has finished cleanly' in out, out[-2000:]
    assert 'process has died' not in out and 'Traceback' not in out, out[-2000:]
    assert status == 0
