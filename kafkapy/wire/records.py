"""Record batches (magic v2) as bytes.

The hot path reads only the 61-byte batch header. Records are decoded, and batches
built, only where a feature needs them: compaction, internal topics, control markers,
ListOffsets by timestamp, and validation a client relies on.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from crc32c import crc32c
from kio.schema.control_record_type_schema.v0 import ControlRecordTypeSchema
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i16

from .compression import Codec, DecompressedTooLarge, compress, decompress

_Scan = Callable[[bytes | memoryview, int], tuple[int, int, bool, list[int]]]
compiled_scan: _Scan | None
try:
    from ._records_scan import scan_records as compiled_scan
except ImportError:  # not built: no C compiler where kafkapy was installed, or run from a checkout
    compiled_scan = None

# base offset, batch length, partition leader epoch, magic, crc, attributes,
# last offset delta, base timestamp, max timestamp, producer id, producer epoch,
# base sequence, record count
_HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = _HEADER.size  # 61
LOG_OVERHEAD = 12  # base offset and batch length precede what batch length counts
_CRC_START = 21  # the CRC covers attributes onwards
_PREFIX = struct.Struct(">qi")
_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
_INT16 = struct.Struct(">h")
_ATTRIBUTES_AT = 21
_MAX_TIMESTAMP_AT = 35

TIMESTAMP_TYPE_BIT = 0x08
TRANSACTIONAL_BIT = 0x10
CONTROL_BIT = 0x20
DELETE_HORIZON_BIT = 0x40
NO_TIMESTAMP = -1
NO_PRODUCER_ID = -1


class BatchHeader(NamedTuple):
    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        """Bytes of the whole batch, offset and length fields included."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def codec(self) -> int:
        return self.attributes & 0x07

    @property
    def log_append_time(self) -> bool:
        return bool(self.attributes & TIMESTAMP_TYPE_BIT)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_BIT)

    @property
    def last_sequence(self) -> int:
        if self.base_sequence < 0:
            return -1
        return (self.base_sequence + self.last_offset_delta) % (2**31)


def read_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    return BatchHeader._make(_HEADER.unpack_from(buf, pos))


def read_size(buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int]:
    """(base offset, whole batch size) from the 12 bytes at pos."""
    base_offset, batch_length = _PREFIX.unpack_from(buf, pos)
    return base_offset, batch_length + LOG_OVERHEAD


def crc_ok(buf: bytes | bytearray | memoryview, pos: int, header: BatchHeader) -> bool:
    view = memoryview(buf)[pos + _CRC_START : pos + header.size]
    return crc32c(view) == header.crc


def iter_headers(buf: bytes | bytearray | memoryview, pos: int = 0, end: int | None = None) -> Iterator[tuple[int, BatchHeader]]:
    """(position, header) of each complete batch in buf[pos:end]."""
    end = len(buf) if end is None else end
    while end - pos >= HEADER_SIZE:
        header = read_header(buf, pos)
        if header.batch_length < HEADER_SIZE - LOG_OVERHEAD or pos + header.size > end:
            return
        yield pos, header
        pos += header.size


def stamped_header(batch: bytes | bytearray | memoryview, header: BatchHeader, base_offset: int, leader_epoch: int) -> bytes:
    """A batch's first 61 bytes as the log stores them: with its base offset and leader
    epoch (neither covered by the CRC) and `header`'s attributes and max timestamp (the
    validator's, which may differ from the producer's: then the CRC is resealed). The rest
    of the batch is stored untouched, so the batch is never copied to be stamped."""
    head = bytearray(memoryview(batch)[:HEADER_SIZE])
    _PREFIX.pack_into(head, 0, base_offset, header.batch_length)
    _INT32.pack_into(head, 12, leader_epoch)
    if _INT16.unpack_from(head, _ATTRIBUTES_AT)[0] != header.attributes or _INT64.unpack_from(head, _MAX_TIMESTAMP_AT)[0] != header.max_timestamp:
        _INT16.pack_into(head, _ATTRIBUTES_AT, header.attributes)
        _INT64.pack_into(head, _MAX_TIMESTAMP_AT, header.max_timestamp)
        crc = crc32c(memoryview(batch)[HEADER_SIZE : header.size], crc32c(memoryview(head)[_CRC_START:]))
        _UINT32.pack_into(head, 17, crc)
    return bytes(head)


@dataclass(frozen=True, slots=True)
class Record:
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    attributes: int = 0


def _varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            if result >> 64:
                raise ValueError("varint too large")
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _bytes_field(buf: bytes, pos: int) -> tuple[bytes | None, int]:
    length, pos = _varint(buf, pos)
    if length < 0:
        return None, pos
    end = pos + length
    if end > len(buf):
        raise ValueError("record field runs past the batch")
    return buf[pos:end], end


class InvalidRecords(ValueError):
    """Records inside a batch that do not decode."""


def decode_records(batch: bytes | bytearray | memoryview, header: BatchHeader | None = None,
                   max_size: int | None = None) -> list[Record]:
    """Every record of one batch (decompressing it if needed), with absolute offsets and
    timestamps. max_size bounds the decompressed records (see `decompress`); a batch from
    outside the broker is read with one."""
    header = header or read_header(batch)
    payload = bytes(memoryview(batch)[HEADER_SIZE : header.size])
    try:
        data = decompress(header.codec, payload, max_size) if header.codec else payload
        records = []
        pos = 0
        for _ in range(header.records_count):
            length, pos = _varint(data, pos)
            end = pos + length
            attributes = data[pos]
            ts_delta, p = _varint(data, pos + 1)
            offset_delta, p = _varint(data, p)
            key, p = _bytes_field(data, p)
            value, p = _bytes_field(data, p)
            count, p = _varint(data, p)
            headers = []
            for _ in range(count):
                hkey, p = _bytes_field(data, p)
                if hkey is None:
                    raise ValueError("header key is null")
                hvalue, p = _bytes_field(data, p)
                headers.append((hkey.decode(), hvalue))
            if p != end:
                raise ValueError("record length does not match its fields")
            timestamp = header.max_timestamp if header.log_append_time else header.base_timestamp + ts_delta
            records.append(Record(header.base_offset + offset_delta, timestamp, key, value, tuple(headers), attributes))
            pos = end
    except DecompressedTooLarge:
        raise  # not malformed: over its reader's bound
    except (IndexError, ValueError, UnicodeDecodeError) as e:
        raise InvalidRecords(f"batch at offset {header.base_offset}: {e}") from e
    if pos != len(data):
        raise InvalidRecords(f"batch at offset {header.base_offset}: trailing bytes after its records")
    return records


class RecordsScan(NamedTuple):
    """What validation needs of a batch's records, read without building them."""

    min_timestamp_delta: int  # of the records' timestamp deltas (0 for no record)
    max_timestamp_delta: int
    sequential_offsets: bool  # offset deltas 0, 1, 2, ...
    keyless: list[int]  # indexes of records with a null key


def scan_records(data: bytes | memoryview, count: int) -> RecordsScan:
    """Walks a batch's `count` records (decompressed) as Kafka's record reader does: each
    record's fields must fill its length exactly and the records the batch exactly, or
    InvalidRecords. On the produce path for every batch: the C walk where it was built
    (`pip install` compiles it), the same walk in Python otherwise."""
    try:
        return RecordsScan._make((compiled_scan or python_scan)(data, count))
    except (IndexError, ValueError) as e:
        raise InvalidRecords(f"invalid record structure: {e}") from e


def python_scan(data: bytes | memoryview, count: int) -> tuple[int, int, bool, list[int]]:
    """The records walk of `_records_scan.c`, in Python; one- and two-byte varints, which
    almost every record has, are read inline."""
    pos = 0
    low, high = 2**63, -(2**63)
    sequential = True
    keyless: list[int] = []
    for i in range(count):
        b = data[pos]  # the record's length, zigzag
        if b < 0x80:
            pos += 1
            end = pos + ((b >> 1) ^ -(b & 1))
        elif data[pos + 1] < 0x80:
            b = (b & 0x7F) | (data[pos + 1] << 7)
            pos += 2
            end = pos + ((b >> 1) ^ -(b & 1))
        else:
            length, pos = _varint(data, pos)
            end = pos + length
        b = data[pos + 1]  # after the attributes: the timestamp delta
        if b < 0x80:
            delta = (b >> 1) ^ -(b & 1)
            p = pos + 2
        else:
            delta, p = _varint(data, pos + 1)
        if delta > high:
            high = delta
        if delta < low:
            low = delta
        b = data[p]  # the offset delta
        if b < 0x80:
            sequential = sequential and b == i << 1
            p += 1
        else:
            offset_delta, p = _varint(data, p)
            sequential = sequential and offset_delta == i
        b = data[p]  # the key's length
        if b < 0x80:
            p += 1 if b & 1 else 1 + (b >> 1)
            if b & 1:
                keyless.append(i)
        else:
            size, p = _varint(data, p)
            p += max(size, 0)
            if size < 0:
                keyless.append(i)
        b = data[p]  # the value's length
        if b < 0x80:
            p += 1 if b & 1 else 1 + (b >> 1)
        else:
            size, p = _varint(data, p)
            p += max(size, 0)
        if data[p]:  # headers
            headers, p = _varint(data, p)
            if headers < 0:
                raise ValueError(f"record {i} has {headers} headers")
            for _ in range(headers):
                size, p = _varint(data, p)
                if size < 0:
                    raise ValueError("negative header key size")
                size, p = _varint(data, p + size)
                p += max(size, 0)
        else:
            p += 1
        if p != end:
            raise ValueError(f"record {i}'s fields do not fill its length")
        pos = end
    if pos != len(data):
        raise ValueError(f"bytes remain after the {count} records the batch declares")
    return (low, high, sequential, keyless) if count > 0 else (0, 0, True, [])


def _put_varint(out: bytearray, value: int) -> None:
    value = (value << 1) ^ (value >> 63)
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _put_bytes(out: bytearray, value: bytes | None) -> None:
    if value is None:
        _put_varint(out, -1)
    else:
        _put_varint(out, len(value))
        out += value


def encode_batch(
    records: Sequence[Record],
    *,
    base_offset: int | None = None,
    last_offset_delta: int | None = None,
    base_timestamp: int | None = None,
    max_timestamp: int | None = None,
    codec: int = Codec.NONE,
    level: int | None = None,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    transactional: bool = False,
    control: bool = False,
    log_append_time: bool = False,
    partition_leader_epoch: int = -1,
    delete_horizon_ms: int | None = None,
) -> bytes:
    """One v2 batch. Record offsets are absolute; gaps between them are kept, so a
    compacted batch keeps its offsets. A delete horizon is carried in the base
    timestamp field, and record timestamps are then deltas from it, as in Kafka."""
    if base_offset is None:
        base_offset = records[0].offset if records else 0
    if last_offset_delta is None:
        last_offset_delta = records[-1].offset - base_offset if records else 0
    if base_timestamp is None:
        base_timestamp = records[0].timestamp if records else NO_TIMESTAMP
    if delete_horizon_ms is not None:
        base_timestamp = delete_horizon_ms
    if max_timestamp is None:
        max_timestamp = max((r.timestamp for r in records), default=NO_TIMESTAMP)
    body = bytearray()
    for r in records:
        rec = bytearray()
        rec.append(r.attributes)
        _put_varint(rec, r.timestamp - base_timestamp)
        _put_varint(rec, r.offset - base_offset)
        _put_bytes(rec, r.key)
        _put_bytes(rec, r.value)
        _put_varint(rec, len(r.headers))
        for hkey, hvalue in r.headers:
            _put_bytes(rec, hkey.encode())
            _put_bytes(rec, hvalue)
        _put_varint(body, len(rec))
        body += rec
    payload = compress(codec, bytes(body), level) if codec else bytes(body)
    attributes = (
        codec
        | (TIMESTAMP_TYPE_BIT if log_append_time else 0)
        | (TRANSACTIONAL_BIT if transactional else 0)
        | (CONTROL_BIT if control else 0)
        | (DELETE_HORIZON_BIT if delete_horizon_ms is not None else 0)
    )
    batch_length = HEADER_SIZE - LOG_OVERHEAD + len(payload)
    out = bytearray(
        _HEADER.pack(
            base_offset, batch_length, partition_leader_epoch, 2, 0, attributes,
            last_offset_delta, base_timestamp, max_timestamp, producer_id,
            producer_epoch, base_sequence, len(records),
        )
    )
    out += payload
    _UINT32.pack_into(out, 17, crc32c(memoryview(out)[_CRC_START:]))
    return bytes(out)


# Control records. The key is Kafka's version-prefixed ControlRecordTypeSchema (an int16
# version, then the schema); the value's layout depends on the type: a transaction
# marker's is EndTransactionMarker (version, coordinator epoch), KRaft's are the
# kio messages the raft layer writes (SnapshotHeaderRecord, SnapshotFooterRecord).
CONTROL_ABORT = 0
CONTROL_COMMIT = 1
CONTROL_LEADER_CHANGE = 2
CONTROL_SNAPSHOT_HEADER = 3
CONTROL_SNAPSHOT_FOOTER = 4
CONTROL_UNKNOWN = -1
_CONTROL_KEY_VERSION = 0
_CONTROL_VALUE = struct.Struct(">hi")
_write_control_key = entity_writer(ControlRecordTypeSchema)
_read_control_key = entity_reader(ControlRecordTypeSchema)


def control_key(control_type: int) -> bytes:
    out = io.BytesIO()
    out.write(_INT16.pack(_CONTROL_KEY_VERSION))
    _write_control_key(out, ControlRecordTypeSchema(type_=i16(control_type)))
    return out.getvalue()


def control_type(record: Record) -> int:
    """The type of a control record (CONTROL_*), CONTROL_UNKNOWN if its key is unreadable.
    As Kafka, a newer key version is read as the current one."""
    key = record.key
    if key is None or len(key) < 4 or _INT16.unpack_from(key)[0] < 0:
        return CONTROL_UNKNOWN
    schema, _ = _read_control_key(key, 2)
    return int(schema.type_)


def encode_control_record_batch(
    kind: int, value: bytes, *, offset: int, timestamp: int, producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = -1, transactional: bool = False, partition_leader_epoch: int = -1,
) -> bytes:
    """A control batch holding one control record of this type (Kafka writes each in a batch of its own)."""
    record = Record(offset, timestamp, control_key(kind), value)
    return encode_batch(
        [record], producer_id=producer_id, producer_epoch=producer_epoch, transactional=transactional,
        control=True, partition_leader_epoch=partition_leader_epoch,
    )


def encode_control_batch(
    marker: int, *, offset: int, timestamp: int, producer_id: int, producer_epoch: int,
    coordinator_epoch: int, partition_leader_epoch: int = -1,
) -> bytes:
    """A transaction marker (CONTROL_COMMIT or CONTROL_ABORT)."""
    return encode_control_record_batch(
        marker, _CONTROL_VALUE.pack(0, coordinator_epoch), offset=offset, timestamp=timestamp,
        producer_id=producer_id, producer_epoch=producer_epoch, transactional=True,
        partition_leader_epoch=partition_leader_epoch,
    )


def read_marker(batch: bytes | bytearray | memoryview, header: BatchHeader) -> tuple[bool, int] | None:
    """(aborted, coordinator epoch) of a control batch, or None if it holds no record
    (the cleaner empties markers whose transaction is gone)."""
    records = decode_records(batch, header)
    if not records:
        return None
    _, coordinator_epoch = _CONTROL_VALUE.unpack_from(records[0].value or b"\0" * 6)
    return control_marker(records[0]) == CONTROL_ABORT, coordinator_epoch


def control_marker(record: Record) -> int:
    """CONTROL_ABORT or CONTROL_COMMIT of a transaction marker."""
    return control_type(record)
