"""Message formats v0 and v1 (magic 0 and 1): the message sets of clients older than
Kafka 0.11, read on Produce v0-2 and written for Fetch v0-3.

A message set is a run of entries: offset (int64), size (int32), then a message of that
size: CRC-32 (of everything after it), magic, attributes (bits 0-2 the codec, bit 3 the
timestamp type from magic 1 on), a timestamp (magic 1 only), key and value (int32
length, -1 for null). A compressed message holds in its value a whole message set,
compressed; its own offset is that of its last inner message, and from magic 1 on the
inner offsets are relative to the first.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from .compression import Codec, compress, decompress, lz4_frame_for_magic_v0, lz4_frame_from_magic_v0
from .records import NO_TIMESTAMP, TIMESTAMP_TYPE_BIT, BatchHeader, Record, decode_records

LOG_OVERHEAD = 12
_ENTRY = struct.Struct(">qi")  # offset, message size
_MESSAGE_HEAD = struct.Struct(">IbB")  # crc, magic, attributes
_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_MESSAGE_OVERHEAD = {0: 14, 1: 22}  # crc, magic, attributes, (timestamp,) key and value lengths
_CODEC_MASK = 0x07


class CorruptMessage(ValueError):
    """A message set that is truncated, malformed, or fails a CRC check (CORRUPT_MESSAGE)."""


class InvalidMessage(ValueError):
    """Messages well framed but not allowed: a compressed message that holds nothing, a
    compressed one inside another, inner messages of another magic (INVALID_RECORD)."""


class LegacyMessage(NamedTuple):
    offset: int
    magic: int
    attributes: int
    timestamp: int
    """NO_TIMESTAMP for magic 0, which has none."""
    key: bytes | None
    value: bytes | None
    size: int
    """Of the whole entry, offset and size included."""

    @property
    def codec(self) -> int:
        return self.attributes & _CODEC_MASK

    @property
    def log_append_time(self) -> bool:
        return self.magic > 0 and bool(self.attributes & TIMESTAMP_TYPE_BIT)


def magic_of(records: bytes | bytearray | memoryview) -> int:
    """The magic of the first entry: at the same place in every format, or -1 if too short."""
    return records[16] if len(records) > 16 else -1


def iter_messages(buf: bytes | bytearray | memoryview) -> Iterator[LegacyMessage]:
    """Each message of a message set, its CRC checked."""
    view = memoryview(buf)
    pos, end = 0, len(view)
    while pos < end:
        if end - pos < LOG_OVERHEAD:
            raise CorruptMessage("the message set ends inside an entry's offset and size")
        offset, size = _ENTRY.unpack_from(view, pos)
        start = pos + LOG_OVERHEAD
        if size < _MESSAGE_OVERHEAD[0] or start + size > end:
            raise CorruptMessage(f"message at offset {offset} of size {size} is truncated or malformed")
        yield _read_message(view, offset, start, size)
        pos = start + size


def _read_message(view: memoryview, offset: int, start: int, size: int) -> LegacyMessage:
    crc, magic, attributes = _MESSAGE_HEAD.unpack_from(view, start)
    if magic not in _MESSAGE_OVERHEAD or size < _MESSAGE_OVERHEAD[magic]:
        raise CorruptMessage(f"message at offset {offset} has magic {magic} and size {size}")
    end = start + size
    if zlib.crc32(view[start + 4 : end]) != crc:
        raise CorruptMessage(f"Record is corrupt (stored crc = {crc}) at offset {offset}")
    pos = start + 6
    timestamp = NO_TIMESTAMP
    if magic == 1:
        (timestamp,) = _INT64.unpack_from(view, pos)
        pos += 8
    key, pos = _sized_bytes(view, pos, end)
    value, pos = _sized_bytes(view, pos, end)
    if pos != end:
        raise CorruptMessage(f"message at offset {offset}: its size does not match its key and value")
    return LegacyMessage(offset, magic, attributes, timestamp, key, value, size + LOG_OVERHEAD)


def _sized_bytes(view: memoryview, pos: int, end: int) -> tuple[bytes | None, int]:
    if pos + 4 > end:
        raise CorruptMessage("a message ends inside a length")
    (length,) = _INT32.unpack_from(view, pos)
    pos += 4
    if length < 0:
        return None, pos
    if pos + length > end:
        raise CorruptMessage("a key or value runs past its message")
    return bytes(view[pos : pos + length]), pos + length


def inner_messages(wrapper: LegacyMessage, max_size: int | None) -> list[LegacyMessage]:
    """The messages a compressed message holds, inflated to at most max_size bytes
    (DecompressedTooLarge past it; CompressionError if they do not decompress)."""
    if wrapper.value is None:
        raise InvalidMessage("Found invalid compressed record set with null value")
    data: bytes | memoryview = wrapper.value
    if wrapper.codec == Codec.LZ4 and wrapper.magic == 0:
        data = lz4_frame_from_magic_v0(data)
    messages = list(iter_messages(decompress(wrapper.codec, data, max_size)))
    if not messages:
        raise InvalidMessage("Found invalid compressed record set with no inner records")
    for message in messages:
        if message.codec:
            raise InvalidMessage("Compressed outer record should not have an inner record with a compression attribute set")
        if message.magic != wrapper.magic:
            raise InvalidMessage(f"Record's magic {message.magic} does not match outer magic {wrapper.magic}")
    return messages


def encode_message(offset: int, magic: int, attributes: int, timestamp: int, key: bytes | None, value: bytes | None) -> bytes:
    """One entry of a message set."""
    body = bytearray((magic, attributes))
    if magic > 0:
        body += _INT64.pack(timestamp)
    for field in (key, value):
        if field is None:
            body += _INT32.pack(-1)
        else:
            body += _INT32.pack(len(field))
            body += field
    return _ENTRY.pack(offset, len(body) + 4) + struct.pack(">I", zlib.crc32(body)) + body


def down_convert_batch(batch: bytes | bytearray | memoryview, header: BatchHeader, magic: int, fetch_offset: int) -> list[bytes]:
    """A v2 batch as entries of a message set of this magic (0 or 1), as Kafka's
    RecordsUtil.downConvert writes them for fetches that predate v2: none for a control
    batch; an uncompressed batch's records from fetch_offset on, one entry each; a
    compressed batch's records all in one compressed entry of the same codec (its reader
    skips those before its fetch offset). Headers, producer ids and transactional flags
    have no place in these formats and are dropped: old consumers read uncommitted."""
    if header.is_control:
        return []
    if header.codec == Codec.ZSTD:
        raise UnsupportedDownConversion("Down-conversion of zstandard-compressed batches is not supported")
    log_append_time = header.log_append_time and magic > 0
    type_bit = TIMESTAMP_TYPE_BIT if log_append_time else 0
    records = decode_records(batch, header)
    if header.codec == Codec.NONE:
        return [encode_message(r.offset, magic, type_bit, r.timestamp, r.key, r.value) for r in records if r.offset >= fetch_offset]
    if not records:
        return []
    return [_compressed_entry(records, magic, header.codec, type_bit, header.max_timestamp if log_append_time else None)]


def _compressed_entry(records: Sequence[Record], magic: int, codec: int, type_bit: int, log_append_time: int | None) -> bytes:
    first = records[0].offset
    inner = b"".join(
        encode_message(r.offset - first if magic > 0 else r.offset, magic, type_bit, r.timestamp, r.key, r.value) for r in records)
    value = compress(codec, inner)
    if codec == Codec.LZ4 and magic == 0:
        value = lz4_frame_for_magic_v0(value)
    timestamp = log_append_time if log_append_time is not None else max(r.timestamp for r in records)
    return encode_message(records[-1].offset, magic, codec | type_bit, timestamp, None, value)


class UnsupportedDownConversion(ValueError):
    """Batches that a message format before v2 cannot carry (UNSUPPORTED_COMPRESSION_TYPE)."""
