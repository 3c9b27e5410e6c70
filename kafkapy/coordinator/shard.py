"""The group coordinator's state, as Kafka's GroupCoordinatorShard keeps it for one
`__consumer_offsets` partition: the groups (classic and consumer groups) and their
committed offsets, with those pending in open transactions.

The state changes only as `__consumer_offsets` records are replayed into it: at load, and
as the coordinator writes records (`apply` writes and replays them, as Kafka's coordinator
replays its own writes). Each operation runs in `run`, which collects the records it writes
and the replies it gives into one Result for the shell. The classic protocol, the consumer
protocol and the offsets manager act on the groups through this shard.

One shard holds the groups of every partition this broker leads: a partition's state is
replayed into it when this broker becomes the partition's leader, and `unload` drops it
(groups, offsets, open transactions' offsets, timers) when it stops being it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from kio.schema.errors import ErrorCode

from ..clock import Clock
from . import group_records
from .classic_group import ClassicGroup, GroupError, GroupState, Waiter
from .consumer_group import (
    LEAVE_GROUP_MEMBER_EPOCH,
    NO_ASSIGNMENT_EPOCH,
    ConsumerGroup,
    ConsumerGroupMember,
    TopicMetadata,
    assignment_from_record,
)
from .offsets import OffsetStore, PendingOffsets
from .records.consumer_offsets import (
    ConsumerGroupCurrentMemberAssignmentKey,
    ConsumerGroupMemberMetadataKey,
    ConsumerGroupMetadataKey,
    ConsumerGroupPartitionMetadataKey,
    ConsumerGroupTargetAssignmentMemberKey,
    ConsumerGroupTargetAssignmentMetadataKey,
)
from .timers import Timers

# With no authorizer, every operation a group resource supports: READ(3), DELETE(6),
# DESCRIBE(8), DESCRIBE_CONFIGS(10), ALTER_CONFIGS(11).
GROUP_AUTHORIZED_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11)

@dataclass
class Result:
    """What an operation asks of the shell: records to append, then replies to deliver."""

    records: list[tuple[int, bytes, bytes | None]] = field(default_factory=list)
    replies: list[tuple[object, dict]] = field(default_factory=list)
    transactional: tuple[int, int] | None = None
    """(producer id, producer epoch) when the records are a transaction's offsets: the shell
    appends them as a transactional batch of that producer, then replays them."""


class GroupCoordinatorShard:
    def __init__(self, clock: Clock, partition_for: Callable[[str], int]) -> None:
        self._clock = clock
        self._partition_for = partition_for
        self.groups: dict[str, ClassicGroup | ConsumerGroup] = {}
        self.offsets = OffsetStore()
        self.pending_offsets = PendingOffsets()
        # The order of offset records as written or replayed, which is their order in the
        # log: the shell appends records in the order the coordinator writes them.
        self._record_order = itertools.count()
        self.timers = Timers()
        self.out = Result()
        """What the operation running now writes and replies."""

    def run(self, operation: Callable[..., None], *args: Any) -> Result:
        self.out = Result()
        operation(*args)
        out, self.out = self.out, Result()
        return out

    # Records and replies

    def write(self, group_id: str, key: bytes, value: bytes | None) -> None:
        self.out.records.append((self._partition_for(group_id), key, value))

    def apply(self, group_id: str, records: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Writes records and replays them, as Kafka's coordinator does with its writes."""
        for key, value in records:
            self.write(group_id, key, value)
            self.replay(key, value)

    def reply(self, waiter: Waiter, response: dict[str, Any]) -> None:
        self.out.replies.append((waiter.token, response))

    # Replay

    def replay(self, key: bytes, value: bytes | None, transaction: tuple[int, int] | None = None) -> None:
        """transaction: (partition, producer id) of the transactional batch holding the record."""
        record = group_records.decode(key, value)
        if isinstance(record, group_records.OffsetRecord):
            if record.offset is None:
                self._remove_offset(record.group_id, record.topic, record.partition)
            else:
                if record.group_id not in self.groups:
                    # Offsets committed outside of any membership belong to a "simple" group.
                    self.create_group(record.group_id)
                record_order = next(self._record_order)
                if transaction is None:
                    self.offsets.put(record.group_id, record.topic, record.partition, record.offset, record_order)
                else:
                    self.pending_offsets.put(transaction, record.group_id, record.topic, record.partition, record.offset,
                                             record_order)
        elif isinstance(record, group_records.GroupRecord):
            if record.group is None:
                self._remove_group(record.group_id)
            else:
                self.groups[record.group_id] = record.group
        elif isinstance(record, group_records.ConsumerGroupRecord):
            self._replay_consumer_group(record.key, record.value)

    def _replay_consumer_group(self, key: group_records.ConsumerGroupKey, value: Any) -> None:
        group = self._persisted_consumer_group(key.group_id, create=value is not None)
        if group is None:
            return  # a tombstone of what is already gone
        if isinstance(key, ConsumerGroupMetadataKey):
            if value is not None:
                group.group_epoch = value.epoch
            else:
                if group.members or group.target_assignment or group.target_assignment_epoch != NO_ASSIGNMENT_EPOCH:
                    raise RuntimeError(f"Consumer group {key.group_id} is deleted before its members and assignment")
                del self.groups[key.group_id]
        elif isinstance(key, ConsumerGroupPartitionMetadataKey):
            group.subscription_metadata = {} if value is None else {
                t.topic_name: TopicMetadata(t.topic_id, t.topic_name, t.num_partitions) for t in value.topics
            }
        elif isinstance(key, ConsumerGroupMemberMetadataKey):
            member = group.members.get(key.member_id)
            if value is not None:
                group.update_member((member or ConsumerGroupMember(key.member_id)).with_metadata(value))
            elif member is not None:
                if member.member_epoch != LEAVE_GROUP_MEMBER_EPOCH or key.member_id in group.target_assignment:
                    raise RuntimeError(f"Member {key.member_id} of {key.group_id} is deleted before its assignments")
                group.remove_member(key.member_id)
        elif isinstance(key, ConsumerGroupTargetAssignmentMemberKey):
            if value is not None:
                group.update_target_assignment(key.member_id, assignment_from_record(value.topic_partitions))
            elif key.member_id in group.target_assignment:
                group.remove_target_assignment(key.member_id)
        elif isinstance(key, ConsumerGroupTargetAssignmentMetadataKey):
            if value is None and group.target_assignment:
                raise RuntimeError(f"The target assignment of {key.group_id} is deleted before its members' parts")
            group.target_assignment_epoch = NO_ASSIGNMENT_EPOCH if value is None else value.assignment_epoch
        elif isinstance(key, ConsumerGroupCurrentMemberAssignmentKey):
            member = group.members.get(key.member_id)
            if value is not None:
                group.update_member((member or ConsumerGroupMember(key.member_id)).with_assignment(value))
            elif member is not None:
                # The member is on its way out: it owns nothing any more.
                group.update_member(replace(member, member_epoch=LEAVE_GROUP_MEMBER_EPOCH,
                                            previous_member_epoch=LEAVE_GROUP_MEMBER_EPOCH,
                                            assigned_partitions={}, partitions_pending_revocation={}))

    def _persisted_consumer_group(self, group_id: str, create: bool) -> ConsumerGroup | None:
        group = self.groups.get(group_id)
        if isinstance(group, ConsumerGroup):
            return group
        if group is None and not create:
            return None
        if group is not None and not group.is_simple():
            raise RuntimeError(f"Group {group_id} is not a consumer group")
        # A simple group has no record of its own, only offsets: the consumer group takes its place.
        consumer_group = ConsumerGroup(group_id)
        self.groups[group_id] = consumer_group
        return consumer_group

    def unload(self, partition: int) -> list[object]:
        """Drops the state of one `__consumer_offsets` partition: the tokens of the
        requests it held parked (JoinGroup, SyncGroup), for the shell to fail."""
        def of_partition(group_id: object) -> bool:
            return isinstance(group_id, str) and self._partition_for(group_id) == partition

        parked: list[object] = []
        for group_id in [g for g in self.groups if of_partition(g)]:
            group = self.groups.pop(group_id)
            if isinstance(group, ClassicGroup):
                for member in group.members.values():
                    parked.extend(w.token for w in (member.awaiting_join, member.awaiting_sync) if w is not None)
        for group_id in self.offsets.group_ids():
            if of_partition(group_id):
                self.offsets.remove_group(group_id)
        self.pending_offsets.drop_coordinator_partition(partition)
        # Every timer of a group is keyed (kind, group id, ...).
        self.timers.cancel_where(lambda key: isinstance(key, tuple) and len(key) > 1 and of_partition(key[1]))
        return parked

    def end_transaction(self, partition: int, producer_id: int, commit: bool) -> None:
        offsets = self.pending_offsets.end((partition, producer_id))
        if commit:
            self.offsets.take_later(offsets)

    # Groups

    def create_group(self, group_id: str) -> ClassicGroup:
        group = ClassicGroup(group_id, self._clock.wall_ms())
        self.groups[group_id] = group
        return group

    def _remove_group(self, group_id: str) -> None:
        group = self.groups.pop(group_id, None)
        if isinstance(group, ClassicGroup):
            group.transition_to(GroupState.DEAD, self._clock.wall_ms())

    def delete_group(self, group_id: str) -> None:
        group = self.groups[group_id]
        if isinstance(group, ConsumerGroup):
            self.apply(group_id, group_records.consumer_group_tombstones(group_id, list(group.members)))
        else:
            self.write(group_id, *group_records.group_tombstone(group_id))
            self._remove_group(group_id)

    def classic_group(self, group_id: str) -> ClassicGroup | None:
        """The group if it is classic: timers of a group that was since replaced by one
        of another type find nothing to do."""
        group = self.groups.get(group_id)
        return group if isinstance(group, ClassicGroup) else None

    def consumer_group(self, group_id: str) -> ConsumerGroup | None:
        group = self.groups.get(group_id)
        return group if isinstance(group, ConsumerGroup) else None

    def existing_consumer_group(self, group_id: str) -> ConsumerGroup:
        group = self.groups.get(group_id)
        if group is None:
            raise GroupError(ErrorCode.group_id_not_found, f"Group {group_id} not found.")
        if not isinstance(group, ConsumerGroup):
            raise GroupError(ErrorCode.group_id_not_found, f"Group {group_id} is not a consumer group.")
        return group

    # Offsets

    def delete_offset(self, group_id: str, topic: str, partition: int) -> None:
        if self.offsets.get(group_id, topic, partition) is not None or self.pending_offsets.has(group_id, topic, partition):
            self._remove_offset(group_id, topic, partition)
            self.write(group_id, *group_records.offset_tombstone(group_id, topic, partition))

    def _remove_offset(self, group_id: str, topic: str, partition: int) -> None:
        """What a tombstone does: the offset goes, and so do those pending in transactions."""
        self.offsets.remove(group_id, topic, partition)
        self.pending_offsets.remove(group_id, topic, partition)

    # DeleteGroups

    def delete_groups(self, version: int, group_ids: list[str], token: object) -> None:
        waiter = Waiter(token, version)
        results = []
        for group_id in dict.fromkeys(group_ids):  # duplicates are answered once, as Kafka does
            group = self.groups.get(group_id)
            try:
                if group is None:
                    raise GroupError(ErrorCode.group_id_not_found)
                group.validate_delete_group()
            except GroupError as e:
                results.append({"group_id": group_id, "error_code": e.code})
                continue
            for topic, partition in dict.fromkeys(self.offsets.partitions_of_group(group_id)
                                                  + self.pending_offsets.partitions_of_group(group_id)):
                self.delete_offset(group_id, topic, partition)
            self.delete_group(group_id)
            results.append({"group_id": group_id, "error_code": ErrorCode.none})
        self.reply(waiter, {"throttle_time": 0, "results": results})
