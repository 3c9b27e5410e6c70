"""Message formats v0 and v1 against a real kafkapy: Produce v0-2 with the message sets of
clients older than Kafka 0.11 and Fetch v0-3 answered with them, over a bare connection
(requests and answers are the entities generated from Kafka 3.9's JSON; the record bytes
are kafka-python's legacy encoder's and are read back by its decoder), and clients pinned
to Kafka 0.10: kafka-python at api_version (0, 10) and (0, 10, 1), librdkafka with
api.version.request=false and broker.version.fallback=0.10.0."""

from __future__ import annotations

import datetime
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.record.legacy_records import LegacyRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords
from kio.schema.errors import ErrorCode
from kio.schema.types import TopicName
from kio.static.primitive import i16, i32, i32Timedelta, i64

from kafkapy.compat.raw import RawConnection
from kafkapy.schema.legacy.create_topics.v0 import request as create_topics_v0
from kafkapy.schema.legacy.fetch.v0 import request as fetch_v0
from kafkapy.schema.legacy.fetch.v3 import request as fetch_v3
from kafkapy.schema.legacy.produce.v0 import request as produce_v0
from kafkapy.schema.legacy.produce.v2 import request as produce_v2
from kafkapy.wire.compression import Codec
from kafkapy.wire.legacy_records import inner_messages, iter_messages, magic_of
from kafkapy.wire.records import Record, encode_batch
from waiting import until

TIMEOUT_S = 30
TIMEOUT = i32Timedelta.parse(datetime.timedelta(seconds=TIMEOUT_S))
T0 = 1_700_000_000_000


def create_topic(connection: RawConnection, name: str, configs: dict[str, str] | None = None) -> None:
    response = connection.request(create_topics_v0.CreateTopicsRequest(topics=(create_topics_v0.CreatableTopic(
        name=TopicName(name), num_partitions=i32(1), replication_factor=i16(1), assignments=(),
        configs=tuple(create_topics_v0.CreatableTopicConfig(name=k, value=v) for k, v in (configs or {}).items())),),
        timeout=TIMEOUT))
    assert [t.error_code for t in response.topics] == [ErrorCode.none]


def message_set(magic: int, codec: int, values: list[bytes], first_timestamp: int = T0) -> bytes:
    builder = LegacyRecordBatchBuilder(magic=magic, compression_type=codec, batch_size=1 << 20)
    for i, value in enumerate(values):
        builder.append(i, timestamp=first_timestamp + i, key=b"k%d" % i, value=value)
    return bytes(builder.build())


def produce(connection: RawConnection, module, topic: str, records: bytes):
    response = connection.request(module.ProduceRequest(acks=i16(-1), timeout=TIMEOUT, topic_data=(module.TopicProduceData(
        name=TopicName(topic), partition_data=(module.PartitionProduceData(index=i32(0), records=records),)),)))
    (topic_response,) = response.responses
    (partition,) = topic_response.partition_responses
    return partition


def fetch(connection: RawConnection, module, topic: str, offset: int, max_bytes: int = 1 << 20):
    response = connection.request(module.FetchRequest(max_wait=i32Timedelta.parse(datetime.timedelta(0)), min_bytes=i32(0), topics=(
        module.FetchTopic(topic=TopicName(topic), partitions=(module.FetchPartition(
            partition=i32(0), fetch_offset=i64(offset), partition_max_bytes=i32(max_bytes)),)),)))
    (topic_response,) = response.responses
    (partition,) = topic_response.partitions
    return partition


def read_back(records: bytes | None) -> list[tuple[int, int, int | None, bytes | None]]:
    """(magic, offset, timestamp, value) of each record, as kafka-python's consumer decodes
    them (but magic 0's LZ4, which it reads only with xxhash, not installed here)."""
    data = bytes(records or b"")
    if magic_of(data) == 0 and any(m.codec == Codec.LZ4 for m in iter_messages(data)):
        return [(0, m.offset, None, m.value) for wrapper in iter_messages(data) for m in inner_messages(wrapper, None)]
    found = []
    batches = MemoryRecords(data)
    while (batch := batches.next_batch()) is not None:
        found += [(batch.magic, r.offset, r.timestamp, r.value) for r in batch]
    return found


@pytest.mark.parametrize(("produce_module", "magic", "codec"), [
    (produce_v0, 0, Codec.NONE), (produce_v0, 0, Codec.GZIP), (produce_v2, 1, Codec.SNAPPY), (produce_v2, 1, Codec.LZ4),
], ids=["v0-magic0-none", "v0-magic0-gzip", "v2-magic1-snappy", "v2-magic1-lz4"])
def test_old_message_sets_are_appended_and_fetched_at_every_old_version(broker, topic_name, produce_module, magic, codec):
    with RawConnection(broker.port) as connection:
        create_topic(connection, topic_name)
        first = produce(connection, produce_module, topic_name, message_set(magic, codec, [b"a", b"b", b"c"]))
        assert (first.error_code, first.base_offset) == (ErrorCode.none, 0)
        second = produce(connection, produce_module, topic_name, message_set(magic, codec, [b"d", b"e"]))
        assert (second.error_code, second.base_offset) == (ErrorCode.none, 3)
        if produce_module is produce_v2:
            assert second.log_append_time is None  # CreateTime topic: -1
        stored_ts = [None] * 5 if magic == 0 else [T0, T0 + 1, T0 + 2, T0, T0 + 1]
        values = [b"a", b"b", b"c", b"d", b"e"]
        # Fetch v0 is answered in magic 0, v3 in magic 1 (with v1's timestamps, none for what magic 0 wrote).
        old = fetch(connection, fetch_v0, topic_name, 0)
        assert (old.error_code, old.high_watermark) == (ErrorCode.none, 5)
        assert read_back(old.records)[0] == (0, 0, None, b"a")
        assert consume(connection, fetch_v0, topic_name, 0) == [(0, i, None, v) for i, v in enumerate(values)]
        newer = fetch(connection, fetch_v3, topic_name, 1)
        assert newer.error_code == ErrorCode.none
        # An uncompressed batch starts at the fetch offset; a compressed one comes whole.
        assert read_back(newer.records)[0][1] == (1 if codec == Codec.NONE else 0)
        expected = [(1, i, -1 if ts is None else ts, v) for i, (ts, v) in enumerate(zip(stored_ts, values, strict=True))]
        assert consume(connection, fetch_v3, topic_name, 1) == expected[1:]


def consume(connection: RawConnection, module, topic: str, offset: int) -> list[tuple[int, int, int | None, bytes | None]]:
    """Everything from offset to the high watermark, fetched as an old consumer does: from
    the offset after the last record read, skipping those before its fetch offset."""
    found: list[tuple[int, int, int | None, bytes | None]] = []
    while True:
        answer = fetch(connection, module, topic, offset)
        assert answer.error_code == ErrorCode.none
        if offset >= answer.high_watermark:
            return found
        records = [r for r in read_back(answer.records) if r[1] >= offset]
        assert records, f"no progress at offset {offset}"
        found += records
        offset = records[-1][1] + 1


def test_produce_v2_with_a_v2_batch_is_appended_as_it_is(broker, topic_name):
    with RawConnection(broker.port) as connection:
        create_topic(connection, topic_name)
        batch = encode_batch([Record(0, T0, None, b"x"), Record(1, T0 + 5, None, b"y")], codec=Codec.GZIP)
        assert produce(connection, produce_v2, topic_name, batch).error_code == ErrorCode.none
        assert read_back(fetch(connection, fetch_v3, topic_name, 0).records) == [(1, 0, T0, b"x"), (1, 1, T0 + 5, b"y")]


def test_refusals_of_old_message_sets(broker, topic_name):
    with RawConnection(broker.port) as connection:
        create_topic(connection, topic_name, {"max.message.bytes": "2000", "message.timestamp.before.max.ms": "3600000"})
        corrupt = bytearray(message_set(1, Codec.NONE, [b"a"]))
        corrupt[-1] ^= 0xFF
        assert produce(connection, produce_v2, topic_name, bytes(corrupt)).error_code == ErrorCode.corrupt_message
        mixed = message_set(0, Codec.NONE, [b"a"]) + message_set(1, Codec.NONE, [b"b"])
        assert produce(connection, produce_v2, topic_name, mixed).error_code == ErrorCode.invalid_record
        assert produce(connection, produce_v2, topic_name, message_set(1, Codec.NONE, [b"x" * 3000])).error_code == ErrorCode.message_too_large
        too_old = produce(connection, produce_v2, topic_name, message_set(1, Codec.NONE, [b"a"], first_timestamp=1000))
        assert too_old.error_code == ErrorCode.invalid_timestamp
        # Magic 0 has no timestamp to be out of range.
        assert produce(connection, produce_v0, topic_name, message_set(0, Codec.NONE, [b"a"])).error_code == ErrorCode.none


def test_fetch_v0_to_v3_of_a_topic_without_down_conversion_is_unsupported_version(broker, topic_name):
    with RawConnection(broker.port) as connection:
        create_topic(connection, topic_name, {"message.downconversion.enable": "false"})
        assert produce(connection, produce_v0, topic_name, message_set(0, Codec.NONE, [b"a"])).error_code == ErrorCode.none
        for module in (fetch_v0, fetch_v3):
            assert fetch(connection, module, topic_name, 0).error_code == ErrorCode.unsupported_version


def test_fetch_v0_to_v3_of_a_zstd_topic_is_unsupported_compression_type(broker, topic_name):
    with RawConnection(broker.port) as connection:
        create_topic(connection, topic_name, {"compression.type": "zstd"})
        assert produce(connection, produce_v2, topic_name, message_set(1, Codec.NONE, [b"a"])).error_code == ErrorCode.none
        assert fetch(connection, fetch_v3, topic_name, 0).error_code == ErrorCode.unsupported_compression_type


def test_a_down_converted_answer_keeps_within_the_partition_max_bytes(broker, topic_name):
    with RawConnection(broker.port) as connection:
        create_topic(connection, topic_name)
        for _ in range(20):
            assert produce(connection, produce_v2, topic_name, message_set(1, Codec.NONE, [b"v"] * 50)).error_code == ErrorCode.none
        answer = fetch(connection, fetch_v3, topic_name, 0, max_bytes=4096)
        offsets = [offset for _, offset, _, _ in read_back(answer.records)]
        assert len(answer.records) <= 4096 and offsets == list(range(len(offsets))) and len(offsets) >= 50


@pytest.mark.parametrize("api_version", [(0, 10), (0, 10, 1)], ids=lambda v: ".".join(map(str, v)))
def test_kafka_python_of_kafka_0_10_produces_consumes_in_a_group_and_commits(broker, topic_name, api_version):
    with RawConnection(broker.port) as connection:
        create_topic(connection, topic_name)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, api_version=api_version, compression_type="gzip")
    try:
        for i in range(10):
            producer.send(topic_name, key=str(i).encode(), value=f"v{i}".encode(), timestamp_ms=T0 + i)
        producer.flush(timeout=TIMEOUT_S)
    finally:
        producer.close(timeout=10)
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = KafkaConsumer(topic_name, bootstrap_servers=broker.bootstrap, api_version=api_version, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=TIMEOUT_S * 1000)
    try:
        consumed = []
        for message in consumer:
            consumed.append((message.offset, message.timestamp, message.value))
            if len(consumed) == 10:
                break
        assert consumed == [(i, T0 + i, f"v{i}".encode()) for i in range(10)]
        consumer.commit()
    finally:
        consumer.close()
    reader = KafkaConsumer(bootstrap_servers=broker.bootstrap, api_version=api_version, group_id=group, enable_auto_commit=False)
    try:
        assert reader.committed(TopicPartition(topic_name, 0)) == 10
    finally:
        reader.close()


def test_librdkafka_with_broker_version_fallback_0_10_produces_consumes_and_commits(broker, topic_name):
    confluent_kafka = pytest.importorskip("confluent_kafka")
    with RawConnection(broker.port) as connection:
        create_topic(connection, topic_name)
    old = {"bootstrap.servers": broker.bootstrap, "api.version.request": False, "broker.version.fallback": "0.10.0"}
    producer = confluent_kafka.Producer({**old, "compression.codec": "lz4"})
    for i in range(10):
        producer.produce(topic_name, key=str(i).encode(), value=f"v{i}".encode(), partition=0, timestamp=T0 + i)
    assert producer.flush(TIMEOUT_S) == 0
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = confluent_kafka.Consumer({**old, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe([topic_name])
        consumed: list[tuple[int, int, bytes | None]] = []

        def poll_some() -> bool:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                consumed.append((message.offset(), message.timestamp()[1], message.value()))
            return len(consumed) >= 10

        until(poll_some, TIMEOUT_S, "ten messages consumed")
        assert consumed == [(i, T0 + i, f"v{i}".encode()) for i in range(10)]
        consumer.commit(asynchronous=False)
        (committed,) = consumer.committed([confluent_kafka.TopicPartition(topic_name, 0)], timeout=TIMEOUT_S)
        assert committed.offset == 10
    finally:
        consumer.close()
