"""KIP-630 snapshots of a replicated log, in Kafka's file format.

A snapshot holds the state the log's records built up to (not including) its end
offset. It is a file `<end offset, 20 digits>-<epoch, 10 digits>.checkpoint` in the
log's directory, holding record batches as Kafka's RecordsSnapshotWriter writes them:
a control batch with a SnapshotHeaderRecord, data batches with the records, and a
control batch with a SnapshotFooterRecord. Offsets inside the file start at 0 and every
batch carries the snapshot's epoch as its partition leader epoch.

This module knows nothing of what the records mean: it stores opaque values.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kio.schema.snapshot_footer_record.v0 import SnapshotFooterRecord
from kio.schema.snapshot_header_record.v0 import SnapshotHeaderRecord
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i16, i64

from ..log.files import replace_file
from ..wire.records import (
    CONTROL_SNAPSHOT_FOOTER,
    CONTROL_SNAPSHOT_HEADER,
    HEADER_SIZE,
    LOG_OVERHEAD,
    InvalidRecords,
    Record,
    control_type,
    crc_ok,
    decode_records,
    encode_batch,
    encode_control_record_batch,
    iter_headers,
    read_size,
)
from .output import SnapshotId

SUFFIX = ".checkpoint"
PARTIAL_SUFFIX = ".checkpoint.part"
DELETED_SUFFIX = ".checkpoint.deleted"
# KafkaRaftClient.MAX_BATCH_SIZE_BYTES: the largest batch a snapshot writer makes.
MAX_BATCH_BYTES = 8 * 1024 * 1024
# A record's framing around its value, at most: length, attributes, two deltas, a null
# key and no headers (varints of up to 5, 10 and 5 bytes).
_RECORD_OVERHEAD = 1 + 5 + 10 + 5 + 1 + 5 + 1

_write_header = entity_writer(SnapshotHeaderRecord)
_write_footer = entity_writer(SnapshotFooterRecord)
_read_header = entity_reader(SnapshotHeaderRecord)
_read_footer = entity_reader(SnapshotFooterRecord)


class CorruptSnapshot(ValueError):
    """A snapshot file that is torn, fails a CRC, or lacks its header or footer."""


@dataclass(frozen=True)
class Snapshot:
    id: SnapshotId
    last_contained_log_timestamp: int
    values: list[bytes]


def snapshot_name(snapshot_id: SnapshotId) -> str:
    return f"{snapshot_id.offset:020d}-{snapshot_id.epoch:010d}{SUFFIX}"


def parse_name(name: str) -> tuple[SnapshotId, str] | None:
    """(id, suffix) of a snapshot file name (any of SUFFIX, PARTIAL_SUFFIX, DELETED_SUFFIX), else None."""
    offset, dash, epoch = name[:20], name[20:21], name[21:31]
    suffix = name[31:]
    if dash != "-" or not offset.isdigit() or not epoch.isdigit():
        return None
    # A partial file may carry a unique tail before its suffix (two writers never collide).
    for known in (SUFFIX, DELETED_SUFFIX):
        if suffix == known:
            return SnapshotId(int(offset), int(epoch)), known
    if suffix.endswith(PARTIAL_SUFFIX):
        return SnapshotId(int(offset), int(epoch)), PARTIAL_SUFFIX
    return None


def encode_snapshot(
    snapshot_id: SnapshotId, values: Iterable[bytes], *, last_contained_log_timestamp: int, now_ms: int,
    max_batch_bytes: int = MAX_BATCH_BYTES,
) -> Iterator[bytes]:
    """The snapshot's batches, in order. Data batches are filled up to max_batch_bytes."""
    epoch = snapshot_id.epoch
    header = io.BytesIO()
    _write_header(header, SnapshotHeaderRecord(version=i16(0), last_contained_log_timestamp=i64(last_contained_log_timestamp)))
    yield encode_control_record_batch(
        CONTROL_SNAPSHOT_HEADER, header.getvalue(), offset=0, timestamp=now_ms, partition_leader_epoch=epoch,
    )
    offset = 1
    pending: list[Record] = []
    size = HEADER_SIZE
    for value in values:
        if pending and size + len(value) + _RECORD_OVERHEAD > max_batch_bytes:
            yield encode_batch(pending, partition_leader_epoch=epoch)
            pending, size = [], HEADER_SIZE
        pending.append(Record(offset, now_ms, None, value))
        size += len(value) + _RECORD_OVERHEAD
        offset += 1
    if pending:
        yield encode_batch(pending, partition_leader_epoch=epoch)
    footer = io.BytesIO()
    _write_footer(footer, SnapshotFooterRecord(version=i16(0)))
    yield encode_control_record_batch(
        CONTROL_SNAPSHOT_FOOTER, footer.getvalue(), offset=offset, timestamp=now_ms, partition_leader_epoch=epoch,
    )


def write_snapshot(
    directory: Path, snapshot_id: SnapshotId, values: Iterable[bytes], *, last_contained_log_timestamp: int,
    now_ms: int, max_batch_bytes: int = MAX_BATCH_BYTES,
) -> Path:
    """Writes the snapshot atomically (see write_snapshot_file). Blocking: call it from a worker thread."""
    batches = encode_snapshot(snapshot_id, values, last_contained_log_timestamp=last_contained_log_timestamp,
                              now_ms=now_ms, max_batch_bytes=max_batch_bytes)
    return write_snapshot_file(directory, snapshot_id, batches)


def write_snapshot_file(directory: Path, snapshot_id: SnapshotId, chunks: Iterable[bytes]) -> Path:
    """Writes a snapshot file's bytes atomically: to a `.checkpoint.part` file, fsynced, then
    renamed (and the directory fsynced), so a crash leaves the whole file or none. A
    Raft follower writes the bytes it fetched from the leader's file this way."""
    path = directory / snapshot_name(snapshot_id)
    partial = path.with_name(f"{path.name[: -len(SUFFIX)]}-{os.getpid()}{PARTIAL_SUFFIX}")
    replace_file(path, chunks, temp=partial)
    return path


def read_snapshot(path: Path) -> Snapshot:
    """The snapshot in a file, checked whole (see decode_snapshot). Raises CorruptSnapshot."""
    parsed = parse_name(path.name)
    if parsed is None or parsed[1] != SUFFIX:
        raise CorruptSnapshot(f"{path}: not a snapshot file name")
    return decode_snapshot(parsed[0], path.read_bytes(), str(path))


def decode_snapshot(snapshot_id: SnapshotId, data: bytes, where: str = "snapshot") -> Snapshot:
    """A snapshot file's bytes, checked whole before anything is returned: every batch's
    CRC, contiguous offsets, a header first and a footer last. Raises CorruptSnapshot."""
    headers = list(iter_headers(data))
    end = headers[-1][0] + headers[-1][1].size if headers else 0
    if end != len(data):
        raise CorruptSnapshot(f"{where}: torn or garbled batch at position {end}")
    values: list[bytes] = []
    timestamp: int | None = None
    footer = False
    next_offset = 0
    for position, header in headers:
        if header.magic != 2 or not crc_ok(data, position, header):
            raise CorruptSnapshot(f"{where}: batch at position {position} fails its CRC check")
        if header.base_offset != next_offset or footer:
            raise CorruptSnapshot(f"{where}: batch at position {position} is out of place (offset {header.base_offset})")
        next_offset = header.next_offset
        try:
            records = decode_records(data[position : position + header.size], header)
        except InvalidRecords as e:
            raise CorruptSnapshot(f"{where}: {e}") from e
        if not header.is_control:
            if timestamp is None:
                raise CorruptSnapshot(f"{where}: data before the snapshot header")
            values.extend(r.value for r in records if r.value is not None)
            continue
        for record in records:
            try:
                kind = control_type(record)
                if kind == CONTROL_SNAPSHOT_HEADER and timestamp is None and position == 0:
                    header_record, _ = _read_header(record.value or b"", 0)
                    timestamp = int(header_record.last_contained_log_timestamp)
                elif kind == CONTROL_SNAPSHOT_FOOTER and timestamp is not None:
                    _read_footer(record.value or b"", 0)
                    footer = True
                elif timestamp is None:
                    raise CorruptSnapshot(f"{where}: the first record is not a snapshot header")
                # Other control records (KRaft version, voters) are the quorum's business.
            except (ValueError, IndexError, struct.error) as e:  # CorruptSnapshot is a ValueError
                raise e if isinstance(e, CorruptSnapshot) else CorruptSnapshot(f"{where}: {e}") from e
    if timestamp is None or not footer:
        raise CorruptSnapshot(f"{where}: no snapshot {'header' if timestamp is None else 'footer'}")
    return Snapshot(snapshot_id, timestamp, values)


def read_last_contained_log_timestamp(path: Path) -> int:
    """The header's lastContainedLogTimestamp, reading the first batch only (for retention)."""
    with open(path, "rb") as f:
        prefix = f.read(LOG_OVERHEAD)
        data = prefix + f.read(read_size(prefix)[1] - LOG_OVERHEAD) if len(prefix) == LOG_OVERHEAD else prefix
    headers = list(iter_headers(data))
    if not headers or not headers[0][1].is_control or not crc_ok(data, 0, headers[0][1]):
        raise CorruptSnapshot(f"{path}: no valid header batch")
    records = decode_records(data, headers[0][1])
    if not records or control_type(records[0]) != CONTROL_SNAPSHOT_HEADER:
        raise CorruptSnapshot(f"{path}: the first record is not a snapshot header")
    header_record, _ = _read_header(records[0].value or b"", 0)
    return int(header_record.last_contained_log_timestamp)


def list_snapshots(directory: Path) -> list[SnapshotId]:
    """Ids of the complete snapshot files in directory, oldest first."""
    found = []
    for path in directory.glob("*" + SUFFIX):
        parsed = parse_name(path.name)
        if parsed is not None and parsed[1] == SUFFIX:
            found.append(parsed[0])
    return sorted(found)


def snapshot_path(directory: Path, snapshot_id: SnapshotId) -> Path:
    return directory / snapshot_name(snapshot_id)


def delete_snapshot(directory: Path, snapshot_id: SnapshotId) -> None:
    """Renamed `.checkpoint.deleted` first, as Kafka marks it, so that the id leaves the
    listing at once even if removing the file fails; then removed."""
    path = snapshot_path(directory, snapshot_id)
    marked = path.with_name(path.name[: -len(SUFFIX)] + DELETED_SUFFIX)
    try:
        os.replace(path, marked)
    except FileNotFoundError:
        return
    marked.unlink(missing_ok=True)


def delete_snapshots_before(directory: Path, offset: int) -> list[SnapshotId]:
    """Deletes every snapshot whose end offset is below offset; returns their ids."""
    gone = [s for s in list_snapshots(directory) if s.offset < offset]
    for snapshot_id in gone:
        delete_snapshot(directory, snapshot_id)
    return gone


def remove_stray_files(directory: Path) -> None:
    """Removes what an interrupted write or delete left behind (as Kafka does on start)."""
    for path in directory.iterdir():
        parsed = parse_name(path.name)
        if parsed is not None and parsed[1] != SUFFIX:
            path.unlink(missing_ok=True)
