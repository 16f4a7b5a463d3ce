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
"""The node's own parameters and topics, described without ROS.

:class:`NodeConfig` uses the same dataclass metadata as the runtime's
``PipelineConfig`` (a description and a ``range`` or ``choices``), so
:func:`node_param_specs` lists every parameter the node declares, the YAML file holds
and the README documents, from one source.
"""

from dataclasses import dataclass, field
import difflib
from typing import Iterable, NamedTuple

from .errors import ConfigError
from .messages import normalize_speed_type, SPEED_TYPES
from .runtime.config import param_specs, ParamSpec, PipelineConfig

__all__ = [
    'NodeConfig',
    'RUNTIME_PARAMETERS',
    'TOPICS',
    'Topic',
    'check_parameter_names',
    'describe_constraints',
    'node_param_specs',
    'split_params',
]


@dataclass
class NodeConfig:
    """ROS-side settings of ``perception_node`` (the pipeline's are in PipelineConfig)."""

    image_transport: str = field(default='raw', metadata={
        'description': 'camera subscription: raw (sensor_msgs/msg/Image) or compressed '
                       '(sensor_msgs/msg/CompressedImage, JPEG or PNG)',
        'choices': ['raw', 'compressed']})
    speed_type: str = field(default='nav_msgs/msg/Odometry', metadata={
        'description': 'message type on the speed topic (speed = planar velocity norm)',
        'choices': list(SPEED_TYPES)})
    publish_color: bool = field(default=True, metadata={
        'description': 'publish ~/color_mask (computed only while someone subscribes)'})
    diagnostics_period_s: float = field(default=1.0, metadata={
        'description': 'seconds between two /diagnostics messages (steady clock)',
        'range': (0.1, 60.0)})
    log_period_s: float = field(default=5.0, metadata={
        'description': 'least seconds between two warnings about rejected images or '
                       'speeds (each warning counts the ones in between)',
        'range': (0.0, 3600.0)})

    def __post_init__(self):
        if self.image_transport not in ('raw', 'compressed'):
            raise ConfigError(f'parameter image_transport is {self.image_transport!r}; '
                              "choose 'raw' or 'compressed'")
        self.speed_type = normalize_speed_type(self.speed_type)
        if not 0.1 <= self.diagnostics_period_s <= 60.0:
            raise ConfigError(f'parameter diagnostics_period_s = {self.diagnostics_period_s} '
                              'is outside [0.1, 60.0]')
        if not 0.0 <= self.log_period_s <= 3600.0:
            raise ConfigError(f'parameter log_period_s = {self.log_period_s} is outside '
                              '[0.0, 3600.0]')


# Parameters that may change while the node runs (the others are read-only): they are
# read afresh for every frame or warning.
RUNTIME_PARAMETERS = frozenset({'publish_color', 'log_period_s'})


def node_param_specs() -> list:
    """Return the ParamSpec of every parameter of the node: NodeConfig's, then the pipeline's.

    Raises:
        ConfigError: a name is defined twice (a programming error caught by the tests).
    """
    specs = param_specs(NodeConfig) + param_specs(PipelineConfig)
    names = [s.name for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f'parameter name(s) defined twice: {twice}')
    return specs


def check_parameter_names(unknown: Iterable[str]) -> None:
    """Reject parameter names the node does not declare (misspelled in a YAML file or -p).

    Args:
        unknown: names given to the node that it did not declare. ``qos_overrides.*``
            (rclpy's QoS override parameters) are let through.

    Raises:
        ConfigError: one line naming every unknown parameter (with the closest
            declared name where there is one).
    """
    names = sorted(n for n in unknown if not n.startswith('qos_overrides.'))
    if not names:
        return
    known = [s.name for s in node_param_specs()]
    described = []
    for name in names:
        close = difflib.get_close_matches(name, known, n=1)
        described.append(f'{name} (did you mean {close[0]}?)' if close else name)
    raise ConfigError(f'unknown parameter{"s" if len(names) > 1 else ""} '
                      f'{", ".join(described)}; the node declares the ones listed in '
                      'config/perception.yaml')


def split_params(values: dict) -> tuple:
    """Split flat parameter values into ``(NodeConfig, PipelineConfig)``.

    Args:
        values: parameter name -> value for every name of :func:`node_param_specs`
            (double arrays may be any sequence; they become lists).

    Returns:
        ``(NodeConfig, PipelineConfig)``.

    Raises:
        ConfigError: a value of the wrong type, out of range or not among the choices.
    """
    own = {s.name for s in param_specs(NodeConfig)}
    node = NodeConfig(**{k: v for k, v in values.items() if k in own})
    flat = {k: list(v) if isinstance(v, (tuple, list)) or hasattr(v, 'typecode') else v
            for k, v in values.items() if k not in own}
    return node, PipelineConfig.from_params(flat)


def describe_constraints(spec: ParamSpec) -> str:
    """Return a short text of the spec's range or choices ('' when it has neither)."""
    if spec.choices:
        return 'one of: ' + ', '.join(str(c) for c in spec.choices)
    if spec.range is not None:
        lo, hi = spec.range
        each = 'each in' if spec.type is list else 'in'
        return f'{each} [{lo}, {hi}]'
    return ''


class Topic(NamedTuple):
    """One topic of the node, as the README lists it."""

    name: str
    type: str
    qos: str
    direction: str
    what: str


IMAGE_QOS = 'best effort, keep last 1, volatile (sensor data)'
TOPICS = (
    Topic('image', 'sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage '
          '(`image_transport`)', IMAGE_QOS, 'in', 'camera; remap it (launch: `image_topic`)'),
    Topic('speed', 'one of `speed_type` (Float32/64, TwistStamped, '
          'TwistWithCovarianceStamped, Odometry, Autoware VelocityReport)',
          'best effort, keep last 10 (connects to reliable and best-effort publishers)', 'in',
          'vehicle speed, m/s; remap it (`speed_topic`)'),
    Topic('~/mask', 'sensor_msgs/msg/Image (mono8 class ids)', 'reliable, keep last 1', 'out',
          "camera image's header and size"),
    Topic('~/color_mask', 'sensor_msgs/msg/Image (rgb8)', 'reliable, keep last 1', 'out',
          'class palette; computed only while subscribed'),
    Topic('/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray', 'reliable, keep last 10',
          'out', 'budget, exit, latency p50/p99, misses, drops, rejects, device'),
)
