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
"""Reading what is left of a truncated recording file (mcap, sqlite3 or ROS 1 .bag).

A recording cut short (a full disk, a crash, a copy that stopped) has no mcap summary
section, no complete sqlite3 database or no ROS 1 index, and the normal reader refuses
it whole. These
readers go through the file from its start and give every message up to the damage,
in the order it was recorded; :attr:`SalvageReader.damage` says why they stopped.
They offer the part of ``rosbags.highlevel.AnyReader`` that ``Recording`` uses.
"""

import mmap
from pathlib import Path
import sqlite3
import struct

__all__ = ['SalvageReader', 'salvage_file']

MCAP_MAGIC = b'\x89MCAP0\r\n'
ROS1_MAGIC = b'#ROSBAG V2.0\n'
_CHUNK, _SCHEMA, _CHANNEL, _MESSAGE, _DATA_END, _FOOTER = 0x06, 0x03, 0x04, 0x05, 0x0F, 0x02


class _Cut(Exception):
    """The data ends or breaks here."""


def salvage_file(path: Path):
    """Return the storage file inside ``path`` that a salvage reader can read, or None."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in ('.mcap', '.db3'))
        return files[0] if len(files) == 1 else None
    return path if path.suffix in ('.mcap', '.db3', '.bag') else None


class SalvageReader:
    """Messages of one truncated mcap or sqlite3 file, up to the damage.

    Args:
        path: the ``.mcap`` or ``.db3`` file.
        default_typestore: types for connections whose definition is not in the file.
    """

    def __init__(self, path: Path, default_typestore):
        self.path = Path(path)
        self.is2 = self.path.suffix != '.bag'
        self.damage = None  # why reading stopped early, once known
        self._default = default_typestore
        self.connections = []
        self.typestore = None

    def open(self):
        """Read the connections and count the messages that can be read."""
        from rosbags.interfaces import (Connection, ConnectionExtRosbag1, ConnectionExtRosbag2,
                                        MessageDefinition, MessageDefinitionFormat)
        from rosbags.typesys import get_types_from_idl, get_types_from_msg, get_typestore, \
            Stores

        topics, counts = {}, {}
        for kind, item in self._scan(with_data=False):
            if kind == 'topic':
                topics[item[0]] = item[1:]
            else:
                counts[item[0]] = counts.get(item[0], 0) + 1
        if not topics:
            raise _Cut(self.damage or 'no topics')
        types = dict(self._default.fielddefs)
        formats = {'ros2msg': MessageDefinitionFormat.MSG, 'ros1msg': MessageDefinitionFormat.MSG,
                   'ros2idl': MessageDefinitionFormat.IDL}
        ext = ConnectionExtRosbag2('cdr', []) if self.is2 else ConnectionExtRosbag1(None, 0)
        for cid, (topic, msgtype, encoding, text) in sorted(topics.items()):
            fmt = formats.get(encoding, MessageDefinitionFormat.NONE)
            try:
                if fmt == MessageDefinitionFormat.MSG and text:
                    types.update(get_types_from_msg(text, msgtype))
                elif fmt == MessageDefinitionFormat.IDL and text:
                    types.update(get_types_from_idl(text))
            except Exception:  # noqa: B902 (keep the default definition)
                fmt, text = MessageDefinitionFormat.NONE, ''
            self.connections.append(Connection(
                cid, topic, msgtype, MessageDefinition(fmt, text or ''), '',
                counts.get(cid, 0), ext, self))
        self.typestore = get_typestore(Stores.EMPTY)
        self.typestore.register(types)

    def messages(self, connections=()):
        """Yield (connection, time in ns, raw bytes) in recorded order, up to the damage."""
        by_id = {c.id: c for c in self.connections}
        wanted = {c.id for c in connections} or set(by_id)
        for kind, item in self._scan(with_data=True):
            if kind == 'message' and item[0] in wanted and item[0] in by_id:
                yield by_id[item[0]], item[1], item[2]

    def deserialize(self, raw, msgtype: str):
        """Deserialize CDR (or ROS 1) bytes of ``msgtype``."""
        if self.is2:
            return self.typestore.deserialize_cdr(raw, msgtype)
        return self.typestore.deserialize_ros1(raw, msgtype)

    def close(self):
        """Nothing stays open between scans."""

    def _scan(self, with_data: bool):
        scans = {'.mcap': self._scan_mcap, '.bag': self._scan_ros1}
        scan = scans.get(self.path.suffix, self._scan_sqlite)
        try:
            yield from scan(with_data)
        except _Cut as cut:
            self.damage = str(cut)
        except Exception as err:  # noqa: B902 (sqlite3, struct, decompressors: any damage)
            self.damage = ' '.join(str(err).split()) or type(err).__name__

    # -- sqlite3 --------------------------------------------------------------------
    def _scan_sqlite(self, with_data: bool):
        uri = f'{self.path.resolve().as_uri()}?mode=ro&immutable=1'
        db = sqlite3.connect(uri, uri=True)
        # SQLite refuses a file shorter than its header says, unless the schema is
        # "writable": then it reads the pages the file has (nothing is written here).
        db.execute('PRAGMA writable_schema=ON')
        try:
            defs = {}
            try:
                defs = {t: (enc, text) for t, enc, text in db.execute(
                    'SELECT topic_type, encoding, encoded_message_definition '
                    'FROM message_definitions')}
            except sqlite3.DatabaseError:
                pass
            for cid, name, typ in db.execute('SELECT id, name, type FROM topics'):
                yield 'topic', (cid, name, typ, *defs.get(typ, ('', '')))
            columns = 'topic_id, timestamp, data' if with_data else 'topic_id, timestamp, 0'
            for cid, t_ns, raw in db.execute(f'SELECT {columns} FROM messages ORDER BY id'):
                yield 'message', (cid, t_ns, raw)
        finally:
            db.close()

    # -- mcap -----------------------------------------------------------------------
    def _scan_mcap(self, with_data: bool):
        with open(self.path, 'rb') as f:
            if f.read(8) != MCAP_MAGIC:
                raise _Cut('not an mcap file (no start magic)')
            size = f.seek(0, 2)
            if size <= 8:
                raise _Cut('the file ends after its start magic')
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        # The mmap closes when the last view of it is gone (closing it here could fail
        # while a caller still holds a message view).
        try:
            yield from self._records(memoryview(data)[8:], {}, with_data)
            raise _Cut('the file ends without its data-end record')
        except _Done:
            return

    def _records(self, view, schemas, with_data, in_chunk=False):
        pos, end = 0, len(view)
        while pos < end:
            if pos + 9 > end:
                raise _Cut(f'a record cut short{" in a chunk" if in_chunk else ""}')
            op = view[pos]
            (length,) = struct.unpack_from('<Q', view, pos + 1)
            body = view[pos + 9:pos + 9 + length]
            if len(body) < length:
                if op == _CHUNK and not in_chunk:  # what an uncompressed chunk still holds
                    yield from self._chunk(body, schemas, with_data)
                raise _Cut(f'a record cut short{" in a chunk" if in_chunk else ""}')
            pos += 9 + length
            if op == _SCHEMA:
                sid, name, off = struct.unpack_from('<H', body)[0], *_string(body, 2)
                encoding, off = _string(body, off)
                (n,) = struct.unpack_from('<I', body, off)
                schemas[sid] = (name, encoding, bytes(body[off + 4:off + 4 + n]).decode())
            elif op == _CHANNEL:
                cid, sid = struct.unpack_from('<HH', body)
                topic, _ = _string(body, 4)
                name, encoding, text = schemas.get(sid, ('', '', ''))
                yield 'topic', (cid, topic, name, encoding, text)
            elif op == _MESSAGE:
                cid, _, t_ns = struct.unpack_from('<HIQ', body)
                yield 'message', (cid, t_ns, bytes(body[22:]) if with_data else None)
            elif op == _CHUNK:
                yield from self._chunk(body, schemas, with_data)
            elif op in (_DATA_END, _FOOTER) and not in_chunk:
                raise _Done()

    def _chunk(self, body, schemas, with_data):
        compression, off = _string(body, 28)
        (n,) = struct.unpack_from('<Q', body, off)
        records = body[off + 8:off + 8 + n]
        if compression == 'zstd':
            try:
                from compression import zstd
            except ImportError:
                from backports import zstd
            records = memoryview(zstd.decompress(records))
        elif compression == 'lz4':
            from lz4.frame import decompress
            records = memoryview(decompress(records))
        elif compression:
            raise _Cut(f'a chunk compressed with unknown {compression!r}')
        yield from self._records(records, schemas, with_data, in_chunk=True)

    # -- ROS 1 ----------------------------------------------------------------------
    def _scan_ros1(self, with_data: bool):
        with open(self.path, 'rb') as f:
            if f.read(len(ROS1_MAGIC)) != ROS1_MAGIC:
                raise _Cut('not a ROS 1 bag (version 2.0)')
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            yield from self._ros1_records(memoryview(data)[len(ROS1_MAGIC):], with_data)
            raise _Cut('the file ends before its index')
        except _Done:
            return

    def _ros1_records(self, view, with_data, in_chunk=False):
        pos, end = 0, len(view)
        while pos < end:
            if pos + 4 > end:
                raise _Cut('a record cut short')
            (hlen,) = struct.unpack_from('<I', view, pos)
            fields = _ros1_fields(view[pos + 4:pos + 4 + hlen])
            pos += 4 + hlen
            if pos + 4 > end:
                raise _Cut('a record cut short')
            (dlen,) = struct.unpack_from('<I', view, pos)
            body = view[pos + 4:pos + 4 + dlen]
            pos += 4 + dlen
            op = fields.get('op', b'\0')[0]
            if op == 0x05:  # chunk
                compression = fields.get('compression', b'none').decode()
                if len(body) < dlen and compression != 'none':
                    raise _Cut('a compressed chunk cut short')
                if compression == 'bz2':
                    import bz2
                    body = memoryview(bz2.decompress(body))
                elif compression == 'lz4':
                    from lz4.frame import decompress
                    body = memoryview(decompress(body))
                elif compression != 'none':
                    raise _Cut(f'a chunk compressed with unknown {compression!r}')
                yield from self._ros1_records(body, with_data, in_chunk=True)
            if len(body) < dlen:
                raise _Cut('a record cut short')
            if op == 0x07:  # connection
                conn = _ros1_fields(body)
                yield 'topic', (struct.unpack('<I', fields['conn'])[0],
                                fields['topic'].decode(), conn.get('type', b'').decode(),
                                'ros1msg', conn.get('message_definition', b'').decode())
            elif op == 0x02:  # message data
                sec, nsec = struct.unpack('<II', fields['time'])
                yield 'message', (struct.unpack('<I', fields['conn'])[0],
                                  sec * 1_000_000_000 + nsec, bytes(body) if with_data else None)
            elif op == 0x06 and not in_chunk:  # chunk info: the index section has begun
                raise _Done()


class _Done(Exception):
    """The data section ended normally."""


def _string(view, off: int) -> tuple:
    (n,) = struct.unpack_from('<I', view, off)
    return bytes(view[off + 4:off + 4 + n]).decode('utf-8'), off + 4 + n


def _ros1_fields(view) -> dict:
    """Parse a ROS 1 record header: (length, name=value) fields."""
    fields, pos = {}, 0
    while pos + 4 <= len(view):
        (n,) = struct.unpack_from('<I', view, pos)
        if pos + 4 + n > len(view):
            raise _Cut('a record header cut short')
        name, _, value = bytes(view[pos + 4:pos + 4 + n]).partition(b'=')
        fields[name.decode('ascii', 'replace')] = value
        pos += 4 + n
    return fields
