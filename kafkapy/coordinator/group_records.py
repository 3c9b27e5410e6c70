"""The group coordinator's `__consumer_offsets` records, between its state and the
record formats of `records.consumer_offsets` (Kafka's GroupCoordinatorRecordHelpers
and the replay of GroupMetadataManager and OffsetMetadataManager)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from kio.static.primitive import i8, i32

from .assignors import Assignment, java_uuid_order
from .classic_group import ClassicGroup, ClassicGroupMember, GroupState
from .consumer_group import ConsumerGroupMember, TopicMetadata
from .offsets import OffsetAndMetadata
from .records.consumer_offsets import (
    ConsumerGroupCurrentMemberAssignmentKey,
    ConsumerGroupCurrentMemberAssignmentValue,
    ConsumerGroupMemberMetadataKey,
    ConsumerGroupMemberMetadataValue,
    ConsumerGroupMetadataKey,
    ConsumerGroupMetadataValue,
    ConsumerGroupPartitionMetadataKey,
    ConsumerGroupPartitionMetadataValue,
    ConsumerGroupTargetAssignmentMemberKey,
    ConsumerGroupTargetAssignmentMemberValue,
    ConsumerGroupTargetAssignmentMetadataKey,
    ConsumerGroupTargetAssignmentMetadataValue,
    GroupMetadataKey,
    GroupMetadataValue,
    MemberMetadata,
    OffsetCommitKey,
    OffsetCommitValue,
    TopicPartition,
    TopicPartitions,
    decode_offsets_key,
    decode_offsets_value,
    encode_offsets_key,
    encode_offsets_value,
)
from .records.consumer_offsets import TopicMetadata as TopicMetadataRecord
from .records.framing import UnknownRecordType

NO_TIMESTAMP = -1


@dataclass(frozen=True)
class OffsetRecord:
    group_id: str
    topic: str
    partition: int
    offset: OffsetAndMetadata | None  # None: deleted


@dataclass(frozen=True)
class GroupRecord:
    group_id: str
    group: ClassicGroup | None  # None: deleted


ConsumerGroupKey = (
    ConsumerGroupMetadataKey | ConsumerGroupPartitionMetadataKey | ConsumerGroupMemberMetadataKey
    | ConsumerGroupTargetAssignmentMetadataKey | ConsumerGroupTargetAssignmentMemberKey
    | ConsumerGroupCurrentMemberAssignmentKey
)


@dataclass(frozen=True)
class ConsumerGroupRecord:
    """One of the six records of a consumer group, replayed as the coordinator's own writes are."""

    key: ConsumerGroupKey
    value: Any  # the key's value type; None: deleted


def offset_commit(group_id: str, topic: str, partition: int, offset: OffsetAndMetadata) -> tuple[bytes, bytes]:
    value = OffsetCommitValue(
        offset=offset.committed_offset,
        leader_epoch=offset.leader_epoch,
        metadata=offset.metadata,
        commit_timestamp=offset.commit_timestamp_ms,
        expire_timestamp=NO_TIMESTAMP if offset.expire_timestamp_ms is None else offset.expire_timestamp_ms,
    )
    return _offset_key(group_id, topic, partition), encode_offsets_value(value)


def offset_tombstone(group_id: str, topic: str, partition: int) -> tuple[bytes, None]:
    return _offset_key(group_id, topic, partition), None


def group_metadata(group: ClassicGroup, assignment: dict[str, bytes]) -> tuple[bytes, bytes]:
    """The group as it stands, its members with these assignments."""
    protocol = group.protocol_name
    if group.members and protocol is None:
        raise RuntimeError(f"group {group.group_id} has members but no protocol")
    members = tuple(
        MemberMetadata(
            member_id=m.member_id,
            group_instance_id=m.group_instance_id,
            client_id=m.client_id,
            client_host=m.client_host,
            rebalance_timeout=m.rebalance_timeout_ms,
            session_timeout=m.session_timeout_ms,
            subscription=m.metadata(protocol),  # type: ignore[arg-type]
            assignment=assignment[m.member_id],
        )
        for m in group.members.values()
    )
    value = GroupMetadataValue(
        protocol_type=group.protocol_type or "",
        generation=group.generation_id,
        protocol=protocol,
        leader=group.leader_id,
        current_state_timestamp=_timestamp(group.state_timestamp_ms),
        members=members,
    )
    return _group_key(group.group_id), encode_offsets_value(value)


def empty_group_metadata(group: ClassicGroup) -> tuple[bytes, bytes]:
    """What Kafka records of a group it just created, whatever its first member did."""
    value = GroupMetadataValue(
        protocol_type="", generation=0, protocol=None, leader=None,
        current_state_timestamp=_timestamp(group.state_timestamp_ms), members=(),
    )
    return _group_key(group.group_id), encode_offsets_value(value)


def group_tombstone(group_id: str) -> tuple[bytes, None]:
    return _group_key(group_id), None


# Consumer group records, written where Kafka's GroupMetadataManager writes them.


def consumer_group_epoch(group_id: str, epoch: int) -> tuple[bytes, bytes]:
    return encode_offsets_key(ConsumerGroupMetadataKey(group_id=group_id)), encode_offsets_value(
        ConsumerGroupMetadataValue(epoch=i32(epoch)))


def consumer_subscription_metadata(group_id: str, metadata: Mapping[str, TopicMetadata]) -> tuple[bytes, bytes]:
    topics = tuple(
        TopicMetadataRecord(topic_id=t.topic_id, topic_name=t.name, num_partitions=i32(t.num_partitions), partition_metadata=())
        for t in sorted(metadata.values(), key=lambda t: t.name)
    )
    return encode_offsets_key(ConsumerGroupPartitionMetadataKey(group_id=group_id)), encode_offsets_value(
        ConsumerGroupPartitionMetadataValue(topics=topics))


def consumer_member_subscription(group_id: str, member: ConsumerGroupMember) -> tuple[bytes, bytes]:
    value = ConsumerGroupMemberMetadataValue(
        instance_id=member.instance_id, rack_id=member.rack_id, client_id=member.client_id,
        client_host=member.client_host, subscribed_topic_names=tuple(sorted(member.subscribed_topic_names)),
        subscribed_topic_regex=member.subscribed_topic_regex, rebalance_timeout_ms=i32(member.rebalance_timeout_ms),
        server_assignor=member.server_assignor,
    )
    return _consumer_member_key(ConsumerGroupMemberMetadataKey, group_id, member.member_id), encode_offsets_value(value)


def consumer_target_assignment(group_id: str, member_id: str, assignment: Assignment) -> tuple[bytes, bytes]:
    value = ConsumerGroupTargetAssignmentMemberValue(topic_partitions=_topic_partitions(TopicPartition, assignment))
    return _consumer_member_key(ConsumerGroupTargetAssignmentMemberKey, group_id, member_id), encode_offsets_value(value)


def consumer_target_assignment_epoch(group_id: str, epoch: int) -> tuple[bytes, bytes]:
    return encode_offsets_key(ConsumerGroupTargetAssignmentMetadataKey(group_id=group_id)), encode_offsets_value(
        ConsumerGroupTargetAssignmentMetadataValue(assignment_epoch=i32(epoch)))


def consumer_current_assignment(group_id: str, member: ConsumerGroupMember) -> tuple[bytes, bytes]:
    value = ConsumerGroupCurrentMemberAssignmentValue(
        member_epoch=i32(member.member_epoch), previous_member_epoch=i32(member.previous_member_epoch),
        state=i8(member.state.value), assigned_partitions=_topic_partitions(TopicPartitions, member.assigned_partitions),
        partitions_pending_revocation=_topic_partitions(TopicPartitions, member.partitions_pending_revocation),
    )
    return _consumer_member_key(ConsumerGroupCurrentMemberAssignmentKey, group_id, member.member_id), encode_offsets_value(value)


def consumer_member_tombstones(group_id: str, member_id: str) -> list[tuple[bytes, None]]:
    """A member's three records deleted, in the order Kafka's replay expects them."""
    return [
        (_consumer_member_key(key_type, group_id, member_id), None)
        for key_type in (ConsumerGroupCurrentMemberAssignmentKey, ConsumerGroupTargetAssignmentMemberKey,
                         ConsumerGroupMemberMetadataKey)
    ]


def consumer_group_tombstones(group_id: str, member_ids: list[str]) -> list[tuple[bytes, None]]:
    """A whole consumer group deleted, in Kafka's order: each kind of member record for
    every member, then the group's own records."""
    member_keys = [
        (_consumer_member_key(key_type, group_id, member_id), None)
        for key_type in (ConsumerGroupCurrentMemberAssignmentKey, ConsumerGroupTargetAssignmentMemberKey)
        for member_id in member_ids
    ]
    subscription_keys = [(_consumer_member_key(ConsumerGroupMemberMetadataKey, group_id, m), None) for m in member_ids]
    return [
        *member_keys,
        (encode_offsets_key(ConsumerGroupTargetAssignmentMetadataKey(group_id=group_id)), None),
        *subscription_keys,
        (encode_offsets_key(ConsumerGroupPartitionMetadataKey(group_id=group_id)), None),
        (encode_offsets_key(ConsumerGroupMetadataKey(group_id=group_id)), None),
    ]


_AssignmentStruct = TypeVar("_AssignmentStruct", TopicPartition, TopicPartitions)


def _topic_partitions(struct: type[_AssignmentStruct], assignment: Assignment) -> tuple[_AssignmentStruct, ...]:
    # Kafka gives the target and the current assignment each its own struct of the same fields.
    return tuple(
        struct(topic_id=topic_id, partitions=tuple(i32(p) for p in sorted(assignment[topic_id])))
        for topic_id in sorted(assignment, key=java_uuid_order)
    )


def _consumer_member_key(key_type: type, group_id: str, member_id: str) -> bytes:
    return encode_offsets_key(key_type(group_id=group_id, member_id=member_id))


def decode(key: bytes, value: bytes | None) -> OffsetRecord | GroupRecord | ConsumerGroupRecord | None:
    """A record of __consumer_offsets; None for records of other group types, which
    this coordinator does not host (Kafka's loader skips unknown types too)."""
    try:
        record_key = decode_offsets_key(key)
    except UnknownRecordType:
        return None
    if isinstance(record_key, OffsetCommitKey):
        offset_value = decode_offsets_value(record_key, value)
        assert offset_value is None or isinstance(offset_value, OffsetCommitValue)
        return OffsetRecord(record_key.group, record_key.topic, record_key.partition, _offset(offset_value))
    if isinstance(record_key, GroupMetadataKey):
        group_value = decode_offsets_value(record_key, value)
        assert group_value is None or isinstance(group_value, GroupMetadataValue)
        return GroupRecord(record_key.group, None if group_value is None else _group(record_key.group, group_value))
    if isinstance(record_key, _CONSUMER_GROUP_KEYS):
        return ConsumerGroupRecord(record_key, decode_offsets_value(record_key, value))
    return None


_CONSUMER_GROUP_KEYS = (
    ConsumerGroupMetadataKey, ConsumerGroupPartitionMetadataKey, ConsumerGroupMemberMetadataKey,
    ConsumerGroupTargetAssignmentMetadataKey, ConsumerGroupTargetAssignmentMemberKey,
    ConsumerGroupCurrentMemberAssignmentKey,
)


def _offset(value: OffsetCommitValue | None) -> OffsetAndMetadata | None:
    if value is None:
        return None
    return OffsetAndMetadata(
        committed_offset=value.offset,
        leader_epoch=value.leader_epoch,
        metadata=value.metadata,
        commit_timestamp_ms=value.commit_timestamp,
        expire_timestamp_ms=None if value.expire_timestamp == NO_TIMESTAMP else value.expire_timestamp,
    )


def _group(group_id: str, value: GroupMetadataValue) -> ClassicGroup:
    """A loaded group is Stable if it has members (they must heartbeat to stay), else Empty."""
    group = ClassicGroup(
        group_id,
        None if value.current_state_timestamp == NO_TIMESTAMP else value.current_state_timestamp,
        state=GroupState.STABLE if value.members else GroupState.EMPTY,
        generation_id=value.generation,
        protocol_type=value.protocol_type or None,
        protocol_name=value.protocol,
        leader_id=value.leader,
    )
    for m in value.members:
        group.add(ClassicGroupMember(
            member_id=m.member_id,
            group_instance_id=m.group_instance_id,
            client_id=m.client_id,
            client_host=m.client_host,
            # Records of version 0 have no rebalance timeout: the session timeout stands in.
            rebalance_timeout_ms=m.session_timeout if m.rebalance_timeout == -1 else m.rebalance_timeout,
            session_timeout_ms=m.session_timeout,
            protocol_type=value.protocol_type,
            protocols=((value.protocol or "", m.subscription),),
            assignment=m.assignment,
        ))
    group.subscribed_topics = group.compute_subscribed_topics()
    return group


def _offset_key(group_id: str, topic: str, partition: int) -> bytes:
    return encode_offsets_key(OffsetCommitKey(group=group_id, topic=topic, partition=i32(partition)))


def _group_key(group_id: str) -> bytes:
    return encode_offsets_key(GroupMetadataKey(group=group_id))


def _timestamp(timestamp_ms: int | None) -> int:
    return NO_TIMESTAMP if timestamp_ms is None else timestamp_ms
