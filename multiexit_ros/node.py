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
"""``perception_node``: the ROS 2 wiring around the perception pipeline.

This is the only module that imports rclpy. What happens to each message lives in
``node_logic`` (tested without ROS); parameters and topics are described in
``node_config``.
"""

import sys

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType, SetParametersResult)
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from .errors import ConfigError, MissingDependencyError, MultiExitError
from .node_config import check_parameter_names, describe_constraints, node_param_specs, \
    RUNTIME_PARAMETERS, split_params
from .node_logic import diagnostic_report, FrameHandler, LatestFrameBuffer, require_opencv

__all__ = ['PerceptionNode', 'main']

_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING,
          list: ParameterType.PARAMETER_DOUBLE_ARRAY}
_CAMERA_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                         reliability=ReliabilityPolicy.BEST_EFFORT,
                         durability=DurabilityPolicy.VOLATILE)
# Best effort: a best-effort subscription connects to reliable and best-effort
# publishers alike, a reliable one only to reliable publishers.
_SPEED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                        reliability=ReliabilityPolicy.BEST_EFFORT)
_MASK_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                       reliability=ReliabilityPolicy.RELIABLE)


def _descriptor(spec) -> ParameterDescriptor:
    desc = ParameterDescriptor(name=spec.name, type=_TYPES[spec.type],
                               description=spec.description,
                               additional_constraints=describe_constraints(spec),
                               read_only=spec.name not in RUNTIME_PARAMETERS)
    if spec.range is not None and spec.type is float:
        desc.floating_point_range = [FloatingPointRange(
            from_value=float(spec.range[0]), to_value=float(spec.range[1]), step=0.0)]
    elif spec.range is not None and spec.type is int:
        desc.integer_range = [IntegerRange(
            from_value=int(spec.range[0]), to_value=int(spec.range[1]), step=1)]
    return desc


def _speed_class(speed_type: str):
    package, _, name = speed_type.split('/')
    try:
        module = __import__(f'{package}.msg', fromlist=[name])
    except ImportError:
        raise ConfigError(f'speed_type {speed_type} needs the ROS package {package}, which '
                          f'is not installed (e.g. apt install ros-$ROS_DISTRO-'
                          f'{package.replace("_", "-")})') from None
    return getattr(module, name)


class PerceptionNode(Node):
    """Subscribe to a camera and a speed, publish segmentation masks and diagnostics."""

    def __init__(self, node_name: str = 'perception_node', **kwargs):
        super().__init__(node_name, **kwargs)
        self.specs = node_param_specs()
        for spec in self.specs:
            default = [float(v) for v in spec.default] if spec.type is list else \
                spec.type(spec.default)
            self.declare_parameter(spec.name, default, _descriptor(spec))
        self.buffer = LatestFrameBuffer()
        self.handler = None
        self._last_report = None

    def now_s(self) -> float:
        """Return the node's clock (ROS time: simulated under use_sim_time) in seconds."""
        return self.get_clock().now().nanoseconds * 1e-9

    def start(self) -> None:
        """Load the model and latency profile, then subscribe and publish.

        Raises:
            MultiExitError: a bad parameter, checkpoint or profile (one-line message).
        """
        # rclpy ignores overrides (YAML, -p) of undeclared names; a typo must not pass.
        # _parameter_overrides holds them all (rclpy of Humble and Jazzy alike).
        overrides = getattr(self, '_parameter_overrides', {})
        check_parameter_names(n for n in overrides if not self.has_parameter(n))
        values = {s.name: self.get_parameter(s.name).value for s in self.specs}
        self.config, pipeline_config = split_params(values)
        speed_class = _speed_class(self.config.speed_type)
        if self.config.image_transport == 'compressed':
            require_opencv()  # now, not at the first frame
        try:
            from .runtime import PerceptionPipeline
            pipeline = PerceptionPipeline.from_config(pipeline_config)
        except ModuleNotFoundError as err:  # PyTorch & co. are pip packages, not rosdep keys
            missing = MissingDependencyError.from_import(err)
            if missing is None:
                raise
            raise missing from err
        self.get_logger().info(f'model {pipeline_config.model_path or "(shipped)"}: '
                               f'{pipeline.num_exits} exits on device {pipeline.device}')
        self.handler = FrameHandler(
            pipeline, Image, compressed=self.config.image_transport == 'compressed',
            speed_type=self.config.speed_type, clock=self.now_s,
            warn=self.get_logger().warning, log_period_s=self.config.log_period_s)
        self.publish_color = self.config.publish_color
        self.mask_pub = self.create_publisher(Image, '~/mask', _MASK_QOS)
        self.color_pub = self.create_publisher(Image, '~/color_mask', _MASK_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        # Inference has its own group: camera and speed callbacks never wait for a frame.
        self.infer_group = MutuallyExclusiveCallbackGroup()
        self.wake = self.create_guard_condition(self._on_wake, self.infer_group)
        camera_class = CompressedImage if self.handler.compressed else Image
        camera = self.create_subscription(camera_class, 'image', self._on_image, _CAMERA_QOS,
                                          callback_group=MutuallyExclusiveCallbackGroup())
        speed = self.create_subscription(speed_class, 'speed', self.handler.handle_speed,
                                         _SPEED_QOS,
                                         callback_group=MutuallyExclusiveCallbackGroup())
        # Same group as inference: pipeline.stats() never runs during pipeline.process().
        self.create_timer(self.config.diagnostics_period_s, self._on_diagnostics,
                          callback_group=self.infer_group,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.add_on_set_parameters_callback(self._on_parameters)
        self.get_logger().info(f'listening to {camera.topic_name} ({camera_class.__name__}) '
                               f'and {speed.topic_name} ({self.config.speed_type})')

    def _on_image(self, msg) -> None:
        self.buffer.put(msg)
        self.wake.trigger()

    def _on_wake(self) -> None:
        # One frame per wake, then wake again if another is waiting: the executor can run
        # the diagnostics timer (same callback group) in between, even under overload.
        msg = self.buffer.take()
        if msg is None:
            return
        try:
            color = self.publish_color and self.color_pub.get_subscription_count() > 0
            out = self.handler.handle_frame(msg, color=color)
            if out is not None and out.mask is not None:
                self.mask_pub.publish(out.mask)
                if out.color is not None:
                    self.color_pub.publish(out.color)
        finally:
            if self.buffer.pending:
                self.wake.trigger()

    def _on_parameters(self, params) -> SetParametersResult:
        for param in params:
            if param.name == 'publish_color':
                self.publish_color = bool(param.value)
            elif param.name == 'log_period_s':
                self.handler.set_log_period(float(param.value))
        return SetParametersResult(successful=True)

    def _on_diagnostics(self) -> None:
        counters = {'frames_received': self.buffer.received,
                    'frames_dropped': self.buffer.dropped, **self.handler.counters()}
        stats = self.handler.pipeline.stats()
        level, message, values = diagnostic_report(stats, counters, self._last_report)
        self._last_report = {**stats, **counters}
        status = DiagnosticStatus(level=bytes([level]),
                                  name=f'{self.get_fully_qualified_name()}: perception',
                                  message=message, hardware_id=str(stats.get('device', '')),
                                  values=[KeyValue(key=k, value=v) for k, v in values])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)


def main(args=None) -> int:
    """Run ``perception_node`` until shut down; return the process exit status."""
    rclpy.init(args=args)
    node = None
    try:
        node = PerceptionNode()
        node.start()
    except (MultiExitError, ParameterException) as exc:
        logger = node.get_logger() if node is not None else get_logger('perception_node')
        logger.fatal(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        return 1
    except KeyboardInterrupt:  # Ctrl-C or ros2 launch stopping while the model loads
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        return 0
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
