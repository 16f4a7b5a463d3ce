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

An empty image_transport, speed_type, model_path or device keeps the config file's value.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

# Launch arguments that override the node parameter of the same name when not empty.
PARAMETER_ARGUMENTS = ('image_transport', 'speed_type', 'model_path', 'device')


def _perception_node(context):
    overrides = {}
    for name in PARAMETER_ARGUMENTS:
        value = LaunchConfiguration(name).perform(context).strip()
        if value:
            # A plain str would be read as YAML by launch_ros ('a #b' -> 'a', 'y' -> true).
            overrides[name] = ParameterValue(value, value_type=str)
    sim_time = LaunchConfiguration('use_sim_time').perform(context).strip().lower()
    overrides['use_sim_time'] = sim_time in ('true', '1', 'yes', 'on')
    return [Node(
        package='multiexit_ros', executable='perception_node', name='perception_node',
        output='screen', emulate_tty=True,
        parameters=[LaunchConfiguration('config_file').perform(context), overrides],
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
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='follow /clock (e.g. ros2 bag play --clock)'),
        OpaqueFunction(function=_perception_node),
    ])
