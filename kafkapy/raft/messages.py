"""The messages the Raft core exchanges, one class per KIP-595 request and response.

They carry the fields of Kafka's Vote, BeginQuorumEpoch, EndQuorumEpoch and Fetch
messages that the protocol needs, without the topic/partition nesting of the wire
form: the I/O shell turns them into kio's generated messages and back. Every request
has a `correlation` that its response echoes, so the core can tell a late answer to
an old request from the answer it is waiting for.
"""

from __future__ import annotations

from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from .output import SnapshotId


@dataclass(frozen=True, slots=True)
class Entry:
    """One record of the replicated log. Control entries (a leader's LeaderChangeMessage)
    are replicated and committed like any other but never handed to the state machine."""

    epoch: int
    value: bytes
    control: bool = False


@dataclass(frozen=True, slots=True)
class VoteRequest:
    correlation: int
    epoch: int
    """The epoch the candidate stands in (for a pre-vote: the epoch it would stand in)."""
    candidate_id: int
    last_epoch: int
    last_offset: int
    """The candidate's log end offset."""
    pre_vote: bool


@dataclass(frozen=True, slots=True)
class VoteResponse:
    correlation: int
    error: ErrorCode
    epoch: int
    leader_id: int
    granted: bool
    pre_vote: bool


@dataclass(frozen=True, slots=True)
class BeginQuorumEpochRequest:
    correlation: int
    epoch: int
    leader_id: int


@dataclass(frozen=True, slots=True)
class BeginQuorumEpochResponse:
    correlation: int
    error: ErrorCode
    epoch: int
    leader_id: int


@dataclass(frozen=True, slots=True)
class EndQuorumEpochRequest:
    correlation: int
    epoch: int
    leader_id: int
    preferred_successors: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class EndQuorumEpochResponse:
    correlation: int
    error: ErrorCode
    epoch: int
    leader_id: int


@dataclass(frozen=True, slots=True)
class FetchRequest:
    correlation: int
    epoch: int
    replica_id: int
    fetch_offset: int
    last_fetched_epoch: int
    max_wait_ms: int
    high_watermark: int = -1
    """The high watermark the replica knows (-1: none), as Fetch v18 sends it (KIP-1166):
    a leader that knows a higher one answers at once instead of parking the fetch."""


@dataclass(frozen=True, slots=True)
class DivergingEpoch:
    """The leader's end offset for the largest epoch not above the follower's last fetched
    epoch: the follower truncates to it (KIP-595's diverging epoch in the Fetch response)."""

    epoch: int
    end_offset: int


@dataclass(frozen=True, slots=True)
class FetchResponse:
    correlation: int
    error: ErrorCode
    epoch: int
    leader_id: int
    high_watermark: int
    log_start_offset: int
    base_offset: int
    batches: tuple[tuple[Entry, ...], ...] = ()
    """The leader's batches from base_offset on, each whole, as the leader's log holds them."""
    diverging: DivergingEpoch | None = None
    snapshot_id: SnapshotId | None = None
    """Set when the fetch offset is below the leader's log start: fetch this snapshot first."""


@dataclass(frozen=True, slots=True)
class FetchSnapshotRequest:
    correlation: int
    epoch: int
    replica_id: int
    snapshot_id: SnapshotId
    position: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class FetchSnapshotResponse:
    correlation: int
    error: ErrorCode
    epoch: int
    leader_id: int
    snapshot_id: SnapshotId
    size: int
    position: int
    data: bytes = b""


Request = VoteRequest | BeginQuorumEpochRequest | EndQuorumEpochRequest | FetchRequest | FetchSnapshotRequest
Response = VoteResponse | BeginQuorumEpochResponse | EndQuorumEpochResponse | FetchResponse | FetchSnapshotResponse
Message = Request | Response
