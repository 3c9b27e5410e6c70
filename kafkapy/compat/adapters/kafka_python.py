"""kafka-python, the pure-Python client."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import kafka
import kafka.errors
from kafka import TopicPartition
from kafka.admin import ConfigResource, KafkaAdminClient

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

_TIMEOUT_MS = int(TIMEOUT_S * 1000)
# kafka-python reports a resource's AlterConfigs error as a string, e.g. "[Error 40] InvalidConfigurationError: ...".
_ERROR_TEXT = re.compile(r"\[Error (-?\d+)\] \w+: ?(.*)", re.DOTALL)

F = TypeVar("F", bound=Callable[..., Any])


def _broker_errors(method: F) -> F:
    """Raises kafka-python's errors for broker error codes as BrokerError."""

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except kafka.errors.BrokerResponseError as e:
            raise BrokerError(e.errno, str(e)) from e

    return call  # type: ignore[return-value]


def _check_code(code: int, message: str | None = None) -> None:
    if code != 0:
        raise BrokerError(code, message)


class KafkaPython(Client):
    name = "kafka-python"

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap)
        self._admin: KafkaAdminClient | None = None

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    @property
    def admin(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=_TIMEOUT_MS)
        return self._admin

    def _consumer(self) -> kafka.KafkaConsumer:
        return kafka.KafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
            request_timeout_ms=_TIMEOUT_MS, fetch_max_wait_ms=100,
        )

    @_broker_errors
    def api_versions(self) -> dict[int, tuple[int, int]]:
        return {int(key): versions for key, versions in self.admin.api_versions().items()}

    @_broker_errors
    def cluster(self) -> Cluster:
        found = self.admin.describe_cluster()
        return Cluster(found["cluster_id"], found["controller_id"],
                       {b["broker_id"]: (b["host"], b["port"]) for b in found["brokers"]})

    @_broker_errors
    def topic_names(self) -> set[str]:
        return set(self.admin.list_topics())

    @_broker_errors
    def partitions(self, topic: str) -> list[Partition]:
        [found] = self.admin.describe_topics([topic])
        _check_code(found["error_code"], f"topic {topic}")
        return [Partition(p["partition_index"], p["leader_id"], tuple(p["replica_nodes"]), tuple(p["isr_nodes"]))
                for p in sorted(found["partitions"], key=lambda p: p["partition_index"])]

    @_broker_errors
    def create_topic(self, topic: str, partitions: int, configs: Mapping[str, str] | None = None) -> None:
        self.admin.create_topics(
            {topic: {"num_partitions": partitions, "replication_factor": 1, "configs": dict(configs or {})}},
            timeout_ms=_TIMEOUT_MS,
        )

    @_broker_errors
    def delete_topic(self, topic: str) -> None:
        self.admin.delete_topics([topic], timeout_ms=_TIMEOUT_MS)

    @_broker_errors
    def create_partitions(self, topic: str, total: int) -> None:
        self.admin.create_partitions({topic: total}, timeout_ms=_TIMEOUT_MS)

    @_broker_errors
    def produce(self, topic: str, records: Sequence[Record], compression: str = "none") -> list[Record]:
        if any(value is None for r in records for _, value in r.headers):
            raise self._lacks("way to send a header with a null value (it insists on bytes)")
        producer = kafka.KafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", linger_ms=5,
            compression_type=None if compression == "none" else compression,
            max_request_size=CLIENT_MAX_REQUEST_BYTES, request_timeout_ms=_TIMEOUT_MS, max_block_ms=_TIMEOUT_MS,
        )
        try:
            futures = [
                producer.send(topic, value=r.value, key=r.key, headers=list(r.headers), partition=r.partition, timestamp_ms=r.timestamp)
                for r in records
            ]
            # Waiting on each future rather than on flush: a batch the broker refuses as too
            # large is split and resent, and flush can return before the halves are answered.
            deadline = time.monotonic() + TIMEOUT_S
            acked = [f.get(max(0.0, deadline - time.monotonic())) for f in futures]
            return [replace(r, timestamp=m.timestamp, partition=m.partition, offset=m.offset) for r, m in zip(records, acked)]
        finally:
            producer.close(timeout=TIMEOUT_S)

    @_broker_errors
    def consume(self, topic: str, ends: Mapping[int, int], starts: Mapping[int, int] | None = None) -> list[Record]:
        starts = starts or {}
        consumer = self._consumer()
        try:
            partitions = [TopicPartition(topic, p) for p, end in ends.items() if end > 0]
            consumer.assign(partitions)
            for tp in partitions:
                consumer.seek(tp, starts.get(tp.partition, 0))
            got: list[Record] = []
            positions = {p: starts.get(p, 0) for p in ends}
            deadline = time.monotonic() + TIMEOUT_S
            while any(positions[p] < end for p, end in ends.items()):
                assert time.monotonic() < deadline, f"consumed up to {positions} in {TIMEOUT_S}s, wanted {dict(ends)}"
                for batch in consumer.poll(timeout_ms=500, max_records=1000).values():
                    for m in batch:
                        got.append(Record(m.key, m.value, tuple(m.headers), m.timestamp, m.partition, m.offset))
                        positions[m.partition] = m.offset + 1
            return got
        finally:
            consumer.close()

    @_broker_errors
    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        tp = TopicPartition(topic, partition)
        consumer = self._consumer()
        try:
            return consumer.beginning_offsets([tp], _TIMEOUT_MS)[tp], consumer.end_offsets([tp], _TIMEOUT_MS)[tp]
        finally:
            consumer.close()

    @_broker_errors
    def offset_for_time(self, topic: str, partition: int, timestamp: int) -> int | None:
        tp = TopicPartition(topic, partition)
        consumer = self._consumer()
        try:
            found = consumer.offsets_for_times({tp: timestamp}, _TIMEOUT_MS)[tp]
        finally:
            consumer.close()
        return None if found is None else found.offset

    @_broker_errors
    def describe_configs(self, resource: tuple[str, str]) -> dict[str, ConfigValue]:
        kind, name = resource
        found = self.admin.describe_configs([ConfigResource(kind.upper(), name)], config_filter="all")
        return {key: ConfigValue(c["value"], c["config_source"], c["read_only"]) for key, c in found[kind][name].items()}

    def _alter(self, resource: tuple[str, str], configs: dict[str, Any], incremental: bool) -> None:
        kind, name = resource
        answer = self.admin.alter_configs([ConfigResource(kind.upper(), name, configs)], incremental=incremental,
                                          raise_on_unknown=False)[kind][name]
        if answer != "OK":
            error = _ERROR_TEXT.match(str(answer))
            if error is None:
                raise RuntimeError(f"AlterConfigs answered {answer!r}")
            raise BrokerError(int(error.group(1)), error.group(2))

    @_broker_errors
    def incremental_alter_configs(self, resource: tuple[str, str], ops: Sequence[tuple[str, str, str | None]]) -> None:
        self._alter(resource, {name: (op, value) for name, op, value in ops}, incremental=True)

    @_broker_errors
    def alter_configs(self, resource: tuple[str, str], configs: Mapping[str, str]) -> None:
        self._alter(resource, dict(configs), incremental=False)

    @_broker_errors
    def delete_records(self, topic: str, partition: int, before: int) -> int:
        [answer] = self.admin.delete_records({TopicPartition(topic, partition): before}, timeout_ms=_TIMEOUT_MS).values()
        _check_code(answer["error_code"])
        return answer["low_watermark"]
