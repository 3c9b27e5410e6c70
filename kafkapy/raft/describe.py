"""What DescribeQuorum (KIP-595) reports of a quorum, read from a leader's RaftCore or
from the one-voter log, without changing either.

The core keeps its times in the monotonic milliseconds of the shell's clock; Kafka
reports wall-clock timestamps. A time is carried over as "now on the wall clock, less
how long ago it was on the monotonic clock", so it is exact as an age and as right as
the wall clock is now.

The core does not keep Kafka's lastCaughtUpTimestamp (the latest time a follower had
fetched up to the leader's end offset of its previous fetch). What its public state
shows is whether the follower's last fetch reached the leader's current end offset:
then it was caught up at that fetch, and that fetch's time is reported; otherwise the
time is unknown and reported as -1, which Kafka's tools show as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .output import Role

if TYPE_CHECKING:
    from .core import RaftCore

UNKNOWN = -1


@dataclass(frozen=True)
class ReplicaDescription:
    replica_id: int
    log_end_offset: int
    last_fetch_timestamp: int
    last_caught_up_timestamp: int


@dataclass(frozen=True)
class QuorumDescription:
    leader_id: int
    leader_epoch: int
    high_watermark: int
    voters: tuple[ReplicaDescription, ...]
    observers: tuple[ReplicaDescription, ...]


def _wall(monotonic_ms: int, now_monotonic_ms: int, now_wall_ms: int) -> int:
    return UNKNOWN if monotonic_ms < 0 else now_wall_ms - (now_monotonic_ms - monotonic_ms)


def describe_leader(core: RaftCore, now_monotonic_ms: int, now_wall_ms: int) -> QuorumDescription | None:
    """The quorum as its leader sees it; None when this core is not the leader (Kafka
    answers NOT_LEADER_OR_FOLLOWER then: only the leader knows where the others are)."""
    if core.role is not Role.LEADER:
        return None
    leader_end = core.log.end_offset

    def replica(replica_id: int) -> ReplicaDescription:
        if replica_id == core.node_id:
            # As Kafka: the leader has always just fetched and is always caught up.
            return ReplicaDescription(replica_id, leader_end, now_wall_ms, now_wall_ms)
        progress = core.replicas.progress.get(replica_id)
        if progress is None:
            return ReplicaDescription(replica_id, UNKNOWN, UNKNOWN, UNKNOWN)
        last_fetch = _wall(progress.last_fetch_ms, now_monotonic_ms, now_wall_ms)
        caught_up = last_fetch if progress.end_offset >= leader_end else UNKNOWN
        return ReplicaDescription(replica_id, progress.end_offset, last_fetch, caught_up)

    observers = sorted(set(core.replicas.progress) - core.voters - {core.node_id})
    return QuorumDescription(
        leader_id=core.node_id, leader_epoch=core.epoch,
        high_watermark=core.high_watermark if core.high_watermark is not None else UNKNOWN,
        voters=tuple(replica(v) for v in sorted(core.voters)),
        observers=tuple(replica(o) for o in observers),
    )


def describe_single_voter(node_id: int, epoch: int, end_offset: int, high_watermark: int,
                          now_wall_ms: int) -> QuorumDescription:
    """A quorum of one: the node leads it and is its only voter."""
    me = ReplicaDescription(node_id, end_offset, now_wall_ms, now_wall_ms)
    return QuorumDescription(node_id, epoch, high_watermark, (me,), ())
