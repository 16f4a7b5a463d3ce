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
"""Real message objects from the rosbags typestore (the same fields as rclpy's)."""

import numpy as np
from rosbags.typesys import get_types_from_msg, get_typestore, Stores

VELOCITY_REPORT_MSG = """\
std_msgs/Header header
float32 longitudinal_velocity
float32 lateral_velocity
float32 heading_rate
"""


def typestore():
    """Return a Humble typestore with both Autoware VelocityReports registered from .msg."""
    ts = get_typestore(Stores.ROS2_HUMBLE)
    for package in ('autoware_vehicle_msgs', 'autoware_auto_vehicle_msgs'):
        ts.register(get_types_from_msg(VELOCITY_REPORT_MSG, f'{package}/msg/VelocityReport'))
    return ts


TS = typestore()
T = TS.types


def header(sec=12, nanosec=345_000_000, frame_id='camera'):
    """Return a std_msgs/Header."""
    return T['std_msgs/msg/Header'](stamp=T['builtin_interfaces/msg/Time'](sec=sec,
                                                                           nanosec=nanosec),
                                    frame_id=frame_id)


def image(data, height, width, encoding, step, is_bigendian=0, hdr=None):
    """Return a sensor_msgs/Image holding ``data`` (bytes or uint8 array) as given."""
    return T['sensor_msgs/msg/Image'](
        header=hdr or header(), height=height, width=width, encoding=encoding,
        is_bigendian=is_bigendian, step=step, data=np.frombuffer(bytes(data), np.uint8))


def padded(rows: np.ndarray, pad: int) -> tuple:
    """Lay ``rows`` (H, row_bytes) uint8 out with ``pad`` junk bytes per row: (bytes, step)."""
    height, row = rows.shape
    out = np.full((height, row + pad), 0xAB, np.uint8)
    out[:, :row] = rows
    return out.tobytes(), row + pad


def compressed(data: bytes, fmt: str):
    """Return a sensor_msgs/CompressedImage."""
    return T['sensor_msgs/msg/CompressedImage'](header=header(), format=fmt,
                                                data=np.frombuffer(data, np.uint8))


def vector3(x=0.0, y=0.0, z=0.0):
    """Return a geometry_msgs/Vector3."""
    return T['geometry_msgs/msg/Vector3'](x=x, y=y, z=z)


def twist(x, y=0.0):
    """Return a geometry_msgs/Twist with linear (x, y, 0)."""
    return T['geometry_msgs/msg/Twist'](linear=vector3(x, y), angular=vector3())


def speed_message(speed_type: str, x: float, y: float = 0.0, hdr=None):
    """Return a message of ``speed_type`` carrying the velocity (x, y)."""
    hdr = hdr or header()
    if speed_type in ('std_msgs/msg/Float32', 'std_msgs/msg/Float64'):
        return T[speed_type](data=x)
    if speed_type == 'geometry_msgs/msg/TwistStamped':
        return T[speed_type](header=hdr, twist=twist(x, y))
    with_cov = T['geometry_msgs/msg/TwistWithCovariance'](twist=twist(x, y),
                                                          covariance=np.zeros(36))
    if speed_type == 'geometry_msgs/msg/TwistWithCovarianceStamped':
        return T[speed_type](header=hdr, twist=with_cov)
    if speed_type == 'nav_msgs/msg/Odometry':
        pose = T['geometry_msgs/msg/PoseWithCovariance'](
            pose=T['geometry_msgs/msg/Pose'](
                position=T['geometry_msgs/msg/Point'](x=0.0, y=0.0, z=0.0),
                orientation=T['geometry_msgs/msg/Quaternion'](x=0.0, y=0.0, z=0.0, w=1.0)),
            covariance=np.zeros(36))
        return T[speed_type](header=hdr, child_frame_id='base_link', pose=pose,
                             twist=with_cov)
    if speed_type.endswith('/msg/VelocityReport'):
        return T[speed_type](header=hdr, longitudinal_velocity=x, lateral_velocity=y,
                             heading_rate=0.0)
    raise ValueError(speed_type)
