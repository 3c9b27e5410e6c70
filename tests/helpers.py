"""Builders shared by the unit tests of the sans-IO cores."""

from __future__ import annotations

from pathlib import Path

from kafkapy.log.config import LogConfig
from kafkapy.log.partition import PartitionLog
from kafkapy.wire.compression import Codec
from kafkapy.wire.records import HEADER_SIZE, Record, encode_batch, read_header, stamped_header


def make_records(count: int, *, offset: int = 0, timestamp: int = 1_000, value_size: int = 10, key: bytes | None = b"k") -> list[Record]:
    """count records at consecutive offsets, each value telling its index apart."""
    return [
        Record(offset + i, timestamp, key, bytes([i % 256]) * value_size)
        for i in range(count)
    ]


def client_batch(count: int = 1, *, timestamp: int = 1_000, value_size: int = 10, codec: int = Codec.NONE, **kwargs: object) -> bytes:
    """A batch as a producer sends it: offsets from 0, the broker assigns the real ones."""
    return encode_batch(make_records(count, timestamp=timestamp, value_size=value_size), codec=codec, **kwargs)  # type: ignore[arg-type]


def as_stored(batch: bytes, base_offset: int, leader_epoch: int = 0) -> bytes:
    """The bytes a log holds for a client batch appended at base_offset."""
    return stamped_header(batch, read_header(batch), base_offset, leader_epoch) + batch[HEADER_SIZE:]


def open_log(directory: Path, config: LogConfig | None = None, now_ms: int = 0, **kwargs: object) -> PartitionLog:
    return PartitionLog.open(directory, config or LogConfig(), now_ms, **kwargs)  # type: ignore[arg-type]


def crash(log: PartitionLog) -> None:
    """Leaves the log as a killed process would: its data written, nothing flushed or
    closed cleanly. Only the file descriptors go (deleted segments' too), as the OS
    would close them."""
    for segment in log.segments:
        segment.close()
    for _, segment in log.retired:
        segment.close()


def stored_batches(log: PartitionLog) -> list[tuple[int, bytes]]:
    """(base offset, bytes) of every batch in the log, read back from its files."""
    return [(header.base_offset, data) for header, data in log.iter_batches()]
