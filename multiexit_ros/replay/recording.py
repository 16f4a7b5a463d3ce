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
"""Reading recordings (rosbag2 mcap / sqlite3 and ROS 1 ``.bag``) and finding their topics.

Everything goes through ``rosbags.highlevel.AnyReader``; whatever that library raises
on a missing, corrupt or truncated recording becomes a one-line :class:`BagError`.
"""

from dataclasses import dataclass
import logging
from pathlib import Path
from typing import Iterator, Optional

from ..errors import BagError, MultiExitError

__all__ = ['IMAGE_TYPES', 'Recording', 'TopicChoice', 'choose_topics']

_LOG = logging.getLogger(__name__)

IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_TYPE = 'sensor_msgs/msg/CompressedImage'
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)


def normalize_type(msgtype: str) -> str:
    """Return a message type name in ROS 2 form: ``pkg/Type`` becomes ``pkg/msg/Type``.

    rosbag2 recordings of Dashing and Eloquent store types without ``/msg/``.
    """
    parts = str(msgtype).split('/')
    return f'{parts[0]}/msg/{parts[1]}' if len(parts) == 2 else str(msgtype)


def _one_line(err: BaseException) -> str:
    text = ' '.join(str(err).split()) or type(err).__name__
    return text if len(text) < 200 else text[:197] + '...'


class Recording:
    """An open recording: its topics and a time-ordered message stream.

    Use as a context manager::

        with Recording(path) as rec:
            print(rec.topics)
            for topic, t_ns, msg in rec.messages(['/camera/image_raw']):
                ...
    """

    def __init__(self, path):
        """Open ``path``: a rosbag2 folder, a ``.mcap`` / ``.db3`` file or a ROS 1 ``.bag``.

        Raises:
            BagError: The path does not exist or is not a readable recording.
        """
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import get_typestore, Stores

        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f'recording not found: {self.path}')
        if self.path.is_dir() and not (self.path / 'metadata.yaml').is_file():
            files = sorted(p.name for p in self.path.iterdir() if p.suffix in ('.mcap', '.db3'))
            hint = (f'; it holds {", ".join(files)}: pass {self.path / files[0]} instead'
                    if files else '')
            raise BagError(f'{self.path}: not a rosbag2 folder (no metadata.yaml){hint}')
        self.damaged = None  # why the recording could only be read in part
        try:
            self._reader = AnyReader([self.path],
                                     default_typestore=get_typestore(Stores.ROS2_HUMBLE))
            self._reader.open()
        except MultiExitError:
            raise
        except Exception as err:  # noqa: B902 (rosbags, sqlite3, mcap: many untyped errors)
            self._reader = self._salvage(err, get_typestore(Stores.ROS2_HUMBLE))
        self._index()

    def _salvage(self, err, typestore):
        """Open a truncated rosbag2 file for what it still holds, or raise BagError."""
        from .salvage import SalvageReader, salvage_file

        refused = BagError(f'{self.path}: cannot read the recording ({_one_line(err)})')
        target = salvage_file(self.path)
        if target is None:
            raise refused from err
        reader = SalvageReader(target, typestore)
        try:
            reader.open()
        except Exception:  # noqa: B902 (nothing readable: the original error says why)
            raise refused from err
        if not any(c.msgcount for c in reader.connections):
            raise refused from err
        self.damaged = (f'truncated or corrupt recording ({_one_line(err).rstrip(".")}); '
                        f'read up to the damage: {reader.damage}')
        _LOG.warning('%s: %s', self.path, self.damaged)
        return reader

    def _index(self):
        """Group the reader's connections by topic, with type names in ROS 2 form."""
        self._by_topic = {}
        self._normal = {}  # reader's connection -> the same with a normalized type name
        for conn in self._reader.connections:
            normal = conn._replace(msgtype=normalize_type(conn.msgtype))
            self._normal[self._key(conn)] = normal
            self._by_topic.setdefault(conn.topic, []).append(normal)

    @staticmethod
    def _key(conn) -> tuple:
        return id(conn.owner), conn.id, conn.topic

    @property
    def is_ros1(self) -> bool:
        """Whether this is a ROS 1 bag."""
        return not self._reader.is2

    @property
    def topics(self) -> dict:
        """Map each topic name to its message type, sorted by name."""
        return {name: conns[0].msgtype for name, conns in sorted(self._by_topic.items())}

    def message_count(self, topic: str) -> int:
        """Return how many messages ``topic`` has according to the recording's index."""
        return sum(c.msgcount for c in self._by_topic.get(topic, []))

    @property
    def connections(self) -> list:
        """Return every connection of the reader, for copying raw messages."""
        return [c for conns in self._by_topic.values() for c in conns]

    def describe_topics(self) -> str:
        """Return ``name (type)`` for every topic, comma separated, for error messages."""
        return ', '.join(f'{n} ({t})' for n, t in self.topics.items()) or 'none'

    def raw_messages(self, topics=None) -> Iterator[tuple]:
        """Yield (connection, time in ns, raw bytes) in recorded-time order.

        Raises:
            BagError: The recording is corrupt or truncated.
        """
        wanted = None if topics is None else {
            self._key(c) for t in topics for c in self._by_topic.get(t, [])}
        conns = [c for c in self._reader.connections
                 if wanted is None or self._key(c) in wanted]
        if wanted is not None and not conns:
            return
        it = self._reader.messages(connections=conns)
        while True:
            try:
                item = next(it)
            except StopIteration:
                if self.damaged:
                    raise BagError(f'{self.path}: {self.damaged}') from None
                return
            except Exception as err:  # noqa: B902 (a broken file fails in many ways)
                raise BagError(f'{self.path}: corrupt or truncated recording '
                               f'({_one_line(err)})') from err
            conn, t_ns, raw = item
            yield self._normal.get(self._key(conn), conn), t_ns, raw

    def deserialize(self, conn, raw: bytes):
        """Deserialize one raw message of ``conn``.

        Raises:
            BagError: The message bytes do not match the connection's type.
        """
        try:
            return self._reader.deserialize(raw, conn.msgtype)
        except Exception as err:  # noqa: B902 (bad bytes fail in many ways)
            raise BagError(f'{self.path}: cannot decode a {conn.msgtype} message on '
                           f'{conn.topic} ({_one_line(err)})') from err

    def messages(self, topics=None) -> Iterator[tuple]:
        """Yield (topic, time in ns, message) in recorded-time order.

        Raises:
            BagError: The recording is corrupt or truncated.
        """
        for conn, t_ns, raw in self.raw_messages(topics):
            yield conn.topic, t_ns, self.deserialize(conn, raw)

    def close(self):
        """Close the files."""
        try:
            self._reader.close()
        except Exception:  # noqa: B902 (closing a truncated file can fail again)
            _LOG.debug('closing %s failed', self.path, exc_info=True)

    def __enter__(self) -> 'Recording':
        """Return self."""
        return self

    def __exit__(self, *exc):
        """Close the files."""
        self.close()


@dataclass
class TopicChoice:
    """The topics a replay reads, and how each was found."""

    camera: str                   # the frames to segment
    camera_type: str              # Image or CompressedImage
    speed: Optional[str] = None   # None: no speed topic (the budget falls back, see runtime)
    speed_type: Optional[str] = None
    label: Optional[str] = None   # mono8 class-id images for mIoU, or None
    notes: tuple = ()             # one line per decision, for the log and the summary


def _pick(kind: str, candidates: list, notes: list) -> Optional[str]:
    if not candidates:
        return None
    chosen = sorted(candidates)[0]
    if len(candidates) > 1:
        notes.append(f'{kind} topic: {chosen} (first by name of {", ".join(sorted(candidates))}; '
                     f'choose another with --{kind}-topic)')
    else:
        notes.append(f'{kind} topic: {chosen} (found by type)')
    return chosen


def _given(kind: str, name: str, topics: dict, allowed: tuple) -> str:
    if name not in topics:
        listing = ', '.join(f'{n} ({t})' for n, t in topics.items()) or 'none'
        raise BagError(f'--{kind}-topic {name} is not in the recording; it has: {listing}')
    if topics[name] not in allowed:
        raise BagError(f'--{kind}-topic {name} has type {topics[name]}; expected one of '
                       f'{", ".join(allowed)}')
    return name


def choose_topics(topics: dict, speed_types, camera: str = None, speed: str = None,
                  label: str = None, path='recording') -> TopicChoice:
    """Find the camera, speed and label topics, by name when given, else by type.

    A label topic is an Image topic whose name contains ``label`` (its mono8 encoding is
    checked per message); such topics are never taken as the camera. With several
    candidates the first by name is taken. Each decision is logged.

    Args:
        topics: Topic name -> message type.
        speed_types: Message types that carry the vehicle speed.
        camera: Camera topic, or None to find it.
        speed: Speed topic, ``''`` for none, or None to find it.
        label: Label topic, ``''`` for none, or None to find it.
        path: Recording name for messages.

    Returns:
        The :class:`TopicChoice`.

    Raises:
        BagError: No camera topic, or a given topic is missing or of the wrong type.
    """
    notes = []
    images = [n for n, t in topics.items() if t in IMAGE_TYPES]
    if label:
        label = _given('label', label, topics, (IMAGE_TYPE,))
        notes.append(f'label topic: {label} (given)')
    elif label is None:
        label = _pick('label', [n for n in images if 'label' in n.lower()
                                and topics[n] == IMAGE_TYPE and n != camera], notes)
    label = label or None
    if camera:
        camera = _given('camera', camera, topics, IMAGE_TYPES)
        notes.append(f'camera topic: {camera} (given)')
    else:
        camera = _pick('camera', [n for n in images if n != label and 'label' not in n.lower()],
                       notes)
        if camera is None:
            listing = ', '.join(f'{n} ({t})' for n, t in topics.items()) or 'none'
            raise BagError(f'{path}: no camera topic (sensor_msgs/msg/Image or '
                           f'CompressedImage); the recording has: {listing}')
    if speed:
        speed = _given('speed', speed, topics, tuple(speed_types))
        notes.append(f'speed topic: {speed} (given)')
    elif speed is None:
        speed = _pick('speed', [n for n, t in topics.items() if t in speed_types], notes)
        if speed is None:
            notes.append('speed topic: none found; the speed-aware policy sees no speed')
    speed = speed or None
    if label is None:
        notes.append('label topic: none; quality is agreement with the final exit')
    for line in notes:
        _LOG.info('%s', line)
    return TopicChoice(camera=camera, camera_type=topics[camera], speed=speed,
                       speed_type=topics[speed] if speed else None, label=label,
                       notes=tuple(notes))
