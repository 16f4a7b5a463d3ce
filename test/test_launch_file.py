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
from pathlib import Path
import sys
import types

import pytest
import yaml

from conftest import REPO

LAUNCH_PATH = REPO / 'launch' / 'perception.launch.py'


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
    context = dict.fromkeys(('image_transport', 'speed_type', 'model_path', 'device',
                             'use_sim_time', 'namespace'), '')
    context.update(image_topic='/cam', speed_topic='/odom', node_name='perception_node',
                   config_file='/share/perception.yaml')
    context.update(given)
    return context


def overrides(node) -> tuple:
    """Return (parsed overrides, {key: YAML scalar style}) of the node's overrides file."""
    config, path = node.kwargs['parameters']
    assert config == '/share/perception.yaml'
    text = Path(path).read_text(encoding='utf-8')
    Path(path).unlink()
    root = yaml.compose(text)
    (_, params_node), = root.value[0][1].value
    styles = {k.value: v.style for k, v in params_node.value}
    data = yaml.safe_load(text)
    assert list(data) == ['/**'] and list(data['/**']) == ['ros__parameters']
    return data['/**']['ros__parameters'], styles


def test_string_overrides_stay_strings(launch_module):
    # A plain (unquoted) y or n is a boolean to the node's YAML parser, and everything
    # after ' #' is a comment: every string override must be quoted.
    context = arguments(model_path='n', device='y',
                        speed_type=' std_msgs/msg/Float32 ', image_transport='raw #3')
    (node,) = launch_module._perception_node(context)
    values, styles = overrides(node)
    assert values == {'model_path': 'n', 'device': 'y', 'speed_type': 'std_msgs/msg/Float32',
                      'image_transport': 'raw #3'}
    assert set(styles.values()) == {'"'}


def test_use_sim_time_only_when_given(launch_module):
    (node,) = launch_module._perception_node(arguments())
    assert node.kwargs['parameters'] == ['/share/perception.yaml']  # the file decides
    for text, value in [('True', True), ('false', False)]:
        (node,) = launch_module._perception_node(arguments(use_sim_time=text))
        assert overrides(node)[0] == {'use_sim_time': value}
    with pytest.raises(ValueError, match='use_sim_time'):
        launch_module._perception_node(arguments(use_sim_time='maybe'))


def test_node_name_namespace_and_remappings(launch_module):
    (node,) = launch_module._perception_node(arguments())
    remaps = {k: v.name for k, v in node.kwargs['remappings']}
    assert remaps == {'image': 'image_topic', 'speed': 'speed_topic'}
    assert (node.kwargs['package'], node.kwargs['executable'], node.kwargs['name'],
            node.kwargs['namespace']) == ('multiexit_ros', 'perception_node',
                                          'perception_node', None)
    (node,) = launch_module._perception_node(arguments(node_name='rear_seg', namespace='rear'))
    assert (node.kwargs['name'], node.kwargs['namespace']) == ('rear_seg', 'rear')
