"""One hosted partition's replication state, sans-IO, as Kafka's Partition keeps it.

As leader it tracks each follower's fetch position and when it was last caught up,
moves the high watermark to the lowest log end offset of the in-sync replicas, and
proposes ISR changes: a follower that has not caught up for `replica.lag.time.max.ms`
leaves, a follower that reached the high watermark within the leader's epoch joins.
A proposal is only that: the ISR changes when the metadata image says so. As follower
it takes the high watermark from the leader's fetch responses.

Time comes in as arguments; nothing here does I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

UNKNOWN_OFFSET = -1


class Role(enum.Enum):
    LEADER = "leader"
    FOLLOWER = "follower"


@dataclass(frozen=True)
class Registration:
    """What the metadata image says of the partition."""

    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int


@dataclass(frozen=True)
class IsrProposal:
    """An ISR the leader asks the controller for, based on the epochs it knows."""

    leader_epoch: int
    partition_epoch: int
    new_isr: tuple[int, ...]


class RoleChange(enum.Enum):
    NONE = "none"  # same leader epoch: at most the ISR changed
    BECAME_LEADER = "became leader"
    BECAME_FOLLOWER = "became follower"


@dataclass
class FollowerState:
    """The leader's view of one follower (Kafka's ReplicaState)."""

    log_end_offset: int = UNKNOWN_OFFSET
    last_caught_up_ms: int = 0
    last_fetch_ms: int = 0
    last_fetch_leader_end: int = UNKNOWN_OFFSET
    broker_epoch: int = -1

    def caught_up(self, leader_end: int, now_ms: int, lag_time_max_ms: int) -> bool:
        return self.log_end_offset == leader_end or now_ms - self.last_caught_up_ms <= lag_time_max_ms


class Partition:
    def __init__(self, replica_id: int, lag_time_max_ms: int, high_watermark: int = 0) -> None:
        self.replica_id = replica_id
        self.lag_time_max_ms = lag_time_max_ms
        self.role = Role.FOLLOWER
        self.leader = -1
        self.leader_epoch = -1
        self.partition_epoch = -1
        self.replicas: tuple[int, ...] = ()
        self.isr: tuple[int, ...] = ()
        self.high_watermark = high_watermark
        # Where this leader's epoch began in its log: a follower joins the ISR only past it.
        self.leader_epoch_start_offset = UNKNOWN_OFFSET
        self.followers: dict[int, FollowerState] = {}
        self.pending: IsrProposal | None = None

    # Following the metadata image

    def apply(self, registration: Registration, log_end_offset: int, now_ms: int) -> RoleChange:
        """Takes the image's registration. A new leader epoch makes this replica leader or
        follower afresh; the same epoch only brings the ISR (and partition epoch) along."""
        r = registration
        if r.leader_epoch < self.leader_epoch or (r.leader_epoch == self.leader_epoch and r.partition_epoch <= self.partition_epoch):
            return RoleChange.NONE
        same_epoch = r.leader_epoch == self.leader_epoch
        self.replicas, self.isr, self.partition_epoch = r.replicas, r.isr, r.partition_epoch
        # Whatever was in flight was based on an older partition epoch: the controller refuses it.
        self.pending = None
        self.followers = {
            replica: self.followers.get(replica, FollowerState()) for replica in r.replicas if replica != self.replica_id
        }
        if same_epoch:
            return RoleChange.NONE
        self.leader, self.leader_epoch = r.leader, r.leader_epoch
        if r.leader != self.replica_id:
            self.role = Role.FOLLOWER
            self.leader_epoch_start_offset = UNKNOWN_OFFSET
            return RoleChange.BECAME_FOLLOWER
        self.role = Role.LEADER
        self.leader_epoch_start_offset = log_end_offset
        # As Kafka's makeLeader: in-sync followers count as caught up now, the others never were.
        self.followers = {
            replica: FollowerState(last_caught_up_ms=now_ms if replica in r.isr else 0)
            for replica in r.replicas if replica != self.replica_id
        }
        self.maybe_advance_high_watermark(log_end_offset, now_ms)
        return RoleChange.BECAME_LEADER

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    @property
    def maximal_isr(self) -> tuple[int, ...]:
        """The ISR as the high watermark must assume it: with a member being added already."""
        if self.pending is None:
            return self.isr
        return self.isr + tuple(r for r in self.pending.new_isr if r not in self.isr)

    # As leader

    def follower_fetched(
        self, replica_id: int, fetch_offset: int, leader_end: int, now_ms: int, broker_epoch: int = -1,
    ) -> bool:
        """A follower fetched from `fetch_offset`: it holds everything below. Returns False
        for a replica that is not one of the partition's (Kafka answers NOT_LEADER_OR_FOLLOWER)."""
        state = self.followers.get(replica_id)
        if state is None or not self.is_leader:
            return False
        if fetch_offset >= leader_end:
            state.last_caught_up_ms = max(state.last_caught_up_ms, now_ms)
        elif fetch_offset >= state.last_fetch_leader_end:
            # It reached where the leader ended at its previous fetch: caught up as of then.
            state.last_caught_up_ms = max(state.last_caught_up_ms, state.last_fetch_ms)
        state.log_end_offset = fetch_offset
        state.last_fetch_leader_end = leader_end
        state.last_fetch_ms = now_ms
        state.broker_epoch = broker_epoch
        return True

    def maybe_advance_high_watermark(self, leader_end: int, now_ms: int, ineligible: frozenset[int] = frozenset()) -> bool:
        """Moves the high watermark to the lowest log end offset among the maximal ISR and
        the eligible followers caught up enough to be joining it; never backwards. True if
        it moved. `ineligible` as for isr_expansion."""
        if not self.is_leader:
            return False
        candidate = leader_end
        maximal_isr = self.maximal_isr
        for replica, state in self.followers.items():
            waited_for = replica in maximal_isr or (
                replica not in ineligible and state.log_end_offset >= 0
                and state.caught_up(leader_end, now_ms, self.lag_time_max_ms))
            if waited_for and state.log_end_offset < candidate:
                candidate = max(state.log_end_offset, 0)
        if candidate > self.high_watermark:
            self.high_watermark = candidate
            return True
        return False

    def _may_join(self, state: FollowerState) -> bool:
        return (state.log_end_offset >= self.high_watermark and self.leader_epoch_start_offset != UNKNOWN_OFFSET
                and state.log_end_offset >= self.leader_epoch_start_offset)

    def isr_expansion(self, ineligible: frozenset[int] = frozenset()) -> IsrProposal | None:
        """An ISR with the followers that reached the high watermark within this leader's
        epoch, unless a proposal is in flight. `ineligible`: replicas the image shows fenced,
        shutting down, or registered under another broker epoch (KIP-903)."""
        if not self.is_leader or self.pending is not None:
            return None
        joining = tuple(
            r for r, state in self.followers.items()
            if r not in self.isr and r not in ineligible and self._may_join(state)
        )
        return self._propose(self.isr + joining) if joining else None

    def isr_shrink(self, leader_end: int, now_ms: int) -> IsrProposal | None:
        """An ISR without the followers not caught up for `replica.lag.time.max.ms`, unless
        a proposal is in flight; the leader always stays."""
        if not self.is_leader or self.pending is not None:
            return None
        lagging = {
            r for r in self.isr
            if r != self.replica_id and (state := self.followers.get(r)) is not None
            and not state.caught_up(leader_end, now_ms, self.lag_time_max_ms)
        }
        return self._propose(tuple(r for r in self.isr if r not in lagging)) if lagging else None

    def _propose(self, new_isr: tuple[int, ...]) -> IsrProposal:
        self.pending = IsrProposal(self.leader_epoch, self.partition_epoch, new_isr)
        return self.pending

    def proposal_failed(self, proposal: IsrProposal) -> None:
        """The controller refused the proposal or could not be reached: a later check may propose again."""
        if self.pending == proposal:
            self.pending = None

    def under_min_isr(self, min_insync_replicas: int) -> bool:
        return len(self.isr) < min_insync_replicas

    # As follower

    def leader_high_watermark(self, leader_high_watermark: int, log_end_offset: int) -> bool:
        """A fetch response's high watermark, capped by what this follower holds. True if it moved."""
        new = min(leader_high_watermark, log_end_offset)
        if self.is_leader or new == self.high_watermark:
            return False
        self.high_watermark = new
        return True

    def truncated(self, log_end_offset: int) -> None:
        self.high_watermark = min(self.high_watermark, log_end_offset)
