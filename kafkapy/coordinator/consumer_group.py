"""A consumer group of the KIP-848 protocol, its members, and the two computations that
drive it: the target assignment (Kafka's TargetAssignmentBuilder) and the reconciliation
of one member towards it (Kafka's CurrentAssignmentBuilder).

Pure data and rules, like classic_group: the group coordinator writes the records and
the group changes only as they are replayed, as Kafka's coordinator does.
"""

from __future__ import annotations

import enum
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from kio.schema.errors import ErrorCode

from .assignors import Assignment, Assignor, GroupSpec, MemberSubscription, SubscriptionType
from .classic_group import CONSUMER_PROTOCOL_TYPE, GroupError
from .records.consumer_offsets import (
    ConsumerGroupCurrentMemberAssignmentValue,
    ConsumerGroupMemberMetadataValue,
    TopicPartition,
    TopicPartitions,
)

CONSUMER_GROUP_TYPE = "consumer"
LEAVE_GROUP_MEMBER_EPOCH = -1
LEAVE_GROUP_STATIC_MEMBER_EPOCH = -2
NO_ASSIGNMENT_EPOCH = -1  # the target assignment epoch of a group being deleted

# (topic id, partition) -> the epoch of the member owning it, or -1 if none does.
PartitionEpochs = Callable[[uuid.UUID, int], int]


class MemberState(enum.Enum):
    """Where a member stands in its reconciliation; the values are Kafka's record ids."""

    STABLE = 0
    UNREVOKED_PARTITIONS = 1  # must give up partitions before anything else
    UNRELEASED_PARTITIONS = 2  # waits for partitions other members still own
    UNKNOWN = 127


class ConsumerGroupState(enum.Enum):
    EMPTY = "Empty"
    ASSIGNING = "Assigning"  # the target assignment lags the group epoch
    RECONCILING = "Reconciling"  # some members have not reached the target assignment
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(frozen=True)
class TopicMetadata:
    topic_id: uuid.UUID
    name: str
    num_partitions: int


@dataclass(frozen=True)
class ConsumerGroupMember:
    member_id: str
    member_epoch: int = 0
    previous_member_epoch: int = -1
    state: MemberState = MemberState.STABLE
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    client_id: str = ""
    client_host: str = ""
    subscribed_topic_names: frozenset[str] = frozenset()
    subscribed_topic_regex: str | None = ""
    server_assignor: str | None = None
    assigned_partitions: Assignment = field(default_factory=dict)
    partitions_pending_revocation: Assignment = field(default_factory=dict)

    def is_reconciled_to(self, target_assignment_epoch: int) -> bool:
        return self.state is MemberState.STABLE and self.member_epoch == target_assignment_epoch

    def with_metadata(self, value: ConsumerGroupMemberMetadataValue) -> ConsumerGroupMember:
        return replace(
            self, instance_id=value.instance_id, rack_id=value.rack_id, client_id=value.client_id,
            client_host=value.client_host, subscribed_topic_names=frozenset(value.subscribed_topic_names),
            subscribed_topic_regex=value.subscribed_topic_regex, rebalance_timeout_ms=value.rebalance_timeout_ms,
            server_assignor=value.server_assignor,
        )

    def with_assignment(self, value: ConsumerGroupCurrentMemberAssignmentValue) -> ConsumerGroupMember:
        state = next((s for s in MemberState if s.value == value.state), MemberState.UNKNOWN)
        return replace(
            self, member_epoch=value.member_epoch, previous_member_epoch=value.previous_member_epoch, state=state,
            assigned_partitions=assignment_from_record(value.assigned_partitions),
            partitions_pending_revocation=assignment_from_record(value.partitions_pending_revocation),
        )


def assignment_from_record(topic_partitions: Iterable[TopicPartition | TopicPartitions]) -> Assignment:
    return {tp.topic_id: frozenset(int(p) for p in tp.partitions) for tp in topic_partitions}


def _count(counts: Counter[str], names: Iterable[str], delta: int) -> None:
    for name in names:
        counts[name] += delta
        if counts[name] <= 0:
            del counts[name]


def _server_assignor_counts(counts: Counter[str], old: ConsumerGroupMember | None, new: ConsumerGroupMember | None) -> None:
    _count(counts, [old.server_assignor] if old is not None and old.server_assignor is not None else [], -1)
    _count(counts, [new.server_assignor] if new is not None and new.server_assignor is not None else [], +1)


class ConsumerGroup:
    group_type = CONSUMER_GROUP_TYPE
    protocol_type = CONSUMER_PROTOCOL_TYPE

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        # Bumped whenever the subscriptions change: a new target assignment is due.
        self.group_epoch = 0
        self.members: dict[str, ConsumerGroupMember] = {}
        self.static_members: dict[str, str] = {}  # instance id -> member id
        self.server_assignors: Counter[str] = Counter()  # members preferring each assignor
        self.subscribed_topic_names: Counter[str] = Counter()  # subscribers of each topic name
        # The subscribed topics that exist, as the group last recorded them.
        self.subscription_metadata: dict[str, TopicMetadata] = {}
        self.target_assignment_epoch = 0
        self.target_assignment: dict[str, Assignment] = {}
        self.partition_owners: dict[uuid.UUID, dict[int, str]] = {}  # in the target assignment
        # The epoch of each partition's current owner: a partition moves to its next owner
        # only once the previous one released it.
        self.partition_epochs: dict[uuid.UUID, dict[int, int]] = {}
        # Not recorded: set when the topics a member subscribes to may have changed, and when
        # the group is loaded, so that the next heartbeat checks the subscription metadata.
        self.metadata_refresh_needed = True

    def __repr__(self) -> str:
        return f"ConsumerGroup({self.group_id!r}, {self.state.value}, epoch={self.group_epoch}, members={list(self.members)})"

    @property
    def state(self) -> ConsumerGroupState:
        if not self.members:
            return ConsumerGroupState.EMPTY
        if self.group_epoch > self.target_assignment_epoch:
            return ConsumerGroupState.ASSIGNING
        if any(not m.is_reconciled_to(self.target_assignment_epoch) for m in self.members.values()):
            return ConsumerGroupState.RECONCILING
        return ConsumerGroupState.STABLE

    def is_empty(self) -> bool:
        return self.state is ConsumerGroupState.EMPTY

    # Members

    def member(self, member_id: str) -> ConsumerGroupMember:
        member = self.members.get(member_id)
        if member is None:
            raise GroupError(ErrorCode.unknown_member_id, f"Member {member_id} is not a member of group {self.group_id}.")
        return member

    def static_member(self, instance_id: str) -> ConsumerGroupMember | None:
        member_id = self.static_members.get(instance_id)
        return None if member_id is None else self.members[member_id]

    def classic_member_refusal(self, member_id: str, instance_id: str | None) -> ErrorCode:
        """Why a classic SyncGroup, Heartbeat or LeaveGroup of a member fails: no member
        speaks the classic protocol here, but a wrong instance's member id is fenced first."""
        if instance_id is not None:
            static = self.static_member(instance_id)
            if static is not None and static.member_id != member_id:
                return ErrorCode.fenced_instance_id
        return ErrorCode.unknown_member_id

    def update_member(self, new: ConsumerGroupMember) -> None:
        old = self.members.get(new.member_id)
        self.members[new.member_id] = new
        if old is not None:
            _count(self.subscribed_topic_names, old.subscribed_topic_names, -1)
            self._remove_partition_epochs(old)
        _count(self.subscribed_topic_names, new.subscribed_topic_names, +1)
        _server_assignor_counts(self.server_assignors, old, new)
        self._add_partition_epochs(new.assigned_partitions, new.member_epoch)
        self._add_partition_epochs(new.partitions_pending_revocation, new.member_epoch)
        if new.instance_id is not None:
            self.static_members[new.instance_id] = new.member_id

    def remove_member(self, member_id: str) -> None:
        old = self.members.pop(member_id)
        _count(self.subscribed_topic_names, old.subscribed_topic_names, -1)
        _server_assignor_counts(self.server_assignors, old, None)
        self._remove_partition_epochs(old)
        if old.instance_id is not None:
            self.static_members.pop(old.instance_id, None)

    def current_partition_epoch(self, topic_id: uuid.UUID, partition: int) -> int:
        return self.partition_epochs.get(topic_id, {}).get(partition, -1)

    def _add_partition_epochs(self, assignment: Assignment, epoch: int) -> None:
        for topic_id, partitions in assignment.items():
            epochs = self.partition_epochs.setdefault(topic_id, {})
            for partition in partitions:
                if partition in epochs:
                    raise RuntimeError(f"Cannot set the epoch of {topic_id}-{partition} to {epoch} because the "
                                       f"partition is still owned at epoch {epochs[partition]}")
                epochs[partition] = epoch

    def _remove_partition_epochs(self, member: ConsumerGroupMember) -> None:
        for assignment in (member.assigned_partitions, member.partitions_pending_revocation):
            for topic_id, partitions in assignment.items():
                epochs = self.partition_epochs.get(topic_id, {})
                for partition in partitions:
                    if epochs.pop(partition, None) != member.member_epoch:
                        raise RuntimeError(f"Cannot remove the epoch {member.member_epoch} from {topic_id}-{partition} "
                                           "because the partition is owned at a different epoch")
                if not epochs:
                    self.partition_epochs.pop(topic_id, None)

    # Target assignment

    def target_assignment_of(self, member_id: str, instance_id: str | None) -> Assignment:
        """The member's target assignment; a static member's is its instance's."""
        if instance_id is not None:
            member_id = self.static_members.get(instance_id, "")
        return self.target_assignment.get(member_id, {})

    def update_target_assignment(self, member_id: str, assignment: Assignment) -> None:
        old = self.target_assignment.get(member_id, {})
        for topic_id in old.keys() | assignment.keys():
            owners = self.partition_owners.setdefault(topic_id, {})
            new_partitions = assignment.get(topic_id, frozenset())
            for partition in old.get(topic_id, frozenset()) - new_partitions:
                # The partition may already have been given to its next owner.
                if owners.get(partition) == member_id:
                    del owners[partition]
            for partition in new_partitions - old.get(topic_id, frozenset()):
                owners[partition] = member_id
            if not owners:
                del self.partition_owners[topic_id]
        self.target_assignment[member_id] = assignment

    def remove_target_assignment(self, member_id: str) -> None:
        self.update_target_assignment(member_id, {})
        del self.target_assignment[member_id]

    # Subscriptions

    def subscribed_topic_names_with(self, old: ConsumerGroupMember | None, new: ConsumerGroupMember | None) -> Counter[str]:
        """The group's subscribed topic names were `old` replaced by `new`."""
        counts = Counter(self.subscribed_topic_names)
        if old is not None:
            _count(counts, old.subscribed_topic_names, -1)
        if new is not None:
            _count(counts, new.subscribed_topic_names, +1)
        return counts

    def preferred_server_assignor_with(self, old: ConsumerGroupMember, new: ConsumerGroupMember) -> str | None:
        counts = Counter(self.server_assignors)
        _server_assignor_counts(counts, old, new)
        return max(counts, key=lambda name: counts[name], default=None)

    def preferred_server_assignor(self) -> str | None:
        return max(self.server_assignors, key=lambda name: self.server_assignors[name], default=None)

    def is_subscribed_to_topic(self, topic: str) -> bool:
        return topic in self.subscribed_topic_names

    # Validation of the offset and admin APIs

    def validate_offset_commit(self, member_id: str, member_epoch: int, version: int, is_transactional: bool = False) -> None:
        if member_epoch < 0 and not self.members:
            # An admin client, or a consumer assigning partitions itself, while the group is empty.
            return
        member = self.member(member_id)
        if version < 9 and not is_transactional:
            raise GroupError(ErrorCode.unsupported_version,
                             "OffsetCommit version 9 or above must be used by members using the modern group protocol")
        _validate_member_epoch(member_epoch, member)

    def validate_offset_fetch(self, member_id: str | None, member_epoch: int) -> None:
        if member_id is None and member_epoch < 0:
            return  # an admin client, or a client not telling who it is
        _validate_member_epoch(member_epoch, self.member(member_id or ""))

    def validate_offset_delete(self) -> None:
        """Offsets of topics the group does not subscribe to may go at any time."""

    def validate_delete_group(self) -> None:
        if not self.is_empty():
            raise GroupError(ErrorCode.non_empty_group)

    def offset_expiration_base(self) -> Callable[[int], int]:
        return lambda commit_timestamp_ms: commit_timestamp_ms


def _validate_member_epoch(received: int, member: ConsumerGroupMember) -> None:
    if received != member.member_epoch:
        raise GroupError(ErrorCode.stale_member_epoch,
                         f"The received member epoch {received} does not match the expected member epoch {member.member_epoch}.")


def subscription_metadata(names: Iterable[str], topics: Mapping[str, tuple[uuid.UUID, int]]) -> dict[str, TopicMetadata]:
    """The subscribed topics that exist."""
    return {name: TopicMetadata(topics[name][0], name, topics[name][1]) for name in names if name in topics}


def subscription_type(subscribed_topic_names: Mapping[str, int], num_members: int) -> SubscriptionType:
    if all(count == num_members for count in subscribed_topic_names.values()):
        return SubscriptionType.HOMOGENEOUS
    return SubscriptionType.HETEROGENEOUS


def target_assignment(
    group: ConsumerGroup, assignor: Assignor, metadata: Mapping[str, TopicMetadata], kind: SubscriptionType,
    updated: ConsumerGroupMember, replaced_member_id: str | None,
) -> dict[str, Assignment]:
    """The group's next target assignment (Kafka's TargetAssignmentBuilder), with `updated`
    added or changed and the static member it replaces, if any, gone. A member replacing
    a static member starts from that member's target assignment."""
    ids = {name: topic.topic_id for name, topic in metadata.items()}

    def spec(member: ConsumerGroupMember, assignment: Assignment) -> MemberSubscription:
        topic_ids = frozenset(ids[name] for name in member.subscribed_topic_names if name in ids)
        return MemberSubscription(member.instance_id, topic_ids, assignment)

    members = {member_id: spec(m, group.target_assignment.get(member_id, {})) for member_id, m in group.members.items()}
    if replaced_member_id is not None:
        members.pop(replaced_member_id, None)
    members[updated.member_id] = spec(updated, group.target_assignment.get(replaced_member_id or updated.member_id, {}))
    counts = {topic.topic_id: topic.num_partitions for topic in metadata.values()}
    new = assignor(GroupSpec(members, kind, group.partition_owners), counts)
    return {member_id: new.get(member_id, {}) for member_id in members}


def reconcile(
    member: ConsumerGroupMember, target_epoch: int, target: Assignment, partition_epochs: PartitionEpochs,
    owned: Mapping[uuid.UUID, frozenset[int]] | None,
) -> ConsumerGroupMember:
    """The member's next step towards its target assignment (Kafka's CurrentAssignmentBuilder).
    A member revokes partitions before it gets new ones, and a partition is only given
    once its previous owner released it. `owned` is what the member reports owning, None
    if it did not say."""
    if member.state is MemberState.STABLE:
        if member.member_epoch == target_epoch:
            return member
        return _next_assignment(member, member.member_epoch, target_epoch, target, partition_epochs, owned)
    if member.state is MemberState.UNREVOKED_PARTITIONS:
        if _owns_any(owned, member.partitions_pending_revocation):
            return member
        # Revoked: the member moves past its epoch, towards the latest target.
        return _next_assignment(member, member.member_epoch + 1, target_epoch, target, partition_epochs, owned)
    if member.state is MemberState.UNRELEASED_PARTITIONS:
        return _next_assignment(member, member.member_epoch, target_epoch, target, partition_epochs, owned)
    # A state from a newer coordinator: start over without partitions.
    if owned is None or owned:
        raise GroupError(ErrorCode.fenced_member_epoch,
                         "The consumer group member is in a unknown state. The member must abandon all its partitions and rejoin.")
    return _next_assignment(member, target_epoch, target_epoch, target, partition_epochs, owned)


def _owns_any(owned: Mapping[uuid.UUID, frozenset[int]] | None, partitions: Assignment) -> bool:
    if owned is None:
        return True  # not reported: assume it still owns them
    return any(owned.get(topic_id, frozenset()) & revoked for topic_id, revoked in partitions.items())


def _next_assignment(
    member: ConsumerGroupMember, member_epoch: int, target_epoch: int, target: Assignment,
    partition_epochs: PartitionEpochs, owned: Mapping[uuid.UUID, frozenset[int]] | None,
) -> ConsumerGroupMember:
    assigned: dict[uuid.UUID, frozenset[int]] = {}
    pending_revocation: dict[uuid.UUID, frozenset[int]] = {}
    pending_assignment: dict[uuid.UUID, frozenset[int]] = {}
    has_unreleased = False
    for topic_id in target.keys() | member.assigned_partitions.keys():
        wanted = target.get(topic_id, frozenset())
        current = member.assigned_partitions.get(topic_id, frozenset())
        kept = current & wanted
        free = {p for p in wanted - kept if partition_epochs(topic_id, p) == -1}
        has_unreleased = has_unreleased or len(free) < len(wanted - kept)
        for partitions, into in ((kept, assigned), (current - kept, pending_revocation), (free, pending_assignment)):
            if partitions:
                into[topic_id] = frozenset(partitions)

    if pending_revocation and _owns_any(owned, pending_revocation):
        # Partitions go first: the member keeps its epoch until it has revoked them.
        return _with_epoch(member, member_epoch, MemberState.UNREVOKED_PARTITIONS, assigned, pending_revocation)
    for topic_id, partitions in pending_assignment.items():
        assigned[topic_id] = assigned.get(topic_id, frozenset()) | partitions
    state = MemberState.UNRELEASED_PARTITIONS if has_unreleased else MemberState.STABLE
    return _with_epoch(member, target_epoch, state, assigned, {})


def _with_epoch(
    member: ConsumerGroupMember, epoch: int, state: MemberState, assigned: Assignment, pending_revocation: Assignment,
) -> ConsumerGroupMember:
    return replace(member, member_epoch=epoch, previous_member_epoch=member.member_epoch, state=state,
                   assigned_partitions=assigned, partitions_pending_revocation=pending_revocation)


def owned_partitions(topic_partitions: Any) -> dict[uuid.UUID, frozenset[int]] | None:
    """The partitions a heartbeat reports owned, None if it does not report them."""
    if topic_partitions is None:
        return None
    return {tp.topic_id: frozenset(int(p) for p in tp.partitions) for tp in topic_partitions}
