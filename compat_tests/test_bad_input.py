"""Malformed and unsupported requests over raw sockets. The broker answers as Kafka does,
closing the offending connection where Kafka would, and keeps serving everyone else."""

from __future__ import annotations

import datetime
import random
import struct

import pytest
import zstandard
from crc32c import crc32c
from kafka.record.default_records import DefaultRecordBatchBuilder
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.errors import ErrorCode
from kio.schema.list_offsets.v7.request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from kio.schema.metadata.v12.request import MetadataRequest
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.schema.types import BrokerId
from kio.static.primitive import i8

from kafkapy.compat.adapters.confluent import ConfluentKafka
from kafkapy.compat.raw import RawConnection
from kafkapy.wire.compression import Codec
from kafkapy.wire.protocol import encode_request
from kafkapy.wire.records import HEADER_SIZE
from raw_client import assert_served, frame_with_header, length_prefixed

pytestmark = pytest.mark.kafkapy_internals

SOCKET_REQUEST_MAX_BYTES = 104_857_600  # Kafka's default, which the shared broker keeps
API_VERSIONS_KEY = 18
VOTE_KEY = 52  # a KRaft quorum API, served by controllers only

METADATA = encode_request(
    MetadataRequest(topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False),
    correlation_id=1, client_id=None,
)
# Request header v2 with a null client id: api key, version, correlation id, client id length, tagged fields.
METADATA_HEADER = METADATA[4 : 4 + 2 + 2 + 4 + 2 + 1]

FRAMES_THAT_CLOSE_THE_CONNECTION = {
    "garbage": length_prefixed(random.Random(0).randbytes(64)),
    "negative length prefix": struct.pack(">i", -1),
    "length prefix over socket.request.max.bytes": struct.pack(">i", SOCKET_REQUEST_MAX_BYTES + 1) + b"\0" * 64,
    "shorter than a request header": length_prefixed(METADATA[4:9]),
    "truncated body": length_prefixed(METADATA[4:-2]),
    "garbage body": length_prefixed(METADATA_HEADER + b"\xff" * 32),
    "unknown api key": frame_with_header(METADATA, api_key=9999),
    "controller-only api key": frame_with_header(METADATA, api_key=VOTE_KEY),
    "unsupported version": frame_with_header(METADATA, version=99),
}


def assert_alive(broker) -> None:
    assert broker.process.poll() is None, broker.output


@pytest.mark.parametrize("frame", FRAMES_THAT_CLOSE_THE_CONNECTION.values(), ids=FRAMES_THAT_CLOSE_THE_CONNECTION.keys())
def test_bad_request_closes_only_its_connection(broker, frame):
    with RawConnection(broker.port) as bystander, RawConnection(broker.port) as offender:
        assert_served(bystander)

        offender.send(frame)

        assert offender.closed_by_broker()
        assert_served(bystander)
    assert_alive(broker)


def test_unfinished_request_does_not_hold_up_other_connections(broker):
    with RawConnection(broker.port) as bystander, RawConnection(broker.port) as offender:
        offender.send(METADATA[:-3])

        assert_served(bystander)
    assert_alive(broker)


def test_api_versions_at_an_unknown_version_gets_a_v0_unsupported_version_answer(broker):
    with RawConnection(broker.port) as bystander, RawConnection(broker.port) as client:
        assert_served(bystander)
        request = ApiVersionsRequest(client_software_name="compat-tests", client_software_version="1")

        client.send(frame_with_header(encode_request(request, correlation_id=7), version=99))
        answer = client.response(API_VERSIONS_KEY, 0, 7)

        assert answer.error_code == ErrorCode.unsupported_version
        # As Kafka (KIP-511), it names the ApiVersions versions it speaks, so the client can retry with one.
        supported = client.request(request)
        assert supported.error_code == ErrorCode.none
        own = [(k.api_key, k.min_version, k.max_version) for k in supported.api_keys if k.api_key == API_VERSIONS_KEY]
        assert [(k.api_key, k.min_version, k.max_version) for k in answer.api_keys] == own
        assert_served(bystander)
    assert_alive(broker)


def record_batch(values: list[bytes]) -> bytes:
    """A v2 record batch, built by kafka-python's encoder rather than the broker's own."""
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=0, is_transactional=False, producer_id=-1, producer_epoch=-1, base_sequence=-1,
        batch_size=1 << 20,
    )
    for offset, value in enumerate(values):
        builder.append(offset, timestamp=1000 + offset, key=None, value=value, headers=[])
    return bytes(builder.build())


def produce_request(topic: str, records: bytes) -> ProduceRequest:
    return ProduceRequest(
        transactional_id=None, acks=-1, timeout=datetime.timedelta(seconds=10),
        topic_data=(TopicProduceData(name=topic, partition_data=(PartitionProduceData(index=0, records=records),)),),
    )


def test_batch_with_a_wrong_crc_is_refused_as_corrupt(broker, topic_name):
    ConfluentKafka(broker.bootstrap).create_topic(topic_name, 1)
    batch = record_batch([b"first", b"second"])
    corrupt = bytearray(batch)
    corrupt[-1] ^= 0xFF  # the last byte of the last record, which the CRC covers

    with RawConnection(broker.port) as bystander, RawConnection(broker.port) as producer:
        assert_served(bystander)

        [refused] = producer.request(produce_request(topic_name, bytes(corrupt))).responses[0].partition_responses

        assert (refused.error_code, refused.base_offset) == (ErrorCode.corrupt_message, -1)
        # The connection is still served, and nothing of the corrupt batch was appended.
        [accepted] = producer.request(produce_request(topic_name, batch)).responses[0].partition_responses
        assert (accepted.error_code, accepted.base_offset) == (ErrorCode.none, 0)
        assert_served(bystander)
    assert_alive(broker)


def zstd_bomb(inflated_gib: int) -> bytes:
    """A batch of a few hundred KB whose records section inflates to inflated_gib GiB:
    zstd frames of 128 MiB of zeros, one after the other."""
    frame = zstandard.ZstdCompressor().compress(b"\0" * (128 << 20))
    batch = bytearray(record_batch([b"bomb"]))
    batch[HEADER_SIZE:] = frame * (inflated_gib * 8)
    (attributes,) = struct.unpack_from(">h", batch, 21)
    struct.pack_into(">h", batch, 21, attributes | Codec.ZSTD)
    struct.pack_into(">i", batch, 8, len(batch) - 12)
    struct.pack_into(">I", batch, 17, crc32c(bytes(batch[21:])))
    return bytes(batch)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@pytest.mark.timeout(60)
def test_a_decompression_bomb_is_refused_and_memory_stays_flat(broker, topic_name):
    bomb = zstd_bomb(inflated_gib=10)
    assert len(bomb) < 1_000_000  # inside max.message.bytes as sent
    admin = ConfluentKafka(broker.bootstrap)
    compacted, plain = f"{topic_name}-compacted", f"{topic_name}-plain"
    admin.create_topic(compacted, 1, {"cleanup.policy": "compact"})
    admin.create_topic(plain, 1)
    before = rss_mib(broker.process.pid)

    with RawConnection(broker.port) as bystander, RawConnection(broker.port) as producer:
        # As Kafka's validator the broker opens every compressed batch a client sends (for
        # its records' structure, timestamps and, compacted, keys), never past max.message.bytes.
        for topic in (compacted, plain):
            [refused] = producer.request(produce_request(topic, bomb)).responses[0].partition_responses
            assert (refused.error_code, refused.base_offset) == (ErrorCode.message_too_large, -1)
            [found] = producer.request(list_offsets_request(topic, timestamp=0)).topics[0].partitions
            assert (found.error_code, found.offset) == (ErrorCode.none, -1)
        assert_served(bystander)

    assert rss_mib(broker.process.pid) - before < 100
    assert_alive(broker)


def list_offsets_request(topic: str, timestamp: int) -> ListOffsetsRequest:
    partition = ListOffsetsPartition(partition_index=0, current_leader_epoch=-1, timestamp=timestamp)
    return ListOffsetsRequest(
        replica_id=BrokerId(-1), isolation_level=i8(0),  # read uncommitted
        topics=(ListOffsetsTopic(name=topic, partitions=(partition,)),),
    )
