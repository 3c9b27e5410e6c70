"""Coordinators that move with their partition's leadership, on a three-node kafkapy
cluster (kafkapy.Cluster, in one process) driven by confluent-kafka: the broker
coordinating a consumer group, or a transactional producer, is killed; the clients find
the new coordinator, which loads the partition's state from its replicated log, and no
committed offset or transaction is lost."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import waiting
from kafkapy.client import Client
from kafkapy.coordinator.java_hash import java_string_hash
from kafkapy.server.broker import BrokerServer
from kafkapy.testing.cluster import Cluster

pytestmark = pytest.mark.timeout(120)

T = TypeVar("T")
TIMEOUT_S = 30
PARTITIONS = 3
RECORDS = 300
OFFSETS_PARTITIONS = 3


def until(predicate: Callable[[], T], what: str, timeout_s: float = TIMEOUT_S) -> T:
    return waiting.until(predicate, timeout_s, what)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    # One partition of each internal topic, on all three brokers: its leader is the coordinator.
    with Cluster(brokers=3, **{
        "offsets.topic.num.partitions": 1, "offsets.topic.replication.factor": 3,
        "transaction.state.log.num.partitions": 1, "transaction.state.log.replication.factor": 3,
        "transaction.state.log.min.isr": 1, "group.initial.rebalance.delay.ms": 0,
    }) as c:
        yield c


def create_topic(cluster: Cluster, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=3)])[name].result(TIMEOUT_S)


def produce_numbers(cluster: Cluster, topic: str) -> None:
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all"})
    for i in range(RECORDS):
        producer.produce(topic, value=str(i).encode(), partition=i % PARTITIONS)
    assert producer.flush(TIMEOUT_S) == 0


def leader_of(cluster: Cluster, topic: str, alive: int, partition: int = 0) -> int:
    def read(server: BrokerServer) -> int:
        assert server.broker is not None
        found = server.broker.image.topics.get(topic)
        return found.partitions[partition].leader if found is not None and partition in found.partitions else -1
    return int(cluster.nodes[alive].read(read))


def any_alive(cluster: Cluster, killed: set[int]) -> int:
    return next(n for n in cluster.nodes if n not in killed)


def kill_coordinator(cluster: Cluster, internal_topic: str) -> int:
    coordinator = until(lambda: max(leader_of(cluster, internal_topic, 1), 0), f"{internal_topic} has a leader")
    cluster.kill(coordinator)
    alive = any_alive(cluster, {coordinator})
    until(lambda: leader_of(cluster, internal_topic, alive) not in (coordinator, -1),
          f"{internal_topic} has a new leader")
    return coordinator


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_group_keeps_its_committed_offsets_when_its_coordinator_dies(cluster: Cluster, protocol: str) -> None:
    topic = f"numbers-{protocol}"
    create_topic(cluster, topic)
    produce_numbers(cluster, topic)
    settings: dict[str, Any] = {
        "bootstrap.servers": cluster.bootstrap_servers, "group.id": f"g-{protocol}", "group.protocol": protocol,
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
    }
    if protocol == "classic":
        settings.update({"session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    consumer = Consumer(settings)
    consumer.subscribe([topic])
    consumed: list[tuple[int, int, int]] = []  # (partition, offset, value)
    committed_before: dict[int, int] = {}
    deadline = time.monotonic() + 60
    killed = False
    try:
        while len({value for _, _, value in consumed}) < RECORDS:
            assert time.monotonic() < deadline, f"consumed {len(consumed)} records"
            message = consumer.poll(0.2)
            if message is None or message.error():
                continue
            consumed.append((message.partition(), message.offset(), int(message.value())))
            if not killed and len(consumed) >= 100:
                consumer.commit(asynchronous=False)
                committed_before = {tp.partition: tp.offset for tp in consumer.committed(
                    [TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=TIMEOUT_S)}
                kill_coordinator(cluster, "__consumer_offsets")
                killed = True
            elif len(consumed) % 20 == 0:
                try:
                    consumer.commit(asynchronous=False)
                except KafkaException:
                    pass  # the coordinator moving: what was not committed is consumed again
        if len(consumed) % 20:
            consumer.commit(asynchronous=False)
        after = {tp.partition: tp.offset for tp in consumer.committed(
            [TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=TIMEOUT_S)}
    finally:
        consumer.close()
    assert sorted({value for _, _, value in consumed}) == list(range(RECORDS)), "a record was skipped"
    assert sum(max(o, 0) for o in committed_before.values()) == 100
    for partition, offset in committed_before.items():
        assert after[partition] >= offset, f"partition {partition}'s committed offset went back"
        below = [o for p, o, _ in consumed if p == partition and o < offset]
        assert len(below) == len(set(below)), f"records of partition {partition} committed before were consumed again"
    assert after == {p: RECORDS // PARTITIONS for p in range(PARTITIONS)}


@pytest.fixture
def spread_cluster() -> Iterator[Cluster]:
    # Several partitions of __consumer_offsets, so that a group can be coordinated by
    # another broker than the transactional id.
    with Cluster(brokers=3, **{
        "offsets.topic.num.partitions": OFFSETS_PARTITIONS, "offsets.topic.replication.factor": 3,
        "transaction.state.log.num.partitions": 1, "transaction.state.log.replication.factor": 3,
        "transaction.state.log.min.isr": 1, "group.initial.rebalance.delay.ms": 0,
    }) as c:
        yield c


def group_coordinated_elsewhere(cluster: Cluster, txn_coordinator: int) -> str:
    with Client(cluster.bootstrap_servers, timeout=TIMEOUT_S) as client:
        client.coordinator("warm-up")  # creates __consumer_offsets
    until(lambda: min(leader_of(cluster, "__consumer_offsets", 1, p) for p in range(OFFSETS_PARTITIONS)) >= 0,
          "__consumer_offsets to have leaders")
    return next(g for g in (f"eos-{i}" for i in range(100)) if leader_of(
        cluster, "__consumer_offsets", 1, abs(java_string_hash(g)) % OFFSETS_PARTITIONS) != txn_coordinator)


def test_exactly_once_survives_the_transaction_coordinators_death(spread_cluster: Cluster) -> None:
    cluster = spread_cluster
    source, sink = "eos-in", "eos-out"
    create_topic(cluster, source)
    create_topic(cluster, sink)
    produce_numbers(cluster, source)
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "transactional.id": f"eos-{uuid.uuid4()}",
                         "transaction.timeout.ms": 10_000})
    producer.init_transactions(TIMEOUT_S)
    # The group's coordinator is kept off the broker to be killed: librdkafka's
    # send_offsets_to_transaction can wait forever, past its timeout, when the cached group
    # coordinator's broker leaves the metadata (confluentinc/librdkafka#5511, #5456), as
    # it would against Apache Kafka.
    txn_coordinator = until(lambda: max(leader_of(cluster, "__transaction_state", 1), 0), "__transaction_state has a leader")
    consumer = Consumer({
        "bootstrap.servers": cluster.bootstrap_servers, "group.id": group_coordinated_elsewhere(cluster, txn_coordinator),
        "enable.auto.commit": False, "auto.offset.reset": "earliest", "isolation.level": "read_committed",
    })
    consumer.subscribe([source])
    killed = False
    done_offsets: dict[int, int] = {}
    deadline = time.monotonic() + 60
    try:
        while sum(done_offsets.values()) < RECORDS:
            assert time.monotonic() < deadline, f"copied up to {done_offsets}"
            messages = [m for m in consumer.consume(20, 0.5) if not m.error()]
            if not messages:
                continue
            producer.begin_transaction()
            for message in messages:
                producer.produce(sink, value=message.value(), partition=message.partition())
            positions = consumer.position(consumer.assignment())
            producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), TIMEOUT_S)
            try:
                producer.commit_transaction(TIMEOUT_S)
            except KafkaException as e:
                if e.args[0].txn_requires_abort():
                    producer.abort_transaction(TIMEOUT_S)
                    # Start again from what is committed.
                    committed = consumer.committed(consumer.assignment(), timeout=TIMEOUT_S)
                    for tp in committed:
                        consumer.seek(TopicPartition(tp.topic, tp.partition, max(tp.offset, 0)))
                    continue
                raise
            for tp in positions:
                done_offsets[tp.partition] = tp.offset
            if not killed and sum(done_offsets.values()) >= 100:
                kill_coordinator(cluster, "__transaction_state")
                killed = True
    finally:
        consumer.close()
    assert killed
    reader = Consumer({
        "bootstrap.servers": cluster.bootstrap_servers, "group.id": "eos-check", "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "isolation.level": "read_committed",
    })
    reader.subscribe([sink])
    copied: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while len(copied) < RECORDS and time.monotonic() < deadline:
            copied += [int(m.value()) for m in reader.consume(100, 0.5) if not m.error()]
        copied += [int(m.value()) for m in reader.consume(100, 1.0) if not m.error()]  # nothing more may come
    finally:
        reader.close()
    assert sorted(copied) == list(range(RECORDS)), "each input record's output exactly once"
