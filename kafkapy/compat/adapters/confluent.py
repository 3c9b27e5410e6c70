"""confluent-kafka, the Python binding of librdkafka."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
)

from .base import (
    CLIENT_MAX_REQUEST_BYTES,
    TIMEOUT_S,
    BrokerError,
    Client,
    Cluster,
    ConfigValue,
    Partition,
    Record,
)


def _raise(error: KafkaError) -> None:
    # librdkafka numbers broker errors as Kafka does; its own errors are negative.
    if error.code() > 0:
        raise BrokerError(error.code(), error.str())
    raise KafkaException(error)


def _result(future: Any) -> Any:
    try:
        return future.result(TIMEOUT_S)
    except KafkaException as e:
        _raise(e.args[0])


class ConfluentKafka(Client):
    name = "confluent-kafka"

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap)
        self._admin: AdminClient | None = None

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            # Metadata asked by the admin client must not create the topics it names.
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap, "allow.auto.create.topics": False})
        return self._admin

    def _consumer(self) -> confluent_kafka.Consumer:
        return confluent_kafka.Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": "kafkapy-compat", "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100,
        })

    def cluster(self) -> Cluster:
        metadata = self.admin.list_topics(timeout=TIMEOUT_S)
        return Cluster(metadata.cluster_id, metadata.controller_id,
                       {b.id: (b.host, b.port) for b in metadata.brokers.values()})

    def topic_names(self) -> set[str]:
        return set(self.admin.list_topics(timeout=TIMEOUT_S).topics)

    def partitions(self, topic: str) -> list[Partition]:
        found = self.admin.list_topics(topic, timeout=TIMEOUT_S).topics[topic]
        if found.error is not None:
            _raise(found.error)
        return [Partition(p.id, p.leader, tuple(p.replicas), tuple(p.isrs))
                for p in sorted(found.partitions.values(), key=lambda p: p.id)]

    def create_topic(self, topic: str, partitions: int, configs: Mapping[str, str] | None = None) -> None:
        futures = self.admin.create_topics([NewTopic(topic, partitions, 1, config=dict(configs or {}))],
                                           request_timeout=TIMEOUT_S)
        _result(futures[topic])

    def delete_topic(self, topic: str) -> None:
        _result(self.admin.delete_topics([topic], request_timeout=TIMEOUT_S)[topic])

    def create_partitions(self, topic: str, total: int) -> None:
        _result(self.admin.create_partitions([NewPartitions(topic, total)], request_timeout=TIMEOUT_S)[topic])

    def produce(self, topic: str, records: Sequence[Record], compression: str = "none") -> list[Record]:
        producer = confluent_kafka.Producer({
            "bootstrap.servers": self.bootstrap, "acks": "all", "compression.type": compression, "linger.ms": 5,
            "message.max.bytes": CLIENT_MAX_REQUEST_BYTES, "message.timeout.ms": int(TIMEOUT_S * 1000),
        })
        acked: list[Record | None] = [None] * len(records)
        errors: list[KafkaError] = []

        def on_delivery(index: int):  # type: ignore[no-untyped-def]
            def report(error: KafkaError | None, message: confluent_kafka.Message) -> None:
                if error is not None:
                    errors.append(error)
                else:
                    acked[index] = replace(records[index], timestamp=message.timestamp()[1], partition=message.partition(),
                                           offset=message.offset())
            return report

        for index, r in enumerate(records):
            kwargs = {} if r.partition is None else {"partition": r.partition}
            # Timestamp 0 asks librdkafka to stamp the current time.
            producer.produce(topic, r.value, r.key, headers=list(r.headers), timestamp=r.timestamp or 0,
                             on_delivery=on_delivery(index), **kwargs)
            producer.poll(0)
        unsent = producer.flush(TIMEOUT_S)
        if errors:
            _raise(errors[0])
        assert unsent == 0, f"{unsent} records not delivered within {TIMEOUT_S}s"
        return acked  # type: ignore[return-value]

    def consume(self, topic: str, ends: Mapping[int, int], starts: Mapping[int, int] | None = None) -> list[Record]:
        starts = starts or {}
        consumer = self._consumer()
        try:
            consumer.assign([TopicPartition(topic, p, starts.get(p, 0)) for p, end in ends.items() if end > 0])
            got: list[Record] = []
            positions = {p: starts.get(p, 0) for p in ends}
            deadline = time.monotonic() + TIMEOUT_S
            while any(positions[p] < end for p, end in ends.items()):
                assert time.monotonic() < deadline, f"consumed up to {positions} in {TIMEOUT_S}s, wanted {dict(ends)}"
                for m in consumer.consume(num_messages=1000, timeout=0.1):
                    if m.error() is not None:
                        _raise(m.error())
                    got.append(Record(m.key(), m.value(), tuple(m.headers() or ()), m.timestamp()[1], m.partition(), m.offset()))
                    positions[m.partition()] = m.offset() + 1
            return got
        finally:
            consumer.close()

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        consumer = self._consumer()
        try:
            return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT_S, cached=False)
        finally:
            consumer.close()

    def offset_for_time(self, topic: str, partition: int, timestamp: int) -> int | None:
        consumer = self._consumer()
        try:
            [found] = consumer.offsets_for_times([TopicPartition(topic, partition, timestamp)], timeout=TIMEOUT_S)
        finally:
            consumer.close()
        if found.error is not None:
            _raise(found.error)
        return None if found.offset == confluent_kafka.OFFSET_END else found.offset

    def describe_configs(self, resource: tuple[str, str]) -> dict[str, ConfigValue]:
        [future] = self.admin.describe_configs([ConfigResource(*resource)], request_timeout=TIMEOUT_S).values()
        return {name: ConfigValue(e.value, ConfigSource(e.source).name, e.is_read_only)
                for name, e in _result(future).items()}

    def incremental_alter_configs(self, resource: tuple[str, str], ops: Sequence[tuple[str, str, str | None]]) -> None:
        entries = [ConfigEntry(name, value, incremental_operation=AlterConfigOpType[op]) for name, op, value in ops]
        [future] = self.admin.incremental_alter_configs([ConfigResource(*resource, incremental_configs=entries)],
                                                        request_timeout=TIMEOUT_S).values()
        _result(future)

    def alter_configs(self, resource: tuple[str, str], configs: Mapping[str, str]) -> None:
        [future] = self.admin.alter_configs([ConfigResource(*resource, set_config=dict(configs))],
                                            request_timeout=TIMEOUT_S).values()
        _result(future)

    def delete_records(self, topic: str, partition: int, before: int) -> int:
        [future] = self.admin.delete_records([TopicPartition(topic, partition, before)],
                                             request_timeout=TIMEOUT_S).values()
        return _result(future).low_watermark
