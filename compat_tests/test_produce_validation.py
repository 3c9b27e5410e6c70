"""Kafka's validation of produced batches, end to end against a kafkapy process: raw Produce
requests for what no client library sends (a wrong max timestamp, a transactional batch
without a transactional id) and a real client refused for its timestamps."""

from __future__ import annotations

import datetime
import struct
import time

import pytest
from crc32c import crc32c
from kio.schema.errors import ErrorCode
from kio.schema.list_offsets.v7.request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.schema.types import BrokerId
from kio.static.primitive import i8

from kafkapy.compat.adapters.base import BrokerError, Record
from kafkapy.compat.adapters.confluent import ConfluentKafka
from kafkapy.compat.raw import RawConnection
from kafkapy.wire.records import Record as WireRecord
from kafkapy.wire.records import encode_batch

pytestmark = pytest.mark.kafkapy_internals

HOUR_MS = 3_600_000


def produce(connection: RawConnection, topic: str, batch: bytes, transactional_id: str | None = None):
    request = ProduceRequest(
        transactional_id=transactional_id, acks=i8(-1), timeout=datetime.timedelta(seconds=10),
        topic_data=(TopicProduceData(name=topic, partition_data=(PartitionProduceData(index=0, records=batch),)),),
    )
    [answer] = connection.request(request).responses[0].partition_responses
    return answer


def offset_for_time(connection: RawConnection, topic: str, timestamp: int) -> tuple[int, int]:
    partition = ListOffsetsPartition(partition_index=0, current_leader_epoch=-1, timestamp=timestamp)
    request = ListOffsetsRequest(replica_id=BrokerId(-1), isolation_level=i8(0),
                                 topics=(ListOffsetsTopic(name=topic, partitions=(partition,)),))
    [found] = connection.request(request).topics[0].partitions
    assert found.error_code == ErrorCode.none
    return found.offset, found.timestamp


def with_max_timestamp(batch: bytes, max_timestamp: int) -> bytes:
    """The batch claiming another max timestamp, its CRC resealed."""
    out = bytearray(batch)
    struct.pack_into(">q", out, 35, max_timestamp)
    struct.pack_into(">I", out, 17, crc32c(bytes(out[21:])))
    return bytes(out)


def test_a_wrong_max_timestamp_does_not_hide_records_from_lookups_by_time(broker, topic_name):
    ConfluentKafka(broker.bootstrap).create_topic(topic_name, 1)
    now = int(time.time() * 1000)
    records = [WireRecord(i, now + ts, b"k", b"v") for i, ts in enumerate((0, 30_000, 10_000))]
    with RawConnection(broker.port) as connection:
        assert produce(connection, topic_name, encode_batch([WireRecord(0, now - 5_000, b"k", b"first")])).error_code == ErrorCode.none
        # The producer claims the batch's newest record is older than any of its records.
        accepted = produce(connection, topic_name, with_max_timestamp(encode_batch(records), now - 60_000))
        assert (accepted.error_code, accepted.base_offset) == (ErrorCode.none, 1)

        assert offset_for_time(connection, topic_name, now + 20_000) == (2, now + 30_000)
        assert offset_for_time(connection, topic_name, now + 1) == (2, now + 30_000)
        assert offset_for_time(connection, topic_name, now) == (1, now)
        assert offset_for_time(connection, topic_name, -3) == (2, now + 30_000)  # MAX_TIMESTAMP


def test_timestamps_out_of_range_are_refused_with_each_records_index(broker, topic_name):
    ConfluentKafka(broker.bootstrap).create_topic(
        topic_name, 1, {"message.timestamp.before.max.ms": str(HOUR_MS), "message.timestamp.after.max.ms": str(HOUR_MS)})
    now = int(time.time() * 1000)
    timestamps = (now, now - 2 * HOUR_MS, now + 60_000, now + 2 * HOUR_MS)
    with RawConnection(broker.port) as connection:
        refused = produce(connection, topic_name, encode_batch([WireRecord(i, ts, b"k", b"v") for i, ts in enumerate(timestamps)]))
        assert (refused.error_code, refused.base_offset) == (ErrorCode.invalid_timestamp, -1)
        assert refused.error_message == "One or more records have been rejected due to invalid timestamp"
        assert [e.batch_index for e in refused.record_errors] == [1, 3]
        assert f"Timestamp {now - 2 * HOUR_MS} of message with offset 1 is out of range" in refused.record_errors[0].batch_index_error_message
        accepted = produce(connection, topic_name, encode_batch([WireRecord(0, now, b"k", b"v")]))
        assert (accepted.error_code, accepted.base_offset) == (ErrorCode.none, 0)


def test_a_client_is_told_invalid_timestamp(broker, topic_name):
    client = ConfluentKafka(broker.bootstrap)
    client.create_topic(topic_name, 1, {"message.timestamp.difference.max.ms": str(HOUR_MS)})
    with pytest.raises(BrokerError) as refused:
        client.produce(topic_name, [Record(b"k", b"late", timestamp=int(time.time() * 1000) - 2 * HOUR_MS)])
    assert refused.value.name == "INVALID_TIMESTAMP"
    [acked] = client.produce(topic_name, [Record(b"k", b"on time", timestamp=int(time.time() * 1000))])
    assert acked.offset == 0


def test_a_transactional_batch_without_a_transactional_id_is_refused(broker, topic_name):
    ConfluentKafka(broker.bootstrap).create_topic(topic_name, 1)
    batch = encode_batch([WireRecord(0, 1_000, b"k", b"v")], producer_id=1, producer_epoch=0, base_sequence=0, transactional=True)
    with RawConnection(broker.port) as connection:
        refused = produce(connection, topic_name, batch)
        assert (refused.error_code, refused.base_offset) == (ErrorCode.transactional_id_authorization_failed, -1)
        assert offset_for_time(connection, topic_name, -1) == (0, -1)  # nothing appended: the log ends at 0
