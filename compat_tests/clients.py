"""The two client libraries behind one small interface, so that each scenario is written
once and run with both: confluent-kafka (librdkafka) and kafka-python.

Every call is bounded: client timeouts are passed explicitly and poll loops have deadlines.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import confluent_kafka
import confluent_kafka.admin
import kafka
import kafka.admin

TIMEOUT_S = 30.0
COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")


@dataclass(frozen=True)
class Record:
    """A record as produced (partition None: the client's partitioner picks one; offset
    None: not yet acknowledged) or as acknowledged or consumed."""

    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp: int | None = None
    partition: int | None = None
    offset: int | None = None


class ConfluentKafka:
    name = "confluent-kafka"

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def create_topic(self, topic: str, partitions: int) -> None:
        admin = confluent_kafka.admin.AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([confluent_kafka.admin.NewTopic(topic, partitions, 1)], request_timeout=TIMEOUT_S)
        futures[topic].result(TIMEOUT_S)

    def produce(self, topic: str, records: Sequence[Record], compression: str = "none") -> list[Record]:
        """Sends records with acks=all; returns them as acknowledged, in the order given."""
        producer = confluent_kafka.Producer({
            "bootstrap.servers": self.bootstrap, "acks": "all", "compression.type": compression, "linger.ms": 5,
        })
        acked: list[Record | None] = [None] * len(records)
        errors: list[object] = []

        def on_delivery(index: int):  # type: ignore[no-untyped-def]
            def report(error, message) -> None:  # type: ignore[no-untyped-def]
                if error is not None:
                    errors.append(error)
                else:
                    acked[index] = replace(records[index], partition=message.partition(), offset=message.offset())
            return report

        for index, r in enumerate(records):
            kwargs = {} if r.partition is None else {"partition": r.partition}
            # Timestamp 0 asks librdkafka to stamp the current time.
            producer.produce(topic, r.value, r.key, headers=list(r.headers), timestamp=r.timestamp or 0,
                             on_delivery=on_delivery(index), **kwargs)
            producer.poll(0)
        assert producer.flush(TIMEOUT_S) == 0, "confluent-kafka did not deliver everything in time"
        assert not errors, errors
        return acked  # type: ignore[return-value]

    def _consumer(self) -> confluent_kafka.Consumer:
        return confluent_kafka.Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": "compat-tests", "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
        })

    def consume(self, topic: str, ends: dict[int, int]) -> list[Record]:
        """Every record from offset 0 up to ends[partition], in the order fetched."""
        consumer = self._consumer()
        try:
            consumer.assign([confluent_kafka.TopicPartition(topic, p, 0) for p, end in ends.items() if end > 0])
            got: list[Record] = []
            positions = {p: 0 for p in ends}
            deadline = time.monotonic() + TIMEOUT_S
            while any(positions[p] < end for p, end in ends.items()):
                assert time.monotonic() < deadline, f"consumed up to {positions}, wanted {ends}"
                for m in consumer.consume(num_messages=1000, timeout=0.5):
                    assert m.error() is None, m.error()
                    got.append(Record(m.key(), m.value(), tuple(m.headers() or ()), m.timestamp()[1], m.partition(), m.offset()))
                    positions[m.partition()] = m.offset() + 1
            return got
        finally:
            consumer.close()

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        """(earliest, latest) offsets, asked of the broker with ListOffsets."""
        consumer = self._consumer()
        try:
            return consumer.get_watermark_offsets(confluent_kafka.TopicPartition(topic, partition), timeout=TIMEOUT_S, cached=False)
        finally:
            consumer.close()

    def offset_for_time(self, topic: str, partition: int, timestamp: int) -> int | None:
        """The first offset whose record's timestamp is at or after timestamp, or None."""
        consumer = self._consumer()
        try:
            [found] = consumer.offsets_for_times([confluent_kafka.TopicPartition(topic, partition, timestamp)], timeout=TIMEOUT_S)
        finally:
            consumer.close()
        assert found.error is None, found.error
        return None if found.offset == confluent_kafka.OFFSET_END else found.offset


class KafkaPython:
    name = "kafka-python"
    _timeout_ms = int(TIMEOUT_S * 1000)

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def create_topic(self, topic: str, partitions: int) -> None:
        admin = kafka.admin.KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=self._timeout_ms)
        try:
            admin.create_topics([kafka.admin.NewTopic(topic, partitions, 1)], timeout_ms=self._timeout_ms)
        finally:
            admin.close()

    def produce(self, topic: str, records: Sequence[Record], compression: str = "none") -> list[Record]:
        """Sends records with acks=all; returns them as acknowledged, in the order given."""
        producer = kafka.KafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", linger_ms=5,
            compression_type=None if compression == "none" else compression,
            request_timeout_ms=self._timeout_ms, max_block_ms=self._timeout_ms,
        )
        try:
            futures = [
                producer.send(topic, value=r.value, key=r.key, headers=list(r.headers), partition=r.partition, timestamp_ms=r.timestamp)
                for r in records
            ]
            producer.flush(timeout=TIMEOUT_S)
            return [replace(r, partition=m.partition, offset=m.offset) for r, m in zip(records, (f.get(0) for f in futures))]
        finally:
            producer.close(timeout=TIMEOUT_S)

    def _consumer(self) -> kafka.KafkaConsumer:
        return kafka.KafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
            request_timeout_ms=self._timeout_ms, fetch_max_wait_ms=100,
        )

    def consume(self, topic: str, ends: dict[int, int]) -> list[Record]:
        """Every record from offset 0 up to ends[partition], in the order fetched."""
        consumer = self._consumer()
        try:
            partitions = [kafka.TopicPartition(topic, p) for p, end in ends.items() if end > 0]
            consumer.assign(partitions)
            for tp in partitions:
                consumer.seek(tp, 0)
            got: list[Record] = []
            positions = {p: 0 for p in ends}
            deadline = time.monotonic() + TIMEOUT_S
            while any(positions[p] < end for p, end in ends.items()):
                assert time.monotonic() < deadline, f"consumed up to {positions}, wanted {ends}"
                for batch in consumer.poll(timeout_ms=500, max_records=1000).values():
                    for m in batch:
                        got.append(Record(m.key, m.value, tuple(m.headers), m.timestamp, m.partition, m.offset))
                        positions[m.partition] = m.offset + 1
            return got
        finally:
            consumer.close()

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        """(earliest, latest) offsets, asked of the broker with ListOffsets."""
        tp = kafka.TopicPartition(topic, partition)
        consumer = self._consumer()
        try:
            return consumer.beginning_offsets([tp], self._timeout_ms)[tp], consumer.end_offsets([tp], self._timeout_ms)[tp]
        finally:
            consumer.close()

    def offset_for_time(self, topic: str, partition: int, timestamp: int) -> int | None:
        """The first offset whose record's timestamp is at or after timestamp, or None."""
        tp = kafka.TopicPartition(topic, partition)
        consumer = self._consumer()
        try:
            found = consumer.offsets_for_times({tp: timestamp}, self._timeout_ms)[tp]
        finally:
            consumer.close()
        return None if found is None else found.offset


Client = ConfluentKafka | KafkaPython
CLIENTS = (ConfluentKafka, KafkaPython)

BASE_TIMESTAMP = 1_700_000_000_000


def keyed_records(count: int) -> list[Record]:
    """Records with repeating keys, binary values of varied length, repeated and empty
    headers, and explicit timestamps that go back and forth within a batch."""
    return [
        Record(
            key=b"key-%d" % (i % 500),
            value=b"%d:" % i + bytes(range(i % 256)),
            headers=(("seq", b"%d" % i), ("dup", b"a"), ("dup", b"b"), ("empty", b"")),
            timestamp=BASE_TIMESTAMP + (i * 7919) % 100_000,
        )
        for i in range(count)
    ]


def by_position(records: Iterable[Record]) -> dict[tuple[int, int], Record]:
    """Records keyed by (partition, offset); fails on two records at one position."""
    out: dict[tuple[int, int], Record] = {}
    for r in records:
        assert r.partition is not None and r.offset is not None
        assert (r.partition, r.offset) not in out, f"two records at partition {r.partition} offset {r.offset}"
        out[(r.partition, r.offset)] = r
    return out


def end_offsets(records: Iterable[Record]) -> dict[int, int]:
    """The offset after the last of the records in each partition."""
    ends: dict[int, int] = {}
    for r in records:
        assert r.partition is not None and r.offset is not None
        ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)
    return ends


def assert_same_records(got: Iterable[Record], expected: Iterable[Record]) -> None:
    """The same records at the same (partition, offset) positions, reported briefly."""
    got_at, expected_at = by_position(got), by_position(expected)
    missing = sorted(expected_at.keys() - got_at.keys())
    unexpected = sorted(got_at.keys() - expected_at.keys())
    differing = [k for k in sorted(expected_at.keys() & got_at.keys()) if got_at[k] != expected_at[k]]
    assert not missing, f"{len(missing)} records missing, first at {missing[:5]}"
    assert not unexpected, f"{len(unexpected)} unexpected records, first at {unexpected[:5]}"
    assert not differing, f"{len(differing)} records differ, first: got {got_at[differing[0]]}, expected {expected_at[differing[0]]}"
