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
"""The replay's output recording: the input's topics plus the masks of one policy.

Written as rosbag2 mcap, so Foxglove (or RViz after ``ros2 bag play``) shows the camera
next to ``/multiexit/mask`` (mono8 class ids), ``/multiexit/mask_color`` (rgb8) and
``/multiexit/decision`` (std_msgs/String, the runtime's decision as JSON). A mask is
stamped with its camera frame's header stamp and recorded at the simulated time it was
ready. Messages pass through a small time-ordered buffer so the file is in time order.
"""

import heapq
import itertools
import json
import logging

__all__ = ['OutputRecording', 'MASK_TOPIC', 'COLOR_TOPIC', 'DECISION_TOPIC']

_LOG = logging.getLogger(__name__)

MASK_TOPIC = '/multiexit/mask'
COLOR_TOPIC = '/multiexit/mask_color'
DECISION_TOPIC = '/multiexit/decision'
_LAG_NS = 5_000_000_000  # a mask is ready well within 5 s of its frame's arrival


def _output_typestore(recording):
    """Return the type store that describes the copied messages in ROS 2 form.

    A rosbag2 input's own store does. A ROS 1 bag's store describes ROS 1 messages:
    its ``std_msgs/Header`` has a ``seq`` field that ROS 2 dropped. The byte-level ROS 1
    to CDR conversion of rosbags expects the *ROS 2* definitions (it drops ``seq``
    itself), so the bag's definitions are taken with ROS 2's Header in their place.
    """
    from rosbags.typesys import get_typestore, Stores

    reader_store = recording._reader.typestore
    if not recording.is_ros1:
        return reader_store
    header = get_typestore(Stores.ROS2_HUMBLE).fielddefs['std_msgs/msg/Header']
    store = get_typestore(Stores.EMPTY)
    store.register({**reader_store.fielddefs, 'std_msgs/msg/Header': header})
    return store


class OutputRecording:
    """Copy a recording's messages and add mask topics.

    Args:
        path: Output rosbag2 folder (must not exist).
        recording: The open input :class:`~multiexit_ros.replay.recording.Recording`.
        palette: (256, 3) uint8 lookup table for the colour masks.
    """

    def __init__(self, path, recording, palette):
        from .writer import RecordingWriter

        self._bag = RecordingWriter(path, 'mcap')
        self._rec = recording
        self._palette = palette
        self._heap = []
        self._seq = itertools.count()
        self._copied = {}
        self._store = _output_typestore(recording)
        self.skipped = 0  # input messages that could not be converted (logged)
        for conn in recording.connections:
            if conn.topic in self._copied or conn.topic.startswith('/multiexit/'):
                continue
            self._copied[conn.topic] = self._bag.add_raw_topic(conn, self._store)
        self._bag.add_topic(MASK_TOPIC, 'sensor_msgs/msg/Image')
        self._bag.add_topic(COLOR_TOPIC, 'sensor_msgs/msg/Image')
        self._bag.add_topic(DECISION_TOPIC, 'std_msgs/msg/String')
        self.path = path

    @property
    def topics(self) -> list:
        """Input topics that are copied."""
        return [t for t, ok in self._copied.items() if ok]

    def _push(self, t_ns, kind, topic, payload):
        heapq.heappush(self._heap, (int(t_ns), next(self._seq), kind, topic, payload))

    def _flush(self, upto_ns):
        while self._heap and self._heap[0][0] <= upto_ns:
            t, _, kind, topic, payload = heapq.heappop(self._heap)
            if kind == 'raw':
                self._bag.write_raw(topic, t, payload)
            else:
                self._bag.write(topic, t, payload)

    def copy(self, conn, t_ns: int, raw):
        """Copy one input message (raw bytes)."""
        if not self._copied.get(conn.topic):
            return
        if self._rec.is_ros1:
            try:
                raw = self._store.ros1_to_cdr(raw, conn.msgtype)
            except Exception as err:  # noqa: B902 (rosbags raises several serde errors)
                self.skipped += 1
                if self.skipped == 1:
                    _LOG.warning('output recording: not copying a %s message on %s that '
                                 'cannot be converted to ROS 2 (%s)', conn.msgtype,
                                 conn.topic, ' '.join(str(err).split()))
                return
        self._push(t_ns, 'raw', conn.topic, bytes(raw))
        self._flush(t_ns - _LAG_NS)

    def add_mask(self, t_ns: int, stamp: float, mask, decision: dict):
        """Add one processed frame's mask, its colour rendering and its decision."""
        from ..labels import colorize

        self._push(t_ns, 'msg', MASK_TOPIC, self._bag.image(mask, 'mono8', stamp))
        self._push(t_ns, 'msg', COLOR_TOPIC,
                   self._bag.image(colorize(mask, self._palette), 'rgb8', stamp))
        text = json.dumps(decision, separators=(',', ':'))
        self._push(t_ns, 'msg', DECISION_TOPIC, self._bag.types['std_msgs/msg/String'](
            data=text))

    def close(self):
        """Write what is buffered and finish the file."""
        self._flush(float('inf'))
        self._bag.close()

    def abort(self):
        """Drop the partial output."""
        self._bag.abort()
