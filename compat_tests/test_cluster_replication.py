"""Partition replication on a three-node kafkapy cluster (kafkapy.Cluster, in one process)
with a real client: acks=all waits for the ISR, every replica's log holds what was
acknowledged, a new leader after the old one is killed serves all of it, exactly once
and in order, and a follower killed and restarted catches up."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer
from confluent_kafka import TopicPartition as ClientPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kafkapy.log.manager import TopicPartition
from kafkapy.server.broker import BrokerServer
from kafkapy.testing.cluster import Cluster
from kafkapy.wire.records import decode_records
from waiting import until

pytestmark = pytest.mark.timeout(60)

TOPIC = "replicated"
N = 50


def values_on(cluster: Cluster, node_id: int) -> list[bytes]:
    """The record values in node's own log of the partition, read on its event loop."""
    def read(server: BrokerServer) -> list[bytes]:
        log = server.broker.replicas.get(TOPIC, 0) if server.broker else None
        if log is None:
            return []
        return [r.value for h, data in log.iter_batches() if not h.is_control for r in decode_records(data, h)]
    return cluster.nodes[node_id].read(read)


def partition_on(cluster: Cluster, node_id: int) -> tuple[int, tuple[int, ...], int]:
    """(leader, ISR, leader epoch) as the node's image says."""
    return cluster.nodes[node_id].read(lambda s: (
        lambda p: (p.leader, p.isr, p.leader_epoch))(s.broker.image.topics[TOPIC].partitions[0]))


def high_watermark_on(cluster: Cluster, node_id: int) -> int:
    return cluster.nodes[node_id].read(lambda s: s.broker.replicas.partition(TopicPartition(TOPIC, 0)).high_watermark)


@pytest.fixture
def cluster():
    with Cluster(brokers=3) as c:
        yield c


def test_acks_all_records_survive_the_leaders_kill_and_a_restarted_follower_catches_up(cluster: Cluster) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=3, config={"min.insync.replicas": "2"})],
                        operation_timeout=10)[TOPIC].result(15)
    until(lambda: all(TOPIC in cluster.nodes[n].read(lambda s: list(s.broker.image.topics)) for n in cluster.nodes), 5,
          "every node to know the topic")
    leader, isr, epoch = partition_on(cluster, 1)
    assert sorted(isr) == [1, 2, 3]

    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all", "enable.idempotence": True})
    delivered: list[tuple[int, bytes]] = []
    errors: list[object] = []

    def on_delivery(err: object, msg: object) -> None:
        if err is not None:
            errors.append(err)
        else:
            delivered.append((msg.offset(), msg.value()))  # type: ignore[attr-defined]

    for i in range(N):
        producer.produce(TOPIC, b"v%03d" % i, on_delivery=on_delivery)
    assert producer.flush(20) == 0 and not errors
    assert [o for o, _ in delivered] == list(range(N))
    expected = [b"v%03d" % i for i in range(N)]
    # Acknowledged with acks=all: the leader's high watermark passed them, so each in-sync replica holds them.
    assert high_watermark_on(cluster, leader) == N
    for n in cluster.nodes:
        until(lambda n=n: values_on(cluster, n) == expected, 5, f"node {n}'s log to hold the {N} records")

    cluster.kill(leader)
    survivors = [n for n in cluster.nodes if n != leader]
    new_leader = until(lambda: (lambda p: p[0] if p[0] in survivors and p[2] > epoch else None)(partition_on(cluster, survivors[0])),
                       10, "the controller to move leadership to a surviving replica")
    until(lambda: high_watermark_on(cluster, new_leader) == N, 10, "the new leader's high watermark to reach every record")
    consumer = Consumer({"bootstrap.servers": ",".join(f"127.0.0.1:{cluster.nodes[n].port}" for n in survivors),
                         "group.id": "readers", "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([ClientPartition(TOPIC, 0, 0)])
    consumed: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + 20
    while len(consumed) < N and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            consumed.append((msg.offset(), msg.value()))
    consumer.close()
    assert consumed == list(enumerate(expected))

    # More records while the old leader is down, then it comes back as a follower and catches up.
    for i in range(N, N + 10):
        producer.produce(TOPIC, b"v%03d" % i, on_delivery=on_delivery)
    assert producer.flush(20) == 0 and not errors
    cluster.restart(leader)
    cluster.wait_until_serving([leader])
    everything = [b"v%03d" % i for i in range(N + 10)]
    until(lambda: values_on(cluster, leader) == everything, 15, "the restarted replica to catch up with the new leader")


def test_a_follower_cut_off_from_the_others_copies_nothing_until_the_network_heals(cluster: Cluster) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=3, config={"min.insync.replicas": "2"})],
                        operation_timeout=10)[TOPIC].result(15)
    until(lambda: all(TOPIC in cluster.nodes[n].read(lambda s: list(s.broker.image.topics)) for n in cluster.nodes), 5,
          "every node to know the topic")
    leader, isr, _ = partition_on(cluster, 1)
    follower = next(n for n in isr if n != leader)
    others = set(cluster.nodes) - {follower}
    producer = Producer({"bootstrap.servers": ",".join(f"127.0.0.1:{cluster.nodes[n].port}" for n in others),
                         "acks": "all", "enable.idempotence": True, "message.timeout.ms": 30_000})
    before = [b"before-%d" % i for i in range(10)]
    for value in before:
        producer.produce(TOPIC, value)
    assert producer.flush(20) == 0
    until(lambda: values_on(cluster, follower) == before, 5, "the follower to copy the first records")

    cluster.partition({follower}, others)
    during = [b"during-%d" % i for i in range(10)]
    for value in during:
        producer.produce(TOPIC, value)
    # Acknowledged with acks=all once the leader dropped the unreachable follower from the ISR.
    assert producer.flush(25) == 0
    assert follower not in partition_on(cluster, leader)[1]
    # Its fetches cannot reach the leader: the records acknowledged meanwhile are not in its log.
    assert values_on(cluster, follower) == before

    cluster.heal()
    until(lambda: values_on(cluster, follower) == before + during, 20, "the follower to catch up once healed")
    until(lambda: follower in partition_on(cluster, leader)[1], 20, "the follower to rejoin the ISR")


def log_start_on(cluster: Cluster, node_id: int) -> int:
    return cluster.nodes[node_id].read(lambda s: s.broker.replicas.get(TOPIC, 0).log_start_offset)


def test_records_deleted_on_the_leader_stay_deleted_after_a_failover(cluster: Cluster) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=3, config={"min.insync.replicas": "2"})],
                        operation_timeout=10)[TOPIC].result(15)
    until(lambda: all(TOPIC in cluster.nodes[n].read(lambda s: list(s.broker.image.topics)) for n in cluster.nodes), 5,
          "every node to know the topic")
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all"})
    for i in range(N):
        producer.produce(TOPIC, b"v%03d" % i)
    assert producer.flush(20) == 0
    leader, _, epoch = partition_on(cluster, 1)

    deleted = admin.delete_records([ClientPartition(TOPIC, 0, 30)], request_timeout=10)
    assert deleted[ClientPartition(TOPIC, 0, 30)].result(15).low_watermark == 30
    # The followers take the leader's log start offset from its fetch responses.
    for n in cluster.nodes:
        until(lambda n=n: log_start_on(cluster, n) == 30, 10, f"node {n}'s log start offset to reach 30")

    cluster.kill(leader)
    survivors = [n for n in cluster.nodes if n != leader]
    until(lambda: (lambda p: p[0] in survivors and p[2] > epoch)(partition_on(cluster, survivors[0])), 10,
          "the controller to move leadership to a surviving replica")
    consumer = Consumer({"bootstrap.servers": ",".join(f"127.0.0.1:{cluster.nodes[n].port}" for n in survivors),
                         "group.id": "after-delete", "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([ClientPartition(TOPIC, 0, OFFSET_BEGINNING)])
    consumed: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + 20
    while len(consumed) < N - 30 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            consumed.append((msg.offset(), msg.value()))
    consumer.close()
    assert consumed == [(i, b"v%03d" % i) for i in range(30, N)]
