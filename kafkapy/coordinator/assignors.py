"""The server-side assignors of consumer groups (KIP-848): Kafka's `uniform` and `range`
(group-coordinator's assignor package), as pure functions of a group specification.

Kafka walks its members and topics in hash-map order; here members go in member id
order and topics in Kafka's Uuid order, so that an assignment is reproducible.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

# Partitions by topic id. Never modified once built.
Assignment = Mapping[uuid.UUID, frozenset[int]]


class SubscriptionType(enum.Enum):
    HOMOGENEOUS = "homogeneous"  # every member subscribes to the same topics
    HETEROGENEOUS = "heterogeneous"


class PartitionAssignorError(Exception):
    pass


@dataclass(frozen=True)
class MemberSubscription:
    instance_id: str | None
    subscribed_topic_ids: frozenset[uuid.UUID]
    assignment: Assignment  # the member's current target assignment


@dataclass(frozen=True)
class GroupSpec:
    members: Mapping[str, MemberSubscription]
    subscription_type: SubscriptionType
    # The owner of each partition in the current target assignment.
    partition_owners: Mapping[uuid.UUID, Mapping[int, str]]

    def is_partition_assigned(self, topic_id: uuid.UUID, partition: int) -> bool:
        return partition in self.partition_owners.get(topic_id, {})


# (group, partition count of each subscribed topic id) -> new assignment by member id.
Assignor = Callable[[GroupSpec, Mapping[uuid.UUID, int]], dict[str, Assignment]]


def java_uuid_order(topic_id: uuid.UUID) -> tuple[int, int]:
    """Kafka's Uuid.compareTo: the two halves compared as signed 64-bit integers."""
    high, low = topic_id.int >> 64, topic_id.int & (2**64 - 1)
    return (high - 2**64 if high >= 2**63 else high, low - 2**64 if low >= 2**63 else low)


def _partition_count(partition_counts: Mapping[uuid.UUID, int], topic_id: uuid.UUID) -> int:
    count = partition_counts.get(topic_id)
    if count is None:
        raise PartitionAssignorError(f"Members are subscribed to topic {topic_id} which doesn't exist in the topic metadata.")
    return count


def _frozen(assignment: Mapping[uuid.UUID, Iterable[int]]) -> Assignment:
    return {topic_id: frozenset(partitions) for topic_id, partitions in assignment.items() if partitions}


# Uniform


def assign_uniform(group: GroupSpec, partition_counts: Mapping[uuid.UUID, int]) -> dict[str, Assignment]:
    """Balance first (members' partition counts differ by one at most), then stickiness."""
    if not group.members:
        return {}
    if group.subscription_type is SubscriptionType.HOMOGENEOUS:
        return _assign_uniform_homogeneous(group, partition_counts)
    return _UniformHeterogeneous(group, partition_counts).build()


def _assign_uniform_homogeneous(group: GroupSpec, partition_counts: Mapping[uuid.UUID, int]) -> dict[str, Assignment]:
    member_ids = sorted(group.members)
    subscribed = group.members[member_ids[0]].subscribed_topic_ids
    if not subscribed:
        return {}
    unassigned: list[tuple[uuid.UUID, int]] = []
    total = 0
    for topic_id in sorted(subscribed, key=java_uuid_order):
        count = _partition_count(partition_counts, topic_id)
        unassigned.extend((topic_id, p) for p in range(count) if not group.is_partition_assigned(topic_id, p))
        total += count
    minimum_quota, members_with_extra = divmod(total, len(member_ids))

    # Each member keeps what it may of its assignment; the excess becomes unassigned.
    target: dict[str, dict[uuid.UUID, set[int]]] = {}
    unfilled: list[tuple[str, int]] = []
    for member_id in member_ids:
        quota = minimum_quota
        if members_with_extra > 0:
            quota += 1
            members_with_extra -= 1
        kept: dict[uuid.UUID, set[int]] = {}
        old = group.members[member_id].assignment
        for topic_id in sorted(old, key=java_uuid_order):
            if topic_id not in subscribed:
                continue
            for partition in sorted(old[topic_id]):
                if quota > 0:
                    quota -= 1
                    kept.setdefault(topic_id, set()).add(partition)
                else:
                    unassigned.append((topic_id, partition))
        if quota > 0:
            unfilled.append((member_id, quota))
        target[member_id] = kept

    next_unassigned = 0
    for member_id, remaining_quota in unfilled:
        for _ in range(remaining_quota):
            if next_unassigned == len(unassigned):
                break
            topic_id, partition = unassigned[next_unassigned]
            next_unassigned += 1
            target[member_id].setdefault(topic_id, set()).add(partition)
    if next_unassigned < len(unassigned):
        raise PartitionAssignorError("Partitions were left unassigned")
    return {member_id: _frozen(assignment) for member_id, assignment in target.items()}


class _UniformHeterogeneous:
    """Members subscribing to different topics: unsubscribed partitions are taken away,
    free ones go to the least loaded subscribers, then partitions move from the most to
    the least loaded subscribers of each topic until no move improves the balance."""

    # Overlapping, non-identical subscriptions may converge slowly: bound the passes.
    MAX_ITERATION_COUNT = 16

    def __init__(self, group: GroupSpec, partition_counts: Mapping[uuid.UUID, int]) -> None:
        self.group = group
        self.member_ids = sorted(group.members)
        self.topic_subscribers: dict[uuid.UUID, list[int]] = {}
        self.partition_counts: dict[uuid.UUID, int] = {}
        for index, member_id in enumerate(self.member_ids):
            for topic_id in sorted(group.members[member_id].subscribed_topic_ids, key=java_uuid_order):
                self.partition_counts[topic_id] = _partition_count(partition_counts, topic_id)
                self.topic_subscribers.setdefault(topic_id, []).append(index)
        self.sizes = [0] * len(self.member_ids)
        self.owners = {topic_id: [-1] * count for topic_id, count in self.partition_counts.items()}
        self.target: dict[str, dict[uuid.UUID, set[int]]] = {}

    def build(self) -> dict[str, Assignment]:
        if not self.partition_counts:
            return {}
        self._revoke_unsubscribed_partitions()
        self._assign_unassigned_partitions()
        self._balance()
        return {member_id: _frozen(assignment) for member_id, assignment in self.target.items()}

    def _sorted_topics(self, topic_ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
        # Most partitions per subscriber first, then fewest subscribers, then topic id.
        def order(topic_id: uuid.UUID) -> tuple[float, int, tuple[int, int]]:
            subscribers = len(self.topic_subscribers[topic_id])
            return (-self.partition_counts[topic_id] / subscribers, subscribers, java_uuid_order(topic_id))
        return sorted(topic_ids, key=order)

    def _revoke_unsubscribed_partitions(self) -> None:
        for index, member_id in enumerate(self.member_ids):
            member = self.group.members[member_id]
            kept: dict[uuid.UUID, set[int]] = {}
            for topic_id, partitions in member.assignment.items():
                if topic_id in member.subscribed_topic_ids:
                    kept[topic_id] = set(partitions)
                    self.sizes[index] += len(partitions)
                    for partition in partitions:
                        self.owners[topic_id][partition] = index
            self.target[member_id] = kept

    def _assign_unassigned_partitions(self) -> None:
        unassigned = {
            topic_id: [p for p, owner in enumerate(owners) if owner == -1]
            for topic_id, owners in self.owners.items()
        }
        balancer = _Balancer(self.sizes)
        for topic_id in self._sorted_topics(t for t, partitions in unassigned.items() if partitions):
            balancer.initialize(self.topic_subscribers[topic_id])
            for partition in unassigned[topic_id]:
                self._assign(topic_id, partition, balancer.next_least_loaded())

    def _balance(self) -> None:
        topics = self._sorted_topics(t for t, subscribers in self.topic_subscribers.items() if len(subscribers) >= 2)
        if not topics:
            return
        balancer = _Balancer(self.sizes)
        last_rebalanced = -1
        for _ in range(self.MAX_ITERATION_COUNT):
            for index, topic_id in enumerate(topics):
                if index == last_rebalanced:
                    return  # a whole pass over the topics moved nothing
                if self._balance_topic(topic_id, balancer) > 0 or last_rebalanced == -1:
                    last_rebalanced = index

    def _balance_topic(self, topic_id: uuid.UUID, balancer: _Balancer) -> int:
        if balancer.initialize(self.topic_subscribers[topic_id]) <= 1:
            return 0
        owners = self.owners[topic_id]
        # The topic's partitions grouped by owner, so each owner's last one is at hand.
        partitions = sorted(range(len(owners)), key=lambda p: (owners[p], p))
        starts: dict[int, int] = {}
        ends: dict[int, int] = {}
        for i, partition in enumerate(partitions):
            starts.setdefault(owners[partition], i)
            ends[owners[partition]] = i + 1
        moved = 0
        while not balancer.is_balanced():
            while True:
                most_loaded = balancer.next_most_loaded()
                if most_loaded == -1 or ends.get(most_loaded, 0) - starts.get(most_loaded, 0) > 0:
                    break
                balancer.exclude_most_loaded()
            if most_loaded == -1:
                break
            ends[most_loaded] -= 1
            partition = partitions[ends[most_loaded]]
            least_loaded = balancer.next_least_loaded()
            if balancer.is_balanced():
                break
            self._assign(topic_id, partition, least_loaded)
            moved += 1
        return moved

    def _assign(self, topic_id: uuid.UUID, partition: int, member_index: int) -> None:
        old_owner = self.owners[topic_id][partition]
        if old_owner != -1:
            old_partitions = self.target[self.member_ids[old_owner]][topic_id]
            old_partitions.discard(partition)
            if not old_partitions:
                del self.target[self.member_ids[old_owner]][topic_id]
            self.sizes[old_owner] -= 1
        self.target[self.member_ids[member_index]].setdefault(topic_id, set()).add(partition)
        self.owners[topic_id][partition] = member_index
        self.sizes[member_index] += 1


class _Balancer:
    """Kafka's MemberAssignmentBalancer: over the subscribers of one topic sorted by load,
    hands out the least loaded members (a range growing rightwards) to receive partitions
    and the most loaded ones (a range growing leftwards) to give them up, until the two
    ranges' partition counts differ by one at most. Shares the members' sizes, which the
    caller updates as partitions move."""

    def __init__(self, sizes: list[int]) -> None:
        self.sizes = sizes
        self.members: list[int] = []
        self.least_loaded_end = 0  # exclusive
        self.least_loaded_count = -1
        self.next_least = 0
        self.most_loaded_start = 0  # inclusive
        self.most_loaded_end = 0  # exclusive
        self.most_loaded_count = 1
        self.next_most = -1

    def initialize(self, members: list[int]) -> int:
        """Starts over with these members; the difference between the most and least loaded."""
        if not members:
            raise ValueError("Cannot balance an empty subscriber list.")
        self.members = sorted(members, key=lambda m: (self.sizes[m], m))
        self.least_loaded_end = 0
        self.least_loaded_count = self.sizes[self.members[0]] - 1
        self.next_least = 0
        self.most_loaded_start = self.most_loaded_end = len(self.members)
        self.most_loaded_count = self.sizes[self.members[-1]] + 1
        self.next_most = len(self.members) - 1
        return self.sizes[self.members[-1]] - self.sizes[self.members[0]]

    def next_least_loaded(self) -> int:
        if self.next_least >= self.least_loaded_end:
            # Every member of the range got one more: raise its level and widen it.
            self.least_loaded_count += 1
            while (self.least_loaded_end < len(self.members)
                   and self.sizes[self.members[self.least_loaded_end]] == self.least_loaded_count):
                self.least_loaded_end += 1
            self.next_least = 0
        member = self.members[self.next_least]
        self.next_least += 1
        return member

    def next_most_loaded(self) -> int:
        """The next member to give up a partition, or -1 if none can."""
        if self.next_most < self.most_loaded_start:
            if self.most_loaded_end <= self.most_loaded_start and self.most_loaded_start > 0:
                # Exclusions emptied the range: restart from the next member's level, so
                # that the range surely widens.
                self.most_loaded_count = self.sizes[self.members[self.most_loaded_start - 1]]
            else:
                self.most_loaded_count -= 1
            while self.most_loaded_start > 0 and self.sizes[self.members[self.most_loaded_start - 1]] == self.most_loaded_count:
                self.most_loaded_start -= 1
            self.next_most = self.most_loaded_end - 1
        if self.next_most < 0:
            return -1
        member = self.members[self.next_most]
        self.next_most -= 1
        return member

    def exclude_most_loaded(self) -> None:
        """Drops the member next_most_loaded last returned, which has nothing to give up."""
        excluded = self.members[self.next_most + 1]
        self.members[self.next_most + 1] = self.members[self.most_loaded_end - 1]
        self.members[self.most_loaded_end - 1] = excluded
        self.most_loaded_end -= 1

    def is_balanced(self) -> bool:
        return self.most_loaded_count - self.least_loaded_count <= 1


# Range


def assign_range(group: GroupSpec, partition_counts: Mapping[uuid.UUID, int]) -> dict[str, Assignment]:
    """Contiguous ranges of each topic's partitions, members in order (static members first,
    by instance id); co-partitioned when every member subscribes to the same topics and
    these have as many partitions."""
    if not group.members:
        return {}
    member_ids = sorted(group.members, key=lambda m: _range_member_order(m, group.members[m].instance_id))
    subscribers: dict[uuid.UUID, int] = {}
    for member_id in member_ids:
        for topic_id in group.members[member_id].subscribed_topic_ids:
            _partition_count(partition_counts, topic_id)
            subscribers[topic_id] = subscribers.get(topic_id, 0) + 1
    # Per topic: [next partition to hand out, quota per member, members still owed an extra one].
    ranges = {
        topic_id: [0, *divmod(partition_counts[topic_id], count)] for topic_id, count in subscribers.items()
    }
    assignments: dict[str, Assignment] = {}
    for member_id in member_ids:
        assignment: dict[uuid.UUID, range] = {}
        for topic_id in group.members[member_id].subscribed_topic_ids:
            start, quota, extra = ranges[topic_id]
            if extra > 0:
                quota += 1
                ranges[topic_id][2] -= 1
            end = min(start + quota, partition_counts[topic_id])
            ranges[topic_id][0] = end
            assignment[topic_id] = range(start, end)
        assignments[member_id] = _frozen(assignment)
    return assignments


def _range_member_order(member_id: str, instance_id: str | None) -> tuple[int, str]:
    return (0, instance_id) if instance_id is not None else (1, member_id)


ASSIGNORS: dict[str, Assignor] = {"uniform": assign_uniform, "range": assign_range}
