"""The records of `__consumer_offsets`, as Kafka's group coordinator writes them
(schemas: Kafka's group-coordinator/src/main/resources/common/message/*.json).

A key's int16 version is its record type (GroupCoordinatorRecordSerde): 0 and 1 offset
commit, 2 classic group metadata, 3-8 the consumer group (KIP-848) records. Keys and
single-version values are kio structs. Values with several versions are version-free
dataclasses holding the fields of every version (as Kafka's generated classes do),
written through a private kio struct per version: decoding fills the fields a version
lacks with their defaults, encoding picks the version Kafka writes (see
`encode_offsets_value`).
"""

import io
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from kio.serial import entity_writer
from kio.serial.writers import Writable, write_tagged_field, write_unsigned_varint
from kio.static.constants import EntityType
from kio.static.primitive import i8, i16, i32, i64, uvarint

from .framing import ValueSchema, decode_key, encode_key

# Keys. A key struct's __version__ is the record type it is written as.


@dataclass(frozen=True, slots=True, kw_only=True)
class OffsetCommitKey:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(1)  # 0 is read too: the same schema, from Kafka 0.8.2
    __flexible__: ClassVar[bool] = False
    group: str = field(metadata={"kafka_type": "string"})
    topic: str = field(metadata={"kafka_type": "string"})
    partition: i32 = field(metadata={"kafka_type": "int32"})


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupMetadataKey:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(2)
    __flexible__: ClassVar[bool] = False
    group: str = field(metadata={"kafka_type": "string"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerGroupMetadataKey:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(3)
    __flexible__: ClassVar[bool] = False
    group_id: str = field(metadata={"kafka_type": "string"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerGroupPartitionMetadataKey:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(4)
    __flexible__: ClassVar[bool] = False
    group_id: str = field(metadata={"kafka_type": "string"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerGroupMemberMetadataKey:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(5)
    __flexible__: ClassVar[bool] = False
    group_id: str = field(metadata={"kafka_type": "string"})
    member_id: str = field(metadata={"kafka_type": "string"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerGroupTargetAssignmentMetadataKey:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(6)
    __flexible__: ClassVar[bool] = False
    group_id: str = field(metadata={"kafka_type": "string"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerGroupTargetAssignmentMemberKey:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(7)
    __flexible__: ClassVar[bool] = False
    group_id: str = field(metadata={"kafka_type": "string"})
    member_id: str = field(metadata={"kafka_type": "string"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerGroupCurrentMemberAssignmentKey:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(8)
    __flexible__: ClassVar[bool] = False
    group_id: str = field(metadata={"kafka_type": "string"})
    member_id: str = field(metadata={"kafka_type": "string"})


# OffsetCommitValue, versions 0-4.


@dataclass(frozen=True, slots=True, kw_only=True)
class OffsetCommitValue:
    offset: int
    leader_epoch: int = -1
    """-1 when unknown; versions 0-2 lack it."""
    metadata: str
    commit_timestamp: int
    expire_timestamp: int = -1
    """-1 for none; only version 1 holds it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _OffsetCommitValueV0:
    """Versions 0 and 2, which have the same fields."""

    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    offset: i64 = field(metadata={"kafka_type": "int64"})
    metadata: str = field(metadata={"kafka_type": "string"})
    commit_timestamp: i64 = field(metadata={"kafka_type": "int64"})


@dataclass(frozen=True, slots=True, kw_only=True)
class _OffsetCommitValueV1:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(1)
    __flexible__: ClassVar[bool] = False
    offset: i64 = field(metadata={"kafka_type": "int64"})
    metadata: str = field(metadata={"kafka_type": "string"})
    commit_timestamp: i64 = field(metadata={"kafka_type": "int64"})
    expire_timestamp: i64 = field(metadata={"kafka_type": "int64"})


@dataclass(frozen=True, slots=True, kw_only=True)
class _OffsetCommitValueV3:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(3)
    __flexible__: ClassVar[bool] = False
    offset: i64 = field(metadata={"kafka_type": "int64"})
    leader_epoch: i32 = field(metadata={"kafka_type": "int32"})
    metadata: str = field(metadata={"kafka_type": "string"})
    commit_timestamp: i64 = field(metadata={"kafka_type": "int64"})


@dataclass(frozen=True, slots=True, kw_only=True)
class _OffsetCommitValueV4:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(4)
    __flexible__: ClassVar[bool] = True
    offset: i64 = field(metadata={"kafka_type": "int64"})
    leader_epoch: i32 = field(metadata={"kafka_type": "int32"})
    metadata: str = field(metadata={"kafka_type": "string"})
    commit_timestamp: i64 = field(metadata={"kafka_type": "int64"})


def _offset_commit_version(value: OffsetCommitValue) -> int:
    # MetadataVersion.offsetCommitValueVersion: 1 while an expire timestamp is set (the
    # only version holding it), else 3, the newest non-flexible version.
    return 1 if value.expire_timestamp != -1 else 3


_OFFSET_COMMIT_VALUE = ValueSchema(
    OffsetCommitValue,
    {
        0: _OffsetCommitValueV0, 1: _OffsetCommitValueV1, 2: _OffsetCommitValueV0,
        3: _OffsetCommitValueV3, 4: _OffsetCommitValueV4,
    },
    _offset_commit_version,
)


# GroupMetadataValue, versions 0-4: a classic group and its members.


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberMetadata:
    member_id: str
    group_instance_id: str | None = None
    """Versions 0-2 lack it."""
    client_id: str
    client_host: str
    rebalance_timeout: int = -1
    """-1 from version 0, which lacks it (Kafka then uses the session timeout)."""
    session_timeout: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupMetadataValue:
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    current_state_timestamp: int = -1
    """Versions 0-1 lack it."""
    members: tuple[MemberMetadata, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class _MemberMetadataV0:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    member_id: str = field(metadata={"kafka_type": "string"})
    client_id: str = field(metadata={"kafka_type": "string"})
    client_host: str = field(metadata={"kafka_type": "string"})
    session_timeout: i32 = field(metadata={"kafka_type": "int32"})
    subscription: bytes = field(metadata={"kafka_type": "bytes"})
    assignment: bytes = field(metadata={"kafka_type": "bytes"})


@dataclass(frozen=True, slots=True, kw_only=True)
class _MemberMetadataV1:
    """Versions 1 and 2."""

    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(1)
    __flexible__: ClassVar[bool] = False
    member_id: str = field(metadata={"kafka_type": "string"})
    client_id: str = field(metadata={"kafka_type": "string"})
    client_host: str = field(metadata={"kafka_type": "string"})
    rebalance_timeout: i32 = field(metadata={"kafka_type": "int32"})
    session_timeout: i32 = field(metadata={"kafka_type": "int32"})
    subscription: bytes = field(metadata={"kafka_type": "bytes"})
    assignment: bytes = field(metadata={"kafka_type": "bytes"})


@dataclass(frozen=True, slots=True, kw_only=True)
class _MemberMetadataV3:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(3)
    __flexible__: ClassVar[bool] = False
    member_id: str = field(metadata={"kafka_type": "string"})
    group_instance_id: str | None = field(metadata={"kafka_type": "string"})
    client_id: str = field(metadata={"kafka_type": "string"})
    client_host: str = field(metadata={"kafka_type": "string"})
    rebalance_timeout: i32 = field(metadata={"kafka_type": "int32"})
    session_timeout: i32 = field(metadata={"kafka_type": "int32"})
    subscription: bytes = field(metadata={"kafka_type": "bytes"})
    assignment: bytes = field(metadata={"kafka_type": "bytes"})


@dataclass(frozen=True, slots=True, kw_only=True)
class _MemberMetadataV4:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(4)
    __flexible__: ClassVar[bool] = True
    member_id: str = field(metadata={"kafka_type": "string"})
    group_instance_id: str | None = field(metadata={"kafka_type": "string"})
    client_id: str = field(metadata={"kafka_type": "string"})
    client_host: str = field(metadata={"kafka_type": "string"})
    rebalance_timeout: i32 = field(metadata={"kafka_type": "int32"})
    session_timeout: i32 = field(metadata={"kafka_type": "int32"})
    subscription: bytes = field(metadata={"kafka_type": "bytes"})
    assignment: bytes = field(metadata={"kafka_type": "bytes"})


@dataclass(frozen=True, slots=True, kw_only=True)
class _GroupMetadataValueV0:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    protocol_type: str = field(metadata={"kafka_type": "string"})
    generation: i32 = field(metadata={"kafka_type": "int32"})
    protocol: str | None = field(metadata={"kafka_type": "string"})
    leader: str | None = field(metadata={"kafka_type": "string"})
    members: tuple[_MemberMetadataV0, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class _GroupMetadataValueV1:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(1)
    __flexible__: ClassVar[bool] = False
    protocol_type: str = field(metadata={"kafka_type": "string"})
    generation: i32 = field(metadata={"kafka_type": "int32"})
    protocol: str | None = field(metadata={"kafka_type": "string"})
    leader: str | None = field(metadata={"kafka_type": "string"})
    members: tuple[_MemberMetadataV1, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class _GroupMetadataValueV2:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(2)
    __flexible__: ClassVar[bool] = False
    protocol_type: str = field(metadata={"kafka_type": "string"})
    generation: i32 = field(metadata={"kafka_type": "int32"})
    protocol: str | None = field(metadata={"kafka_type": "string"})
    leader: str | None = field(metadata={"kafka_type": "string"})
    current_state_timestamp: i64 = field(metadata={"kafka_type": "int64"})
    members: tuple[_MemberMetadataV1, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class _GroupMetadataValueV3:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(3)
    __flexible__: ClassVar[bool] = False
    protocol_type: str = field(metadata={"kafka_type": "string"})
    generation: i32 = field(metadata={"kafka_type": "int32"})
    protocol: str | None = field(metadata={"kafka_type": "string"})
    leader: str | None = field(metadata={"kafka_type": "string"})
    current_state_timestamp: i64 = field(metadata={"kafka_type": "int64"})
    members: tuple[_MemberMetadataV3, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class _GroupMetadataValueV4:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(4)
    __flexible__: ClassVar[bool] = True
    protocol_type: str = field(metadata={"kafka_type": "string"})
    generation: i32 = field(metadata={"kafka_type": "int32"})
    protocol: str | None = field(metadata={"kafka_type": "string"})
    leader: str | None = field(metadata={"kafka_type": "string"})
    current_state_timestamp: i64 = field(metadata={"kafka_type": "int64"})
    members: tuple[_MemberMetadataV4, ...]


_GROUP_METADATA_VALUE = ValueSchema(
    GroupMetadataValue,
    {
        0: _GroupMetadataValueV0, 1: _GroupMetadataValueV1, 2: _GroupMetadataValueV2,
        3: _GroupMetadataValueV3, 4: _GroupMetadataValueV4,
    },
    # MetadataVersion.groupMetadataValueVersion: 3, the newest non-flexible version.
    lambda _: 3,
)


# Consumer group (KIP-848) values: one version each, flexible.


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerGroupMetadataValue:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = True
    epoch: i32 = field(metadata={"kafka_type": "int32"})
    """The group epoch."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionMetadata:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = True
    partition: i32 = field(metadata={"kafka_type": "int32"})
    racks: tuple[str, ...] = field(metadata={"kafka_type": "string"})


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicMetadata:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = True
    topic_id: uuid.UUID = field(metadata={"kafka_type": "uuid"})
    topic_name: str = field(metadata={"kafka_type": "string"})
    num_partitions: i32 = field(metadata={"kafka_type": "int32"})
    partition_metadata: tuple[PartitionMetadata, ...]
    """Racks of each partition; Kafka stops using it after 4.0."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerGroupPartitionMetadataValue:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = True
    topics: tuple[TopicMetadata, ...]
    """The subscribed topics, as the group last saw them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassicProtocol:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = True
    name: str = field(metadata={"kafka_type": "string"})
    metadata: bytes = field(metadata={"kafka_type": "bytes"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassicMemberMetadata:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = True
    session_timeout_ms: i32 = field(metadata={"kafka_type": "int32"})
    supported_protocols: tuple[ClassicProtocol, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerGroupMemberMetadataValue:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = True
    instance_id: str | None = field(metadata={"kafka_type": "string"})
    rack_id: str | None = field(metadata={"kafka_type": "string"})
    client_id: str = field(metadata={"kafka_type": "string"})
    client_host: str = field(metadata={"kafka_type": "string"})
    subscribed_topic_names: tuple[str, ...] = field(metadata={"kafka_type": "string"})
    subscribed_topic_regex: str | None = field(metadata={"kafka_type": "string"})
    rebalance_timeout_ms: i32 = field(metadata={"kafka_type": "int32"}, default=i32(-1))
    server_assignor: str | None = field(metadata={"kafka_type": "string"})
    classic_member_metadata: ClassicMemberMetadata | None = field(metadata={"tag": 0}, default=None)
    """Set while the member speaks the classic protocol."""


def _write_member_metadata_value(buffer: Writable, value: ConsumerGroupMemberMetadataValue) -> None:
    # kio 0.6.5 writes a tagged nullable struct without the presence byte that Kafka
    # writes (and kio's reader expects) before it, so that one field is written here.
    write_value = entity_writer(ConsumerGroupMemberMetadataValue)
    if value.classic_member_metadata is None:
        write_value(buffer, value)
        return
    untagged = io.BytesIO()
    write_value(untagged, replace(value, classic_member_metadata=None))
    buffer.write(untagged.getvalue()[:-1])  # drops kio's count of tagged fields, 0
    write_unsigned_varint(buffer, uvarint(1))
    # kio's nullable struct writer puts an int8 1 first: the same byte as Kafka's varint 1.
    write_present = entity_writer(ClassicMemberMetadata, nullable=True)
    write_tagged_field(buffer, uvarint(0), write_present, value.classic_member_metadata)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerGroupTargetAssignmentMetadataValue:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = True
    assignment_epoch: i32 = field(metadata={"kafka_type": "int32"})


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicPartitions:
    """Kafka gives the two assignment values each their own copy of this struct."""

    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = True
    topic_id: uuid.UUID = field(metadata={"kafka_type": "uuid"})
    partitions: tuple[i32, ...] = field(metadata={"kafka_type": "int32"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerGroupTargetAssignmentMemberValue:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = True
    topic_partitions: tuple[TopicPartitions, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerGroupCurrentMemberAssignmentValue:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = True
    member_epoch: i32 = field(metadata={"kafka_type": "int32"})
    previous_member_epoch: i32 = field(metadata={"kafka_type": "int32"})
    state: i8 = field(metadata={"kafka_type": "int8"})
    """Kafka's MemberState id."""
    assigned_partitions: tuple[TopicPartitions, ...]
    partitions_pending_revocation: tuple[TopicPartitions, ...]


OffsetsKey = (
    OffsetCommitKey | GroupMetadataKey | ConsumerGroupMetadataKey | ConsumerGroupPartitionMetadataKey
    | ConsumerGroupMemberMetadataKey | ConsumerGroupTargetAssignmentMetadataKey
    | ConsumerGroupTargetAssignmentMemberKey | ConsumerGroupCurrentMemberAssignmentKey
)
OffsetsValue = (
    OffsetCommitValue | GroupMetadataValue | ConsumerGroupMetadataValue | ConsumerGroupPartitionMetadataValue
    | ConsumerGroupMemberMetadataValue | ConsumerGroupTargetAssignmentMetadataValue
    | ConsumerGroupTargetAssignmentMemberValue | ConsumerGroupCurrentMemberAssignmentValue
)

_VALUE_SCHEMA_OF_KEY: dict[type[Any], ValueSchema] = {
    OffsetCommitKey: _OFFSET_COMMIT_VALUE,
    GroupMetadataKey: _GROUP_METADATA_VALUE,
    ConsumerGroupMetadataKey: ValueSchema.single_version(ConsumerGroupMetadataValue),
    ConsumerGroupPartitionMetadataKey: ValueSchema.single_version(ConsumerGroupPartitionMetadataValue),
    ConsumerGroupMemberMetadataKey: ValueSchema.single_version(
        ConsumerGroupMemberMetadataValue, _write_member_metadata_value
    ),
    ConsumerGroupTargetAssignmentMetadataKey: ValueSchema.single_version(ConsumerGroupTargetAssignmentMetadataValue),
    ConsumerGroupTargetAssignmentMemberKey: ValueSchema.single_version(ConsumerGroupTargetAssignmentMemberValue),
    ConsumerGroupCurrentMemberAssignmentKey: ValueSchema.single_version(ConsumerGroupCurrentMemberAssignmentValue),
}
_VALUE_SCHEMA_OF_VALUE = {schema.value_type: schema for schema in _VALUE_SCHEMA_OF_KEY.values()}
_KEY_OF_RECORD_TYPE = {0: OffsetCommitKey} | {key.__version__: key for key in _VALUE_SCHEMA_OF_KEY}


def encode_offsets_key(key: OffsetsKey) -> bytes:
    if type(key) not in _VALUE_SCHEMA_OF_KEY:
        raise TypeError(f"{type(key).__name__} is not a __consumer_offsets key")
    return encode_key(type(key).__version__, key)


def decode_offsets_key(data: bytes) -> OffsetsKey:
    """Raises UnknownRecordType for a record type not known here (Kafka's share group
    records among them)."""
    return decode_key(data, _KEY_OF_RECORD_TYPE)


def encode_offsets_value(value: OffsetsValue, version: int | None = None) -> bytes:
    """`value` at `version`, by default the one Kafka writes: for OffsetCommitValue 1 if
    it has an expire timestamp, else 3; for GroupMetadataValue 3; for the others 0.
    Fields the version lacks are left out."""
    return _VALUE_SCHEMA_OF_VALUE[type(value)].encode(value, version)


def decode_offsets_value(key: OffsetsKey, data: bytes | None) -> OffsetsValue | None:
    """The value of the record with this key; None for a tombstone. Raises
    UnknownRecordVersion for a version the record type does not have."""
    if data is None:
        return None
    return _VALUE_SCHEMA_OF_KEY[type(key)].decode(data)
