"""A quorum of one: this node's own metadata log is the committed log.

Besides the log it keeps the log's snapshots (KIP-630) in the log's directory, and
cleans both as Kafka's KafkaMetadataLog does: the log start only ever moves up to a
snapshot, so the newest snapshot plus the log after it always rebuild the state.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NamedTuple

import anyio
import anyio.to_thread

from ..clock import Clock
from ..log.files import StorageError
from ..log.partition import PartitionLog
from ..wire.records import Record, decode_records, encode_batch
from .output import CommitListener
from .retention import MetadataRetention
from .snapshot import (
    CorruptSnapshot,
    Snapshot,
    SnapshotId,
    delete_snapshot,
    delete_snapshots_before,
    list_snapshots,
    read_snapshot,
    remove_stray_files,
    snapshot_path,
    write_snapshot,
)

if TYPE_CHECKING:
    from .describe import QuorumDescription

log = logging.getLogger(__name__)


class Appended(NamedTuple):
    last_offset: int
    timestamp: int
    size: int
    """Bytes of the batch, as Kafka counts metadata.log.max.record.bytes.between.snapshots."""


class CommittedBatch(NamedTuple):
    size: int
    records: list[Record]


class SnapshotUnusable(RuntimeError):
    """The log starts past offset 0 and no valid snapshot covers what it lacks."""


class MetadataLogFailure(StorageError):
    """The metadata log, a snapshot of it or the quorum state could not be written or
    fsynced. As Kafka, the node halts: one that cannot persist the metadata must not go on
    voting or acknowledging, and retrying an fsync that failed may report pages that are
    gone as durable."""

    def __init__(self, during: str, error: OSError) -> None:
        super().__init__(f"{during} failed ({error}): the node halts; fix or replace the disk and start again")
        self.during = during
        self.error = error


@contextmanager
def persisting(during: str) -> Iterator[None]:
    """Turns an I/O error of what runs within into MetadataLogFailure, saying what failed
    (`during` names the file)."""
    try:
        yield
    except OSError as e:
        raise MetadataLogFailure(during, e) from e


class LocalQuorum:
    def __init__(self, log: PartitionLog, clock: Clock, *, node_id: int = -1,
                 retention: MetadataRetention | None = None) -> None:
        self.log = log
        self.leader_id = node_id  # the only voter leads, always, in epoch 0
        self.on_commit: CommitListener | None = None
        self.clock = clock
        self.directory = log.directory
        self.retention = retention or MetadataRetention()
        self.failure: MetadataLogFailure | None = None
        """The failure that made this quorum refuse every write since (see on_failure)."""
        self.on_failure: Callable[[MetadataLogFailure], None] | None = None
        """Told once, of the first write or fsync that failed: the node must halt."""

    leader_epoch = 0

    def is_caught_up_leader(self) -> bool:
        return True

    @property
    def end_offset(self) -> int:
        """The offset the next record appended gets."""
        return self.log.next_offset

    def describe(self) -> QuorumDescription:
        # Imported here: only DescribeQuorum asks, and a single node need not load it to start.
        from .describe import describe_single_voter

        return describe_single_voter(self.leader_id, self.leader_epoch, self.log.next_offset, self.log.high_watermark,
                                     self.clock.wall_ms())

    async def append(self, values: list[bytes]) -> Appended:
        """Appends records as one batch; returns once they are durable, which for a quorum
        of one is when they are committed. The fsync runs in a worker thread."""
        if self.failure is not None:
            # A later fsync could cover the batch that failed: nothing is written any more.
            raise self.failure
        now = self.clock.wall_ms()
        base = self.log.next_offset
        batch = encode_batch([Record(base + i, now, None, v) for i, v in enumerate(values)])
        try:
            with persisting(f"writing the metadata log {self.log.active.log_path}"):
                result = self.log.append(batch, now, from_client=False)
            with persisting(f"fsyncing the metadata log {self.log.active.log_path}"):
                await anyio.to_thread.run_sync(self.log.flush, now)
        except MetadataLogFailure as failure:
            self._failed(failure)
            raise
        self.log.high_watermark = max(self.log.high_watermark, result.last_offset + 1)
        if self.on_commit is not None:
            self.on_commit([(base + i, v) for i, v in enumerate(values)], now, len(batch))
        return Appended(result.last_offset, now, len(batch))

    def committed_batches(self, start_offset: int = 0) -> Iterator[CommittedBatch]:
        """Every committed batch from start_offset on, with its records at or past it."""
        for header, batch in self.log.iter_batches(start_offset):
            if header.is_control:
                continue
            records = [r for r in decode_records(batch, header) if r.offset >= start_offset and r.value is not None]
            yield CommittedBatch(header.size, records)

    def committed(self, start_offset: int = 0) -> Iterator[tuple[int, bytes]]:
        """(offset, value) of every committed record from start_offset on."""
        for batch in self.committed_batches(start_offset):
            for record in batch.records:
                yield record.offset, record.value  # type: ignore[misc]

    def snapshot_id_at(self, end_offset: int) -> SnapshotId:
        """The id of a snapshot of the records below end_offset: its epoch is that of the last
        one (0 if no epoch was ever recorded)."""
        epochs = self.log.epochs
        i = bisect_right(epochs.start_offsets, end_offset - 1) - 1
        return SnapshotId(end_offset, epochs.epochs[i] if i >= 0 else max(self.log.leader_epoch, 0))

    # Snapshots

    def snapshots(self) -> list[SnapshotId]:
        return list_snapshots(self.directory)

    def latest_snapshot(self) -> Snapshot | None:
        """The newest snapshot that reads back whole and that the log can continue from;
        a corrupt one is skipped for the one before it. None if the log alone must do
        (it starts at 0); SnapshotUnusable if it cannot."""
        remove_stray_files(self.directory)
        for snapshot_id in reversed(self.snapshots()):
            if not self.log.log_start_offset <= snapshot_id.offset <= self.log.next_offset:
                log.warning("Snapshot %s does not meet the log [%d, %d); skipped",
                            snapshot_id, self.log.log_start_offset, self.log.next_offset)
                continue
            try:
                snapshot = read_snapshot(snapshot_path(self.directory, snapshot_id))
            except (CorruptSnapshot, OSError) as e:
                log.error("Snapshot %s cannot be read (%s); falling back to an older one", snapshot_id, e)
                continue
            # As Kafka on start: snapshots older than the log start are of no more use.
            delete_snapshots_before(self.directory, self.log.log_start_offset)
            return snapshot
        if self.log.log_start_offset > 0:
            raise SnapshotUnusable(
                f"The metadata log starts at offset {self.log.log_start_offset} and no valid snapshot covers it"
            )
        return None

    async def take_snapshot(self, snapshot_id: SnapshotId, values: Callable[[], Iterable[bytes]],
                            last_contained_log_timestamp: int) -> bool:
        """Writes a snapshot file in a worker thread (values are made there too), while the
        event loop keeps appending: it only creates a new file."""
        if self.failure is not None:
            return False
        try:
            with persisting(f"writing the metadata snapshot {snapshot_path(self.directory, snapshot_id)}"):
                await anyio.to_thread.run_sync(lambda: write_snapshot(
                    self.directory, snapshot_id, values(),
                    last_contained_log_timestamp=last_contained_log_timestamp, now_ms=self.clock.wall_ms(),
                ))
        except MetadataLogFailure as failure:
            self._failed(failure)
            raise
        return True

    def _failed(self, failure: MetadataLogFailure) -> None:
        if self.failure is not None:
            return
        self.failure = failure
        if self.on_failure is not None:
            self.on_failure(failure)

    # Retention

    async def clean_log(self, now_ms: int) -> bool:
        return self.clean(now_ms)

    def clean(self, now_ms: int) -> bool:
        """While retention allows (see MetadataRetention), the log start moves to the next
        snapshot, the segments wholly below it go and so do the snapshots before it. True
        if anything went."""
        cleaned = False
        while (target := self.retention.next_log_start(self.directory, self.log.size, now_ms)) is not None:
            if not self._delete_before(target):
                break
            log.info("Metadata retention: log start moved to snapshot %s", target)
            cleaned = True
        return cleaned

    def _delete_before(self, snapshot_id: SnapshotId) -> bool:
        partition = self.log
        if not partition.log_start_offset < snapshot_id.offset <= partition.high_watermark:
            return False
        partition.delete_records_before(snapshot_id.offset)
        partition.delete_segments_below_log_start(self.clock.wall_ms())
        for old in self.snapshots():
            if old.offset < snapshot_id.offset:
                delete_snapshot(self.directory, old)
        return True
