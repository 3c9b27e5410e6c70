"""Keeps the current image: loads it on start from the newest snapshot and the log after
it, commits the controller's records through the quorum, tells listeners of each new
image, and says when a new snapshot is due (KIP-630).

Every node keeps its own snapshots, of a single voter's log or of a cluster's, voter or
observer, and they are taken the same way: deciding is sans-IO (`snapshot_due` takes the
time); the quorum serialises the job's image and writes the file in a worker thread
(`write_snapshot`). Images are immutable, so the job reads its image while the event
loop goes on applying records. A cluster member that fetches the leader's snapshot
replaces its image with it (`install_snapshot`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..raft.local import Appended, LocalQuorum
from ..raft.output import CommitListener
from ..raft.snapshot import Snapshot, SnapshotId
from .image import MetadataImage
from .records import (
    decode_record,
    encode_record,
)

if TYPE_CHECKING:
    from ..raft.describe import QuorumDescription

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
    def snapshot_id_at(self, end_offset: int) -> SnapshotId | None:
        """The id of a snapshot of the committed records below end_offset (its epoch is the
        last one's); None when the quorum cannot say now (stopped, or a new leader that does
        not know its high watermark yet)."""
        ...
    async def take_snapshot(self, snapshot_id: SnapshotId, values: Callable[[], Iterable[bytes]],
                            last_contained_log_timestamp: int) -> bool:
        """Writes the snapshot, calling `values` in a worker thread; False if it cannot be kept
        (a newer snapshot came first, or the quorum stopped)."""
        ...
    async def clean_log(self, now_ms: int) -> bool:
        """Deletes the log below the oldest snapshot still kept, as metadata.max.retention.* allow."""
        ...


class MetadataManager:
    def __init__(self, quorum: MetadataQuorum, policy: SnapshotPolicy | None = None) -> None:
        self.quorum = quorum
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
        """A single node's start: loads the newest valid snapshot, then replays the committed
        records after it (listeners are not told). A cluster member's quorum does the same
        as it starts, through `install_snapshot` and `apply_committed`."""
        store = self.quorum
        assert isinstance(store, LocalQuorum), "a Raft quorum loads its own snapshot and log"
        snapshot = store.latest_snapshot()
        if snapshot is not None:
            self.install_snapshot(snapshot)
        image = self.image
        records: list[Any] = []
        last = image.offset
        for batch in store.committed_batches(self.snapshot_id.offset if self.snapshot_id else 0):
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

    def install_snapshot(self, snapshot: Snapshot) -> None:
        """Replaces the image by a snapshot's: this node's newest on start, or the leader's
        when this node's log fell behind the leader's log start. Listeners are told as when
        records commit, so that topics appear and disappear on this node as they did."""
        old = self.image
        self.image = MetadataImage().apply((decode_record(v) for v in snapshot.values), snapshot.id.offset - 1)
        self.snapshot_id = snapshot.id
        self.bytes_since_snapshot = 0
        self._last_timestamp = snapshot.last_contained_log_timestamp
        for listener in self.listeners:
            listener(old, self.image)

    # Snapshots

    async def clean_log(self, now_ms: int) -> bool:
        """Deletes the metadata log below the oldest snapshot still kept, as retention allows."""
        return await self.quorum.clean_log(now_ms)

    def snapshot_due(self, now_ms: int) -> SnapshotJob | None:
        """A snapshot of the current image to write now, or None. The byte and time
        counters restart when a job is handed out; one job at a time."""
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
        snapshot_id = self.quorum.snapshot_id_at(end_offset)
        if snapshot_id is None:
            return None
        self.bytes_since_snapshot = 0
        self._last_snapshot_ms = now_ms
        self._writing = SnapshotJob(self.image, snapshot_id, self._last_timestamp)
        return self._writing

    async def write_snapshot(self, job: SnapshotJob) -> bool:
        """Writes the job's snapshot through the quorum, its image serialised in a worker
        thread. False if the quorum could not keep it; a job that fails is due again at the
        next threshold."""
        written = False
        try:
            written = await self.quorum.take_snapshot(
                job.snapshot_id, lambda: (encode_record(r) for r in job.image.to_records()), job.last_contained_log_timestamp,
            )
        finally:
            self._writing = None
            if written and (self.snapshot_id is None or job.snapshot_id.offset > self.snapshot_id.offset):
                self.snapshot_id = job.snapshot_id
        return written
