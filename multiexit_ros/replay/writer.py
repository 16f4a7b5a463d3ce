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
"""Writing recordings: rosbag2 (mcap or sqlite3) and ROS 1 ``.bag``, via ``rosbags``.

Used for the replay's output recording (the input's topics plus the masks), for the
demo's generated drive, and by the tests and benchmarks to make real recordings.
A recording is written under a temporary name and renamed when complete, so an
interrupted run never leaves a half-written recording under the final name.
"""

import logging
import os
from pathlib import Path
import shutil

import numpy as np

from ..errors import BagError

__all__ = ['RecordingWriter', 'STORAGES']

_LOG = logging.getLogger(__name__)

STORAGES = ('mcap', 'sqlite3', 'ros1')


class RecordingWriter:
    """Write messages to a new recording.

    Example::

        with RecordingWriter(out / 'drive', 'mcap') as bag:
            bag.add_topic('/camera/image_raw', 'sensor_msgs/msg/Image')
            bag.write('/camera/image_raw', t_ns, bag.image(rgb, 'rgb8', t_ns * 1e-9))
    """

    def __init__(self, path, storage: str = 'mcap'):
        """Prepare a new recording at ``path`` (a folder for rosbag2, a file for ROS 1).

        Raises:
            BagError: Unknown storage or ``path`` exists already.
        """
        from rosbags.typesys import get_typestore, Stores

        if storage not in STORAGES:
            raise BagError(f'unknown recording storage {storage!r}; choose from {STORAGES}')
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f'{self.path} exists already; not overwriting it')
        self.storage = storage
        self.ros1 = storage == 'ros1'
        self.typestore = get_typestore(Stores.ROS1_NOETIC if self.ros1 else Stores.ROS2_HUMBLE)
        # Written inside a hidden folder under the final name (rosbag2 names its files
        # after the folder), then moved into place when complete.
        self._box = self.path.parent / f'.{self.path.name}.partial'
        shutil.rmtree(self._box, ignore_errors=True)
        self._box.mkdir(parents=True)
        self._tmp = self._box / self.path.name
        if self.ros1:
            from rosbags.rosbag1 import Writer
            self._writer = Writer(self._tmp)
        else:
            from rosbags.rosbag2 import StoragePlugin, Writer
            plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
            self._writer = Writer(self._tmp, version=9, storage_plugin=plugin)
        self._writer.open()
        self._conns = {}
        self._types = {}

    @property
    def types(self) -> dict:
        """Message classes by type name (``sensor_msgs/msg/Image`` ...)."""
        return self.typestore.types

    def add_topic(self, topic: str, msgtype: str):
        """Register ``topic`` with a type known to the writer's type store."""
        self._conns[topic] = self._writer.add_connection(topic, msgtype,
                                                         typestore=self.typestore)
        self._types[topic] = msgtype

    def add_raw_topic(self, conn, typestore) -> bool:
        """Register a topic copied from a reader connection (rosbag2 output only).

        Args:
            conn: A reader connection.
            typestore: The reader's type store (knows the connection's type).

        Returns:
            False when the type's definition cannot be carried over (the topic is skipped).
        """
        try:
            msgdef, _ = typestore.generate_msgdef(conn.msgtype, ros_version=2)
            rihs01 = typestore.hash_rihs01(conn.msgtype)
            self._conns[conn.topic] = self._writer.add_connection(
                conn.topic, conn.msgtype, msgdef=msgdef, rihs01=rihs01)
        except Exception as err:  # noqa: B902 (definitions rosbags cannot rebuild)
            _LOG.warning('not copying %s (%s): %s', conn.topic, conn.msgtype, err)
            return False
        self._types[conn.topic] = conn.msgtype
        return True

    def write(self, topic: str, t_ns: int, msg):
        """Serialize and write one message at recorded time ``t_ns``."""
        typ = self._types[topic]
        data = (self.typestore.serialize_ros1(msg, typ) if self.ros1
                else self.typestore.serialize_cdr(msg, typ))
        self._writer.write(self._conns[topic], int(t_ns), data)

    def write_raw(self, topic: str, t_ns: int, data):
        """Write already serialized bytes (in this recording's serialization)."""
        self._writer.write(self._conns[topic], int(t_ns), data)

    def header(self, stamp: float, frame_id: str = 'camera'):
        """Build a std_msgs/Header with ``stamp`` seconds."""
        sec = int(np.floor(stamp))
        nsec = min(int(round((stamp - sec) * 1e9)), 999_999_999)
        time = self.types['builtin_interfaces/msg/Time'](sec=sec, nanosec=nsec)
        header = self.types['std_msgs/msg/Header']
        if self.ros1:
            return header(seq=0, stamp=time, frame_id=frame_id)
        return header(stamp=time, frame_id=frame_id)

    def image(self, array: np.ndarray, encoding: str, stamp: float, frame_id: str = 'camera'):
        """Build a sensor_msgs/Image from an HxW or HxWxC uint8 array."""
        array = np.ascontiguousarray(array, dtype=np.uint8)
        h, w = array.shape[:2]
        channels = 1 if array.ndim == 2 else array.shape[2]
        return self.types['sensor_msgs/msg/Image'](
            header=self.header(stamp, frame_id), height=h, width=w, encoding=encoding,
            is_bigendian=0, step=w * channels, data=array.reshape(-1))

    def compressed(self, rgb: np.ndarray, stamp: float, fmt: str = 'jpeg', quality: int = 90):
        """Build a sensor_msgs/CompressedImage (JPEG or PNG) from an RGB array."""
        import cv2

        ext = '.png' if fmt == 'png' else '.jpg'
        params = [] if fmt == 'png' else [cv2.IMWRITE_JPEG_QUALITY, quality]
        ok, buf = cv2.imencode(ext, np.ascontiguousarray(rgb[..., ::-1]), params)
        if not ok:
            raise BagError(f'cannot encode a {rgb.shape} image as {fmt}')
        return self.types['sensor_msgs/msg/CompressedImage'](
            header=self.header(stamp), format=fmt, data=buf.reshape(-1))

    def close(self):
        """Finish the recording and move it to its final name."""
        self._writer.close()
        os.replace(self._tmp, self.path)
        shutil.rmtree(self._box, ignore_errors=True)

    def abort(self):
        """Drop the partly written recording."""
        try:
            self._writer.close()
        except Exception:  # noqa: B902 (already broken; removing it is what is left)
            _LOG.debug('closing a failed recording', exc_info=True)
        shutil.rmtree(self._box, ignore_errors=True)

    def __enter__(self) -> 'RecordingWriter':
        """Return self."""
        return self

    def __exit__(self, exc_type, exc, tb):
        """Close on success, abort on an exception."""
        if exc_type is None:
            self.close()
        else:
            self.abort()
