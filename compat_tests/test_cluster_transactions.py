"""Transactions across the brokers of a three-node kafkapy cluster (kafkapy.Cluster, in one
process), driven by confluent-kafka: a topic with one partition on each broker, the
transaction coordinator and the consumer group's coordinator on different brokers. The
markers reach every partition's leader by WriteTxnMarkers; partition leaders ask the
coordinator before a producer's first transactional batch (KIP-890)."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.errors import ErrorCode

import waiting
from kafkapy.client import Client
from kafkapy.coordinator.java_hash import java_string_hash
from kafkapy.server.broker import BrokerServer
from kafkapy.testing.cluster import Cluster
from kafkapy.wire.build import build
from kafkapy.wire.protocol import decode_response, encode_request, request_type
from kafkapy.wire.records import Record, encode_batch

pytestmark = pytest.mark.timeout(90)

T = TypeVar("T")
TIMEOUT_S = 20
TOPIC = "spread"
# Three partitions of each internal topic, one led by each broker.
INTERNAL_PARTITIONS = 3
SPREAD_TRANSACTIONAL_ID = "spread-txn"
PRODUCE, INIT_PRODUCER_ID, ADD_PARTITIONS_TO_TXN, END_TXN, WRITE_TXN_MARKERS = 0, 22, 24, 26, 27


def until(predicate: Callable[[], T], what: str, timeout_s: float = TIMEOUT_S) -> T:
    return waiting.until(predicate, timeout_s, what)


def partition_of(key: str) -> int:
    return abs(java_string_hash(key)) % (1 << 31) % INTERNAL_PARTITIONS


def group_coordinated_elsewhere(cluster: Cluster, transactional_id: str) -> str:
    """A group whose coordinator is not the transactional id's (the controller places each
    internal topic's leaders from its own starting broker, so partition numbers say
    nothing: the leaders are looked up). The transaction state topic must exist."""
    with Client(cluster.bootstrap_servers, timeout=TIMEOUT_S) as client:
        client.coordinator("spread-warm-up")  # creates __consumer_offsets
    until(lambda: cluster.nodes[1].read(lambda s: "__consumer_offsets" in s.broker.image.topics), "the offsets topic")
    txn_coordinator = leader(cluster, "__transaction_state", partition_of(transactional_id))
    group = next(g for g in (f"spread-group-{i}" for i in range(100))
                 if leader(cluster, "__consumer_offsets", partition_of(g)) != txn_coordinator)
    return group


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster(brokers=3, **{
        "transaction.state.log.num.partitions": INTERNAL_PARTITIONS, "transaction.state.log.replication.factor": 1,
        "offsets.topic.num.partitions": INTERNAL_PARTITIONS, "offsets.topic.replication.factor": 1,
        "group.initial.rebalance.delay.ms": 0,
    }) as c:
        admin = AdminClient({"bootstrap.servers": c.bootstrap_servers})
        admin.create_topics([NewTopic(TOPIC, num_partitions=3, replica_assignment=[[1], [2], [3]])])[TOPIC].result(TIMEOUT_S)
        for node in c.nodes.values():
            until(lambda n=node: TOPIC in n.read(lambda s: list(s.broker.image.topics)), "every node knows the topic")
        yield c


def leader(cluster: Cluster, topic: str, partition: int) -> int:
    def read(server: BrokerServer) -> int:
        assert server.broker is not None
        return server.broker.image.topics[topic].partitions[partition].leader
    return int(cluster.nodes[1].read(read))


def transactional_producer(cluster: Cluster, transactional_id: str) -> Producer:
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "transactional.id": transactional_id})
    producer.init_transactions(TIMEOUT_S)
    return producer


def consumer(cluster: Cluster, isolation: str, group: str = "reader") -> Consumer:
    return Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": group, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "isolation.level": isolation})


def read_all(c: Consumer, wanted: list[bytes]) -> list[bytes]:
    """What the consumer reads of the topic's three partitions once it has read every
    wanted value and then nothing more for a while."""
    c.assign([TopicPartition(TOPIC, p) for p in range(3)])
    values: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT_S
    while not set(wanted) <= set(values):
        assert time.monotonic() < deadline, f"read {values}, not all of {wanted}"
        message = c.poll(0.2)
        if message is not None:
            assert message.error() is None, message.error()
            values.append(message.value())
    while (extra := c.poll(0.5)) is not None:
        assert extra.error() is None, extra.error()
        values.append(extra.value())
    c.close()
    return values


def produce_to_every_partition(producer: Producer, prefix: str) -> list[bytes]:
    values = [f"{prefix}-{p}".encode() for p in range(3)]
    for partition, value in enumerate(values):
        producer.produce(TOPIC, value, partition=partition)
    assert producer.flush(TIMEOUT_S) == 0
    return values


def test_a_transaction_over_partitions_on_every_broker_commits_on_each(cluster: Cluster) -> None:
    assert sorted(leader(cluster, TOPIC, p) for p in range(3)) == [1, 2, 3]
    producer = transactional_producer(cluster, "commit-everywhere")
    producer.begin_transaction()
    values = produce_to_every_partition(producer, "committed")
    producer.commit_transaction(TIMEOUT_S)
    read = read_all(consumer(cluster, "read_committed"), values)
    assert sorted(v for v in read if v.startswith(b"committed-")) == values


def test_an_aborted_transaction_is_read_by_read_uncommitted_only(cluster: Cluster) -> None:
    producer = transactional_producer(cluster, "abort-everywhere")
    producer.begin_transaction()
    aborted = produce_to_every_partition(producer, "aborted")
    producer.abort_transaction(TIMEOUT_S)
    # A committed transaction after it: read_committed reads up to its records, and only them.
    producer.begin_transaction()
    committed = produce_to_every_partition(producer, "after-abort")
    producer.commit_transaction(TIMEOUT_S)

    assert not set(aborted) & set(read_all(consumer(cluster, "read_committed"), committed))
    read_uncommitted = read_all(consumer(cluster, "read_uncommitted"), aborted + committed)
    assert sorted(v for v in read_uncommitted if v in aborted + committed) == sorted(aborted + committed)


def committed_offset(cluster: Cluster, group: str) -> int:
    c = consumer(cluster, "read_committed", group)
    try:
        [partition] = c.committed([TopicPartition(TOPIC, 0)], TIMEOUT_S)
        return int(partition.offset)
    finally:
        c.close()


def test_offsets_sent_to_a_transaction_follow_it_when_the_group_coordinator_is_another_broker(cluster: Cluster) -> None:
    transactional_id = SPREAD_TRANSACTIONAL_ID
    producer = transactional_producer(cluster, transactional_id)  # creates __transaction_state
    group = group_coordinated_elsewhere(cluster, transactional_id)
    group_consumer = consumer(cluster, "read_committed", group)
    metadata = group_consumer.consumer_group_metadata()

    producer.begin_transaction()
    produce_to_every_partition(producer, "with-offsets")
    producer.send_offsets_to_transaction([TopicPartition(TOPIC, 0, 5)], metadata, TIMEOUT_S)
    producer.commit_transaction(TIMEOUT_S)
    txn_coordinator = leader(cluster, "__transaction_state", partition_of(transactional_id))
    group_coordinator = leader(cluster, "__consumer_offsets", partition_of(group))
    assert txn_coordinator != group_coordinator
    assert until(lambda: committed_offset(cluster, group) == 5, "the committed offset visible after the commit")

    producer.begin_transaction()
    produce_to_every_partition(producer, "aborted-offsets")
    producer.send_offsets_to_transaction([TopicPartition(TOPIC, 0, 9)], metadata, TIMEOUT_S)
    producer.abort_transaction(TIMEOUT_S)
    # Once the abort's marker is in, a stable fetch answers at once, with the offset of before.
    assert committed_offset(cluster, group) == 5
    group_consumer.close()


class Raw:
    """Requests over a bare connection, to provoke what a well-behaved client never sends."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        self.correlation_id = 0

    def request(self, api_key: int, version: int, body: dict[str, Any]) -> Any:
        self.correlation_id += 1
        self.sock.sendall(encode_request(build(request_type(api_key, version), body), self.correlation_id))
        (size,) = struct.unpack(">i", self._read(4))
        _, response = decode_response(self._read(size), api_key, version)
        return response

    def retried(self, api_key: int, version: int, body: dict[str, Any]) -> Any:
        """Again while the coordinator is not ready or still writing markers."""
        retriable = (ErrorCode.concurrent_transactions, ErrorCode.coordinator_load_in_progress,
                     ErrorCode.coordinator_not_available)
        deadline = time.monotonic() + TIMEOUT_S
        while (response := self.request(api_key, version, body)).error_code in retriable:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        return response

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            data += chunk
        return data

    def close(self) -> None:
        self.sock.close()


def transactional_produce(raw: Raw, transactional_id: str, producer: tuple[int, int], partition: int, sequence: int) -> Any:
    batch = encode_batch([Record(0, int(time.time() * 1000), None, b"unadded")], producer_id=producer[0],
                         producer_epoch=producer[1], base_sequence=sequence, transactional=True)
    response = raw.request(PRODUCE, 9, {"transactional_id": transactional_id, "acks": -1, "timeout": 5000, "topic_data": [
        {"name": TOPIC, "partition_data": [{"index": partition, "records": batch}]},
    ]})
    return response.responses[0].partition_responses[0]


def test_a_transactional_batch_to_a_partition_never_added_is_refused(cluster: Cluster) -> None:
    transactional_id = "never-added"
    coordinator_port = cluster.nodes[leader(cluster, "__transaction_state", partition_of(transactional_id))].port
    with_coordinator = Raw(coordinator_port)
    init = with_coordinator.retried(INIT_PRODUCER_ID, 4, {
        "transactional_id": transactional_id, "transaction_timeout": 60_000, "producer_id": -1, "producer_epoch": -1})
    assert init.error_code == ErrorCode.none
    producer = (init.producer_id, init.producer_epoch)
    # The transaction holds partition 1 only; partition 2 was never added.
    added = with_coordinator.request(ADD_PARTITIONS_TO_TXN, 3, {
        "v3_and_below_transactional_id": transactional_id, "v3_and_below_producer_id": producer[0],
        "v3_and_below_producer_epoch": producer[1], "v3_and_below_topics": [{"name": TOPIC, "partitions": [1]}]})
    assert added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code == ErrorCode.none

    refused = Raw(cluster.nodes[leader(cluster, TOPIC, 2)].port)
    answer = transactional_produce(refused, transactional_id, producer, 2, 0)
    assert answer.error_code == ErrorCode.invalid_txn_state
    accepted = Raw(cluster.nodes[leader(cluster, TOPIC, 1)].port)
    assert transactional_produce(accepted, transactional_id, producer, 1, 0).error_code == ErrorCode.none

    ended = with_coordinator.retried(END_TXN, 3, {"transactional_id": transactional_id, "producer_id": producer[0],
                                                   "producer_epoch": producer[1], "committed": True})
    assert ended.error_code == ErrorCode.none
    # The committed transaction's record is read on partition 1; partition 2 has nothing of it.
    values = read_all(consumer(cluster, "read_committed"), [b"unadded"])
    assert values.count(b"unadded") == 1
    # Once the transaction is over, a late batch of it cannot open another on partition 1.
    until(lambda: with_coordinator.request(END_TXN, 3, {
        "transactional_id": transactional_id, "producer_id": producer[0], "producer_epoch": producer[1],
        "committed": True}).error_code == ErrorCode.none, "the commit to be complete")
    assert transactional_produce(accepted, transactional_id, producer, 1, 1).error_code == ErrorCode.invalid_txn_state
    for raw in (with_coordinator, refused, accepted):
        raw.close()



def test_write_txn_markers_is_answered_per_partition_as_kafka_does(cluster: Cluster) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    admin.create_topics([NewTopic("followed", num_partitions=1, replica_assignment=[[2, 1]])])["followed"].result(TIMEOUT_S)
    until(lambda: "followed" in cluster.nodes[1].read(lambda s: list(s.broker.image.topics)), "broker 1 knows the topic")
    raw = Raw(cluster.nodes[1].port)
    producer_id = 10**12

    def write(producer_epoch: int, coordinator_epoch: int, topics: dict[str, list[int]]) -> dict[tuple[str, int], ErrorCode]:
        response = raw.request(WRITE_TXN_MARKERS, 1, {"markers": [{
            "producer_id": producer_id, "producer_epoch": producer_epoch, "transaction_result": False,
            "coordinator_epoch": coordinator_epoch,
            "topics": [{"name": name, "partition_indexes": indexes} for name, indexes in topics.items()],
        }]})
        [marker] = response.markers
        assert marker.producer_id == producer_id
        return {(t.name, p.partition_index): p.error_code for t in marker.topics for p in t.partitions}

    assert leader(cluster, TOPIC, 0) == 1 and leader(cluster, TOPIC, 1) == 2
    assert write(5, 3, {TOPIC: [0, 1], "followed": [0], "missing": [0]}) == {
        (TOPIC, 0): ErrorCode.none,  # led here
        (TOPIC, 1): ErrorCode.unknown_topic_or_partition,  # not hosted here
        ("followed", 0): ErrorCode.not_leader_or_follower,  # hosted, led by broker 2
        ("missing", 0): ErrorCode.unknown_topic_or_partition,
    }
    assert write(5, 2, {TOPIC: [0]}) == {(TOPIC, 0): ErrorCode.transaction_coordinator_fenced}
    assert write(4, 3, {TOPIC: [0]}) == {(TOPIC, 0): ErrorCode.invalid_producer_epoch}
    assert write(5, 3, {TOPIC: [0]}) == {(TOPIC, 0): ErrorCode.none}
    raw.close()
