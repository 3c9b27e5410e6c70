"""Partition reassignment on a three-node kafkapy cluster (kafkapy.Cluster, in one process):
a partition moved off its only replica keeps every acknowledged record on its new
replicas and leaves no log behind, a replication factor grows, a cancelled move reverts;
and `kafkapy topics create --replication-factor` spreads a topic's replicas over the
cluster. The installed confluent-kafka has no AlterPartitionReassignments, so the
reassignments go through kafkapy's own admin client."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as ClientPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kafkapy.client import Client
from kafkapy.metadata.image import PartitionImage
from kafkapy.server.broker import BrokerServer
from kafkapy.testing.cluster import Cluster
from kafkapy.tools import topics as topics_tool
from kafkapy.wire.records import decode_records
from waiting import until

pytestmark = pytest.mark.timeout(60)

N = 40


@pytest.fixture
def cluster():
    # Logs of partitions a broker no longer hosts are deleted at once, not a minute later.
    with Cluster(brokers=3, log_segment_delete_delay_ms=0) as c:
        yield c


def create_on_broker_1(cluster: Cluster, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    admin.create_topics([NewTopic(topic, num_partitions=1, replica_assignment=[[1]])], operation_timeout=10)[topic].result(15)
    until(lambda: all(partition_on(cluster, n, topic) for n in cluster.nodes), 5, "every node to know the topic")


def produce(cluster: Cluster, topic: str) -> list[bytes]:
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all"})
    errors: list[object] = []
    values = [b"%s-%03d" % (topic.encode(), i) for i in range(N)]
    for value in values:
        producer.produce(topic, value, on_delivery=lambda err, _msg: errors.append(err) if err else None)
    assert producer.flush(20) == 0 and not errors
    return values


def partition_on(cluster: Cluster, node_id: int, topic: str) -> PartitionImage | None:
    def read(server: BrokerServer) -> PartitionImage | None:
        t = server.broker.image.topics.get(topic)
        return t.partitions[0] if t is not None else None
    return cluster.nodes[node_id].read(read)


def values_on(cluster: Cluster, node_id: int, topic: str) -> list[bytes] | None:
    """The record values in the node's own log of the partition; None when it has none."""
    def read(server: BrokerServer) -> list[bytes] | None:
        log = server.broker.replicas.get(topic, 0)
        if log is None:
            return None
        return [r.value for h, data in log.iter_batches() if not h.is_control for r in decode_records(data, h)]
    return cluster.nodes[node_id].read(read)


def log_directories(cluster: Cluster, node_id: int, topic: str) -> list[Path]:
    return sorted((cluster.data_dir / f"node-{node_id}").glob(f"{topic}-0*"))


def consume(cluster: Cluster, topic: str, count: int) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": "readers",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([ClientPartition(topic, 0, 0)])
    consumed: list[bytes] = []
    deadline = time.monotonic() + 15
    while len(consumed) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            consumed.append(msg.value())
    consumer.close()
    return consumed


def test_a_partition_moved_off_its_only_replica_keeps_its_records_and_leaves_no_log_behind(cluster: Cluster) -> None:
    topic = "moved"
    create_on_broker_1(cluster, topic)
    expected = produce(cluster, topic)
    assert log_directories(cluster, 1, topic)

    with Client(cluster.bootstrap_servers) as client:
        assert client.alter_partition_reassignments({(topic, 0): [2, 3]}) == {(topic, 0): None}
        ongoing = client.list_partition_reassignments([(topic, 0)])
    # In progress with the target and current replicas, or already done.
    if ongoing:
        r = ongoing[(topic, 0)]
        assert (r.replicas, r.adding_replicas, r.removing_replicas) == ([2, 3, 1], [2, 3], [1])

    def moved() -> bool:
        p = partition_on(cluster, 2, topic)
        return p is not None and p.replicas == (2, 3) and sorted(p.isr) == [2, 3] and not p.reassigning
    until(moved, 20, "the reassignment to complete")
    p = partition_on(cluster, 2, topic)
    assert p is not None and p.leader in (2, 3)
    with Client(cluster.bootstrap_servers) as client:
        assert client.list_partition_reassignments() == {}
    for n in (2, 3):
        assert values_on(cluster, n, topic) == expected
    until(lambda: values_on(cluster, 1, topic) is None and not log_directories(cluster, 1, topic), 10,
          "broker 1 to delete its log of the partition")
    assert consume(cluster, topic, N) == expected


def test_a_reassignment_grows_the_replication_factor(cluster: Cluster) -> None:
    topic = "grown"
    create_on_broker_1(cluster, topic)
    expected = produce(cluster, topic)
    with Client(cluster.bootstrap_servers) as client:
        assert client.alter_partition_reassignments({(topic, 0): [1, 2, 3]}) == {(topic, 0): None}

    def grown() -> bool:
        p = partition_on(cluster, 1, topic)
        return p is not None and p.replicas == (1, 2, 3) and sorted(p.isr) == [1, 2, 3] and not p.reassigning
    until(grown, 20, "the new replicas to join the ISR")
    p = partition_on(cluster, 1, topic)
    assert p is not None and p.leader == 1
    for n in (1, 2, 3):
        assert values_on(cluster, n, topic) == expected


def test_a_cancelled_reassignment_reverts_to_the_original_replicas(cluster: Cluster) -> None:
    topic = "cancelled"
    create_on_broker_1(cluster, topic)
    produce(cluster, topic)
    cluster.kill(3)  # a target replica that cannot catch up keeps the reassignment going
    with Client(cluster.bootstrap_servers) as client:
        assert client.alter_partition_reassignments({(topic, 0): [1, 3]}) == {(topic, 0): None}
        ongoing = client.list_partition_reassignments()
        assert {tp: (r.replicas, r.adding_replicas, r.removing_replicas) for tp, r in ongoing.items()} == {
            (topic, 0): ([1, 3], [3], [])}

        assert client.alter_partition_reassignments({(topic, 0): None}) == {(topic, 0): None}
        assert client.list_partition_reassignments() == {}
        again = client.alter_partition_reassignments({(topic, 0): None})[(topic, 0)]
        assert again is not None and again.name == "NO_REASSIGNMENT_IN_PROGRESS"
    p = until(lambda: partition_on(cluster, 1, topic), 5, "the partition")
    assert (p.replicas, p.isr, p.leader) == ((1,), (1,), 1)


def test_topics_create_with_a_replication_factor_puts_each_partition_on_that_many_brokers(
        cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    assert topics_tool.main(["create", "spread", "--partitions", "3", "--replication-factor", "3",
                             "--bootstrap", cluster.bootstrap_servers]) == 0
    assert "Created topic spread" in capsys.readouterr().out
    # Every node applies the topic once its next fetch brings the high watermark.
    until(lambda: all(partition_on(cluster, n, "spread") for n in cluster.nodes), 5, "every node to know the topic")
    with Client(cluster.bootstrap_servers) as client:
        info = client.topic("spread")
    assert sorted(info.partitions) == [0, 1, 2]
    for p in info.partitions.values():
        assert sorted(p.replicas) == [1, 2, 3]
    # Each broker is the preferred leader of one partition: the leaders are spread too (the
    # replica order, which a broker fenced for a moment under load cannot change).
    assert sorted(p.replicas[0] for p in info.partitions.values()) == [1, 2, 3]


def test_topics_create_with_a_replica_assignment_places_each_partition_where_asked(
        cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    assert topics_tool.main(["create", "placed", "--replica-assignment", "2:3,3:1",
                             "--bootstrap", cluster.bootstrap_servers]) == 0
    capsys.readouterr()
    assert topics_tool.main(["describe", "placed", "--format", "json", "--bootstrap", cluster.bootstrap_servers]) == 0
    [described] = json.loads(capsys.readouterr().out)
    assert described["replication_factor"] == 2
    assert [(p["partition"], p["replicas"], sorted(p["isr"]), p["leader"]) for p in described["partitions"]] == [
        (0, [2, 3], [2, 3], 2), (1, [3, 1], [1, 3], 3)]
