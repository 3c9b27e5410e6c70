"""aiokafka, the asyncio client.

Scenarios call adapters synchronously; aiokafka's coroutines run on an event loop of the
adapter's own in a thread, which also keeps running between calls, as a group member's
heartbeats need.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import aiokafka
import aiokafka.errors
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.structs import OffsetAndMetadata

from ..security import PLAINTEXT, ClientSecurity
from .base import (
    ASSIGNED,
    BROKER,
    CLASSIC,
    CLIENT_MAX_REQUEST_BYTES,
    HEARTBEAT_INTERVAL_MS,
    RANGE,
    READ_UNCOMMITTED,
    REVOKED,
    TIMEOUT_S,
    BrokerError,
    Client,
    Cluster,
    Committed,
    ConfigValue,
    Group,
    GroupConsumer,
    Membership,
    Partition,
    ProducerSession,
    Rebalance,
    Record,
    Unsupported,
)

T = TypeVar("T")
PRODUCER_FENCED = 90
_TIMEOUT_MS = int(TIMEOUT_S * 1000)
# DescribeConfigs' config_source numbers, as Kafka names them.
_CONFIG_SOURCES = {0: "UNKNOWN", 1: "DYNAMIC_TOPIC_CONFIG", 2: "DYNAMIC_BROKER_CONFIG", 3: "DYNAMIC_DEFAULT_BROKER_CONFIG",
                   4: "STATIC_BROKER_CONFIG", 5: "DEFAULT_CONFIG", 6: "DYNAMIC_BROKER_LOGGER_CONFIG"}


class _Loop:
    """An event loop running in a daemon thread; `run` waits for a coroutine's result there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = TIMEOUT_S) -> T:
        try:
            return asyncio.run_coroutine_threadsafe(asyncio.wait_for(coroutine, timeout), self.loop).result()
        except aiokafka.errors.ProducerFenced as e:
            # aiokafka reports the broker's PRODUCER_FENCED (and INVALID_PRODUCER_EPOCH) as an error of its own.
            raise BrokerError(PRODUCER_FENCED, str(e)) from e
        except aiokafka.errors.KafkaError as e:
            code = getattr(e, "errno", None)
            if isinstance(code, int) and code > 0:
                raise BrokerError(code, str(e)) from e
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def _check_code(code: int, message: str | None = None) -> None:
    if code != 0:
        raise BrokerError(code, message)


def _record(m: Any) -> Record:
    return Record(m.key, m.value, tuple(m.headers), m.timestamp, m.partition, m.offset)


class AioKafka(Client):
    name = "aiokafka"

    def __init__(self, bootstrap: str, security: ClientSecurity = PLAINTEXT) -> None:
        # Plaintext only (Adapter.speaks_security): the runner does not start it otherwise.
        super().__init__(bootstrap, security)
        self.loop = _Loop()
        self._admin: AIOKafkaAdminClient | None = None

    def close(self) -> None:
        if self._admin is not None:
            self.loop.run(self._admin.close())
            self._admin = None
        self.loop.stop()

    @property
    def admin(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            async def started() -> AIOKafkaAdminClient:
                admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=_TIMEOUT_MS)
                await admin.start()
                return admin
            self._admin = self.loop.run(started())
        return self._admin

    def cluster(self) -> Cluster:
        found = self.loop.run(self.admin.describe_cluster())
        return Cluster(found["cluster_id"], found["controller_id"],
                       {b["node_id"]: (b["host"], b["port"]) for b in found["brokers"]})

    def topic_names(self) -> set[str]:
        return set(self.loop.run(self.admin.list_topics()))

    def partitions(self, topic: str) -> list[Partition]:
        # Its describe_topics asks Metadata to create the topics it names: a request of our own does not.
        answer = self.loop.run(self.admin._send_request(MetadataRequest([topic], allow_auto_topic_creation=False)))
        [found] = answer.to_object()["topics"]
        _check_code(found["error_code"], f"topic {topic}")
        return [Partition(p["partition"], p["leader"], tuple(p["replicas"]), tuple(p["isr"]))
                for p in sorted(found["partitions"], key=lambda p: p["partition"])]

    def create_topic(self, topic: str, partitions: int, configs: Mapping[str, str] | None = None) -> None:
        answer = self.loop.run(self.admin.create_topics(
            [NewTopic(topic, partitions, 1, topic_configs=dict(configs or {}))], timeout_ms=_TIMEOUT_MS))
        for _, code, *message in answer.topic_errors:
            _check_code(code, message[0] if message else None)

    def delete_topic(self, topic: str) -> None:
        answer = self.loop.run(self.admin.delete_topics([topic], timeout_ms=_TIMEOUT_MS))
        for _, code, *_rest in answer.topic_error_codes:
            _check_code(code)

    def create_partitions(self, topic: str, total: int) -> None:
        self.loop.run(self.admin.create_partitions({topic: NewPartitions(total)}, timeout_ms=_TIMEOUT_MS))

    def produce(self, topic: str, records: Sequence[Record], compression: str = "none") -> list[Record]:
        async def produced() -> list[Record]:
            producer = aiokafka.AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", linger_ms=5,
                compression_type=None if compression == "none" else compression,
                max_request_size=CLIENT_MAX_REQUEST_BYTES, request_timeout_ms=_TIMEOUT_MS)
            await producer.start()
            try:
                return await _deliver(producer, topic, records)
            finally:
                await producer.stop()
        return self.loop.run(produced())

    def _consumer(self, isolation: str = READ_UNCOMMITTED) -> aiokafka.AIOKafkaConsumer:
        return aiokafka.AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
            request_timeout_ms=_TIMEOUT_MS, fetch_max_wait_ms=100, isolation_level=isolation)

    def consume(self, topic: str, ends: Mapping[int, int], starts: Mapping[int, int] | None = None,
                isolation: str = READ_UNCOMMITTED) -> list[Record]:
        starts = starts or {}

        async def consumed() -> list[Record]:
            consumer = self._consumer(isolation)
            await consumer.start()
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
                    for batch in (await consumer.getmany(timeout_ms=100, max_records=1000)).values():
                        got += map(_record, batch)
                    # The position passes what the consumer skips: gaps, control records, aborted transactions.
                    for tp in partitions:
                        positions[tp.partition] = max(positions[tp.partition], await consumer.position(tp))
                return got
            finally:
                await consumer.stop()
        return self.loop.run(consumed(), TIMEOUT_S + 5)

    def producer(self, transactional_id: str | None = None, transaction_timeout_ms: int | None = None) -> ProducerSession:
        return _ProducerSession(self.loop, self.bootstrap, transactional_id, transaction_timeout_ms)

    def group_consumer(self, membership: Membership) -> GroupConsumer:
        if membership.protocol != CLASSIC:
            raise self._lacks(f"{membership.protocol!r} group protocol (KIP-848), only the classic one")
        if membership.assignor != RANGE:
            raise self._lacks(f"{membership.assignor} assignor (its rebalances are eager only)")
        return _GroupConsumer(self.loop, self.bootstrap, membership)

    def list_groups(self) -> dict[str, str]:
        raise self._lacks("group states in its ListGroups answer (it asks an old version, without them)")

    def describe_group(self, group: str) -> Group:
        # Its answer could not tell a static member from a dynamic one, which `Group` must.
        raise Unsupported("aiokafka has no DescribeGroups answer with static members' instance ids "
                          "(it asks DescribeGroups v3 at most, which predates them)")

    def group_offsets(self, group: str) -> dict[tuple[str, int], Committed]:
        found = self.loop.run(self.admin.list_consumer_group_offsets(group))
        return {(tp.topic, tp.partition): Committed(c.offset, c.metadata or "") for tp, c in found.items()}

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        tp = TopicPartition(topic, partition)

        async def found() -> tuple[int, int]:
            consumer = self._consumer()
            await consumer.start()
            try:
                return (await consumer.beginning_offsets([tp]))[tp], (await consumer.end_offsets([tp]))[tp]
            finally:
                await consumer.stop()
        return self.loop.run(found())

    def offset_for_time(self, topic: str, partition: int, timestamp: int) -> int | None:
        tp = TopicPartition(topic, partition)

        async def found() -> int | None:
            consumer = self._consumer()
            await consumer.start()
            try:
                answer = (await consumer.offsets_for_times({tp: timestamp}))[tp]
            finally:
                await consumer.stop()
            return None if answer is None else answer.offset
        return self.loop.run(found())

    def describe_configs(self, resource: tuple[str, str]) -> dict[str, ConfigValue]:
        kind, name = resource
        resource_type = ConfigResourceType.BROKER if kind == BROKER else ConfigResourceType.TOPIC
        [answer] = self.loop.run(self.admin.describe_configs([ConfigResource(resource_type, name)]))
        [(code, message, _, _, entries)] = answer.resources
        _check_code(code, message)
        return {entry[0]: ConfigValue(entry[1], _CONFIG_SOURCES.get(entry[3], "UNKNOWN") if answer.API_VERSION else "UNKNOWN",
                                      entry[2]) for entry in entries}

    def alter_configs(self, resource: tuple[str, str], configs: Mapping[str, str]) -> None:
        kind, name = resource
        resource_type = ConfigResourceType.BROKER if kind == BROKER else ConfigResourceType.TOPIC
        for answer in self.loop.run(self.admin.alter_configs([ConfigResource(resource_type, name, dict(configs))])):
            for code, message, *_ in answer.resources:
                _check_code(code, message)

    def delete_records(self, topic: str, partition: int, before: int) -> int:
        tp = TopicPartition(topic, partition)
        return self.loop.run(self.admin.delete_records({tp: RecordsToDelete(before)}, timeout_ms=_TIMEOUT_MS))[tp]


async def _deliver(producer: aiokafka.AIOKafkaProducer, topic: str, records: Sequence[Record]) -> list[Record]:
    """Sends the records; returns them as acknowledged, in the order given."""
    if any(value is None for r in records for _, value in r.headers):
        raise Unsupported("aiokafka has no way to send a header with a null value (it insists on bytes)")
    # aiokafka acknowledges a record with its batch's first timestamp: the adapter stamps
    # records itself, so as to know each one's.
    now = int(time.time() * 1000)
    stamped = [replace(r, timestamp=now if r.timestamp is None else r.timestamp) for r in records]
    futures = [await producer.send(topic, value=r.value, key=r.key, headers=list(r.headers), partition=r.partition,
                                   timestamp_ms=r.timestamp) for r in stamped]
    try:
        acked = await asyncio.gather(*futures)
    except aiokafka.errors.UnknownError as e:
        raise Unsupported(f"aiokafka has no way to report this refusal's error code (it raises {e})") from e
    return [replace(r, partition=m.partition, offset=m.offset) for r, m in zip(stamped, acked, strict=True)]


class _ProducerSession(ProducerSession):
    def __init__(self, loop: _Loop, bootstrap: str, transactional_id: str | None, transaction_timeout_ms: int | None) -> None:
        self.loop = loop
        options: dict[str, Any] = {} if transaction_timeout_ms is None else {"transaction_timeout_ms": transaction_timeout_ms}

        async def started() -> aiokafka.AIOKafkaProducer:
            # aiokafka's clients are made within their event loop.
            producer = aiokafka.AIOKafkaProducer(
                bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, transactional_id=transactional_id,
                linger_ms=5, request_timeout_ms=_TIMEOUT_MS, **options)
            await producer.start()
            return producer
        self.producer = self.loop.run(started())

    def produce(self, topic: str, records: Sequence[Record]) -> list[Record]:
        return self.loop.run(_deliver(self.producer, topic, records))

    def begin(self) -> None:
        self.loop.run(self.producer.begin_transaction())

    def send_offsets(self, consumer: GroupConsumer, offsets: Mapping[int, int]) -> None:
        assert isinstance(consumer, _GroupConsumer)
        self.loop.run(self.producer.send_offsets_to_transaction(
            {TopicPartition(consumer.topic, p): OffsetAndMetadata(offset, "") for p, offset in offsets.items()},
            consumer.group))

    def commit(self) -> None:
        self.loop.run(self.producer.commit_transaction())

    def abort(self) -> None:
        self.loop.run(self.producer.abort_transaction())

    def close(self) -> None:
        self.loop.run(self.producer.stop())


class _Listener(ConsumerRebalanceListener):
    def __init__(self, rebalances: list[Rebalance]) -> None:
        self.rebalances = rebalances

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.rebalances.append(Rebalance(REVOKED, frozenset(tp.partition for tp in revoked)))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.rebalances.append(Rebalance(ASSIGNED, frozenset(tp.partition for tp in assigned)))


class _GroupConsumer(GroupConsumer):
    def __init__(self, loop: _Loop, bootstrap: str, membership: Membership) -> None:
        super().__init__()
        self.loop = loop
        self.topic = membership.topic
        self.group = membership.group

        async def started() -> aiokafka.AIOKafkaConsumer:
            consumer = aiokafka.AIOKafkaConsumer(
                bootstrap_servers=bootstrap, group_id=membership.group, group_instance_id=membership.instance_id,
                enable_auto_commit=False, auto_offset_reset="earliest", isolation_level=membership.isolation,
                partition_assignment_strategy=(RangePartitionAssignor,),
                session_timeout_ms=membership.session_timeout_ms, heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
                request_timeout_ms=_TIMEOUT_MS, fetch_max_wait_ms=100)
            consumer.subscribe([membership.topic], listener=_Listener(self.rebalances))
            await consumer.start()
            return consumer
        self.consumer = self.loop.run(started())

    def poll(self, timeout_s: float) -> list[Record]:
        batches = self.loop.run(self.consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=1000))
        return self._consumed([_record(m) for batch in batches.values() for m in batch])

    def commit(self, offsets: Mapping[int, Committed] | None = None) -> None:
        offsets = self._to_commit(offsets, (tp.partition for tp in self.consumer.assignment()))
        if offsets:
            self.loop.run(self.consumer.commit({TopicPartition(self.topic, p): OffsetAndMetadata(c.offset, c.metadata)
                                                for p, c in offsets.items()}))

    def member_id(self) -> str:
        # aiokafka keeps the member id its coordinator was given to itself.
        return self.consumer._coordinator.member_id

    def close(self) -> None:
        self.loop.run(self.consumer.stop())
