"""The leader's view of the other replicas, as Kafka's LeaderState keeps it: how far each
has fetched (which moves the high watermark), which voters fetched since the last
check-quorum, and which voters have yet to hear of the leader's epoch."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


@dataclass
class ReplicaProgress:
    """The leader's view of one replica: where it has fetched to, and when it last did."""

    end_offset: int = -1
    last_fetch_ms: int = -1


class Replicas:
    def __init__(self, node_id: int, voters: Collection[int]) -> None:
        self.node_id = node_id
        self.voters = frozenset(voters)
        self.progress: dict[int, ReplicaProgress] = {}
        self.fetched_since_check: set[int] = set()
        self.unannounced: set[int] = set()

    def start_epoch(self) -> None:
        """A new leadership: nothing known of the others, and none of them told yet."""
        others = self.voters - {self.node_id}
        self.progress = {r: ReplicaProgress() for r in others}
        self.fetched_since_check.clear()
        self.unannounced = set(others)

    def clear(self) -> None:
        self.progress.clear()
        self.fetched_since_check.clear()
        self.unannounced.clear()

    def heard_from(self, now: int, replica: int) -> None:
        """A fetch (or snapshot fetch) came in: the replica is alive and knows the epoch."""
        self.progress.setdefault(replica, ReplicaProgress()).last_fetch_ms = now
        if replica in self.voters:
            self.fetched_since_check.add(replica)
            self.unannounced.discard(replica)

    def fetched_to(self, replica: int, end_offset: int) -> None:
        """The replica's log matches the leader's up to end_offset (the fetch was validated)."""
        self.progress.setdefault(replica, ReplicaProgress()).end_offset = end_offset

    def majority_end_offset(self, own_end_offset: int, majority: int) -> int:
        """The largest offset that a majority of voters (this one included) has reached."""
        ends = sorted([own_end_offset] + [self.progress[v].end_offset for v in self.voters if v != self.node_id],
                      reverse=True)
        return ends[majority - 1]

    def check_quorum(self, majority: int) -> bool:
        """Whether a majority fetched since the last check (which starts a new period)."""
        if len(self.fetched_since_check | {self.node_id}) < majority:
            return False
        self.fetched_since_check.clear()
        return True

    def most_caught_up_first(self) -> tuple[int, ...]:
        """The other voters, the most caught-up first: the best successors of a leader resigning."""
        others = self.voters - {self.node_id}
        return tuple(sorted(others, key=lambda r: -self.progress.get(r, ReplicaProgress()).end_offset))
