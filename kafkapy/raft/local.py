"""A quorum of one: this node's own metadata log is the committed log."""

from __future__ import annotations

from collections.abc import Iterator

from ..clock import Clock
from ..log.partition import PartitionLog
from ..wire.records import Record, decode_records, encode_batch


class LocalQuorum:
    def __init__(self, log: PartitionLog, clock: Clock) -> None:
        self.log = log
        self.clock = clock

    def append(self, values: list[bytes]) -> int:
        """Appends records as one batch, durably; returns the offset of the last one."""
        now = self.clock.wall_ms()
        base = self.log.next_offset
        batch = encode_batch([Record(base + i, now, None, v) for i, v in enumerate(values)])
        result = self.log.append(batch, now, from_client=False)
        self.log.flush(now)
        self.log.high_watermark = self.log.next_offset
        return result.last_offset

    def committed(self, start_offset: int = 0) -> Iterator[tuple[int, bytes]]:
        """(offset, value) of every committed record from start_offset on."""
        for header, batch in self.log.iter_batches(start_offset):
            for record in decode_records(batch, header):
                if record.offset >= start_offset and record.value is not None:
                    yield record.offset, record.value
