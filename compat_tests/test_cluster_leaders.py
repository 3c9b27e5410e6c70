"""Partition leadership on a three-node kafkapy cluster (kafkapy.Cluster, in one process)
seen through confluent-kafka: a killed leader's partition moves to an in-sync replica with
a new leader epoch; the broker back is no leader until its leader takes it back into the
ISR (AlterPartition); then a preferred election (ElectLeaders) gives it the lead again."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import ElectionType, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kafkapy.testing.cluster import FAST_QUORUM, Cluster
from waiting import until

pytestmark = pytest.mark.timeout(60)

SESSION_S = FAST_QUORUM["broker.session.timeout.ms"] / 1000


@pytest.fixture(scope="module")
def cluster():
    with Cluster(brokers=3) as c:
        yield c


def leader_and_isr(admin: AdminClient, topic: str) -> tuple[int, list[int]]:
    p = admin.list_topics(topic, timeout=10).topics[topic].partitions[0]
    return p.leader, sorted(p.isrs)


def partition_state(cluster: Cluster, node_id: int, topic: str) -> Any:
    return cluster.nodes[node_id].read(lambda s: s.broker.image.topics[topic].partitions[0])


def led_by(cluster: Cluster, node_id: int, topic: str) -> Any:
    """The partition as the node's own image holds it, once the records making it leader reach it."""
    return until(lambda: (lambda p: p if p.leader == node_id else None)(partition_state(cluster, node_id, topic)),
                 10, f"node {node_id}'s own image naming it leader")


def elect_preferred(admin: AdminClient, topic: str) -> KafkaError | None:
    tp = TopicPartition(topic, 0)
    outcome: KafkaError | None = admin.elect_leaders(ElectionType.PREFERRED, [tp]).result(15)[tp]
    return outcome


def test_a_killed_leader_hands_over_to_an_in_sync_replica_and_takes_the_lead_back_once_in_sync(cluster: Cluster) -> None:
    controller = cluster.active_controller()
    victim, *others = [n for n in cluster.nodes if n != controller] + [controller]
    admin = AdminClient({"bootstrap.servers": ",".join(f"127.0.0.1:{cluster.nodes[n].port}" for n in others)})
    admin.create_topics([NewTopic("moving", num_partitions=1, replica_assignment=[[victim, *others]])])["moving"].result(15)
    until(lambda: leader_and_isr(admin, "moving") == (victim, sorted(cluster.nodes)), 10, "the topic led by its first replica")

    cluster.kill(victim)
    leader, isr = until(lambda: (lambda li: li if li[0] in others else None)(leader_and_isr(admin, "moving")),
                        SESSION_S + 5, "the leadership moved to an in-sync replica")
    assert isr == sorted(others)
    assert led_by(cluster, leader, "moving").leader_epoch == 1

    moved = partition_state(cluster, leader, "moving")
    cluster.restart(victim)
    cluster.wait_until_serving([victim])
    # Back and unfenced, it fetches as a follower; once caught up, the leader takes it back
    # into the ISR with AlterPartition through the active controller: a new partition
    # epoch, the same leader epoch, and no leadership for it until then.
    until(lambda: leader_and_isr(admin, "moving") == (leader, sorted(cluster.nodes)), 15, "the broker back in the ISR")
    rejoined = partition_state(cluster, leader, "moving")
    assert (rejoined.leader, rejoined.leader_epoch) == (leader, moved.leader_epoch)
    assert rejoined.partition_epoch > moved.partition_epoch

    assert elect_preferred(admin, "moving") is None
    until(lambda: leader_and_isr(admin, "moving")[0] == victim, 10, "the preferred replica leading again")
    led = led_by(cluster, victim, "moving")
    assert (led.leader_epoch, led.partition_epoch) == (rejoined.leader_epoch + 1, rejoined.partition_epoch + 1)
    assert elect_preferred(admin, "moving").code() == KafkaError.ELECTION_NOT_NEEDED


def test_a_replication_factor_above_the_live_brokers_is_refused(cluster: Cluster) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    with pytest.raises(KafkaException) as refused:
        admin.create_topics([NewTopic("too-many", 1, 4)])["too-many"].result(15)
    assert refused.value.args[0].code() == KafkaError.INVALID_REPLICATION_FACTOR
    admin.create_topics([NewTopic("three", 3, 3)])["three"].result(15)
    topic = until(lambda: admin.list_topics("three", timeout=10).topics["three"], 10, "the topic in Metadata")
    # Replicas on every broker, preferred leaders round them (what the controller placed; a
    # broker briefly fenced under load could move a leader, never the replica order).
    assert all(sorted(p.replicas) == sorted(cluster.nodes) for p in topic.partitions.values())
    assert sorted(p.replicas[0] for p in topic.partitions.values()) == sorted(cluster.nodes)
