"""Kafka's production layout, driven by real clients: three controller-only nodes
(process.roles=controller, ids 1..3) are the metadata quorum, and two broker-only nodes
(ids 4 and 5) register with them and serve the clients. The controllers host no
partitions and are never named to clients; losing the active one elects another, and a
silent broker is fenced by whichever controller is active."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from kafkapy.client import Client, Connection
from kafkapy.server.meta_properties import format_storage, random_cluster_id
from kafkapy.testing.cluster import FAST_QUORUM, Cluster
from kafkapy.testing.process import BrokerProcess, start_all
from waiting import until

pytestmark = pytest.mark.timeout(60)

CONTROLLERS, BROKERS = [1, 2, 3], [4, 5]
# FAST_QUORUM: election 500-1000 ms, fetch timeout 1 s (check-quorum 1.5 s), session 2 s.
FAILOVER_S = 10.0
SESSION_S = FAST_QUORUM["broker.session.timeout.ms"] / 1000


def create(admin: AdminClient, name: str, **kwargs: object) -> None:
    admin.create_topics([NewTopic(name, **kwargs)], operation_timeout=10)[name].result(15)


def leaders_seen_by(cluster: Cluster, node_id: int, topic: str) -> dict[int, int]:
    """Each partition's leader in the node's image (empty while it does not know the topic)."""
    def read(server: object) -> dict[int, int]:
        image = server.node.image  # type: ignore[attr-defined]
        found = image.topics.get(topic)
        return {p.partition_id: p.leader for p in found.partitions.values()} if found else {}
    return dict(cluster.nodes[node_id].read(read))


def registered_brokers(cluster: Cluster, node_id: int) -> dict[int, bool]:
    """Each broker the node's image knows, and whether it is fenced."""
    return dict(cluster.nodes[node_id].read(lambda s: {b.node_id: b.fenced for b in s.node.image.brokers.values()}))


def consume(bootstrap: str, topic: str, count: int, group: str) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    seen: list[bytes] = []
    deadline = time.monotonic() + 20
    try:
        while len(seen) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                seen.append(message.value())
    finally:
        consumer.close()
    return seen


@pytest.fixture
def cluster():
    with Cluster(controllers=3, brokers=2) as c:
        yield c


def test_the_layout_is_three_controller_only_voters_and_two_broker_only_observers(cluster: Cluster) -> None:
    assert cluster.voter_ids == CONTROLLERS and cluster.broker_ids == BROKERS
    roles = {n: node.config.strings("process.roles") for n, node in cluster.nodes.items()}
    assert roles == {1: ["controller"], 2: ["controller"], 3: ["controller"], 4: ["broker"], 5: ["broker"]}
    assert cluster.active_controller() in CONTROLLERS
    # The quorum, as a client sees it through a broker: the controllers vote, the brokers observe.
    with Client(f"127.0.0.1:{cluster.nodes[4].port}") as client:
        quorum = until(lambda: (q := client.describe_quorum()) and len(q.observers) == 2 and q, 5, "both brokers fetching")
    assert sorted(v.replica_id for v in quorum.voters) == CONTROLLERS
    assert sorted(o.replica_id for o in quorum.observers) == BROKERS
    assert quorum.leader_id == cluster.active_controller()
    # A controller listener answers the controller's APIs and Raft's, and none of a broker's.
    connection = Connection("127.0.0.1", cluster.nodes[1].port, "controller 1", "test", 10)
    try:
        served = set(connection.versions)
    finally:
        connection.close()
    create_topics, describe_quorum, registration, heartbeat, envelope, vote = 19, 55, 62, 63, 58, 52
    produce, metadata, find_coordinator, join_group = 0, 3, 10, 11
    assert {create_topics, describe_quorum, registration, heartbeat, envelope, vote} <= served
    assert not {produce, metadata, find_coordinator, join_group} & served


def test_admin_through_a_broker_creates_a_topic_whose_partitions_are_on_both_brokers_only(cluster: Cluster) -> None:
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{cluster.nodes[4].port}"})
    create(admin, "spread", num_partitions=4)
    for node_id in cluster.node_ids:
        until(lambda n=node_id: len(leaders_seen_by(cluster, n, "spread")) == 4, 5, f"node {node_id} to know the topic")
    leaders = leaders_seen_by(cluster, 1, "spread")
    assert sorted(leaders.values()) == [4, 4, 5, 5]
    assert all(leaders_seen_by(cluster, n, "spread") == leaders for n in cluster.node_ids)
    # Clients hear only of the brokers, and of a live broker as the controller.
    for broker in BROKERS:
        listed = AdminClient({"bootstrap.servers": f"127.0.0.1:{cluster.nodes[broker].port}"}).list_topics(timeout=5)
        assert sorted(listed.brokers) == BROKERS
        assert listed.controller_id in BROKERS
        assert {p.leader for p in listed.topics["spread"].partitions.values()} == set(BROKERS)
    # The controllers registered nothing of their own and keep nothing but the metadata log.
    for controller in CONTROLLERS:
        assert registered_brokers(cluster, controller) == {4: False, 5: False}
        assert sorted(p.name for p in (cluster.data_dir / f"node-{controller}").iterdir()) == [
            "__cluster_metadata-0", "meta.properties"]


def test_a_producer_and_a_consumer_group_round_trip_through_the_brokers(cluster: Cluster) -> None:
    bootstrap = cluster.bootstrap_servers
    create(AdminClient({"bootstrap.servers": bootstrap}), "events", num_partitions=2)
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(20):
        producer.produce("events", b"v%d" % i, key=b"k%d" % i)
    assert producer.flush(10) == 0
    seen = consume(bootstrap, "events", 20, "round-trip")
    assert sorted(seen) == sorted(b"v%d" % i for i in range(20))


def test_killing_the_active_controller_elects_another_which_still_creates_topics(cluster: Cluster) -> None:
    bootstrap = cluster.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    create(admin, "before", num_partitions=2)
    old = cluster.active_controller()
    assert old in CONTROLLERS
    cluster.kill(old)
    new = until(lambda: cluster.active_controller() not in (None, old) and cluster.active_controller(), FAILOVER_S,
                "a new active controller")
    assert new in CONTROLLERS
    # Forwarded by a broker to the new controller; the brokers lead it and serve it.
    create(admin, "after", num_partitions=2)
    assert sorted(until(lambda: leaders_seen_by(cluster, 5, "after"), 5, "broker 5 to know the topic").values()) == BROKERS
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(6):
        producer.produce("after", b"a%d" % i)
    assert producer.flush(10) == 0
    assert sorted(consume(bootstrap, "after", 6, "after-failover")) == sorted(b"a%d" % i for i in range(6))
    assert registered_brokers(cluster, new) == {4: False, 5: False}
    # The old controller comes back as a follower and learns what it missed.
    cluster.restart(old)
    cluster.wait_until_serving([old])
    until(lambda: len(leaders_seen_by(cluster, old, "after")) == 2, 5, "the restarted controller to catch up")
    assert cluster.active_controller() == new


def test_a_killed_broker_is_fenced_its_partitions_go_offline_and_come_back_after_a_restart(cluster: Cluster) -> None:
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{cluster.nodes[4].port}"})
    create(admin, "on-five", num_partitions=2, replica_assignment=[[5], [4]])
    controller = cluster.active_controller()
    assert controller is not None
    until(lambda: leaders_seen_by(cluster, 4, "on-five") == {0: 5, 1: 4}, 5, "broker 4 to know the topic")
    cluster.kill(5)
    killed_at = time.monotonic()
    # Replication factor 1: no other replica to lead, so its partition goes offline.
    until(lambda: registered_brokers(cluster, controller) == {4: False, 5: True}
          and leaders_seen_by(cluster, controller, "on-five") == {0: -1, 1: 4},
          SESSION_S + 3, "broker 5 fenced and its partition offline")
    assert time.monotonic() - killed_at >= SESSION_S * 0.9
    until(lambda: sorted(admin.list_topics(timeout=5).brokers) == [4], 5, "clients to hear only of broker 4")
    cluster.restart(5)
    cluster.wait_until_serving([5])
    until(lambda: registered_brokers(cluster, controller) == {4: False, 5: False}
          and leaders_seen_by(cluster, controller, "on-five") == {0: 5, 1: 4}, 5, "broker 5 back, leading again")
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers})
    producer.produce("on-five", b"back", partition=0)
    assert producer.flush(10) == 0


@pytest.mark.timeout(90)
def test_the_kafkapy_command_runs_a_controller_only_node_for_a_broker_only_node(tmp_path: Path) -> None:
    controller_port, broker_port = free_port(), free_port()
    voters = f"1@127.0.0.1:{controller_port}"
    cluster_id = random_cluster_id()
    for node_id in (1, 2):
        format_storage([tmp_path / f"node-{node_id}"], node_id, cluster_id)
    controller = BrokerProcess(tmp_path / "node-1", {
        **FAST_QUORUM, "node.id": 1, "process.roles": "controller", "controller.quorum.voters": voters,
        "listeners": f"CONTROLLER://127.0.0.1:{controller_port}"})
    broker = BrokerProcess(tmp_path / "node-2", {
        **FAST_QUORUM, "node.id": 2, "process.roles": "broker", "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://127.0.0.1:{broker_port}"})
    try:
        start_all([controller, broker])
        assert controller.port == controller_port and broker.port == broker_port
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        create(admin, "through-the-command", num_partitions=3)
        listed = until(lambda: (m := admin.list_topics(timeout=5)) and "through-the-command" in m.topics and m, 5,
                       "the broker to know the topic")
        assert sorted(listed.brokers) == [2] and listed.controller_id == 2
        assert {p.leader for p in listed.topics["through-the-command"].partitions.values()} == {2}
        # The broker first (its controlled shutdown needs the controller), then the controller: both cleanly.
        assert broker.stop() == 0
        assert controller.stop() == 0
        assert "Stopped" not in controller.output, "a controller has no partition logs to flush"
    finally:
        broker.kill()
        controller.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def quorum_leader_seen_by(cluster: Cluster, node_id: int) -> int:
    return int(cluster.nodes[node_id].read(lambda s: s.quorum_server.core.leader_id))


def test_a_gracefully_stopped_active_controller_hands_over_at_once(cluster: Cluster) -> None:
    old = cluster.active_controller()
    assert old in CONTROLLERS
    survivors = [n for n in CONTROLLERS if n != old]
    cluster.nodes[old].stop()
    # It resigned before stopping (EndQuorumEpoch): a survivor leads already, where a
    # kill leaves them waiting out their fetch timeout (1 s here) and an election.
    new = until(lambda: next((n for n in survivors if quorum_leader_seen_by(cluster, n) == n), None), 0.5,
                "a surviving controller to lead")
    until(lambda: all(quorum_leader_seen_by(cluster, n) == new for n in survivors), 2, "both survivors to know it")
    create(AdminClient({"bootstrap.servers": cluster.bootstrap_servers}), "after-handover", num_partitions=1)
