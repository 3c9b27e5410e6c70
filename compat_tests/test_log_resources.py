"""What a client can make the broker's logs cost: the bytes one Fetch response holds
(`fetch.max.bytes`), and the files a topic of many tiny segments keeps open. Against a
real broker process, over raw requests."""

from __future__ import annotations

import datetime
import os
import time

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.schema.types import TopicName
from kio.static.primitive import i16, i32, i32Timedelta, i64

from kafkapy.compat.adapters.confluent import ConfluentKafka
from kafkapy.compat.raw import RawConnection
from kafkapy.testing.process import BrokerProcess
from kafkapy.wire.framing import recv_frame
from kafkapy.wire.protocol import decode_response, encode_request
from kafkapy.wire.records import Record, decode_records, encode_batch, iter_headers
from waiting import until

pytestmark = pytest.mark.kafkapy_internals

PRODUCER_ID = 4000


def produce_request(topic: str, value: bytes, sequence: int | None = None) -> ProduceRequest:
    """One batch of one record, acks=1; with a sequence, an idempotent producer's."""
    producer = {} if sequence is None else {"producer_id": PRODUCER_ID, "producer_epoch": 0, "base_sequence": sequence}
    return ProduceRequest(
        acks=i16(1), timeout=i32Timedelta.parse(datetime.timedelta(seconds=10)), topic_data=(TopicProduceData(
            name=TopicName(topic), partition_data=(PartitionProduceData(
                index=i32(0), records=encode_batch([Record(0, int(time.time() * 1000), None, value)], **producer)),)),),  # type: ignore[arg-type]
    )


def produced_offset(response: object) -> int:
    [answer] = response.responses[0].partition_responses  # type: ignore[attr-defined]
    assert answer.error_code == ErrorCode.none
    return int(answer.base_offset)


def produce(connection: RawConnection, topic: str, value: bytes) -> int:
    return produced_offset(connection.request(produce_request(topic, value)))


def produce_pipelined(connection: RawConnection, topic: str, values: list[bytes], idempotent: bool = False) -> list[int]:
    """Each value in a Produce request of its own, all sent before the first answer is read."""
    requests = [produce_request(topic, value, i if idempotent else None) for i, value in enumerate(values)]
    first = connection.correlation_id + 1
    connection.send(b"".join(encode_request(r, first + i) for i, r in enumerate(requests)))
    connection.correlation_id += len(requests)
    offsets = []
    for i, r in enumerate(requests):
        answered, response = decode_response(recv_frame(connection.sock), r.__api_key__, r.__version__)
        assert answered == first + i
        offsets.append(produced_offset(response))
    return offsets


def fetch(connection: RawConnection, topic: str, offset: int, *, max_bytes: int = 64 << 20, min_bytes: int = 0,
          max_wait_s: float = 0) -> bytes:
    """The records of one fetch from offset, as the broker sent them."""
    response = connection.request(FetchRequest(
        max_wait=i32Timedelta.parse(datetime.timedelta(seconds=max_wait_s)), min_bytes=i32(min_bytes),
        max_bytes=i32(max_bytes), forgotten_topics_data=(), topics=(FetchTopic(topic=TopicName(topic), partitions=(
            FetchPartition(partition=i32(0), fetch_offset=i64(offset), partition_max_bytes=i32(max_bytes)),)),),
    ))
    [answer] = response.responses[0].partitions
    assert answer.error_code == ErrorCode.none
    return bytes(answer.records or b"")


def whole_batch_offsets(records: bytes) -> list[int]:
    return [header.base_offset for _, header in iter_headers(records)]


# fetch.max.bytes

def test_fetch_max_bytes_bounds_a_response_but_never_below_one_batch(tmp_path, topic_name):
    with BrokerProcess(tmp_path / "data", {"fetch.max.bytes": 4096}) as broker, RawConnection(broker.port) as connection:
        ConfluentKafka(broker.bootstrap).create_topic(topic_name, 1)
        for _ in range(10):
            produce(connection, topic_name, bytes(1000))
        produce(connection, topic_name, bytes(10_000))

        records = fetch(connection, topic_name, 0)  # the request asks for 64 MB
        assert len(records) <= 4096
        assert whole_batch_offsets(records) == [0, 1, 2]  # 3 batches of about 1070 bytes fit
        assert whole_batch_offsets(fetch(connection, topic_name, 0, max_bytes=2000)) == [0]  # the request's own, smaller

        larger = fetch(connection, topic_name, 10)
        assert whole_batch_offsets(larger) == [10] and len(larger) > 10_000  # whole, though over fetch.max.bytes


def test_a_fetch_waits_for_no_more_than_fetch_max_bytes(tmp_path, topic_name):
    with BrokerProcess(tmp_path / "data", {"fetch.max.bytes": 4096}) as broker, RawConnection(broker.port) as connection:
        ConfluentKafka(broker.bootstrap).create_topic(topic_name, 1)
        for _ in range(5):
            produce(connection, topic_name, bytes(1000))
        started = time.monotonic()
        # min_bytes far above what there is: Kafka lowers it to fetch.max.bytes, which is there.
        records = fetch(connection, topic_name, 0, min_bytes=1 << 20, max_wait_s=25)
        assert whole_batch_offsets(records) == [0, 1, 2]
        assert time.monotonic() - started < 20, "the fetch waited for min_bytes it could never be given"


# Open files

def open_files(broker: BrokerProcess) -> int:
    assert broker.process is not None
    return len(os.listdir(f"/proc/{broker.process.pid}/fd"))


def test_a_thousand_tiny_segments_keep_a_bounded_number_of_files_open_and_stay_readable(tmp_path, topic_name):
    bound, count = 20, 1000
    overrides = {"kafkapy.log.max.open.segment.files": bound, "log.flush.interval.messages": 1_000_000}
    with BrokerProcess(tmp_path / "data", overrides) as broker, RawConnection(broker.port) as connection:
        ConfluentKafka(broker.bootstrap).create_topic(topic_name, 1, {"segment.bytes": "14"})  # Kafka's floor
        before = open_files(broker)
        values = [str(i).encode() for i in range(count)]
        assert produce_pipelined(connection, topic_name, values) == list(range(count))
        [partition_dir] = (tmp_path / "data").glob(f"{topic_name}-0")
        assert len(list(partition_dir.glob("*.log"))) == count  # a segment per batch: the roll comes before the next
        most = open_files(broker)

        consumed: list[bytes | None] = []
        while len(consumed) < count:
            records = fetch(connection, topic_name, len(consumed))
            consumed += [r.value for position, header in iter_headers(records)
                         for r in decode_records(records[position:position + header.size], header)]
            if len(consumed) % 100 == 0:
                most = max(most, open_files(broker))
        assert consumed == values
        # The active segment of the topic's one partition is already in `before`.
        assert most <= before + bound, f"{most} files open, {before} before {count} segments were made"


# Producer state snapshots

def test_producer_snapshots_stay_bounded_under_retention_and_a_retry_is_still_recognised_after_a_restart(tmp_path, topic_name):
    count = 300
    overrides = {"log.retention.check.interval.ms": 100, "log.segment.delete.delay.ms": 0}
    with BrokerProcess(tmp_path / "data", overrides) as broker:
        # A snapshot at every roll, and retention keeping the last few segments.
        ConfluentKafka(broker.bootstrap).create_topic(topic_name, 1, {"segment.bytes": "14", "retention.bytes": "500"})
        with RawConnection(broker.port) as connection:
            values = [str(i).encode() for i in range(count)]
            assert produce_pipelined(connection, topic_name, values, idempotent=True) == list(range(count))
        [partition_dir] = (tmp_path / "data").glob(f"{topic_name}-0")

        def snapshots() -> int:
            return len(list(partition_dir.glob("*.snapshot")))

        until(lambda: len(list(partition_dir.glob("*.log"))) < 20, 10, "retention deleting the oldest segments")
        assert snapshots() <= len(list(partition_dir.glob("*.log"))) + 1
        broker.restart()
        assert snapshots() <= len(list(partition_dir.glob("*.log"))) + 1
        with RawConnection(broker.port) as connection:
            retried = connection.request(produce_request(topic_name, values[-1], count - 1))
            assert produced_offset(retried) == count - 1  # the offset it got, not written again
            assert produced_offset(connection.request(produce_request(topic_name, b"next", count))) == count
