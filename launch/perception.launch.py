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
"""Start perception_node with config/perception.yaml and the command line's overrides.

    ros2 launch multiexit_ros perception.launch.py image_topic:=/camera/image_raw \
        speed_topic:=/odom speed_type:=nav_msgs/msg/Odometry device:=cuda
    # a second camera: another node name or namespace
    ros2 launch multiexit_ros perception.launch.py namespace:=rear \
        image_topic:=/rear/image_raw

An empty image_transport, speed_type, model_path, device or use_sim_time keeps the
config file's value.
"""

import json
import tempfile

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

# Launch arguments that override the node parameter of the same name when not empty.
PARAMETER_ARGUMENTS = ('image_transport', 'speed_type', 'model_path', 'device')
_TRUE, _FALSE = ('true', '1', 'yes', 'on'), ('false', '0', 'no', 'off')


def overrides_file(overrides: dict) -> str:
    """Write the overrides as a ROS parameter file and return its path.

    A dict in ``parameters`` (even as ``ParameterValue(..., value_type=str)``) reaches
    the node through a file that launch_ros writes with yaml.dump, which leaves ``y``
    and ``n`` unquoted, and the node's YAML parser reads those as booleans. Written
    here, every string is quoted (JSON is YAML) and stays a string.
    """
    with tempfile.NamedTemporaryFile('w', prefix='multiexit_overrides_', suffix='.yaml',
                                     delete=False, encoding='utf-8') as out:
        out.write(json.dumps({'/**': {'ros__parameters': overrides}}) + '\n')
    return out.name


def _perception_node(context):
    overrides = {}
    for name in PARAMETER_ARGUMENTS:
        value = LaunchConfiguration(name).perform(context).strip()
        if value:
            overrides[name] = value
    sim_time = LaunchConfiguration('use_sim_time').perform(context).strip().lower()
    if sim_time in _TRUE + _FALSE:
        overrides['use_sim_time'] = sim_time in _TRUE
    elif sim_time:
        raise ValueError(f'use_sim_time:={sim_time!r}: use true, false or leave it empty')
    parameters = [LaunchConfiguration('config_file').perform(context)]
    if overrides:
        parameters.append(overrides_file(overrides))
    namespace = LaunchConfiguration('namespace').perform(context).strip()
    return [Node(
        package='multiexit_ros', executable='perception_node',
        name=LaunchConfiguration('node_name').perform(context).strip(),
        namespace=namespace or None, output='screen', emulate_tty=True,
        parameters=parameters,
        remappings=[('image', LaunchConfiguration('image_topic')),
                    ('speed', LaunchConfiguration('speed_topic'))])]


def generate_launch_description():
    """Declare the arguments and start the node."""
    return LaunchDescription([
        DeclareLaunchArgument('image_topic', default_value='/camera/image_raw',
                              description='camera topic (add /compressed with '
                                          'image_transport:=compressed)'),
        DeclareLaunchArgument('image_transport', default_value='',
                              description='raw or compressed; empty: as in config_file'),
        DeclareLaunchArgument('speed_topic', default_value='/odom',
                              description='vehicle speed topic'),
        DeclareLaunchArgument('speed_type', default_value='',
                              description='speed message type, e.g. std_msgs/msg/Float32 or '
                                          'nav_msgs/msg/Odometry; empty: as in config_file'),
        DeclareLaunchArgument('model_path', default_value='',
                              description='checkpoint (.safetensors); empty: as in '
                                          'config_file (there empty: the shipped model)'),
        DeclareLaunchArgument('device', default_value='',
                              description='cuda, cuda:N or cpu; empty: as in config_file'),
        DeclareLaunchArgument('config_file', default_value=PathJoinSubstitution(
                                  [FindPackageShare('multiexit_ros'), 'config',
                                   'perception.yaml']),
                              description='parameter file of perception_node'),
        DeclareLaunchArgument('use_sim_time', default_value='',
                              description='true: follow /clock (e.g. ros2 bag play '
                                          '--clock); empty: as in config_file'),
        DeclareLaunchArgument('node_name', default_value='perception_node',
                              description='node name (one per camera; the config file '
                                          'is keyed /** so its values apply to any name)'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='node namespace, e.g. front (its topics become '
                                          '/front/perception_node/mask)'),
        OpaqueFunction(function=_perception_node),
    ])
