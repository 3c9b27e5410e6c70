"""Keeps the current image: loads it on start from the newest snapshot and the log after
it, commits the controller's records through the quorum, tells listeners of each new
image, and says when a new snapshot is due (KIP-630).

Deciding is sans-IO (`snapshot_due` takes the time); writing the snapshot is a blocking
job (`write_snapshot`) the I/O shell runs in a worker thread. Images are immutable, so
the job reads its image while the event loop goes on applying records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..raft.describe import QuorumDescription
from ..raft.local import Appended, LocalQuorum
from ..raft.output import CommitListener
from ..raft.snapshot import SnapshotId
from .image import MetadataImage
from .records import (
    decode_record,
    encode_record,
)

Listener = Callable[[MetadataImage, MetadataImage], None]


@dataclass(frozen=True)
class SnapshotPolicy:
    """When Kafka's SnapshotGenerator writes a snapshot: once this many bytes of batches
    were committed since the last one (metadata.log.max.record.bytes.between.snapshots),
    or this long has passed with anything new (metadata.log.max.snapshot.interval.ms,
    0 turns the timer off)."""

    max_bytes: int = 20 * 1024 * 1024
    max_interval_ms: int = 3_600_000


@dataclass(frozen=True)
class SnapshotJob:
    image: MetadataImage
    snapshot_id: SnapshotId
    last_contained_log_timestamp: int


class MetadataQuorum(Protocol):
    """What the metadata layer and the controller need of the quorum: the one-voter log, or
    Raft across nodes. It hands every committed record to `on_commit`, leader or not."""

    on_commit: CommitListener | None

    async def append(self, values: list[bytes]) -> Appended:
        """Returns once the records are committed (and handed to on_commit)."""
        ...

    @property
    def end_offset(self) -> int: ...
    @property
    def leader_id(self) -> int: ...
    @property
    def leader_epoch(self) -> int: ...
    def is_caught_up_leader(self) -> bool:
        """Leader, with everything committed before its epoch applied: only then is the image whole."""
        ...
    def describe(self) -> QuorumDescription | None:
        """What DescribeQuorum reports, as the leader knows it; None on any other node."""
        ...


class MetadataManager:
    def __init__(self, quorum: MetadataQuorum, policy: SnapshotPolicy | None = None) -> None:
        self.quorum = quorum
        # The one-voter log keeps the snapshots and the log this layer loads; a Raft quorum
        # replays its own log into `apply_committed` and keeps no snapshots of this layer's.
        self.store = quorum if isinstance(quorum, LocalQuorum) else None
        self.policy = policy or SnapshotPolicy()
        self.image = MetadataImage()
        self.listeners: list[Listener] = []
        quorum.on_commit = self.apply_committed
        self.snapshot_id: SnapshotId | None = None  # the newest snapshot, loaded or written
        self.bytes_since_snapshot = 0
        self._last_timestamp = -1  # append time of the image's last record
        self._last_snapshot_ms: int | None = None
        self._writing: SnapshotJob | None = None

    def load(self) -> None:
        """Loads the newest valid snapshot, then replays the committed records after it
        (listeners are not told)."""
        snapshot = self._store().latest_snapshot()
        image, start = MetadataImage(), 0
        if snapshot is not None:
            image = image.apply((decode_record(v) for v in snapshot.values), snapshot.id.offset - 1)
            start = snapshot.id.offset
            self.snapshot_id = snapshot.id
            self._last_timestamp = snapshot.last_contained_log_timestamp
        records: list[Any] = []
        last = image.offset
        for batch in self._store().committed_batches(start):
            self.bytes_since_snapshot += batch.size
            for record in batch.records:
                records.append(decode_record(record.value))  # type: ignore[arg-type]
                last = record.offset
                self._last_timestamp = record.timestamp
        self.image = image.apply(records, last) if records else image

    async def commit(self, records: Sequence[Any]) -> MetadataImage:
        """Commits the records through the quorum; returns the image once they are applied
        (the quorum hands every committed record to `apply_committed` before it returns)."""
        if records:
            await self.quorum.append([encode_record(r) for r in records])
        return self.image

    def apply_committed(self, records: list[tuple[int, bytes]], timestamp_ms: int, size: int) -> None:
        """Applies records as the quorum commits them, on the active controller and every
        other node alike, and tells the listeners of the new image."""
        self.bytes_since_snapshot += size
        self._last_timestamp = timestamp_ms
        old, self.image = self.image, self.image.apply([decode_record(v) for _, v in records], records[-1][0])
        for listener in self.listeners:
            listener(old, self.image)

    # Snapshots

    def clean_log(self, now_ms: int) -> bool:
        """Deletes the metadata log below the oldest snapshot still kept, as retention allows."""
        return self.store.clean(now_ms) if self.store is not None else False

    def _store(self) -> LocalQuorum:
        assert self.store is not None, "only the one-voter metadata log keeps the metadata layer's snapshots"
        return self.store

    def snapshot_due(self, now_ms: int) -> SnapshotJob | None:
        """A snapshot of the current image to write now, or None. The byte and time
        counters restart when a job is handed out; one job at a time."""
        if self.store is None:
            return None
        if self._last_snapshot_ms is None:
            self._last_snapshot_ms = now_ms  # as Kafka, the timer starts with the process
        end_offset = self.image.offset + 1
        if self._writing is not None or end_offset <= (self.snapshot_id.offset if self.snapshot_id else 0):
            return None
        interval = self.policy.max_interval_ms
        if self.bytes_since_snapshot < self.policy.max_bytes and not (
            interval > 0 and now_ms - self._last_snapshot_ms >= interval
        ):
            return None
        self.bytes_since_snapshot = 0
        self._last_snapshot_ms = now_ms
        snapshot_id = SnapshotId(end_offset, self._store().epoch_of(self.image.offset))
        self._writing = SnapshotJob(self.image, snapshot_id, self._last_timestamp)
        return self._writing

    def write_snapshot(self, job: SnapshotJob) -> SnapshotId:
        """Serialises the job's image and writes the file. Blocking: run it in a worker thread."""
        self._store().write_snapshot(
            job.snapshot_id, (encode_record(r) for r in job.image.to_records()), job.last_contained_log_timestamp,
        )
        return job.snapshot_id

    def snapshot_done(self, job: SnapshotJob, ok: bool) -> None:
        """The shell reports the job's end; a failed one is due again at the next threshold."""
        self._writing = None
        if ok:
            self.snapshot_id = job.snapshot_id
