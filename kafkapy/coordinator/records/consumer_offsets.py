"""The records of `__consumer_offsets`, as Kafka's group coordinator writes them
(schemas: generated from Kafka's group-coordinator/src/main/resources/common/message/
*.json into kafkapy.schema.group_coordinator).

A key's int16 version is its record type (GroupCoordinatorRecordSerde): 0 and 1 offset
commit, 2 classic group metadata, 3-8 the consumer group (KIP-848) records. Keys and
single-version values are the generated classes of their one version. Values with
several versions are the generated version-free classes, holding the fields of every
version (as Kafka's generated classes do): decoding fills the fields a version lacks
with their defaults, encoding picks the version Kafka writes (see `encode_offsets_value`).
"""

import io
from dataclasses import replace
from typing import Any

from kio.serial import entity_writer
from kio.serial.writers import Writable, write_tagged_field, write_unsigned_varint
from kio.static.primitive import uvarint

from ...schema.group_coordinator.consumer_group_current_member_assignment_key.v8 import (
    ConsumerGroupCurrentMemberAssignmentKey,
)
from ...schema.group_coordinator.consumer_group_current_member_assignment_value.v0 import (
    ConsumerGroupCurrentMemberAssignmentValue,
    TopicPartitions,
)
from ...schema.group_coordinator.consumer_group_member_metadata_key.v5 import ConsumerGroupMemberMetadataKey
from ...schema.group_coordinator.consumer_group_member_metadata_value.v0 import (
    ClassicMemberMetadata,
    ClassicProtocol,
    ConsumerGroupMemberMetadataValue,
)
from ...schema.group_coordinator.consumer_group_metadata_key.v3 import ConsumerGroupMetadataKey
from ...schema.group_coordinator.consumer_group_metadata_value.v0 import ConsumerGroupMetadataValue
from ...schema.group_coordinator.consumer_group_partition_metadata_key.v4 import ConsumerGroupPartitionMetadataKey
from ...schema.group_coordinator.consumer_group_partition_metadata_value.v0 import (
    ConsumerGroupPartitionMetadataValue,
    PartitionMetadata,
    TopicMetadata,
)
from ...schema.group_coordinator.consumer_group_target_assignment_member_key.v7 import (
    ConsumerGroupTargetAssignmentMemberKey,
)
from ...schema.group_coordinator.consumer_group_target_assignment_member_value.v0 import (
    ConsumerGroupTargetAssignmentMemberValue,
    TopicPartition,
)
from ...schema.group_coordinator.consumer_group_target_assignment_metadata_key.v6 import (
    ConsumerGroupTargetAssignmentMetadataKey,
)
from ...schema.group_coordinator.consumer_group_target_assignment_metadata_value.v0 import (
    ConsumerGroupTargetAssignmentMetadataValue,
)
from ...schema.group_coordinator.group_metadata_key.v2 import GroupMetadataKey
from ...schema.group_coordinator.group_metadata_value.all_versions import GroupMetadataValue, MemberMetadata
from ...schema.group_coordinator.offset_commit_key.v1 import OffsetCommitKey
from ...schema.group_coordinator.offset_commit_value.all_versions import OffsetCommitValue
from .framing import ValueSchema, decode_key, encode_key

# The records' nested structs, which callers build too, are re-exported with them.
__all__ = [
    "ClassicMemberMetadata", "ClassicProtocol", "ConsumerGroupCurrentMemberAssignmentKey",
    "ConsumerGroupCurrentMemberAssignmentValue", "ConsumerGroupMemberMetadataKey", "ConsumerGroupMemberMetadataValue",
    "ConsumerGroupMetadataKey", "ConsumerGroupMetadataValue", "ConsumerGroupPartitionMetadataKey",
    "ConsumerGroupPartitionMetadataValue", "ConsumerGroupTargetAssignmentMemberKey", "ConsumerGroupTargetAssignmentMemberValue",
    "ConsumerGroupTargetAssignmentMetadataKey", "ConsumerGroupTargetAssignmentMetadataValue", "GroupMetadataKey",
    "GroupMetadataValue", "MemberMetadata", "OffsetCommitKey", "OffsetCommitValue", "OffsetsKey", "OffsetsValue",
    "PartitionMetadata", "TopicMetadata", "TopicPartition", "TopicPartitions", "decode_offsets_key", "decode_offsets_value",
    "encode_offsets_key", "encode_offsets_value",
]


def _offset_commit_version(value: OffsetCommitValue) -> int:
    # MetadataVersion.offsetCommitValueVersion: 1 while an expire timestamp is set (the
    # only version holding it), else 3, the newest non-flexible version.
    return 1 if value.expire_timestamp != -1 else 3


_OFFSET_COMMIT_VALUE = ValueSchema(OffsetCommitValue, _offset_commit_version)
# MetadataVersion.groupMetadataValueVersion: 3, the newest non-flexible version.
_GROUP_METADATA_VALUE = ValueSchema(GroupMetadataValue, lambda _: 3)


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
# Version 0 of OffsetCommitKey has the fields of version 1, which kafkapy writes.
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
