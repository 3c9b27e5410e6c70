"""The schemas generated from Kafka's JSON (kafkapy.schema): every version of every record
survives kio's writer and reader, the version-free classes hold every version's fields,
and a few records encode to the bytes Kafka writes, built here field by field from
Kafka's JSON."""

import importlib
import io
import pkgutil
import uuid
from dataclasses import fields, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i8, i16, i32, i64, u16

import kafkapy.schema.group_coordinator
import kafkapy.schema.metadata
import kafkapy.schema.transaction_coordinator
from kafkapy.coordinator.records.consumer_offsets import OffsetCommitKey, OffsetCommitValue, decode_offsets_value
from kafkapy.metadata.records import PartitionRecord, RegisterBrokerRecord, decode_record, encode_record
from kafkapy.schema.versions import convert, schema_class

FAMILIES = (kafkapy.schema.metadata, kafkapy.schema.group_coordinator, kafkapy.schema.transaction_coordinator)
TOPIC_ID = uuid.UUID("6f1c3a52-8d4e-4b7a-9c2d-0e5f7a9b1c3d")


def _schemas() -> list[tuple[str, int]]:
    """(package, version) of every version of every generated record."""
    found = []
    for family in FAMILIES:
        for module in pkgutil.iter_modules(family.__path__):
            package = importlib.import_module(f"{family.__name__}.{module.name}")
            found.extend((package.__name__, v) for v in range(package.LOWEST_VERSION, package.HIGHEST_VERSION + 1))
    return found


SCHEMAS = _schemas()


def _schema(package: str, version: int) -> type:
    schema = schema_class(package, version)
    assert schema is not None
    return schema


def test_every_record_of_kafkas_json_is_generated():
    # A few records and the versions Kafka's JSON declares for them.
    names = {package.rpartition(".")[2] for package, _ in SCHEMAS}
    assert {"partition_record", "offset_commit_value", "transaction_log_value", "register_broker_record"} <= names
    assert sorted(v for package, v in SCHEMAS if package.endswith(".register_broker_record")) == [0, 1, 2, 3]
    assert sorted(v for package, v in SCHEMAS if package.endswith(".offset_commit_value")) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(("package", "version"), SCHEMAS, ids=[f"{p.rpartition('.')[2]}-v{v}" for p, v in SCHEMAS])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(package, version, data):
    schema = _schema(package, version)
    record = data.draw(st.from_type(schema))
    if any(field.name == "classic_member_metadata" for field in fields(schema)):
        # kio's writer leaves out the presence byte of a tagged nullable struct;
        # consumer_offsets writes that field itself (tested in test_coordinator_records).
        record = replace(record, classic_member_metadata=None)
    buffer = io.BytesIO()
    entity_writer(schema)(buffer, record)
    decoded, size = entity_reader(schema)(buffer.getvalue(), 0)
    assert size == len(buffer.getvalue())
    assert decoded == record


MULTI_VERSION = [(p, v) for p, v in SCHEMAS if importlib.import_module(p).HIGHEST_VERSION > importlib.import_module(p).LOWEST_VERSION]


@pytest.mark.parametrize(("package", "version"), MULTI_VERSION, ids=[f"{p.rpartition('.')[2]}-v{v}" for p, v in MULTI_VERSION])
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_the_version_free_class_holds_every_field_of_each_version(package, version, data):
    schema = _schema(package, version)
    version_free = getattr(importlib.import_module(f"{package}.all_versions"), schema.__name__)
    record = data.draw(st.from_type(schema))
    assert convert(convert(record, version_free), schema) == record


def test_partition_record_bytes():
    # PartitionRecord.json, version 0 (flexible), after the metadata frame.
    expected = (
        b"\x01"  # frame version (unsigned varint)
        + b"\x03"  # record type: PartitionRecord's apiKey
        + b"\x00"  # record version
        + (4).to_bytes(4)  # PartitionId int32
        + TOPIC_ID.bytes  # TopicId uuid
        + b"\x03" + (1).to_bytes(4) + (2).to_bytes(4)  # Replicas: compact array, length + 1, int32 each
        + b"\x02" + (1).to_bytes(4)  # Isr
        + b"\x01"  # RemovingReplicas: empty
        + b"\x01"  # AddingReplicas: empty
        + (1).to_bytes(4)  # Leader
        + (7).to_bytes(4)  # LeaderEpoch
        + (9).to_bytes(4)  # PartitionEpoch
        + b"\x01" + b"\x00" + b"\x01" + b"\x01"  # tagged fields: one; tag 0 LeaderRecoveryState, size 1, value 1
    )
    record = PartitionRecord(
        partition_id=i32(4), topic_id=TOPIC_ID, replicas=(i32(1), i32(2)), isr=(i32(1),), leader=i32(1),
        leader_recovery_state=i8(1), leader_epoch=i32(7), partition_epoch=i32(9),
    )
    assert encode_record(record) == expected
    assert decode_record(expected) == record
    # At its default (0), LeaderRecoveryState is left out: no tagged fields.
    assert encode_record(replace(record, leader_recovery_state=i8(0))) == expected[:-4] + b"\x00"


def test_a_newer_partition_record_is_read_into_the_version_written():
    # Version 2 as Kafka 4 writes it: Directories (uuid array) after PartitionEpoch, and
    # EligibleLeaderReplicas as tag 1; kafkapy writes version 0 and drops both.
    directory = uuid.UUID(int=7)
    newer = (
        b"\x01\x03\x02" + (0).to_bytes(4) + TOPIC_ID.bytes
        + b"\x02" + (1).to_bytes(4) + b"\x02" + (1).to_bytes(4) + b"\x01\x01"
        + (1).to_bytes(4) + (0).to_bytes(4) + (0).to_bytes(4)
        + b"\x02" + directory.bytes  # Directories
        + b"\x01" + b"\x01" + b"\x05" + b"\x02" + (1).to_bytes(4)  # one tag: 1 ELR, size 5, array [1]
    )
    assert decode_record(newer) == PartitionRecord(
        partition_id=i32(0), topic_id=TOPIC_ID, replicas=(i32(1),), isr=(i32(1),), leader=i32(1),
        leader_epoch=i32(0), partition_epoch=i32(0),
    )


def test_an_older_broker_registration_is_read_into_the_version_written():
    # RegisterBrokerRecord version 0 lacks InControlledShutdown (version 1+): its default applies.
    incarnation = uuid.UUID(int=3)
    older = (
        b"\x01\x00\x00" + (2).to_bytes(4) + incarnation.bytes + (5).to_bytes(8)
        + b"\x02" + b"\x03PL" + b"\x0a127.0.0.1" + (9092).to_bytes(2) + (0).to_bytes(2) + b"\x00"  # EndPoints
        + b"\x01"  # Features: empty
        + b"\x00"  # Rack: null
        + b"\x00"  # Fenced: false
        + b"\x00"  # no tagged fields
    )
    record = decode_record(older)
    assert isinstance(record, RegisterBrokerRecord)
    assert (record.broker_id, record.broker_epoch, record.fenced, record.in_controlled_shutdown) == (2, 5, False, False)
    assert [(e.name, e.host, e.port) for e in record.end_points] == [("PL", "127.0.0.1", u16(9092))]


def test_offset_commit_value_version_4_bytes_are_read():
    # OffsetCommitValue.json version 4, the first flexible one: compact string, tagged fields.
    data = (
        b"\x00\x04"  # int16 version
        + (5).to_bytes(8)  # offset int64
        + (2).to_bytes(4)  # leaderEpoch int32
        + b"\x02m"  # metadata: compact string, length + 1
        + (7).to_bytes(8)  # commitTimestamp int64
        + b"\x00"  # no tagged fields
    )
    key = OffsetCommitKey(group="g", topic="t", partition=i32(0))
    assert decode_offsets_value(key, data) == OffsetCommitValue(offset=5, leader_epoch=2, metadata="m", commit_timestamp=7)


def test_generated_classes_carry_kios_class_vars():
    schema = _schema("kafkapy.schema.metadata.partition_change_record", 2)
    assert (schema.__version__, schema.__flexible__, schema.__record_type__) == (i16(2), True, 5)
    assert {f.name: f.metadata.get("tag") for f in fields(schema)}["eligible_leader_replicas"] == 6
    assert i64(-1) == _schema("kafkapy.schema.metadata.producer_ids_record", 0)(broker_id=i32(1), next_producer_id=i64(0)).broker_epoch
