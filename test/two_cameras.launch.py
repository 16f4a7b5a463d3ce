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
"""Two cameras from one launch: perception.launch.py twice, in namespaces left and right.

Used by test_ros_namespaces.py; each node gets the shared ``/**`` values of the config
file and its own section (``/left/perception_node:``, ``/right/perception_node:``).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

CAMERAS = {'left': 'std_msgs/msg/Float64',
           'right': 'geometry_msgs/msg/TwistWithCovarianceStamped'}


def generate_launch_description():
    """Start one perception_node per camera, each in its own namespace."""
    perception = PathJoinSubstitution([FindPackageShare('multiexit_ros'), 'launch',
                                       'perception.launch.py'])
    groups = []
    for name, speed_type in CAMERAS.items():
        arguments = {'namespace': name, 'image_topic': f'/{name}/camera',
                     'speed_topic': f'/{name}/speed', 'speed_type': speed_type,
                     'device': 'cpu', 'model_path': LaunchConfiguration('model_path'),
                     'config_file': LaunchConfiguration('config_file')}
        groups.append(GroupAction([IncludeLaunchDescription(
            PythonLaunchDescriptionSource(perception), launch_arguments=arguments.items())]))
    return LaunchDescription([DeclareLaunchArgument('model_path'),
                              DeclareLaunchArgument('config_file'), *groups])
