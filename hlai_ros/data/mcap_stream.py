"""Streaming MCAP reading that survives a file cut short by a crash.

The file is read front to back, record by record, with the `mcap` package's record parsers; no
summary, index or metadata.yaml is needed. Reading stops cleanly at the first record that does
not fit in the file (a crash mid-write): messages of a cut chunk are salvaged up to the last
whole one when the chunk is uncompressed or zstd-compressed. Reading also stops at the data
section's end; the summary after it repeats what was already read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
import struct
from typing import Iterator

from mcap.data_stream import ReadDataStream
from mcap.exceptions import McapError
from mcap.opcode import Opcode
from mcap.records import Channel, Chunk, Message, Schema
from mcap.stream_reader import get_chunk_data_stream

from hlai_ros.data.errors import BagError

MAGIC = b'\x89MCAP0\r\n'
SQLITE_MAGIC = b'SQLite format 3\x00'


@dataclass(frozen=True)
class RawMessage:
    """One message as stored: topic, type, encoding, log time (ns) and serialised bytes."""

    topic: str
    msgtype: str
    encoding: str
    log_time_ns: int
    data: bytes


@dataclass
class McapScan:
    """What a streaming pass found in one file."""

    path: Path
    size_bytes: int = 0
    messages: int = 0
    complete: bool = False
    """True when the data section ended properly (DataEnd or Footer record reached)."""
    good_bytes: int = 0
    """Bytes up to the end of the last whole record or salvaged message."""
    salvaged: int = 0
    """Messages recovered from a cut chunk."""
    channels: dict[int, tuple[str, str, str]] = field(default_factory=dict)
    """Channel id -> (topic, message type, message encoding)."""

    @property
    def lost_bytes(self) -> int:
        """Bytes after the last whole message that could not be read."""
        return max(0, self.size_bytes - self.good_bytes)


def _parse_records(stream: ReadDataStream, end: int, scan: McapScan, schemas: dict,
                   base_offset: int | None) -> Iterator[Message]:
    """Yield messages of a record sequence (chunk contents); stop at a partial record."""
    while stream.count + 9 <= end:
        start = stream.count
        opcode, length = struct.unpack('<BQ', stream.read(9))
        if stream.count + length > end:
            return
        body = ReadDataStream(BytesIO(stream.read(length)))
        _handle(opcode, length, body, scan, schemas)
        if opcode == Opcode.MESSAGE:
            yield Message.read(body, length)
            if base_offset is not None:
                scan.good_bytes = base_offset + start + 9 + length
                scan.salvaged += 1


def _handle(opcode: int, length: int, body: ReadDataStream, scan: McapScan, schemas: dict):
    if opcode == Opcode.SCHEMA:
        schema = Schema.read(body)
        schemas[schema.id] = schema.name
    elif opcode == Opcode.CHANNEL:
        channel = Channel.read(body)
        scan.channels[channel.id] = (channel.topic, schemas.get(channel.schema_id, ''),
                                     channel.message_encoding)


def _salvage_chunk(payload: bytes, offset: int, scan: McapScan,
                   schemas: dict) -> Iterator[Message]:
    """Yield the whole messages of a chunk cut short at the end of `payload`."""
    head = 8 + 8 + 8 + 4
    if len(payload) < head + 4:
        return
    (clen,) = struct.unpack_from('<I', payload, head)
    data_start = head + 4 + clen + 8
    if len(payload) < data_start:
        return
    compression = payload[head + 4:head + 4 + clen].decode('utf-8', 'replace')
    data = payload[data_start:]
    if compression == '':
        base = offset + data_start
    elif compression == 'zstd':
        import zstandard
        try:
            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        except zstandard.ZstdError:
            return
        base = None
    else:
        return
    yield from _parse_records(ReadDataStream(BytesIO(data)), len(data), scan, schemas, base)


def scan_mcap(path: str | Path) -> tuple[McapScan, Iterator[RawMessage]]:
    """Return (scan, message iterator) for one MCAP file; the scan fills in while iterating.

    Raises:
        BagError: the file is not MCAP (bad magic), or a record inside is malformed.

    """
    path = Path(path)
    scan = McapScan(path, size_bytes=path.stat().st_size)
    return scan, _iterate(path, scan)


def _iterate(path: Path, scan: McapScan) -> Iterator[RawMessage]:
    schemas: dict[int, str] = {}
    with path.open('rb') as f:
        magic = f.read(8)
        if len(magic) < 8 and MAGIC.startswith(magic):
            return  # cut before the first record: an empty recording, not a foreign file
        if magic != MAGIC:
            if (magic + f.read(8)).startswith(SQLITE_MAGIC):
                raise BagError(f'{path}: a rosbag2 sqlite3 file, not MCAP; convert it with '
                               '`rosbags-convert` or record with `ros2 bag record -s mcap`')
            raise BagError(f'{path}: not an MCAP file (starts with {magic[:8]!r}, expected '
                           f'{MAGIC!r})')
        scan.good_bytes = 8
        size = scan.size_bytes
        while True:
            offset = f.tell()
            head = f.read(9)
            if len(head) < 9:
                return
            opcode, length = struct.unpack('<BQ', head)
            if offset + 9 + length > size:
                if opcode == Opcode.CHUNK:
                    salvaged = []
                    try:
                        salvaged.extend(_salvage_chunk(f.read(), offset + 9, scan, schemas))
                    except (McapError, struct.error, UnicodeDecodeError, ValueError):
                        pass  # keep what was whole before the damage
                    for msg in salvaged:
                        yield from _emit(msg, scan, path)
                return
            payload = f.read(length)
            try:
                body = ReadDataStream(BytesIO(payload))
                if opcode == Opcode.CHUNK:
                    chunk = Chunk.read(body)
                    stream, n = get_chunk_data_stream(chunk)
                    msgs = list(_parse_records(stream, n, scan, schemas, None))
                elif opcode == Opcode.MESSAGE:
                    msgs = [Message.read(body, length)]
                else:
                    msgs = []
                    _handle(opcode, length, body, scan, schemas)
            except (McapError, struct.error, UnicodeDecodeError, ValueError) as exc:
                raise BagError(f'{path}: malformed MCAP record (opcode {opcode:#04x}) at byte '
                               f'{offset}: {exc}') from None
            for msg in msgs:
                yield from _emit(msg, scan, path)
            scan.good_bytes = offset + 9 + length
            if opcode in (Opcode.DATA_END, Opcode.FOOTER):
                scan.complete = True
                scan.good_bytes = size
                return


def _emit(msg: Message, scan: McapScan, path: Path) -> Iterator[RawMessage]:
    if msg.channel_id not in scan.channels:
        raise BagError(f'{path}: message on unknown channel {msg.channel_id}')
    topic, msgtype, encoding = scan.channels[msg.channel_id]
    scan.messages += 1
    yield RawMessage(topic, msgtype, encoding, msg.log_time, msg.data)
