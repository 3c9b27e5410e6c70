"""KRaft metadata records, as kio-style entities read and written by kio's serial code.

Schemas follow Apache Kafka's metadata record definitions (`metadata/src/main/
resources/common/metadata/*.json`). On disk each record value is framed as Kafka's
metadata serde frames it: unsigned varints of frame version, record type and record
version, then the record's flexible encoding.
"""


import io
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

from kio.serial import entity_reader, entity_writer
from kio.serial.readers import read_unsigned_varint
from kio.serial.writers import write_unsigned_varint
from kio.static.constants import EntityType
from kio.static.primitive import i8, i16, i32, i64, u16, uvarint

_FRAME_VERSION = uvarint(1)

# ConfigRecord.resource_type values (Kafka's ConfigResource.Type).
RESOURCE_TOPIC = i8(2)
RESOURCE_BROKER = i8(4)


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerEndpoint:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(1)
    __flexible__: ClassVar[bool] = True
    name: str = field(metadata={"kafka_type": "string"})
    host: str = field(metadata={"kafka_type": "string"})
    port: u16 = field(metadata={"kafka_type": "uint16"})
    security_protocol: i16 = field(metadata={"kafka_type": "int16"})


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerFeature:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(1)
    __flexible__: ClassVar[bool] = True
    name: str = field(metadata={"kafka_type": "string"})
    min_supported_version: i16 = field(metadata={"kafka_type": "int16"})
    max_supported_version: i16 = field(metadata={"kafka_type": "int16"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterBrokerRecord:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(1)
    __flexible__: ClassVar[bool] = True
    __record_type__: ClassVar[int] = 0
    broker_id: i32 = field(metadata={"kafka_type": "int32"})
    incarnation_id: uuid.UUID = field(metadata={"kafka_type": "uuid"})
    broker_epoch: i64 = field(metadata={"kafka_type": "int64"})
    end_points: tuple[BrokerEndpoint, ...]
    features: tuple[BrokerFeature, ...]
    rack: str | None = field(metadata={"kafka_type": "string"})
    fenced: bool = field(metadata={"kafka_type": "bool"}, default=True)
    in_controlled_shutdown: bool = field(metadata={"kafka_type": "bool"}, default=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicRecord:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = True
    __record_type__: ClassVar[int] = 2
    name: str = field(metadata={"kafka_type": "string"})
    topic_id: uuid.UUID = field(metadata={"kafka_type": "uuid"})


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionRecord:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = True
    __record_type__: ClassVar[int] = 3
    partition_id: i32 = field(metadata={"kafka_type": "int32"}, default=i32(-1))
    topic_id: uuid.UUID = field(metadata={"kafka_type": "uuid"})
    replicas: tuple[i32, ...] = field(metadata={"kafka_type": "int32"})
    isr: tuple[i32, ...] = field(metadata={"kafka_type": "int32"})
    removing_replicas: tuple[i32, ...] = field(metadata={"kafka_type": "int32"}, default=())
    adding_replicas: tuple[i32, ...] = field(metadata={"kafka_type": "int32"}, default=())
    leader: i32 = field(metadata={"kafka_type": "int32"}, default=i32(-1))
    leader_recovery_state: i8 = field(metadata={"kafka_type": "int8", "tag": 0}, default=i8(0))
    leader_epoch: i32 = field(metadata={"kafka_type": "int32"}, default=i32(-1))
    partition_epoch: i32 = field(metadata={"kafka_type": "int32"}, default=i32(-1))


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigRecord:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = True
    __record_type__: ClassVar[int] = 4
    resource_type: i8 = field(metadata={"kafka_type": "int8"})
    resource_name: str = field(metadata={"kafka_type": "string"})
    name: str = field(metadata={"kafka_type": "string"})
    value: str | None = field(metadata={"kafka_type": "string"})
    """None removes the config."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionChangeRecord:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = True
    __record_type__: ClassVar[int] = 5
    partition_id: i32 = field(metadata={"kafka_type": "int32"}, default=i32(-1))
    topic_id: uuid.UUID = field(metadata={"kafka_type": "uuid"})
    isr: tuple[i32, ...] | None = field(metadata={"kafka_type": "int32", "tag": 0}, default=None)
    leader: i32 = field(metadata={"kafka_type": "int32", "tag": 1}, default=i32(-2))
    replicas: tuple[i32, ...] | None = field(metadata={"kafka_type": "int32", "tag": 2}, default=None)
    removing_replicas: tuple[i32, ...] | None = field(metadata={"kafka_type": "int32", "tag": 3}, default=None)
    adding_replicas: tuple[i32, ...] | None = field(metadata={"kafka_type": "int32", "tag": 4}, default=None)
    leader_recovery_state: i8 = field(metadata={"kafka_type": "int8", "tag": 5}, default=i8(-1))


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveTopicRecord:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = True
    __record_type__: ClassVar[int] = 9
    topic_id: uuid.UUID = field(metadata={"kafka_type": "uuid"})


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerRegistrationChangeRecord:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(1)
    __flexible__: ClassVar[bool] = True
    __record_type__: ClassVar[int] = 17
    broker_id: i32 = field(metadata={"kafka_type": "int32"})
    broker_epoch: i64 = field(metadata={"kafka_type": "int64"})
    fenced: i8 = field(metadata={"kafka_type": "int8", "tag": 0}, default=i8(0))
    """-1 unfenced, 0 no change, 1 fenced."""
    in_controlled_shutdown: i8 = field(metadata={"kafka_type": "int8", "tag": 1}, default=i8(0))
    """0 no change, 1 in controlled shutdown."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureLevelRecord:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = True
    __record_type__: ClassVar[int] = 12
    name: str = field(metadata={"kafka_type": "string"})
    feature_level: i16 = field(metadata={"kafka_type": "int16"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ProducerIdsRecord:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = True
    __record_type__: ClassVar[int] = 15
    broker_id: i32 = field(metadata={"kafka_type": "int32"})
    broker_epoch: i64 = field(metadata={"kafka_type": "int64"}, default=i64(-1))
    next_producer_id: i64 = field(metadata={"kafka_type": "int64"})


@dataclass(frozen=True, slots=True, kw_only=True)
class NoOpRecord:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = True
    __record_type__: ClassVar[int] = 20


RECORD_TYPES: dict[int, type[Any]] = {
    cls.__record_type__: cls
    for cls in (
        RegisterBrokerRecord, TopicRecord, PartitionRecord, ConfigRecord, PartitionChangeRecord,
        RemoveTopicRecord, FeatureLevelRecord, ProducerIdsRecord, NoOpRecord, BrokerRegistrationChangeRecord,
    )
}


class UnknownMetadataRecord(ValueError):
    pass


def encode_record(record: Any) -> bytes:
    out = io.BytesIO()
    write_unsigned_varint(out, _FRAME_VERSION)
    write_unsigned_varint(out, type(record).__record_type__)
    write_unsigned_varint(out, type(record).__version__)
    entity_writer(type(record))(out, record)
    return out.getvalue()


def decode_record(data: bytes) -> Any:
    frame_version, pos = read_unsigned_varint(data, 0)
    record_type, size = read_unsigned_varint(data, pos)
    pos += size
    version, size = read_unsigned_varint(data, pos)
    pos += size
    cls = RECORD_TYPES.get(record_type)
    if frame_version != _FRAME_VERSION or cls is None or version != cls.__version__:
        raise UnknownMetadataRecord(f"metadata record type {record_type} version {version} (frame {frame_version})")
    record, _ = entity_reader(cls)(data, pos)
    return record
