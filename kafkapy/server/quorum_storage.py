"""What a Raft voter makes durable: Kafka's `quorum-state` file, the log of
`__cluster_metadata`-0 and its KIP-630 snapshots, all in the metadata partition's directory.

Every method here blocks on the disk (writes and fsyncs): the shell calls them from a
worker thread, one Output at a time, and the core waits for each to finish.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from ..log.config import LogConfig
from ..log.files import replace_file
from ..log.partition import PartitionLog
from ..raft.local import SnapshotUnusable, persisting
from ..raft.log import BatchBoundaryError, RaftLog
from ..raft.messages import Entry
from ..raft.output import Append, DeleteBefore, InstallSnapshot, LogOp, QuorumState, SaveSnapshot, Snapshot, Truncate
from ..raft.snapshot import (
    CorruptSnapshot,
    decode_snapshot,
    delete_snapshots_before,
    list_snapshots,
    remove_stray_files,
    snapshot_path,
    write_snapshot_file,
)
from ..raft.snapshot import Snapshot as SnapshotFile
from ..raft.wire import decode_batches, encode_batches

log = logging.getLogger(__name__)

QUORUM_STATE_FILE = "quorum-state"
_QUORUM_STATE_VERSION = 0
"""QuorumStateData v0: what Kafka writes with a static voter set (kraft.version 0)."""


class QuorumStateFile:
    """Kafka's FileQuorumStateStore: one line of JSON, QuorumStateData plus its `data_version`."""

    def __init__(self, directory: Path, voters: Sequence[int]) -> None:
        self.path = directory / QUORUM_STATE_FILE
        self.voters = sorted(voters)

    def read(self) -> QuorumState:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return QuorumState()
        if data.get("data_version") not in (0, 1):
            raise ValueError(f"{self.path}: data_version {data.get('data_version')} is not 0 or 1")
        # Kafka's default epoch is -1 (never written); the core starts from 0.
        return QuorumState(max(data["leaderEpoch"], 0), data["leaderId"], data["votedId"])

    def write(self, state: QuorumState) -> None:
        """Written whole to a temporary file, synced, then renamed over the old one, as
        Kafka does: a crash leaves the old state or the new, never a torn one."""
        data = {
            "clusterId": "", "leaderId": state.leader_id, "leaderEpoch": state.epoch, "votedId": state.voted_id,
            "appliedOffset": 0, "currentVoters": [{"voterId": v} for v in self.voters],
            "data_version": _QUORUM_STATE_VERSION,
        }
        replace_file(self.path, json.dumps(data, separators=(",", ":")).encode())


class RaftStorage:
    """The voter's quorum state, metadata log and KIP-630 snapshots. `leaders` (epoch ->
    leader id) is what the LeaderChangeMessages of the log say, which control entries are
    written with.

    A snapshot's bytes in the core (`Snapshot.data`) are the exact content of its
    `.checkpoint` file, so the leader sends its file as Kafka does and a follower writes
    what it fetched as it came."""

    def __init__(self, directory: Path, voters: Sequence[int], now_ms: int, log_config: LogConfig | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.voters = tuple(voters)
        self.state_file = QuorumStateFile(directory, voters)
        self.log = PartitionLog.open(directory, log_config or LogConfig(), now_ms)
        self.leaders: dict[int, int] = {}

    def load(self, now_ms: int) -> tuple[QuorumState, RaftLog, Snapshot | None]:
        """What the core starts from: the persisted state, the newest valid snapshot, and the
        log from that snapshot's end (epoch included) as written."""
        snapshot = self._newest_snapshot()
        start, start_epoch = self.log.log_start_offset, 0
        if snapshot is not None:
            start, start_epoch = snapshot.snapshot_id
            latest = self.log.epochs.latest_epoch if self.log.next_offset > self.log.log_start_offset else -1
            if (start_epoch, start) > (latest, self.log.next_offset) or start > self.log.next_offset:
                # As Kafka: a follower that crashed after writing a fetched snapshot but before
                # emptying its log. Nothing of that log can follow the snapshot.
                self.log.truncate_fully_and_start_at(start, now_ms)
            elif start > self.log.log_start_offset:
                # The snapshot covers what lies below its end: the log starts there (it may have
                # crashed before doing so, or kept segments that straddle it).
                self._delete_before(start, now_ms)
        # As Kafka on start: snapshots older than the log start are of no more use.
        delete_snapshots_before(self.directory, self.log.log_start_offset)
        batches: list[tuple[Entry, ...]] = []
        for header, batch in self.log.iter_batches(start):
            if header.base_offset < start:
                raise BatchBoundaryError(f"the log starts at {start}, inside the batch at {header.base_offset}")
            batches.extend(decode_batches(batch, self.leaders)[1])
        return self.state_file.read(), RaftLog(batches, start, start_epoch), snapshot

    def _newest_snapshot(self) -> Snapshot | None:
        """The newest snapshot that reads back whole and that the log can continue from; a
        corrupt one is skipped for the one before it, as LocalQuorum does."""
        remove_stray_files(self.directory)
        for snapshot_id in reversed(list_snapshots(self.directory)):
            if snapshot_id.offset < self.log.log_start_offset:
                break  # what lies between it and the log start is gone
            try:
                data = snapshot_path(self.directory, snapshot_id).read_bytes()
                decode_snapshot(snapshot_id, data)
            except (CorruptSnapshot, OSError) as e:
                log.error("Snapshot %s cannot be read (%s); falling back to an older one", snapshot_id, e)
                continue
            return Snapshot(snapshot_id, data)
        if self.log.log_start_offset > 0:
            raise SnapshotUnusable(f"the metadata log starts at {self.log.log_start_offset} and no valid snapshot covers it")
        return None

    def persist(self, state: QuorumState | None, ops: Sequence[LogOp], now_ms: int) -> list[SnapshotFile]:
        """Makes an Output's state and log operations durable, in that order. Returns the
        snapshots installed from the leader, read back for the state machine to load.
        Raises MetadataLogFailure, naming the file, on an I/O error: nothing here may be
        tried again (the caller halts)."""
        if state is not None:
            with persisting(f"writing the quorum state {self.state_file.path}"):
                self.state_file.write(state)
        installed: list[SnapshotFile] = []
        for op in ops:
            match op:
                case Truncate():
                    with persisting(f"truncating the metadata log {self.log.active.log_path}"):
                        self._truncate(op.offset)
                case Append():
                    with persisting(f"writing the metadata log {self.log.active.log_path}"):
                        self._append(op, now_ms)
                case SaveSnapshot():
                    with persisting(f"writing the metadata snapshot {snapshot_path(self.directory, op.snapshot.snapshot_id)}"):
                        write_snapshot_file(self.directory, op.snapshot.snapshot_id, [op.snapshot.data])
                case DeleteBefore():
                    with persisting(f"deleting the metadata log below offset {op.offset} in {self.directory}"):
                        self._delete_before(op.offset, now_ms)
                case InstallSnapshot():
                    with persisting(f"installing the metadata snapshot {snapshot_path(self.directory, op.snapshot.snapshot_id)}"):
                        installed.append(self._install(op.snapshot, now_ms))
        if ops:
            with persisting(f"fsyncing the metadata log {self.log.active.log_path}"):
                self.log.flush(now_ms)
        return installed

    def _install(self, snapshot: Snapshot, now_ms: int) -> SnapshotFile:
        """The file first, then the log emptied to start at its end: a crash in between
        leaves a snapshot past the log end, which load() completes."""
        snapshot_id = snapshot.snapshot_id
        contents = decode_snapshot(snapshot_id, snapshot.data)  # refused whole before anything is written
        write_snapshot_file(self.directory, snapshot_id, [snapshot.data])
        self.log.truncate_fully_and_start_at(snapshot_id.offset, now_ms)
        delete_snapshots_before(self.directory, snapshot_id.offset)
        return contents

    def _delete_before(self, offset: int, now_ms: int) -> None:
        """The log starts at offset (a snapshot's end, a batch boundary); the segments wholly
        below it go, and so do the snapshots older than it."""
        # PartitionLog moves its start only up to its high watermark, which this log does not
        # keep (the core knows what is committed, and snapshots only hold committed records).
        self.log.high_watermark = self.log.next_offset
        self.log.delete_records_before(offset)
        self.log.delete_segments_below_log_start(now_ms)
        self.log.remove_retired(now_ms, force=True)
        delete_snapshots_before(self.directory, offset)

    def _append(self, op: Append, now_ms: int) -> None:
        """One Append is one batch of the core's log, and one record batch here."""
        if op.base_offset != self.log.next_offset:
            raise ValueError(f"append at {op.base_offset}, but the log ends at {self.log.next_offset}")
        data = encode_batches(op.base_offset, [op.entries], leaders=self.leaders, voters=self.voters, timestamp=now_ms)
        # PartitionLog stamps its leader epoch on what it appends: the batch's own.
        self.log.leader_epoch = op.entries[0].epoch
        self.log.append(data, now_ms, from_client=False)

    def _truncate(self, offset: int) -> None:
        """The core truncates only at batch boundaries, which are record batch boundaries
        here, so PartitionLog drops whole batches and nothing below offset is rewritten
        (a crash in between could lose committed entries). A truncation inside a batch
        means the two disagree: refused, before anything changes."""
        for header, _ in self.log.iter_batches(offset):
            if header.base_offset < offset:
                raise BatchBoundaryError(f"truncation to {offset} inside the batch [{header.base_offset}, {header.next_offset})")
            break
        self.log.truncate_to(offset)

    def close(self) -> None:
        self.log.close()

    def abandon(self) -> None:
        """Closes the files as they are, after a failure: nothing more written or fsynced."""
        self.log.abandon()
