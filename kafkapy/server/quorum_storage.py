"""What a Raft voter makes durable: Kafka's `quorum-state` file and the log of
`__cluster_metadata`-0, both in the metadata partition's directory.

Every method here blocks on the disk (writes and fsyncs): the shell calls them from a
worker thread, one Output at a time, and the core waits for each to finish.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from ..log.config import LogConfig
from ..log.partition import PartitionLog, fsync_directory
from ..raft.log import BatchBoundaryError, RaftLog
from ..raft.messages import Entry
from ..raft.output import Append, LogOp, QuorumState, Truncate
from ..raft.wire import decode_batches, encode_batches

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
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            f.write(json.dumps(data, separators=(",", ":")))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fsync_directory(self.path.parent)


class RaftStorage:
    """The voter's quorum state and metadata log. `leaders` (epoch -> leader id) is what
    the LeaderChangeMessages of the log say, which control entries are written with."""

    def __init__(self, directory: Path, voters: Sequence[int], now_ms: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.voters = tuple(voters)
        self.state_file = QuorumStateFile(directory, voters)
        self.log = PartitionLog.open(directory, LogConfig(), now_ms)
        self.leaders: dict[int, int] = {}

    def load(self) -> tuple[QuorumState, RaftLog]:
        """What the core starts from: the persisted state and the log as written."""
        batches: list[tuple[Entry, ...]] = []
        for _, batch in self.log.iter_batches(self.log.log_start_offset):
            batches.extend(decode_batches(batch, self.leaders)[1])
        return self.state_file.read(), RaftLog(batches, self.log.log_start_offset)

    def persist(self, state: QuorumState | None, ops: Sequence[LogOp], now_ms: int) -> None:
        """Makes an Output's state and log operations durable, in that order."""
        if state is not None:
            self.state_file.write(state)
        if not ops:
            return
        for op in ops:
            match op:
                case Truncate():
                    self._truncate(op.offset)
                case Append():
                    self._append(op, now_ms)
                case _:
                    # The shell does not take snapshots yet, so the core never asks for these.
                    raise NotImplementedError(f"storing {type(op).__name__} is not implemented")
        self.log.flush(now_ms)

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
