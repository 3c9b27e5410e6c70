"""A three-node kafkapy cluster (kafkapy.Cluster, in one process) driven by real clients:
the metadata quorum elects a controller, survives losing it, fences a silent broker and
takes it back, and an isolated controller commits nothing on its own."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kio.schema.errors import ErrorCode

import waiting
from kafkapy.client import Client
from kafkapy.server.broker import BrokerServer
from kafkapy.testing.cluster import FAST_QUORUM, Cluster

pytestmark = pytest.mark.timeout(120)

T = TypeVar("T")
# FAST_QUORUM: election 500-1000 ms, fetch timeout 1 s (check-quorum 1.5 s), session 2 s.
FAILOVER_S = 10.0


def until(predicate: Callable[[], T], timeout_s: float, what: str, cluster: Cluster | None = None) -> T:
    return waiting.until(predicate, timeout_s, what, (lambda: f"quorum: {quorum_of(cluster)}") if cluster else None)


def quorum_of(cluster: Cluster) -> dict[int, object]:
    """Each running node's Raft role, epoch and leader, for a failure to show."""
    def state(server: BrokerServer) -> object:
        core = server.quorum_server.core
        return (core.role.value, core.epoch, core.leader_id) if core else None
    return {n: node.read(state) for n, node in cluster.nodes.items() if node.running}


def topics_on(cluster: Cluster, node_id: int) -> set[str]:
    return set(cluster.nodes[node_id].read(lambda s: list(s.broker.image.topics)))


def create(admin: AdminClient, name: str, **kwargs: object) -> None:
    admin.create_topics([NewTopic(name, **kwargs)], operation_timeout=10)[name].result(15)


@pytest.fixture
def cluster():
    with Cluster(brokers=3) as c:
        yield c


def test_a_topic_created_through_any_node_is_seen_by_every_node(cluster: Cluster) -> None:
    for node_id, node in cluster.nodes.items():
        create(AdminClient({"bootstrap.servers": f"127.0.0.1:{node.port}"}), f"via-{node_id}", num_partitions=3)
    expected = {"via-1", "via-2", "via-3"}
    for node_id in cluster.nodes:
        until(lambda n=node_id: expected <= topics_on(cluster, n), 5, f"node {node_id} to see every topic")
    # Partitions go round the three brokers; each knows the same leaders.
    leaders = {n: cluster.nodes[n].read(lambda s: {p.partition_id: p.leader for p in s.broker.image.topics["via-1"].partitions.values()})
               for n in cluster.nodes}
    assert leaders[1] == leaders[2] == leaders[3] and sorted(leaders[1].values()) == [1, 2, 3]


def test_the_cluster_keeps_every_acknowledged_topic_through_a_controller_kill(cluster: Cluster) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    create(admin, "before")
    old = cluster.active_controller()
    assert old is not None
    killed_at = time.monotonic()
    cluster.kill(old)
    new = until(lambda: cluster.active_controller() not in (None, old) and cluster.active_controller(), FAILOVER_S,
                "a new active controller", cluster)
    elected_after = time.monotonic() - killed_at
    survivors = [n for n in cluster.nodes if n != old]
    admin = AdminClient({"bootstrap.servers": ",".join(f"127.0.0.1:{cluster.nodes[n].port}" for n in survivors)})
    create(admin, "after")
    # Committed once the new controller and one follower hold it; the follower applies it
    # when its next fetch brings the high watermark, as a Kafka broker's image lags too.
    for n in survivors:
        until(lambda n=n: {"before", "after"} <= topics_on(cluster, n), 5, f"node {n} to apply both topics", cluster)
    # The old controller comes back as a follower and learns what it missed.
    cluster.restart(old)
    cluster.wait_until_serving([old])
    assert {"before", "after"} <= topics_on(cluster, old)
    assert cluster.active_controller() == new
    assert elected_after < FAILOVER_S


def test_a_killed_broker_is_fenced_within_its_session_and_rejoins_after_a_restart(cluster: Cluster) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    controller = cluster.active_controller()
    victim = next(n for n in cluster.nodes if n != controller)
    create(admin, "single", num_partitions=1, replica_assignment=[[victim]])
    cluster.kill(victim)
    killed_at = time.monotonic()
    session_s = FAST_QUORUM["broker.session.timeout.ms"] / 1000

    def victim_state() -> tuple[bool, int]:
        return cluster.nodes[controller].read(
            lambda s: (s.broker.image.brokers[victim].fenced, s.broker.image.topics["single"].partitions[0].leader))

    until(lambda: victim_state() == (True, -1), session_s + 3, "the silent broker fenced and its partition offline")
    assert time.monotonic() - killed_at >= session_s * 0.9
    cluster.restart(victim)
    cluster.wait_until_serving([victim])
    until(lambda: victim_state() == (False, victim), 5, "the broker back, leading its partition again")


def test_an_isolated_controller_stops_leading_and_commits_nothing_alone(cluster: Cluster) -> None:
    old = cluster.active_controller()
    assert old is not None
    others = {n for n in cluster.nodes if n != old}
    cluster.partition({old}, others)
    # One CreateTopics to the isolated node alone (a client like AdminClient would retry it
    # through the other nodes, which it still reaches): it still thinks itself the active
    # controller, so it appends the topic's records, which can never commit.
    with Client(f"127.0.0.1:{cluster.nodes[old].port}") as raw:
        answer = raw.any_broker().request("create_topics", {"timeout": 1000, "validate_only": False, "topics": [
            {"name": "alone", "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []}]}, timeout=30)
    assert answer.topics[0].error_code != ErrorCode.none
    check_quorum_s = FAST_QUORUM["controller.quorum.fetch.timeout.ms"] * 1.5 / 1000
    until(lambda: not cluster.nodes[old].read(lambda s: s.broker.controller_service.is_active), check_quorum_s + 2,
          "the isolated controller to resign", cluster)
    new = until(lambda: next((n for n in others if cluster.nodes[n].read(lambda s: s.broker.controller_service.is_active)), None),
                FAILOVER_S, "the majority to elect a controller", cluster)
    create(AdminClient({"bootstrap.servers": f"127.0.0.1:{cluster.nodes[new].port}"}), "majority")
    cluster.heal()
    until(lambda: "majority" in topics_on(cluster, old), FAILOVER_S, "the isolated node to catch up after healing")
    for n in cluster.nodes:
        assert "alone" not in topics_on(cluster, n)


def test_confluent_kafka_and_kafka_python_produce_and_consume_across_a_controller_failover(cluster: Cluster) -> None:
    controller = cluster.active_controller()
    host = next(n for n in cluster.nodes if n != controller)
    bootstrap = f"127.0.0.1:{cluster.nodes[host].port}"
    create(AdminClient({"bootstrap.servers": bootstrap}), "events", num_partitions=1, replica_assignment=[[host]])
    producer = Producer({"bootstrap.servers": bootstrap})
    python_producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(5):
        producer.produce("events", b"c%d" % i)
        python_producer.send("events", b"p%d" % i).get(timeout=10)
    assert producer.flush(10) == 0
    assert controller is not None
    cluster.kill(controller)
    until(lambda: cluster.active_controller() not in (None, controller), FAILOVER_S, "a new controller", cluster)
    for i in range(5, 10):
        producer.produce("events", b"c%d" % i)
        python_producer.send("events", b"p%d" % i).get(timeout=10)
    assert producer.flush(10) == 0
    python_producer.close()

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "g", "auto.offset.reset": "earliest"})
    consumer.subscribe(["events"])
    seen: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(seen) < 20 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            seen.append(message.value())
    consumer.close()
    assert sorted(seen) == sorted([b"c%d" % i for i in range(10)] + [b"p%d" % i for i in range(10)])

    python_consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=10_000)
    python_consumer.assign([TopicPartition("events", 0)])
    values = [record.value for record in python_consumer]
    python_consumer.close()
    assert len(values) == 20 and set(values) == set(seen)


def test_a_broker_only_node_follows_the_quorum_and_serves_metadata() -> None:
    with Cluster(brokers=3, broker_only=1) as cluster:
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{cluster.nodes[1].port}"})
        create(admin, "known", num_partitions=4)
        # It learns every topic and broker from the quorum, and names them to clients.
        observer = AdminClient({"bootstrap.servers": f"127.0.0.1:{cluster.nodes[4].port}"})
        listed = until(lambda: "known" in (m := observer.list_topics(timeout=5)).topics and m, 5, "the topic on node 4")
        assert sorted(listed.brokers) == [1, 2, 3, 4]
        assert len(listed.topics["known"].partitions) == 4
        assert cluster.nodes[4].read(lambda s: s.quorum_server.is_voter) is False
        # Killed, it is fenced within its session; restarted, it serves again.
        controller = cluster.active_controller()
        assert controller is not None and controller != 4
        cluster.kill(4)
        session_s = FAST_QUORUM["broker.session.timeout.ms"] / 1000
        until(lambda: cluster.nodes[controller].read(lambda s: s.broker.image.brokers[4].fenced), session_s + 3,
              "the broker-only node fenced")
        cluster.restart(4)
        cluster.wait_until_serving([4])
        assert not cluster.nodes[controller].read(lambda s: s.broker.image.brokers[4].fenced)
