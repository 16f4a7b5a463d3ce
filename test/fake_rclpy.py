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
"""A stand-in for the parts of rclpy and the ROS message packages that node.py uses.

It records what the node declares, subscribes and publishes, so the wiring can be
checked on a machine without ROS 2. Signatures follow rclpy (Humble and later); the
real thing is exercised by test_perception_launch.py under colcon test.
"""

import sys
import types


class Msg:
    """A message with keyword construction; like rclpy's classes it refuses unknown fields."""

    FIELDS = ()

    def __init__(self, **fields):
        unknown = set(fields) - set(self.FIELDS)
        # rclpy's generated __init__ asserts the same
        assert not unknown, f'Invalid arguments passed to constructor: {sorted(unknown)}'
        for key, value in self.defaults().items():
            setattr(self, key, value)
        self.__dict__.update(fields)

    def defaults(self):
        return dict.fromkeys(self.FIELDS)


class Header(Msg):
    FIELDS = ('stamp', 'frame_id')

    def defaults(self):
        return {'stamp': None, 'frame_id': ''}


class DiagnosticArray(Msg):
    FIELDS = ('header', 'status')

    def defaults(self):
        return {'header': Header(), 'status': []}


class ParameterDescriptor(Msg):
    FIELDS = ('name', 'type', 'description', 'additional_constraints', 'read_only',
              'dynamic_typing', 'floating_point_range', 'integer_range')

    def defaults(self):
        return {'floating_point_range': [], 'integer_range': [], 'read_only': False,
                'additional_constraints': '', 'dynamic_typing': False}


class ParameterType:
    PARAMETER_BOOL, PARAMETER_INTEGER, PARAMETER_DOUBLE, PARAMETER_STRING = 1, 2, 3, 4
    PARAMETER_DOUBLE_ARRAY = 8


class ParameterException(Exception):
    pass


class InvalidParameterTypeException(ParameterException):
    pass


class InvalidParameterValueException(ParameterException):
    pass


# ParameterType -> the Python types rclpy accepts for it
_ACCEPTS = {1: (bool,), 2: (int,), 3: (float,), 4: (str,), 8: (list, tuple)}


class ExternalShutdownException(Exception):
    pass


class Logger:
    """Records (level, text); only the levels rclpy's logger has."""

    LEVELS = ('debug', 'info', 'warning', 'warn', 'error', 'fatal')

    def __init__(self, records):
        self.records = records

    def __getattr__(self, level):
        if level not in self.LEVELS:
            raise AttributeError(f"'RcutilsLogger' object has no attribute {level!r}")
        return lambda text: self.records.append((level, text))


class Publisher:

    def __init__(self, msg_type, topic, qos):
        self.msg_type, self.topic, self.qos, self.sent = msg_type, topic, qos, []
        self.subscribers = 0

    def publish(self, msg):
        if not isinstance(msg, self.msg_type):  # rclpy raises TypeError too
            raise TypeError(f'expected {self.msg_type.__name__}, got {type(msg).__name__}')
        self.sent.append(msg)

    def get_subscription_count(self):
        return self.subscribers


class Time:

    def __init__(self, ns):
        self.nanoseconds = ns

    def to_msg(self):
        return types.SimpleNamespace(sec=self.nanoseconds // 10**9,
                                     nanosec=self.nanoseconds % 10**9)


class Node:
    """Records everything; ``OVERRIDES`` plays the parameter file, ``NOW_NS`` the clock."""

    OVERRIDES = {}
    NOW_NS = 0
    LOG = []

    def __init__(self, name, **kwargs):
        self.name, self.params, self.descriptors = name, {}, {}
        self.subscriptions, self.publishers, self.timers, self.guards = [], [], [], []
        self.param_callbacks, self.destroyed = [], False

    def declare_parameter(self, name, value, descriptor):
        """Declare as rclpy does: the override must have the type and lie in the range."""
        if name in self.params:
            raise ParameterException(f'already declared: {name}')
        value = self.OVERRIDES.get(name, value)
        accepts = _ACCEPTS[descriptor.type]
        if not isinstance(value, accepts) or (isinstance(value, bool) and bool not in accepts):
            raise InvalidParameterTypeException(
                f"Trying to set parameter '{name}' to '{value}' of the wrong type")
        for rng in descriptor.floating_point_range + descriptor.integer_range:
            if not rng.from_value <= value <= rng.to_value:
                raise InvalidParameterValueException(
                    f"Trying to set parameter '{name}' to '{value}': not in range")
        self.params[name] = value
        self.descriptors[name] = descriptor

    @property
    def _parameter_overrides(self):
        return dict(self.OVERRIDES)

    def has_parameter(self, name):
        return name in self.params or name == 'use_sim_time'

    def get_parameter(self, name):
        return types.SimpleNamespace(name=name, value=self.params[name])

    def get_logger(self):
        return Logger(self.LOG)

    def get_name(self):
        return self.name

    def get_fully_qualified_name(self):
        return '/' + self.name

    def get_clock(self):
        return types.SimpleNamespace(now=lambda: Time(self.NOW_NS))

    def create_publisher(self, msg_type, topic, qos, *, callback_group=None):
        self.publishers.append(Publisher(msg_type, topic, qos))
        return self.publishers[-1]

    def create_subscription(self, msg_type, topic, callback, qos, *, callback_group=None):
        sub = types.SimpleNamespace(msg_type=msg_type, topic_name=topic, callback=callback,
                                    qos=qos, group=callback_group)
        self.subscriptions.append(sub)
        return sub

    def create_guard_condition(self, callback, callback_group=None):
        guard = types.SimpleNamespace(callback=callback, group=callback_group, triggered=0)
        guard.trigger = lambda: setattr(guard, 'triggered', guard.triggered + 1)
        self.guards.append(guard)
        return guard

    def create_timer(self, period, callback, callback_group=None, clock=None):
        self.timers.append(types.SimpleNamespace(period=period, callback=callback,
                                                 group=callback_group, clock=clock))
        return self.timers[-1]

    def add_on_set_parameters_callback(self, callback):
        self.param_callbacks.append(callback)

    def destroy_node(self):
        self.destroyed = True


class Executor:
    SPIN_RAISES = KeyboardInterrupt

    def __init__(self, num_threads=None):
        self.nodes, self.shut = [], False

    def add_node(self, node):
        self.nodes.append(node)

    def spin(self):
        raise self.SPIN_RAISES()

    def shutdown(self):
        self.shut = True


def _module(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


_FIELDS = {
    'FloatingPointRange': ('from_value', 'to_value', 'step'),
    'IntegerRange': ('from_value', 'to_value', 'step'),
    'SetParametersResult': ('successful', 'reason'),
    'DiagnosticStatus': ('level', 'name', 'message', 'hardware_id', 'values'),
    'KeyValue': ('key', 'value'),
    'Image': ('header', 'height', 'width', 'encoding', 'is_bigendian', 'step', 'data'),
    'CompressedImage': ('header', 'format', 'data'),
    'Float32': ('data',), 'Float64': ('data',),
    'TwistStamped': ('header', 'twist'), 'TwistWithCovarianceStamped': ('header', 'twist'),
    'Odometry': ('header', 'child_frame_id', 'pose', 'twist'),
}


def _msg_classes(*names):
    return {n: type(n, (Msg,), {'FIELDS': _FIELDS[n]}) for n in names}


def modules() -> dict:
    """Return {module name: fake module} for sys.modules."""
    qos = {'QoSProfile': lambda **kw: types.SimpleNamespace(**kw),
           'HistoryPolicy': types.SimpleNamespace(KEEP_LAST='keep_last'),
           'ReliabilityPolicy': types.SimpleNamespace(BEST_EFFORT='best_effort',
                                                      RELIABLE='reliable'),
           'DurabilityPolicy': types.SimpleNamespace(VOLATILE='volatile')}
    state = {'initialised': 0, 'shutdown': 0}
    rclpy = _module('rclpy', init=lambda *, args=None: state.__setitem__('initialised', 1),
                    try_shutdown=lambda: state.__setitem__('shutdown', 1), state=state)
    return {
        'rclpy': rclpy,
        'rclpy.node': _module('rclpy.node', Node=Node),
        'rclpy.callback_groups': _module('rclpy.callback_groups',
                                         MutuallyExclusiveCallbackGroup=object),
        'rclpy.clock': _module('rclpy.clock', Clock=lambda *, clock_type: clock_type,
                               ClockType=types.SimpleNamespace(STEADY_TIME='steady')),
        'rclpy.exceptions': _module(
            'rclpy.exceptions', ParameterException=ParameterException,
            InvalidParameterTypeException=InvalidParameterTypeException,
            InvalidParameterValueException=InvalidParameterValueException),
        'rclpy.executors': _module('rclpy.executors', MultiThreadedExecutor=Executor,
                                   ExternalShutdownException=ExternalShutdownException),
        'rclpy.logging': _module('rclpy.logging', get_logger=lambda name: Logger(Node.LOG)),
        'rclpy.qos': _module('rclpy.qos', **qos),
        'rcl_interfaces': _module('rcl_interfaces'),
        'rcl_interfaces.msg': _module('rcl_interfaces.msg',
                                      ParameterDescriptor=ParameterDescriptor,
                                      ParameterType=ParameterType,
                                      **_msg_classes('FloatingPointRange', 'IntegerRange',
                                                     'SetParametersResult')),
        'diagnostic_msgs': _module('diagnostic_msgs'),
        'diagnostic_msgs.msg': _module('diagnostic_msgs.msg', DiagnosticArray=DiagnosticArray,
                                       **_msg_classes('DiagnosticStatus', 'KeyValue')),
        'sensor_msgs': _module('sensor_msgs'),
        'sensor_msgs.msg': _module('sensor_msgs.msg', **_msg_classes('Image', 'CompressedImage')),
        'std_msgs': _module('std_msgs'),
        'std_msgs.msg': _module('std_msgs.msg', **_msg_classes('Float32', 'Float64')),
        'geometry_msgs': _module('geometry_msgs'),
        'geometry_msgs.msg': _module('geometry_msgs.msg', **_msg_classes(
            'TwistStamped', 'TwistWithCovarianceStamped')),
        'nav_msgs': _module('nav_msgs'),
        'nav_msgs.msg': _module('nav_msgs.msg', **_msg_classes('Odometry')),
        'autoware_vehicle_msgs': None,  # not installed: importing it fails
        'autoware_vehicle_msgs.msg': None,
    }


def install(monkeypatch):
    """Put the fakes into sys.modules (undone after the test); return the node module."""
    for name, module in modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, 'multiexit_ros.node', raising=False)
    Node.OVERRIDES, Node.LOG, Node.NOW_NS = {}, [], 0
    import multiexit_ros.node
    return multiexit_ros.node
