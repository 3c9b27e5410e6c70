"""KRaft metadata records: the generated schemas (kafkapy.schema.metadata, from Kafka's
`metadata/src/main/resources/common/metadata/*.json`) at the versions kafkapy writes,
and Kafka's metadata serde framing. On disk each record value is framed as Kafka's
metadata serde frames it: unsigned varints of frame version, record type and record
version, then the record's flexible encoding.

A record read at another version of its schema than the one written here is decoded
with that version's class (imported then) and moved into the class of the version
written here: the fields that version lacks take their defaults, fields only it has
are dropped.
"""

import io
from typing import Any

from kio.serial import entity_reader, entity_writer
from kio.serial.readers import read_unsigned_varint
from kio.serial.writers import write_unsigned_varint
from kio.static.primitive import i8, uvarint

from ..schema import metadata as metadata_schemas
from ..schema.metadata.access_control_entry_record.v0 import AccessControlEntryRecord
from ..schema.metadata.broker_registration_change_record.v1 import BrokerRegistrationChangeRecord
from ..schema.metadata.config_record.v0 import ConfigRecord
from ..schema.metadata.feature_level_record.v0 import FeatureLevelRecord
from ..schema.metadata.no_op_record.v0 import NoOpRecord
from ..schema.metadata.partition_change_record.v0 import PartitionChangeRecord
from ..schema.metadata.partition_record.v0 import PartitionRecord
from ..schema.metadata.producer_ids_record.v0 import ProducerIdsRecord
from ..schema.metadata.register_broker_record.v1 import BrokerEndpoint, BrokerFeature, RegisterBrokerRecord
from ..schema.metadata.remove_access_control_entry_record.v0 import RemoveAccessControlEntryRecord
from ..schema.metadata.remove_topic_record.v0 import RemoveTopicRecord
from ..schema.metadata.remove_user_scram_credential_record.v0 import RemoveUserScramCredentialRecord
from ..schema.metadata.topic_record.v0 import TopicRecord
from ..schema.metadata.user_scram_credential_record.v0 import UserScramCredentialRecord
from ..schema.versions import convert, schema_class

__all__ = [
    "RECORD_TYPES", "RESOURCE_BROKER", "RESOURCE_TOPIC", "AccessControlEntryRecord", "BrokerEndpoint", "BrokerFeature",
    "BrokerRegistrationChangeRecord", "ConfigRecord", "FeatureLevelRecord", "NoOpRecord", "PartitionChangeRecord",
    "PartitionRecord", "ProducerIdsRecord", "RegisterBrokerRecord", "RemoveAccessControlEntryRecord", "RemoveTopicRecord",
    "RemoveUserScramCredentialRecord", "TopicRecord", "UnknownMetadataRecord", "UserScramCredentialRecord", "decode_record", "encode_record",
]

_FRAME_VERSION = uvarint(1)

# ConfigRecord.resource_type values (Kafka's ConfigResource.Type).
RESOURCE_TOPIC = i8(2)
RESOURCE_BROKER = i8(4)


# Each record type kafkapy knows: the class of the version it writes.
RECORD_TYPES: dict[int, type[Any]] = {
    cls.__record_type__: cls
    for cls in (
        RegisterBrokerRecord, TopicRecord, PartitionRecord, ConfigRecord, PartitionChangeRecord,
        RemoveTopicRecord, FeatureLevelRecord, ProducerIdsRecord, NoOpRecord, BrokerRegistrationChangeRecord,
        AccessControlEntryRecord, RemoveAccessControlEntryRecord, UserScramCredentialRecord, RemoveUserScramCredentialRecord,
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
    read_cls = None
    if frame_version == _FRAME_VERSION and cls is not None:
        read_cls = cls if version == cls.__version__ else schema_class(_schema_package(record_type), version)
    if cls is None or read_cls is None:
        raise UnknownMetadataRecord(f"metadata record type {record_type} version {version} (frame {frame_version})")
    record: Any = entity_reader(read_cls)(data, pos)[0]
    return convert(record, cls)


def _schema_package(record_type: int) -> str:
    return f"{metadata_schemas.__name__}.{metadata_schemas.RECORD_TYPES[record_type]}"
