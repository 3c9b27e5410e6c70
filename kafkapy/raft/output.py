"""What the Raft core is configured with and what it returns: the quorum state it
persists, the log operations and snapshots the shell makes durable, and the Output
that carries them with the messages to send and the records committed."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    # The messages module builds on this one; a single node, which has no use for it, does not load it.
    from .messages import Entry, Message


NO_LEADER = -1


class SnapshotId(NamedTuple):
    """Kafka's OffsetAndEpoch naming a snapshot (KIP-630): it holds the state up to, not
    including, offset; epoch is the epoch of the last record it covers. Ordered by offset."""

    offset: int
    epoch: int


class Role(enum.Enum):
    UNATTACHED = "unattached"
    PROSPECTIVE = "prospective"
    CANDIDATE = "candidate"
    LEADER = "leader"
    FOLLOWER = "follower"
    RESIGNED = "resigned"


@dataclass(frozen=True)
class RaftConfig:
    """Timeouts with the defaults of Kafka's `controller.quorum.*` keys."""

    election_timeout_ms: int = 1000
    fetch_timeout_ms: int = 2000
    election_backoff_max_ms: int = 1000
    request_timeout_ms: int = 2000
    retry_backoff_ms: int = 20
    fetch_max_wait_ms: int = 500
    max_fetch_entries: int = 4096
    max_fetch_bytes: int = 8 * 1024 * 1024
    """A fetch response stops at the batch boundary before either limit (but holds one batch)."""
    fetch_snapshot_max_bytes: int = 1 << 20


@dataclass(frozen=True)
class QuorumState:
    """What a voter persists before it acts on it (Kafka's `quorum-state` file)."""

    epoch: int = 0
    leader_id: int = NO_LEADER
    voted_id: int = NO_LEADER


@dataclass(frozen=True)
class Truncate:
    offset: int


@dataclass(frozen=True)
class Append:
    """One batch, to be stored as one record batch: truncations only fall between batches."""

    base_offset: int
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class Snapshot:
    """The state machine's state up to snapshot_id.end_offset, as bytes the core does not read."""

    snapshot_id: SnapshotId
    data: bytes


@dataclass(frozen=True)
class SaveSnapshot:
    """Write this snapshot durably (Kafka's `<end offset>-<epoch>.checkpoint`)."""

    snapshot: Snapshot


@dataclass(frozen=True)
class DeleteBefore:
    """The log may now start at offset: a durable snapshot covers what is below it."""

    offset: int


@dataclass(frozen=True)
class InstallSnapshot:
    """A follower fetched the leader's snapshot: write it, and replace the whole log by an
    empty one starting at its end. The state machine loads its state from it."""

    snapshot: Snapshot


LogOp = Truncate | Append | SaveSnapshot | DeleteBefore | InstallSnapshot


@dataclass
class Output:
    state: QuorumState | None = None
    log: list[LogOp] = field(default_factory=list)
    send: list[tuple[int, Message]] = field(default_factory=list)
    committed: list[tuple[int, bytes]] = field(default_factory=list)
    high_watermark: int | None = None


class NotLeader(Exception):
    def __init__(self, epoch: int, leader_id: int) -> None:
        super().__init__(f"not the leader of epoch {epoch} (leader: {leader_id})")
        self.epoch = epoch
        self.leader_id = leader_id


CommitListener = Callable[[list[tuple[int, bytes]], int, int], None]
"""How a quorum's shell hands committed records to its state machine, once per batch:
(records as (offset, value), wall-clock time, bytes they take)."""
