"""kafka-python, the pure-Python client."""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import kafka
import kafka.errors
from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ConfigResource,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.structs import OffsetAndMetadata

from ..security import PLAINTEXT, ClientSecurity
from .base import (
    ASSIGNED,
    CLASSIC,
    CLIENT_MAX_REQUEST_BYTES,
    COOPERATIVE_STICKY,
    HEARTBEAT_INTERVAL_MS,
    LOST,
    RANGE,
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

_TIMEOUT_MS = int(TIMEOUT_S * 1000)
_ASSIGNORS = {RANGE: RangePartitionAssignor, COOPERATIVE_STICKY: CooperativeStickyAssignor}
# kafka-python reports a resource's AlterConfigs error as a string, e.g. "[Error 40] InvalidConfigurationError: ...",
# and some other broker errors in the message of a plain KafkaError, e.g. "... [Error 50] InvalidTransactionTimeoutError".
_ERROR_TEXT = re.compile(r"\[Error (-?\d+)\] \w+: ?(.*)", re.DOTALL)
_ERROR_CODE = re.compile(r"\[Error (-?\d+)\]")
# How kafka-python logs a failed bootstrap connection, and the errors that say nothing of
# the broker's answer: a connection closed before the answer was read, a request that
# outlived the attempt (kafka-python's own timeout, under load).
_BOOTSTRAP_FAILURE = re.compile(r"Bootstrap connection to \S+ failed: (?P<error>.*?)(?: \(backoff [^)]*\))?$", re.DOTALL)
_UNANSWERED = ("KafkaConnectionError: socket disconnected", "RequestTimedOutError: Request timed out after")
# Short bootstrap attempts, where kafka-python's default takes 30 s.
_REFUSAL_ATTEMPT_MS = 1_500

F = TypeVar("F", bound=Callable[..., Any])


def _broker_errors(method: F) -> F:
    """Raises kafka-python's errors for broker error codes as BrokerError. A request that
    the pinned api_version of a profile has no version of is Unsupported (unpinned, the
    broker's ApiVersions said it has none: a failure)."""

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except kafka.errors.IncompatibleBrokerVersion as e:
            if self.api_version is None:
                raise BrokerError(e.errno, str(e)) from e
            raise Unsupported(f"kafka-python at api_version={self.api_version}: {e}") from e
        except kafka.errors.BrokerResponseError as e:
            raise BrokerError(e.errno, str(e)) from e

    return call  # type: ignore[return-value]


def _check_code(code: int, message: str | None = None) -> None:
    if code != 0:
        raise BrokerError(code, message)


def _named_error(text: str) -> BrokerError | None:
    """The broker error a kafka-python message names, if it names one."""
    found = _ERROR_CODE.search(text)
    return None if found is None else BrokerError(int(found.group(1)), text)


class _BootstrapFailures(logging.Handler):
    """The errors of failed bootstrap connections, as kafka-python logs them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        found = _BOOTSTRAP_FAILURE.match(record.getMessage())
        if found and found["error"] not in self.errors:
            self.errors.append(found["error"])


class KafkaPython(Client):
    name = "kafka-python"

    def __init__(self, bootstrap: str, security: ClientSecurity = PLAINTEXT, api_version: tuple[int, ...] | None = None) -> None:
        """api_version pins the protocol level (a profile): the client then sends the
        versions of that Kafka release without asking ApiVersions."""
        super().__init__(bootstrap, security)
        self.api_version = api_version
        self._admin: KafkaAdminClient | None = None
        self.connection: dict[str, Any] = {"bootstrap_servers": bootstrap, **security.kafka_python(), **_pinned(api_version)}

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    @property
    def admin(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = KafkaAdminClient(**self.connection, request_timeout_ms=_TIMEOUT_MS)
        return self._admin

    def _consumer(self, isolation: str = READ_UNCOMMITTED) -> kafka.KafkaConsumer:
        return kafka.KafkaConsumer(
            **self.connection, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
            request_timeout_ms=_TIMEOUT_MS, fetch_max_wait_ms=100, isolation_level=isolation,
        )

    def connection_errors(self, within_s: float = REFUSAL_WAIT_S) -> list[str]:
        """kafka-python drops a response that arrives together with the connection's close
        (its transport aborts on end of stream before handing over the bytes read with it),
        so an attempt sees the broker's refusal only when the two arrive apart; Kafka, too,
        answers and then closes. Short attempts are repeated until one sees the answer, and
        only errors that carry an answer are shown, unless none came within within_s."""
        failures = _BootstrapFailures()
        logger = logging.getLogger("kafka.net.manager")
        logger.addHandler(failures)
        deadline = time.monotonic() + within_s
        gave_up: list[str] = []  # what the application is told when no connection is logged failing
        try:
            while time.monotonic() < deadline:
                try:
                    kafka.KafkaProducer(**self.connection, bootstrap_timeout_ms=_REFUSAL_ATTEMPT_MS).close()
                    return []
                except kafka.errors.KafkaError as e:
                    gave_up = [f"{type(e).__name__}: {e}"]
                answered = [error for error in failures.errors if not any(u in error for u in _UNANSWERED)]
                if answered:
                    return answered
            return failures.errors or gave_up
        finally:
            logger.removeHandler(failures)

    @_broker_errors
    def api_versions(self) -> dict[int, tuple[int, int]]:
        if self.api_version is not None:
            raise Unsupported(f"kafka-python at api_version={self.api_version} reports its release's API versions, not the broker's")
        return {int(key): versions for key, versions in self.admin.api_versions().items()}

    @_broker_errors
    def cluster(self) -> Cluster:
        if self._older_than((0, 10, 1)):
            raise Unsupported(f"kafka-python at api_version={self.api_version} sends Metadata v1, which has no cluster id")
        found = self.admin.describe_cluster()
        return Cluster(found["cluster_id"], found["controller_id"],
                       {b["broker_id"]: (b["host"], b["port"]) for b in found["brokers"]})

    @_broker_errors
    def brokers(self) -> dict[int, tuple[str, int]]:
        return {b["broker_id"]: (b["host"], b["port"]) for b in self.admin.describe_cluster()["brokers"]}

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
        if self._older_than((0, 11)) and any(r.headers for r in records):
            raise Unsupported(f"kafka-python at api_version={self.api_version} sends message format v1, which has no headers")
        if compression == "zstd" and self._older_than((2, 1)):
            raise Unsupported(f"kafka-python at api_version={self.api_version} has no zstd (Kafka 2.1)")
        producer = kafka.KafkaProducer(
            **self.connection, acks="all", linger_ms=5,
            compression_type=None if compression == "none" else compression,
            max_request_size=CLIENT_MAX_REQUEST_BYTES, request_timeout_ms=_TIMEOUT_MS, max_block_ms=_TIMEOUT_MS,
        )
        try:
            return _deliver(producer, topic, records)
        finally:
            producer.close(timeout=TIMEOUT_S)

    @_broker_errors
    def consume(self, topic: str, ends: Mapping[int, int], starts: Mapping[int, int] | None = None,
                isolation: str = READ_UNCOMMITTED) -> list[Record]:
        starts = starts or {}
        consumer = self._consumer(isolation)
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
                for batch in consumer.poll(timeout_ms=100, max_records=1000).values():
                    got += map(_record, batch)
                # The position passes what the consumer skips: gaps, control records, aborted transactions.
                for tp in partitions:
                    positions[tp.partition] = max(positions[tp.partition], consumer.position(tp, _TIMEOUT_MS) or 0)
            return got
        finally:
            consumer.close()

    def _older_than(self, release: tuple[int, ...]) -> bool:
        return self.api_version is not None and self.api_version < release

    def producer(self, transactional_id: str | None = None, transaction_timeout_ms: int | None = None) -> ProducerSession:
        if self._older_than((0, 11)):
            raise Unsupported(f"kafka-python at api_version={self.api_version} has no idempotent producer (Kafka 0.11)")
        return _ProducerSession(self.connection, transactional_id, transaction_timeout_ms, self.api_version)

    def group_consumer(self, membership: Membership) -> GroupConsumer:
        if membership.protocol != CLASSIC:
            raise self._lacks(f"{membership.protocol!r} group protocol (KIP-848), only the classic one")
        if membership.instance_id is not None and self._older_than((2, 3)):
            raise Unsupported(f"kafka-python at api_version={self.api_version} has no static membership (Kafka 2.3)")
        return _GroupConsumer(self.connection, membership, self.api_version)

    @_broker_errors
    def list_groups(self) -> dict[str, str]:
        if self._older_than((2, 6)):
            raise Unsupported(f"kafka-python at api_version={self.api_version} sends ListGroups without group states (Kafka 2.6)")
        return {g["group_id"]: g["group_state"] for g in self.admin.list_groups()}

    @_broker_errors
    def describe_group(self, group: str) -> Group:
        found = self.admin.describe_groups([group])[group]
        if found["error"]:
            raise _named_error(found["error"]) or RuntimeError(f"DescribeGroups of {group}: {found['error']}")
        members = tuple(
            GroupMember(m["member_id"], m.get("group_instance_id"),
                        frozenset((t["topic"], p) for t in (m["member_assignment"] or {}).get("assigned_partitions", ())
                                  for p in t["partitions"]))
            for m in found["members"]
        )
        return Group(found["group_state"], found["protocol_data"], members)

    @_broker_errors
    def group_offsets(self, group: str) -> dict[tuple[str, int], Committed]:
        return {(tp.topic, tp.partition): Committed(c.offset, c.metadata or "")
                for tp, c in self.admin.list_group_offsets({group: None})[group].items()}

    @_broker_errors
    def alter_group_offsets(self, group: str, offsets: Mapping[tuple[str, int], Committed]) -> None:
        answers = self.admin.alter_group_offsets(
            group, {TopicPartition(t, p): OffsetAndMetadata(c.offset, c.metadata, -1) for (t, p), c in offsets.items()})
        for error in answers.values():
            if error is not kafka.errors.NoError:
                raise BrokerError(error.errno)

    @_broker_errors
    def delete_group(self, group: str) -> None:
        answer = self.admin.delete_groups([group])[group]
        if answer != "OK":
            raise BrokerError(getattr(kafka.errors, answer).errno)

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

    def _patterns_expressible(self, acls: Sequence[AclEntry]) -> None:
        """Below Kafka 2.0 the ACL requests have no pattern type: kafka-python would send a
        PREFIXED ACL as a LITERAL one."""
        if self._older_than((2, 0)) and any(a.pattern_type != "LITERAL" for a in acls):
            raise Unsupported(f"kafka-python at api_version={self.api_version} has no ACL pattern types (Kafka 2.0)")

    @_broker_errors
    def create_acls(self, acls: Sequence[AclEntry]) -> None:
        self._patterns_expressible(acls)
        result = self.admin.create_acls([
            ACL(a.principal, a.host, ACLOperation[a.operation], ACLPermissionType[a.permission],
                ResourcePattern(ResourceType[a.resource_type], a.resource_name, ACLResourcePatternType[a.pattern_type]))
            for a in acls])
        for error in result["failed"]:
            raise BrokerError(error.errno, error.message)

    @_broker_errors
    def delete_acls(self, acls: Sequence[AclEntry]) -> None:
        self._patterns_expressible(acls)
        filters = [
            ACLFilter(a.principal, a.host, ACLOperation[a.operation], ACLPermissionType[a.permission],
                      ResourcePatternFilter(ResourceType[a.resource_type], a.resource_name,
                                            ACLResourcePatternType[a.pattern_type]))
            for a in acls]
        for _, _, error in self.admin.delete_acls(filters):
            _check_code(error.errno, getattr(error, "message", None))


def _pinned(api_version: tuple[int, ...] | None) -> dict[str, Any]:
    """The option of kafka-python's clients that pins their protocol level, if any."""
    return {} if api_version is None else {"api_version": api_version}


def _record(m: Any) -> Record:
    return Record(m.key, m.value, tuple(m.headers), m.timestamp, m.partition, m.offset)


def _deliver(producer: kafka.KafkaProducer, topic: str, records: Sequence[Record]) -> list[Record]:
    """Sends the records; returns them as acknowledged, in the order given."""
    if any(value is None for r in records for _, value in r.headers):
        raise Unsupported("kafka-python has no way to send a header with a null value (it insists on bytes)")
    futures = [
        producer.send(topic, value=r.value, key=r.key, headers=list(r.headers), partition=r.partition, timestamp_ms=r.timestamp)
        for r in records
    ]
    # Waiting on each future rather than on flush: a batch the broker refuses as too
    # large is split and resent, and flush can return before the halves are answered.
    deadline = time.monotonic() + TIMEOUT_S
    acked = [f.get(max(0.0, deadline - time.monotonic())) for f in futures]
    return [replace(r, timestamp=m.timestamp, partition=m.partition, offset=m.offset) for r, m in zip(records, acked, strict=True)]


class _ProducerSession(ProducerSession):
    def __init__(self, connection: Mapping[str, Any], transactional_id: str | None, transaction_timeout_ms: int | None,
                 api_version: tuple[int, ...] | None) -> None:
        self.api_version = api_version
        options: dict[str, Any] = {} if transaction_timeout_ms is None else {"transaction_timeout_ms": transaction_timeout_ms}
        self.producer = kafka.KafkaProducer(
            **connection, acks="all", enable_idempotence=True, transactional_id=transactional_id,
            linger_ms=5, request_timeout_ms=_TIMEOUT_MS, max_block_ms=_TIMEOUT_MS, **options,
        )
        if transactional_id is not None:
            self.init_transactions()

    @_broker_errors
    def init_transactions(self) -> None:
        try:
            self.producer.init_transactions()
        except kafka.errors.KafkaError as e:
            # kafka-python reports some refusals of InitProducerId as a plain KafkaError.
            named = _named_error(str(e)) if type(e) is kafka.errors.KafkaError else None
            if named is None:
                raise
            raise named from e

    @_broker_errors
    def produce(self, topic: str, records: Sequence[Record]) -> list[Record]:
        return _deliver(self.producer, topic, records)

    @_broker_errors
    def begin(self) -> None:
        self.producer.begin_transaction()

    @_broker_errors
    def send_offsets(self, consumer: GroupConsumer, offsets: Mapping[int, int]) -> None:
        assert isinstance(consumer, _GroupConsumer)
        self.producer.send_offsets_to_transaction(
            {TopicPartition(consumer.topic, p): OffsetAndMetadata(offset, "", -1) for p, offset in offsets.items()},
            consumer.consumer.group_metadata())

    @_broker_errors
    def commit(self) -> None:
        self.producer.commit_transaction()

    @_broker_errors
    def abort(self) -> None:
        self.producer.abort_transaction()

    def close(self) -> None:
        self.producer.close(timeout=TIMEOUT_S)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, rebalances: list[Rebalance]) -> None:
        self.rebalances = rebalances

    def _called(self, kind: str, partitions: Any) -> None:
        self.rebalances.append(Rebalance(kind, frozenset(tp.partition for tp in partitions)))

    def on_partitions_revoked(self, revoked: Any) -> None:
        self._called(REVOKED, revoked)

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._called(ASSIGNED, assigned)

    def on_partitions_lost(self, lost: Any) -> None:
        self._called(LOST, lost)


class _GroupConsumer(GroupConsumer):
    def __init__(self, connection: Mapping[str, Any], membership: Membership, api_version: tuple[int, ...] | None) -> None:
        super().__init__()
        self.api_version = api_version
        self.topic = membership.topic
        self.consumer = kafka.KafkaConsumer(
            **connection, group_id=membership.group, group_instance_id=membership.instance_id,
            enable_auto_commit=False, auto_offset_reset="earliest", isolation_level=membership.isolation,
            partition_assignment_strategy=[_ASSIGNORS[membership.assignor]],
            session_timeout_ms=membership.session_timeout_ms, heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            request_timeout_ms=_TIMEOUT_MS, fetch_max_wait_ms=100,
        )
        self.consumer.subscribe([membership.topic], listener=_Listener(self.rebalances))
        # kafka-python 3.0.12 can lose an assignment: a leader whose first JoinGroup comes
        # before its subscription's metadata joins again once the metadata comes, and if a
        # poll's timeout ends within that join, the join is never completed: the member
        # holds no partitions while the group gives it some. Fetching the metadata before
        # the first poll (where it joins) spares the second join.
        self.consumer.topics()

    @_broker_errors
    def poll(self, timeout_s: float) -> list[Record]:
        batches = self.consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=1000)
        return self._consumed([_record(m) for batch in batches.values() for m in batch])

    @_broker_errors
    def commit(self, offsets: Mapping[int, Committed] | None = None) -> None:
        offsets = self._to_commit(offsets, (tp.partition for tp in self.consumer.assignment()))
        if offsets:
            self.consumer.commit({TopicPartition(self.topic, p): OffsetAndMetadata(c.offset, c.metadata, -1)
                                  for p, c in offsets.items()}, timeout_ms=_TIMEOUT_MS)

    def member_id(self) -> str:
        return self.consumer.group_metadata().member_id

    def close(self) -> None:
        self.consumer.close()
