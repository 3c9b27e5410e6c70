"""confluent-kafka, the Python binding of librdkafka."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

import confluent_kafka
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from ..security import PLAINTEXT, ClientSecurity
from .base import (
    ASSIGNED,
    CLIENT_MAX_REQUEST_BYTES,
    CONSUMER,
    HEARTBEAT_INTERVAL_MS,
    LOST,
    READ_UNCOMMITTED,
    REFUSAL_WAIT_S,
    REVOKED,
    TIMEOUT_S,
    AclEntry,
    BrokerError,
    Client,
    Cluster,
    Committed,
    ConfigValue,
    Group,
    GroupConsumer,
    GroupMember,
    Membership,
    Partition,
    ProducerSession,
    Rebalance,
    Record,
    Unsupported,
)

PRODUCER_FENCED = 90
# What librdkafka appends to a connection's error: when and in which state it failed.
_WHEN_FAILED = re.compile(r" \(after \d+ms in state \w+\)$")
# librdkafka's names of group states -> Kafka's.
_GROUP_STATES = {"STABLE": "Stable", "EMPTY": "Empty", "DEAD": "Dead", "PREPARING_REBALANCING": "PreparingRebalance",
                 "COMPLETING_REBALANCING": "CompletingRebalance"}


def _raise(error: KafkaError) -> None:
    # librdkafka numbers broker errors as Kafka does; its own errors are negative, and it
    # reports a broker's PRODUCER_FENCED or INVALID_PRODUCER_EPOCH as its own _FENCED.
    if error.code() == KafkaError._FENCED:
        raise BrokerError(PRODUCER_FENCED, error.str())
    if error.code() > 0:
        raise BrokerError(error.code(), error.str())
    raise KafkaException(error)


def _call(method: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return method(*args, **kwargs)
    except KafkaException as e:
        _raise(e.args[0])


def _check(partitions: list[TopicPartition]) -> None:
    for tp in partitions:
        if tp.error is not None:
            _raise(tp.error)


def _record(m: confluent_kafka.Message) -> Record:
    # A consumed message's headers are (key, bytes) pairs; the stub's type is produce()'s.
    headers = cast("list[tuple[str, bytes | None]]", m.headers() or ())
    return Record(m.key(), m.value(), tuple(headers), m.timestamp()[1], m.partition(), m.offset())


def _result(future: Any) -> Any:
    try:
        return future.result(TIMEOUT_S)
    except KafkaException as e:
        _raise(e.args[0])


class ConfluentKafka(Client):
    name = "confluent-kafka"

    def __init__(self, bootstrap: str, security: ClientSecurity = PLAINTEXT, broker_version_fallback: str | None = None) -> None:
        """broker_version_fallback pins the protocol level (a profile), with
        api.version.request=false; librdkafka heeds it only below 0.10."""
        super().__init__(bootstrap, security)
        self.fallback = broker_version_fallback
        pinned: dict[str, Any] = {} if broker_version_fallback is None else {
            "api.version.request": False, "broker.version.fallback": broker_version_fallback}
        self._admin: AdminClient | None = None
        self.connection: dict[str, Any] = {"bootstrap.servers": bootstrap, **security.confluent(), **pinned}

    def _needs(self, release: tuple[int, ...], what: str) -> None:
        """Unsupported when the pinned level predates the Kafka release that brought what:
        librdkafka would wait out its timeout, or drop what the old format lacks."""
        if self.fallback is not None and tuple(map(int, self.fallback.split("."))) < release:
            raise Unsupported(f"librdkafka at broker.version.fallback={self.fallback} has no {what} "
                              f"(Kafka {'.'.join(map(str, release))})")

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            # Metadata asked by the admin client must not create the topics it names.
            self._admin = AdminClient({**self.connection, "allow.auto.create.topics": False})
        return self._admin

    def _consumer(self, isolation: str = READ_UNCOMMITTED) -> confluent_kafka.Consumer:
        return confluent_kafka.Consumer({
            **self.connection, "group.id": "kafkapy-compat", "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100, "isolation.level": isolation,
        })

    def connection_errors(self, within_s: float = REFUSAL_WAIT_S) -> list[str]:
        errors: list[str] = []

        def shown(error: KafkaError) -> None:
            # "n/n brokers are down" sums up the errors shown, and comes when a connected
            # client drops its bootstrap connection too.
            text = _WHEN_FAILED.sub("", error.str())
            if error.code() != KafkaError._ALL_BROKERS_DOWN and text not in errors:
                errors.append(text)

        producer = confluent_kafka.Producer({**self.connection, "error_cb": shown})
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            producer.poll(0.1)  # serves error_cb (and oauth_cb)
            try:
                producer.list_topics(timeout=0.5)
                return []
            except KafkaException:
                if errors:
                    return errors
        return errors

    def cluster(self) -> Cluster:
        self._needs((0, 10), "cluster id and controller in Metadata (v1)")
        metadata = self.admin.list_topics(timeout=TIMEOUT_S)
        return Cluster(metadata.cluster_id, metadata.controller_id,
                       {b.id: (cast(str, b.host), b.port) for b in metadata.brokers.values()})  # confluent-kafka types host as None

    def brokers(self) -> dict[int, tuple[str, int]]:
        return {b.id: (cast(str, b.host), b.port) for b in self.admin.list_topics(timeout=TIMEOUT_S).brokers.values()}

    def topic_names(self) -> set[str]:
        return set(self.admin.list_topics(timeout=TIMEOUT_S).topics)

    def partitions(self, topic: str) -> list[Partition]:
        found = self.admin.list_topics(topic, timeout=TIMEOUT_S).topics[topic]
        if found.error is not None:
            _raise(found.error)
        return [Partition(p.id, p.leader, tuple(p.replicas), tuple(p.isrs))
                for p in sorted(found.partitions.values(), key=lambda p: p.id)]

    def create_topic(self, topic: str, partitions: int, configs: Mapping[str, str] | None = None) -> None:
        self._needs((0, 10, 1), "CreateTopics")
        futures = self.admin.create_topics([NewTopic(topic, partitions, 1, config=dict(configs or {}))],
                                           request_timeout=TIMEOUT_S)
        _result(futures[topic])

    def delete_topic(self, topic: str) -> None:
        self._needs((0, 10, 1), "DeleteTopics")
        _result(self.admin.delete_topics([topic], request_timeout=TIMEOUT_S)[topic])

    def create_partitions(self, topic: str, total: int) -> None:
        self._needs((1, 0), "CreatePartitions")
        _result(self.admin.create_partitions([NewPartitions(topic, total)], request_timeout=TIMEOUT_S)[topic])

    def produce(self, topic: str, records: Sequence[Record], compression: str = "none") -> list[Record]:
        if any(r.headers for r in records):
            self._needs((0, 11), "headers (message format v2)")
        if compression == "zstd":
            self._needs((2, 1), "zstd compression")
        return _deliver(confluent_kafka.Producer({
            **self.connection, "acks": "all", "compression.type": compression, "linger.ms": 5,
            "message.max.bytes": CLIENT_MAX_REQUEST_BYTES, "message.timeout.ms": int(TIMEOUT_S * 1000),
        }), topic, records)

    def consume(self, topic: str, ends: Mapping[int, int], starts: Mapping[int, int] | None = None,
                isolation: str = READ_UNCOMMITTED) -> list[Record]:
        starts = starts or {}
        consumer = self._consumer(isolation)
        try:
            consumer.assign([TopicPartition(topic, p, starts.get(p, 0)) for p, end in ends.items() if end > 0])
            got: list[Record] = []
            positions = {p: starts.get(p, 0) for p in ends}
            deadline = time.monotonic() + TIMEOUT_S
            while any(positions[p] < end for p, end in ends.items()):
                assert time.monotonic() < deadline, f"consumed up to {positions} in {TIMEOUT_S}s, wanted {dict(ends)}"
                for m in consumer.consume(num_messages=1000, timeout=0.1):
                    if (error := m.error()) is not None:
                        _raise(error)
                    got.append(_record(m))
                # The position passes what the consumer skips: gaps, control records, aborted transactions.
                for tp in consumer.position([TopicPartition(topic, p) for p in positions]):
                    positions[tp.partition] = max(positions[tp.partition], tp.offset)
            return got
        finally:
            consumer.close()

    def producer(self, transactional_id: str | None = None, transaction_timeout_ms: int | None = None) -> ProducerSession:
        self._needs((0, 11), "idempotent producer")
        return _ProducerSession(self.connection, transactional_id, transaction_timeout_ms)

    def group_consumer(self, membership: Membership) -> GroupConsumer:
        if membership.protocol == CONSUMER:
            self._needs((4, 0), "consumer group protocol (KIP-848)")
        if membership.instance_id is not None:
            self._needs((2, 3), "static membership")
        return _GroupConsumer(self.connection, membership)

    def list_groups(self) -> dict[str, str]:
        self._needs((2, 6), "group states in ListGroups")
        found = _result(self.admin.list_consumer_groups(request_timeout=TIMEOUT_S))
        assert not found.errors, f"ListGroups failed on some brokers: {found.errors}"
        return {g.group_id: _GROUP_STATES.get(g.state.name, g.state.name) for g in found.valid}

    def describe_group(self, group: str) -> Group:
        [future] = self.admin.describe_consumer_groups([group], request_timeout=TIMEOUT_S).values()
        found = _result(future)
        members = tuple(
            GroupMember(m.member_id, m.group_instance_id, frozenset((tp.topic, tp.partition) for tp in m.assignment.topic_partitions))
            for m in found.members
        )
        return Group(_GROUP_STATES.get(found.state.name, found.state.name), found.partition_assignor, members)

    def group_offsets(self, group: str) -> dict[tuple[str, int], Committed]:
        self._needs((0, 10, 2), "OffsetFetch of all of a group's offsets (v2)")
        [future] = self.admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                                          request_timeout=TIMEOUT_S).values()
        partitions = _result(future).topic_partitions
        _check(partitions)
        return {(tp.topic, tp.partition): Committed(tp.offset, tp.metadata or "") for tp in partitions}

    def alter_group_offsets(self, group: str, offsets: Mapping[tuple[str, int], Committed]) -> None:
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p, c.offset, metadata=c.metadata)
                                                       for (t, p), c in offsets.items()])
        [future] = self.admin.alter_consumer_group_offsets([request], request_timeout=TIMEOUT_S).values()
        _check(_result(future).topic_partitions)

    def delete_group(self, group: str) -> None:
        self._needs((1, 1), "DeleteGroups")
        _result(self.admin.delete_consumer_groups([group], request_timeout=TIMEOUT_S)[group])

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        consumer = self._consumer()
        try:
            return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT_S, cached=False)
        finally:
            consumer.close()

    def offset_for_time(self, topic: str, partition: int, timestamp: int) -> int | None:
        self._needs((0, 10, 1), "ListOffsets by timestamp (v1)")
        consumer = self._consumer()
        try:
            [found] = consumer.offsets_for_times([TopicPartition(topic, partition, timestamp)], timeout=TIMEOUT_S)
        finally:
            consumer.close()
        if found.error is not None:
            _raise(found.error)
        return None if found.offset == confluent_kafka.OFFSET_END else found.offset

    def describe_configs(self, resource: tuple[str, str]) -> dict[str, ConfigValue]:
        self._needs((0, 11), "DescribeConfigs")
        [future] = self.admin.describe_configs([ConfigResource(*resource)], request_timeout=TIMEOUT_S).values()
        return {name: ConfigValue(e.value, ConfigSource(e.source).name, e.is_read_only)
                for name, e in _result(future).items()}

    def incremental_alter_configs(self, resource: tuple[str, str], ops: Sequence[tuple[str, str, str | None]]) -> None:
        self._needs((2, 3), "IncrementalAlterConfigs")
        entries = [ConfigEntry(name, value, incremental_operation=AlterConfigOpType[op]) for name, op, value in ops]
        [future] = self.admin.incremental_alter_configs([ConfigResource(*resource, incremental_configs=entries)],
                                                        request_timeout=TIMEOUT_S).values()
        _result(future)

    def alter_configs(self, resource: tuple[str, str], configs: Mapping[str, str]) -> None:
        self._needs((0, 11), "AlterConfigs")
        [future] = self.admin.alter_configs([ConfigResource(*resource, set_config=dict(configs))],
                                            request_timeout=TIMEOUT_S).values()
        _result(future)

    def delete_records(self, topic: str, partition: int, before: int) -> int:
        self._needs((0, 11), "DeleteRecords")
        [future] = self.admin.delete_records([TopicPartition(topic, partition, before)],
                                             request_timeout=TIMEOUT_S).values()
        return _result(future).low_watermark

    def create_acls(self, acls: Sequence[AclEntry]) -> None:
        self._needs((0, 11), "CreateAcls")
        for future in self.admin.create_acls([AclBinding(*_binding_args(a)) for a in acls],
                                             request_timeout=TIMEOUT_S).values():
            _result(future)

    def delete_acls(self, acls: Sequence[AclEntry]) -> None:
        self._needs((0, 11), "DeleteAcls")
        for future in self.admin.delete_acls([AclBindingFilter(*_binding_args(a)) for a in acls],
                                             request_timeout=TIMEOUT_S).values():
            _result(future)


def _binding_args(acl: AclEntry) -> tuple[Any, ...]:
    return (ResourceType[acl.resource_type], acl.resource_name, ResourcePatternType[acl.pattern_type], acl.principal,
            acl.host, AclOperation[acl.operation], AclPermissionType[acl.permission])


def _deliver(producer: confluent_kafka.Producer, topic: str, records: Sequence[Record]) -> list[Record]:
    """Sends the records; returns them as acknowledged, in the order given."""
    acked: list[Record | None] = [None] * len(records)
    errors: list[KafkaError] = []

    def on_delivery(index: int) -> Callable[[KafkaError | None, confluent_kafka.Message], None]:
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
        _call(producer.produce, topic, r.value, r.key, headers=list(r.headers), timestamp=r.timestamp or 0,
              on_delivery=on_delivery(index), **kwargs)
        producer.poll(0)
    unsent = producer.flush(TIMEOUT_S)
    if errors:
        _raise(errors[0])
    assert unsent == 0, f"{unsent} records not delivered within {TIMEOUT_S}s"
    return acked  # type: ignore[return-value]


class _ProducerSession(ProducerSession):
    def __init__(self, connection: Mapping[str, Any], transactional_id: str | None, transaction_timeout_ms: int | None) -> None:
        config: dict[str, Any] = {**connection, "enable.idempotence": True, "linger.ms": 5,
                                  "message.timeout.ms": int(TIMEOUT_S * 1000)}
        if transactional_id is not None:
            config["transactional.id"] = transactional_id
        if transaction_timeout_ms is not None:
            config["transaction.timeout.ms"] = transaction_timeout_ms
            # librdkafka refuses a message timeout longer than the transaction's.
            config["message.timeout.ms"] = min(config["message.timeout.ms"], transaction_timeout_ms)
        self.producer = confluent_kafka.Producer(config)
        if transactional_id is not None:
            _call(self.producer.init_transactions, TIMEOUT_S)

    def produce(self, topic: str, records: Sequence[Record]) -> list[Record]:
        return _deliver(self.producer, topic, records)

    def begin(self) -> None:
        _call(self.producer.begin_transaction)

    def send_offsets(self, consumer: GroupConsumer, offsets: Mapping[int, int]) -> None:
        assert isinstance(consumer, _GroupConsumer)
        _call(self.producer.send_offsets_to_transaction,
              [TopicPartition(consumer.topic, p, offset) for p, offset in offsets.items()],
              consumer.consumer.consumer_group_metadata(), TIMEOUT_S)

    def commit(self) -> None:
        _call(self.producer.commit_transaction, TIMEOUT_S)

    def abort(self) -> None:
        _call(self.producer.abort_transaction, TIMEOUT_S)

    def close(self) -> None:
        try:
            self.producer.close()
        except KafkaException as e:
            # A producer fenced, or whose transaction the broker aborted, raises its fatal
            # error again when it closes: the scenario has already seen what it did.
            if not e.args[0].fatal():
                raise


class _GroupConsumer(GroupConsumer):
    def __init__(self, connection: Mapping[str, Any], membership: Membership) -> None:
        super().__init__()
        self.topic = membership.topic
        config: dict[str, Any] = {
            **connection, "group.id": membership.group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100, "isolation.level": membership.isolation,
        }
        if membership.protocol == CONSUMER:
            # The broker assigns and times sessions out: librdkafka refuses the classic settings.
            config["group.protocol"] = CONSUMER
        else:
            config.update({"partition.assignment.strategy": membership.assignor,
                           "session.timeout.ms": membership.session_timeout_ms,
                           "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS})
        if membership.instance_id is not None:
            config["group.instance.id"] = membership.instance_id
        self.consumer = confluent_kafka.Consumer(config)
        self.consumer.subscribe([membership.topic], on_assign=self._listener(ASSIGNED), on_revoke=self._listener(REVOKED),
                                on_lost=self._listener(LOST))

    def _listener(self, kind: str) -> Callable[[confluent_kafka.Consumer, list[TopicPartition]], None]:
        def called(consumer: confluent_kafka.Consumer, partitions: list[TopicPartition]) -> None:
            self.rebalances.append(Rebalance(kind, frozenset(tp.partition for tp in partitions)))
        return called

    def poll(self, timeout_s: float) -> list[Record]:
        records = []
        for m in self.consumer.consume(num_messages=1000, timeout=timeout_s):
            if (error := m.error()) is not None:
                _raise(error)
            records.append(_record(m))
        return self._consumed(records)

    def commit(self, offsets: Mapping[int, Committed] | None = None) -> None:
        offsets = self._to_commit(offsets, (tp.partition for tp in self.consumer.assignment()))
        if offsets:
            _check(_call(self.consumer.commit, offsets=[TopicPartition(self.topic, p, c.offset, metadata=c.metadata)
                                                        for p, c in offsets.items()], asynchronous=False))

    def member_id(self) -> str:
        return self.consumer.memberid()

    def close(self) -> None:
        self.consumer.close()
