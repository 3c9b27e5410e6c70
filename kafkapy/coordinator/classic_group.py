"""A classic group and its members: state, membership and protocol bookkeeping.

Pure data and rules, no timers and no responses: the group coordinator drives the
transitions and answers the requests parked here (as Waiters).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from kio.schema.consumer_protocol_subscription.v0.data import ConsumerProtocolSubscription
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader
from kio.serial.errors import SerialError

CONSUMER_PROTOCOL_TYPE = "consumer"
CLASSIC_GROUP_TYPE = "classic"

# (protocol name, metadata) pairs in the member's order of preference.
Protocols = tuple[tuple[str, bytes], ...]


def protocol_names(protocols: Protocols) -> set[str]:
    return {name for name, _ in protocols}


class GroupError(Exception):
    """A request refused with a Kafka error code, and the message Kafka gives with it
    where a response carries one."""

    def __init__(self, code: ErrorCode, message: str | None = None) -> None:
        super().__init__(message or code.name)
        self.code = code
        self.message = message


class GroupState(enum.Enum):
    """Kafka's classic group states. A group is Dead once deleted: the coordinator drops
    it then, so no group it holds is ever Dead (Kafka keeps Dead groups only while
    unloading a partition, which a single coordinator never does)."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


_VALID_PREVIOUS_STATES: dict[GroupState, frozenset[GroupState]] = {
    GroupState.EMPTY: frozenset({GroupState.PREPARING_REBALANCE}),
    GroupState.PREPARING_REBALANCE: frozenset({GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY}),
    GroupState.COMPLETING_REBALANCE: frozenset({GroupState.PREPARING_REBALANCE}),
    GroupState.STABLE: frozenset({GroupState.COMPLETING_REBALANCE}),
    GroupState.DEAD: frozenset(GroupState),
}


@dataclass(frozen=True)
class Waiter:
    """A parked request: the shell's token and the request's version, which shapes the answer."""

    token: object
    version: int


@dataclass(eq=False)
class ClassicGroupMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: Protocols
    assignment: bytes = b""
    awaiting_join: Waiter | None = None
    awaiting_sync: Waiter | None = None
    # Set until the member's first join completes: a new member's session is not
    # kept alive by its parked JoinGroup.
    is_new: bool = False

    @property
    def is_static(self) -> bool:
        return self.group_instance_id is not None

    @property
    def protocol_names(self) -> set[str]:
        return protocol_names(self.protocols)

    def metadata(self, protocol_name: str) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol_name:
                return metadata
        raise ValueError(f"member {self.member_id} does not support protocol {protocol_name}")

    def has_satisfied_heartbeat(self) -> bool:
        if self.is_new:
            return False
        return self.awaiting_join is not None or self.awaiting_sync is not None

    def matches(self, protocols: Protocols) -> bool:
        return protocols == self.protocols

    def vote(self, candidates: set[str]) -> str:
        for name, _ in self.protocols:
            if name in candidates:
                return name
        raise ValueError(f"member {self.member_id} supports none of the candidate protocols")


class ClassicGroup:
    group_type = CLASSIC_GROUP_TYPE

    def __init__(
        self,
        group_id: str,
        state_timestamp_ms: int | None,
        *,
        state: GroupState = GroupState.EMPTY,
        generation_id: int = 0,
        protocol_type: str | None = None,
        protocol_name: str | None = None,
        leader_id: str | None = None,
    ) -> None:
        self.group_id = group_id
        self.state = state
        self.previous_state = GroupState.DEAD
        # None only for groups loaded from records written before Kafka stored the timestamp.
        self.state_timestamp_ms = state_timestamp_ms
        self.generation_id = generation_id
        self.protocol_type = protocol_type
        self.protocol_name = protocol_name
        self.leader_id = leader_id
        self.members: dict[str, ClassicGroupMember] = {}
        self.static_members: dict[str, str] = {}
        self.pending_join_members: set[str] = set()
        self.pending_sync_members: set[str] = set()
        self.subscribed_topics: set[str] | None = None
        # During the initial rebalance: a member joined since the delay was last extended.
        self.new_member_added = False

    def __repr__(self) -> str:
        return f"ClassicGroup({self.group_id!r}, {self.state.value}, generation={self.generation_id}, members={list(self.members)})"

    # State

    def is_in(self, *states: GroupState) -> bool:
        return self.state in states

    def is_empty(self) -> bool:
        return self.state is GroupState.EMPTY

    def is_simple(self) -> bool:
        """Created by an offset commit outside of any membership, and never joined: such a
        group has no record of its own."""
        return self.protocol_type is None and self.is_empty() and not self.pending_join_members

    def transition_to(self, target: GroupState, now_ms: int) -> None:
        if self.state not in _VALID_PREVIOUS_STATES[target]:
            raise RuntimeError(f"group {self.group_id} cannot go from {self.state.value} to {target.value}")
        self.previous_state = self.state
        self.state = target
        self.state_timestamp_ms = now_ms

    def can_rebalance(self) -> bool:
        return self.state in _VALID_PREVIOUS_STATES[GroupState.PREPARING_REBALANCE]

    def uses_consumer_protocol(self) -> bool:
        return self.protocol_type == CONSUMER_PROTOCOL_TYPE

    # Members

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id

    def add(self, member: ClassicGroupMember, waiter: Waiter | None = None) -> None:
        if member.group_instance_id is not None:
            if member.group_instance_id in self.static_members:
                raise RuntimeError(f"static member {member.group_instance_id} is already in group {self.group_id}")
            self.static_members[member.group_instance_id] = member.member_id
        if not self.members:
            self.protocol_type = member.protocol_type
        if member.protocol_type != self.protocol_type or not self.supports_protocols(member.protocol_type, member.protocol_names):
            raise RuntimeError(f"member {member.member_id} does not fit the protocols of group {self.group_id}")
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        member.awaiting_join = waiter
        self.pending_join_members.discard(member.member_id)

    def remove(self, member_id: str) -> None:
        """Removes a member or a pending member."""
        removed = self.members.pop(member_id, None)
        if removed is not None and removed.group_instance_id is not None:
            self.static_members.pop(removed.group_instance_id, None)
        if self.is_leader(member_id):
            self.leader_id = next(iter(self.members), None)
        self.pending_join_members.discard(member_id)
        self.pending_sync_members.discard(member_id)

    def update_member(
        self, member: ClassicGroupMember, protocols: Protocols, rebalance_timeout_ms: int, session_timeout_ms: int,
        waiter: Waiter | None,
    ) -> None:
        member.protocols = protocols
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.session_timeout_ms = session_timeout_ms
        member.awaiting_join = waiter

    def replace_static_member(self, group_instance_id: str, old_member_id: str, new_member_id: str) -> ClassicGroupMember:
        """Gives a static member a new member id; the caller has answered the old one's parked requests."""
        old = self.members.pop(old_member_id)
        new = ClassicGroupMember(
            new_member_id, old.group_instance_id, old.client_id, old.client_host, old.rebalance_timeout_ms,
            old.session_timeout_ms, old.protocol_type, old.protocols, old.assignment,
        )
        self.members[new_member_id] = new
        if self.is_leader(old_member_id):
            self.leader_id = new_member_id
        self.static_members[group_instance_id] = new_member_id
        return new

    def maybe_elect_new_joined_leader(self) -> bool:
        """Whether the group has a leader that rejoined, electing a rejoined member if the old one did not."""
        if self.leader_id is None:
            return False
        if self.members[self.leader_id].awaiting_join is not None:
            return True
        for member in self.members.values():
            if member.awaiting_join is not None:
                self.leader_id = member.member_id
                return True
        return False

    def add_pending_member(self, member_id: str) -> None:
        if member_id in self.members:
            raise RuntimeError(f"pending member {member_id} is already a member of group {self.group_id}")
        self.pending_join_members.add(member_id)

    def not_yet_rejoined_members(self) -> list[ClassicGroupMember]:
        return [m for m in self.members.values() if m.awaiting_join is None]

    def num_awaiting_join(self) -> int:
        return sum(1 for m in self.members.values() if m.awaiting_join is not None)

    def has_all_members_joined(self) -> bool:
        return self.num_awaiting_join() == len(self.members) and not self.pending_join_members

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    @staticmethod
    def generate_member_id(client_id: str, group_instance_id: str | None) -> str:
        return f"{group_instance_id if group_instance_id is not None else client_id}-{uuid.uuid4()}"

    def validate_member(self, member_id: str, group_instance_id: str | None) -> None:
        if group_instance_id is not None:
            existing = self.static_members.get(group_instance_id)
            if existing is None:
                raise GroupError(ErrorCode.unknown_member_id)
            if existing != member_id:
                raise GroupError(ErrorCode.fenced_instance_id)
        if member_id not in self.members:
            raise GroupError(ErrorCode.unknown_member_id)

    def accepts_joining_member(self, member_id: str, max_group_size: int) -> bool:
        if self.is_in(GroupState.EMPTY):
            return True
        member = self.members.get(member_id)
        if self.is_in(GroupState.PREPARING_REBALANCE):
            # Counting members that rejoined (not all members) lets a lowered max size
            # shrink the group, turning away the last ones to rejoin.
            return (member is not None and member.awaiting_join is not None) or self.num_awaiting_join() < max_group_size
        return member is not None or len(self.members) < max_group_size

    def validate_sync(
        self, member_id: str, group_instance_id: str | None, generation_id: int, protocol_type: str | None,
        protocol_name: str | None,
    ) -> None:
        self.validate_member(member_id, group_instance_id)
        if generation_id != self.generation_id:
            raise GroupError(ErrorCode.illegal_generation)
        if _inconsistent(protocol_type, self.protocol_type) or _inconsistent(protocol_name, self.protocol_name):
            raise GroupError(ErrorCode.inconsistent_group_protocol)

    # Protocols

    def _supported_by_all(self, protocol_name: str) -> bool:
        return all(protocol_name in m.protocol_names for m in self.members.values())

    def supports_protocols(self, protocol_type: str, names: set[str]) -> bool:
        if self.is_in(GroupState.EMPTY):
            return bool(protocol_type) and bool(names)
        return self.protocol_type == protocol_type and any(self._supported_by_all(name) for name in names)

    def select_protocol(self) -> str:
        """The protocol most members prefer among those all support (ties go to the earliest vote)."""
        if not self.members:
            raise RuntimeError(f"cannot select a protocol for empty group {self.group_id}")
        candidates = {name for member in self.members.values() for name in member.protocol_names if self._supported_by_all(name)}
        votes: dict[str, int] = {}
        for member in self.members.values():
            choice = member.vote(candidates)
            votes[choice] = votes.get(choice, 0) + 1
        return max(votes, key=lambda name: votes[name])

    def init_next_generation(self, now_ms: int) -> None:
        self.generation_id += 1
        self.protocol_name = self.select_protocol() if self.members else None
        self.subscribed_topics = self.compute_subscribed_topics()
        self.transition_to(GroupState.COMPLETING_REBALANCE if self.members else GroupState.EMPTY, now_ms)
        self.pending_sync_members.clear()

    def compute_subscribed_topics(self) -> set[str] | None:
        """Topics the consumers subscribe to; None when the group is not a consumer group or a
        subscription cannot be read."""
        if not self.uses_consumer_protocol():
            return None
        if not self.members:
            return set()
        if self.protocol_name is None:
            return None
        topics: set[str] = set()
        for member in self.members.values():
            subscription = decode_subscription(member.metadata(self.protocol_name))
            if subscription is None:
                return None
            topics.update(subscription)
        return topics

    def is_subscribed_to_topic(self, topic: str) -> bool:
        if self.subscribed_topics is None:
            return self.uses_consumer_protocol()
        return topic in self.subscribed_topics

    def group_assignment(self) -> dict[str, bytes]:
        return {member_id: member.assignment for member_id, member in self.members.items()}

    # Validation of the offset and admin APIs

    def validate_offset_commit(
        self, member_id: str, group_instance_id: str | None, generation_id: int, is_transactional: bool = False,
    ) -> None:
        if generation_id < 0 and self.is_in(GroupState.EMPTY):
            # An admin client or a consumer that assigns its partitions itself: commits
            # without membership are only taken while the group is empty.
            return
        if generation_id >= 0 or member_id or group_instance_id is not None:
            self.validate_member(member_id, group_instance_id)
            if generation_id != self.generation_id:
                raise GroupError(ErrorCode.illegal_generation)
        elif not is_transactional:
            # A commit naming no member needs the group empty; TxnOffsetCommit before v3
            # names none, and is taken anyway.
            raise GroupError(ErrorCode.unknown_member_id)
        if not is_transactional and self.is_in(GroupState.COMPLETING_REBALANCE):
            # The member has its new generation but no assignment yet (a transaction's
            # offsets do not depend on the group's state).
            raise GroupError(ErrorCode.rebalance_in_progress)

    def validate_offset_delete(self) -> None:
        if not self.is_in(GroupState.EMPTY) and not self.uses_consumer_protocol():
            raise GroupError(ErrorCode.non_empty_group)

    def validate_delete_group(self) -> None:
        if not self.is_in(GroupState.EMPTY):
            raise GroupError(ErrorCode.non_empty_group)

    def offset_expiration_base(self) -> Callable[[int], int] | None:
        """How to get the time an offset's retention counts from (given its commit timestamp),
        or None while this group's offsets must not expire."""
        if self.protocol_type is None:
            return lambda commit_timestamp_ms: commit_timestamp_ms
        if self.is_in(GroupState.EMPTY):
            state_timestamp = self.state_timestamp_ms
            return lambda commit_timestamp_ms: commit_timestamp_ms if state_timestamp is None else state_timestamp
        if self.uses_consumer_protocol() and self.subscribed_topics is not None and self.is_in(GroupState.STABLE):
            return lambda commit_timestamp_ms: commit_timestamp_ms
        return None


_READ_SUBSCRIPTION = entity_reader(ConsumerProtocolSubscription)


def decode_subscription(metadata: bytes) -> tuple[str, ...] | None:
    """The topics of an embedded consumer protocol subscription, read with its version 0
    schema, which prefixes every later version; None if the bytes are not one."""
    if len(metadata) < 2:
        return None
    try:
        subscription, _ = _READ_SUBSCRIPTION(memoryview(metadata), 2)
    except (SerialError, ValueError):  # kio's reader also raises ValueError for a negative array length
        return None
    return tuple(subscription.topics)


def _inconsistent(requested: str | None, current: str | None) -> bool:
    return requested is not None and current is not None and requested != current
