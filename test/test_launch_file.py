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
"""launch/perception.launch.py's node action, built through stand-ins for launch and launch_ros."""

import importlib.util
import sys
import types

import pytest

from conftest import REPO

LAUNCH_PATH = REPO / 'launch' / 'perception.launch.py'


class ParameterValue:
    """launch_ros.parameter_descriptions.ParameterValue: a value with a forced type."""

    def __init__(self, value, *, value_type=None):
        self.value, self.value_type = value, value_type


class LaunchConfiguration:
    """Reads the launch argument from the context (a dict here)."""

    def __init__(self, name):
        self.name = name

    def perform(self, context):
        return context[self.name]


def _recorder(name):
    return type(name, (), {'__init__': lambda self, *a, **kw: self.__dict__.update(
        args=a, kwargs=kw)})


@pytest.fixture
def launch_module(monkeypatch):
    fakes = {
        'launch': {'LaunchDescription': _recorder('LaunchDescription')},
        'launch.actions': {'DeclareLaunchArgument': _recorder('DeclareLaunchArgument'),
                           'OpaqueFunction': _recorder('OpaqueFunction')},
        'launch.substitutions': {'LaunchConfiguration': LaunchConfiguration,
                                 'PathJoinSubstitution': _recorder('PathJoinSubstitution')},
        'launch_ros': {},
        'launch_ros.actions': {'Node': _recorder('Node')},
        'launch_ros.parameter_descriptions': {'ParameterValue': ParameterValue},
        'launch_ros.substitutions': {'FindPackageShare': _recorder('FindPackageShare')},
    }
    for name, attrs in fakes.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location('perception_launch', LAUNCH_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def arguments(**given):
    context = dict.fromkeys(('image_transport', 'speed_type', 'model_path', 'device'), '')
    context.update(image_topic='/cam', speed_topic='/odom', use_sim_time='false',
                   config_file='/share/perception.yaml')
    context.update(given)
    return context


def test_string_overrides_stay_strings(launch_module):
    # launch_ros reads a plain str parameter value as YAML: 'y' becomes true and
    # everything after ' #' is dropped as a comment (ros2/launch_ros#410).
    context = arguments(model_path='/data/run #3/model.safetensors', device='cpu',
                        speed_type=' std_msgs/msg/Float32 ')
    (node,) = launch_module._perception_node(context)
    config, overrides = node.kwargs['parameters']
    assert config == '/share/perception.yaml'
    assert set(overrides) == {'model_path', 'device', 'speed_type', 'use_sim_time'}
    for name, text in [('model_path', '/data/run #3/model.safetensors'), ('device', 'cpu'),
                       ('speed_type', 'std_msgs/msg/Float32')]:
        assert isinstance(overrides[name], ParameterValue), name
        assert (overrides[name].value, overrides[name].value_type) == (text, str)
    assert overrides['use_sim_time'] is False


def test_use_sim_time_and_remappings(launch_module):
    (node,) = launch_module._perception_node(arguments(use_sim_time='True'))
    assert node.kwargs['parameters'][1] == {'use_sim_time': True}
    remaps = {k: v.name for k, v in node.kwargs['remappings']}
    assert remaps == {'image': 'image_topic', 'speed': 'speed_topic'}
    assert (node.kwargs['package'], node.kwargs['executable'], node.kwargs['name']) == (
        'multiexit_ros', 'perception_node', 'perception_node')
