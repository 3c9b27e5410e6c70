"""How far the metadata log's start may move, as Kafka's KafkaMetadataLog.maybeClean decides
it from metadata.max.retention.bytes and metadata.max.retention.ms.

The log start only ever moves to the end of a snapshot kept on disk, and never to the
newest one's alone: the newest snapshot plus the log after it always rebuild the state.
One step at a time, because each step shrinks the log and drops the older snapshots,
which changes the next verdict; the caller moves the log start and asks again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .output import SnapshotId
from .snapshot import CorruptSnapshot, list_snapshots, read_last_contained_log_timestamp, snapshot_path


@dataclass(frozen=True)
class MetadataRetention:
    """Below 0, that limit is off."""

    max_bytes: int = -1
    max_ms: int = -1

    def next_log_start(self, directory: Path, log_size: int, now_ms: int) -> SnapshotId | None:
        """The snapshot the log may start at now, one past the oldest, or None: the log and
        all snapshots together exceed max_bytes, or the oldest snapshot's last record is
        older than max_ms. Blocking (it reads the snapshots' sizes and headers)."""
        snapshots = list_snapshots(directory)
        if len(snapshots) < 2:
            return None
        oldest, following = snapshots[0], snapshots[1]
        if self.max_bytes >= 0:
            total = log_size + sum(snapshot_path(directory, s).stat().st_size for s in snapshots)
            if total > self.max_bytes:
                return following
        if self.max_ms >= 0:
            try:
                timestamp = read_last_contained_log_timestamp(snapshot_path(directory, oldest))
            except (CorruptSnapshot, OSError):
                return None
            if now_ms - timestamp > self.max_ms:
                return following
        return None
