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
"""Helpers of the end-to-end tests (test_ros_*.py): a real ROS 2 and a real node.

The tests start ``perception_node`` with ``ros2 launch`` and talk to it from a probe
node in the test process (rclpy, spun in a background thread). They run under
``make test-ros``; elsewhere they skip with :data:`REASON`.
"""

import os
from pathlib import Path
import shutil
import signal
import subprocess
import threading
import time

import pytest
import yaml

REASON = ('needs a real ROS 2 (rclpy, ros2 launch) with this package built by colcon: '
          'run make test-ros')
FAST = {'precision': 'fp32', 'profile_warmup': 0, 'profile_samples': 2,
        'input_height': 32, 'input_width': 64, 'diagnostics_period_s': 0.5,
        'log_period_s': 0.0}
START_S = 180.0  # a node's start-up (loading PyTorch on a loaded 2-core machine)


def require_ros():
    """Skip the calling module without rclpy, ros2 or this package installed."""
    pytest.importorskip('rclpy', reason=REASON)
    if shutil.which('ros2') is None or not installed_share().is_dir():
        pytest.skip(REASON, allow_module_level=True)


def installed_share() -> Path:
    """Return share/multiexit_ros of the colcon install (from AMENT_PREFIX_PATH)."""
    for prefix in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        share = Path(prefix) / 'share' / 'multiexit_ros'
        if prefix and (share / 'package.xml').is_file():
            return share
    return Path('/nonexistent')


def node_executable() -> Path:
    """Return the installed perception_node script."""
    return installed_share().parent.parent / 'lib' / 'multiexit_ros' / 'perception_node'


def write_config(folder: Path, extra_sections: dict = None, **values) -> Path:
    """Write the installed config/perception.yaml with FAST and ``values`` changed.

    The values go under the shipped file's own top-level key, so a key that does not
    apply to every node name and namespace shows in the tests.
    """
    data = yaml.safe_load((installed_share() / 'config' / 'perception.yaml').read_text())
    (key,) = data
    params = data[key]['ros__parameters']
    for name, value in {**FAST, **values}.items():
        *parents, leaf = name.split('.')
        target = params
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    data.update(extra_sections or {})
    path = Path(folder) / f'perception_{len(list(Path(folder).glob("*.yaml")))}.yaml'
    path.write_text(yaml.safe_dump(data), encoding='utf-8')
    return path


def _default_sigint():
    """Let the child act on SIGINT even when the tests run as a background job.

    A shell starts background jobs with SIGINT ignored, and an ignored signal stays
    ignored across exec: ``ros2 launch`` would then never see the Ctrl-C the tests send.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Launched:
    """A ``ros2 launch`` process with its output in a file."""

    def __init__(self, args: list, log: Path, cwd=None):
        self.log = Path(log)
        with open(self.log, 'wb') as out:
            self.proc = subprocess.Popen(['ros2', 'launch', *map(str, args)], stdout=out,
                                         stderr=subprocess.STDOUT, cwd=cwd,
                                         start_new_session=True, preexec_fn=_default_sigint)

    def output(self) -> str:
        """Return what the launch printed so far."""
        return self.log.read_text(encoding='utf-8', errors='replace')

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for the launch to end by itself; return its exit status."""
        return self.proc.wait(timeout=timeout)

    def interrupt(self, timeout: float = 60.0) -> int:
        """Send SIGINT (Ctrl-C) and return the exit status; kill the group if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()


def launch_perception(log: Path, model: Path, config: Path, cwd=None, **args) -> Launched:
    """Start perception.launch.py on the CPU with ``args`` as launch arguments."""
    argv = ['multiexit_ros', 'perception.launch.py', 'device:=cpu', f'model_path:={model}',
            f'config_file:={config}'] + [f'{k}:={v}' for k, v in args.items()]
    return Launched(argv, log, cwd=cwd)


def wait_for(predicate, timeout: float, what: str, step: float = 0.05, launched=None):
    """Return predicate()'s first true value; fail naming ``what`` after ``timeout``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        if launched is not None and launched.proc.poll() is not None:
            break
        time.sleep(step)
    tail = '\n'.join(launched.output().splitlines()[-15:]) if launched else ''
    pytest.fail(f'timed out waiting for {what}' + (f'; launch output:\n{tail}' if tail else ''))


class Probe:
    """A test node spun in a background thread, recording what arrives on its topics."""

    def __init__(self, name: str):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.rclpy = rclpy
        self.context = rclpy.context.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.lock = threading.Lock()
        self.received = {}
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self):
        try:
            self.executor.spin()
        except Exception:  # noqa: B902 (shutdown while spinning ends the thread)
            pass

    def reliable(self, depth: int = 10, best_effort: bool = False):
        """Return a keep-last QoS profile."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        return QoSProfile(depth=depth, reliability=ReliabilityPolicy.BEST_EFFORT
                          if best_effort else ReliabilityPolicy.RELIABLE)

    def listen(self, msg_type, topic: str, depth: int = 50):
        """Record every message on ``topic``; return the subscription."""
        with self.lock:
            self.received.setdefault(topic, [])

        def store(msg):
            with self.lock:
                self.received[topic].append(msg)
        return self.node.create_subscription(msg_type, topic, store, self.reliable(depth))

    def messages(self, topic: str) -> list:
        """Return a copy of what arrived on ``topic``."""
        with self.lock:
            return list(self.received.get(topic, []))

    def publisher(self, msg_type, topic: str, best_effort: bool = False):
        """Return a publisher on ``topic``: reliable unless ``best_effort``."""
        return self.node.create_publisher(msg_type, topic, self.reliable(10, best_effort))

    def stamp(self):
        """Return the probe's clock now as a builtin_interfaces/Time."""
        return self.node.get_clock().now().to_msg()

    def close(self):
        """Stop spinning and shut the probe's context down."""
        self.executor.shutdown()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)
        self.thread.join(timeout=5.0)


def diagnostics(probe: Probe, node: str) -> list:
    """Return the {key: value} dicts of ``node``'s /diagnostics statuses, oldest first."""
    out = []
    for array in probe.messages('/diagnostics'):
        for status in array.status:
            if status.name == f'{node}: perception':
                out.append({**{kv.key: kv.value for kv in status.values},
                            '_level': status.level, '_message': status.message})
    return out


def counter(probe: Probe, node: str, key: str) -> float:
    """Return the latest value of a numeric diagnostics key (0 before any report)."""
    reports = diagnostics(probe, node)
    return float(reports[-1].get(key) or 0) if reports else 0.0


def _key(stamp) -> tuple:
    return stamp.sec, stamp.nanosec


def send_until_mask(probe: Probe, pub, make, mask_topic: str, timeout: float = 60.0,
                    period: float = 0.5, launched=None):
    """Publish ``make(stamp)`` every ``period`` s until a mask of one of them arrives.

    Returns:
        ``(sent message, mask)`` with the mask's stamp equal to the sent message's.
    """
    sent = {}
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        msg = make(probe.stamp())
        sent[_key(msg.header.stamp)] = msg
        pub.publish(msg)
        until = time.monotonic() + period
        while time.monotonic() < until:
            for mask in probe.messages(mask_topic):
                if _key(mask.header.stamp) in sent:
                    return sent[_key(mask.header.stamp)], mask
            time.sleep(0.01)
        if launched is not None and launched.proc.poll() is not None:
            break
    tail = '\n'.join(launched.output().splitlines()[-15:]) if launched else ''
    pytest.fail(f'no mask on {mask_topic} for {len(sent)} frames sent; launch output:\n'
                f'{tail}')


def image_msg(stamp, encoding: str, height: int, width: int, frame_id: str = 'camera',
              seed: int = 0, data: bytes = None, pad: int = 0):
    """Return a sensor_msgs/Image of random pixels (or ``data``) in ``encoding``."""
    import numpy as np
    from sensor_msgs.msg import Image

    from multiexit_ros.messages import _ENCODINGS

    channels, depth, _ = _ENCODINGS.get(encoding, (3, 1, ''))
    step = width * channels * depth + pad
    if data is None:
        data = np.random.default_rng(seed).integers(0, 256, height * step, np.uint8).tobytes()
    msg = Image(height=height, width=width, encoding=encoding, step=step, data=data)
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    return msg


def compressed_msg(stamp, data: bytes, fmt: str = 'jpeg', frame_id: str = 'camera'):
    """Return a sensor_msgs/CompressedImage holding ``data``."""
    from sensor_msgs.msg import CompressedImage

    msg = CompressedImage(format=fmt, data=data)
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    return msg
