"""The protocol versions generated from Kafka 3.9's JSON (kafkapy.schema.legacy): found by
the codec, in kio's shape (a field shared with kio's oldest version has kio's type and
name), and reading and writing the bytes Kafka 3.9 does, built here from its JSON."""

import dataclasses
import io
import re

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.types import BrokerId, GroupId, TopicName
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import i32, i64

from kafkapy.schema.legacy import VERSIONS
from kafkapy.schema.legacy.list_offsets.v0.request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from kafkapy.schema.legacy.list_offsets.v0.response import ListOffsetsResponse
from kafkapy.schema.legacy.offset_commit.v1.request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from kafkapy.wire.protocol import codec_versions, kio_versions, request_type, response_type

LEGACY = [(key, version) for key, (_, _, _, versions) in sorted(VERSIONS.items()) for version in versions]


def _fields(entity_class: type) -> dict[str, str]:
    """Each field's type and kafka_type, a struct named without its module (the struct of
    the same name in kio's module and in the generated one)."""
    return {f.name: re.sub(r"\b[a-z_][\w]*\.", "", f"{f.type} {f.metadata.get('kafka_type')}") for f in dataclasses.fields(entity_class)}


@pytest.mark.parametrize(("api_key", "version"), LEGACY, ids=[f"{k}-v{v}" for k, v in LEGACY])
def test_a_legacy_version_is_found_and_shaped_as_kios_oldest(api_key, version):
    oldest = kio_versions(api_key)
    assert oldest is not None and version < oldest[0]
    assert codec_versions(api_key) == (min(VERSIONS[api_key][3]), oldest[1])
    for find in (request_type, response_type):
        legacy, kio_oldest = find(api_key, version), find(api_key, oldest[0])
        assert (legacy.__api_key__, legacy.__version__) == (api_key, version)
        shared = _fields(legacy).keys() & _fields(kio_oldest).keys()
        assert {n: _fields(legacy)[n] for n in shared} == {n: _fields(kio_oldest)[n] for n in shared}


def _written(entity: object) -> bytes:
    buffer = io.BytesIO()
    entity_writer(type(entity))(buffer, entity)
    return buffer.getvalue()


def test_list_offsets_v0_bytes():
    # ListOffsetsRequest.json v0: ReplicaId int32, Topics [Name string, Partitions
    # [PartitionIndex int32, Timestamp int64, MaxNumOffsets int32]].
    request = (
        (-1).to_bytes(4, signed=True) + (1).to_bytes(4) + b"\x00\x01t" + (1).to_bytes(4)
        + (2).to_bytes(4) + (-1).to_bytes(8, signed=True) + (5).to_bytes(4)
    )
    expected = ListOffsetsRequest(replica_id=BrokerId(-1), topics=(ListOffsetsTopic(name=TopicName("t"), partitions=(
        ListOffsetsPartition(partition_index=i32(2), timestamp=i64(-1), max_num_offsets=i32(5)),)),))
    assert entity_reader(ListOffsetsRequest)(request, 0) == (expected, len(request))
    assert _written(expected) == request
    # ListOffsetsResponse.json v0: Topics [Name, Partitions [PartitionIndex, ErrorCode int16, OldStyleOffsets [int64]]].
    response = (
        (1).to_bytes(4) + b"\x00\x01t" + (1).to_bytes(4) + (2).to_bytes(4) + (0).to_bytes(2)
        + (2).to_bytes(4) + (7).to_bytes(8) + (0).to_bytes(8)
    )
    decoded, size = entity_reader(ListOffsetsResponse)(response, 0)
    assert size == len(response)
    ((partition,),) = [t.partitions for t in decoded.topics]
    assert (partition.error_code, partition.old_style_offsets) == (ErrorCode.none, (7, 0))


def test_offset_commit_v1_bytes():
    # OffsetCommitRequest.json v1: GroupId, GenerationIdOrMemberEpoch int32, MemberId, Topics
    # [Name, Partitions [PartitionIndex, CommittedOffset int64, CommitTimestamp int64 (v1 only), CommittedMetadata nullable]].
    request = (
        b"\x00\x01g" + (3).to_bytes(4) + b"\x00\x01m" + (1).to_bytes(4) + b"\x00\x01t" + (1).to_bytes(4)
        + (0).to_bytes(4) + (42).to_bytes(8) + (1_600_000_000_000).to_bytes(8) + b"\xff\xff"
    )
    expected = OffsetCommitRequest(group_id=GroupId("g"), generation_id_or_member_epoch=i32(3), member_id="m", topics=(
        OffsetCommitRequestTopic(name=TopicName("t"), partitions=(OffsetCommitRequestPartition(
            partition_index=i32(0), committed_offset=i64(42), commit_timestamp=i64(1_600_000_000_000), committed_metadata=None),)),))
    assert entity_reader(OffsetCommitRequest)(request, 0) == (expected, len(request))
    assert _written(expected) == request
