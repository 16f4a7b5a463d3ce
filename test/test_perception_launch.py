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
"""Proof of life on a ROS 2 machine: launch the node, feed it a frame, get a mask back.

Runs under ``colcon test`` (launch_testing's pytest plugin). Without ROS 2 the module
is skipped at collection with the reason below.
"""

from pathlib import Path
import tempfile
import time
import unittest

import pytest

REASON = 'needs a ROS 2 installation (launch_testing, rclpy); run it with colcon test'
launch_testing = pytest.importorskip('launch_testing', reason=REASON)
rclpy = pytest.importorskip('rclpy', reason=REASON)

from launch import LaunchDescription  # noqa: E402, I100 (after the skips above)
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
import numpy as np  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Float32  # noqa: E402

LAUNCH_FILE = Path(__file__).resolve().parent.parent / 'launch' / 'perception.launch.py'
HEIGHT, WIDTH = 48, 64


def _tiny_setup(folder: Path) -> tuple:
    """Save an untrained tiny checkpoint and a fast config file; return their paths."""
    import torch
    import yaml

    from multiexit_ros.docs import render_yaml
    from multiexit_ros.labels import CAMVID
    from multiexit_ros.model import CheckpointMeta, MultiExitSegNet, preset, save_checkpoint

    torch.manual_seed(0)
    net = MultiExitSegNet(preset('tiny')).eval()
    model = save_checkpoint(folder / 'tiny.safetensors', net,
                            CheckpointMeta(model=net.config, labels=CAMVID))
    config = yaml.safe_load(render_yaml())
    params = config['/**']['ros__parameters']
    params.update(precision='fp32', profile_warmup=0, profile_samples=2,
                  diagnostics_period_s=0.5)
    (folder / 'perception.yaml').write_text(yaml.safe_dump(config), encoding='utf-8')
    return str(model), str(folder / 'perception.yaml')


@pytest.mark.launch_test
def generate_test_description():
    """Launch perception.launch.py on the CPU with a tiny model."""
    folder = Path(tempfile.mkdtemp(prefix='multiexit_launch_'))
    model, config = _tiny_setup(folder)
    arguments = {'image_topic': '/test/camera', 'speed_topic': '/test/speed',
                 'speed_type': 'std_msgs/msg/Float32', 'model_path': model,
                 'device': 'cpu', 'config_file': config}
    launch = IncludeLaunchDescription(PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
                                      launch_arguments=arguments.items())
    return LaunchDescription([launch, launch_testing.actions.ReadyToTest()]), {}


class TestProofOfLife(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        rclpy.init()
        cls.node = rclpy.create_node('perception_probe')

    @classmethod
    def tearDownClass(cls):
        cls.node.destroy_node()
        rclpy.shutdown()

    def test_mask_arrives_with_the_image_stamp_and_size(self):
        masks = []
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(Image, '/perception_node/mask', masks.append, reliable)
        images = self.node.create_publisher(Image, '/test/camera', reliable)
        speeds = self.node.create_publisher(Float32, '/test/speed', reliable)
        rng = np.random.default_rng(0)
        sent = set()
        deadline = time.monotonic() + 120.0  # start-up includes loading torch
        while not masks and time.monotonic() < deadline:
            speeds.publish(Float32(data=5.0))
            msg = Image(height=HEIGHT, width=WIDTH, encoding='rgb8', step=WIDTH * 3)
            msg.header.stamp = self.node.get_clock().now().to_msg()
            msg.header.frame_id = 'camera'
            msg.data = rng.integers(0, 256, HEIGHT * WIDTH * 3, dtype=np.uint8).tobytes()
            images.publish(msg)
            sent.add((msg.header.stamp.sec, msg.header.stamp.nanosec))
            end = time.monotonic() + 0.5
            while not masks and time.monotonic() < end:
                rclpy.spin_once(self.node, timeout_sec=0.05)
        self.assertTrue(masks, 'no mask arrived on /perception_node/mask')
        mask = masks[0]
        self.assertIn((mask.header.stamp.sec, mask.header.stamp.nanosec), sent)
        self.assertEqual(mask.header.frame_id, 'camera')
        self.assertEqual((mask.height, mask.width, mask.encoding), (HEIGHT, WIDTH, 'mono8'))
        self.assertEqual(len(mask.data), HEIGHT * WIDTH)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):

    def test_node_exits_cleanly(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)
