"""Incremental fetch sessions (KIP-227) between followers and a leader on a three-node
kafkapy cluster (kafkapy.Cluster, in one process): max.incremental.fetch.session.cache.slots
bounds the sessions a leader keeps, and a follower left without one still copies every
record, fetching sessionless, without evicting the other follower's session."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from kafkapy.server.broker import BrokerServer
from kafkapy.testing.cluster import Cluster
from test_cluster_replication import partition_on, values_on
from waiting import until

pytestmark = pytest.mark.timeout(60)

TOPIC = "replicated"
N = 20


def sessions_on(cluster: Cluster, node_id: int) -> set[int]:
    """The ids of the fetch sessions the node keeps, read on its event loop."""
    def read(server: BrokerServer) -> set[int]:
        return set(server.broker.fetch_sessions._sessions) if server.broker else set()
    return cluster.nodes[node_id].read(read)


def produce(cluster: Cluster, first: int, count: int) -> None:
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all"})
    for i in range(first, first + count):
        producer.produce(TOPIC, b"v%03d" % i, partition=0)
    assert producer.flush(20) == 0


def test_a_leader_keeps_at_most_its_slots_and_the_follower_without_one_still_copies_everything() -> None:
    with Cluster(brokers=3, max_incremental_fetch_session_cache_slots=1) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
        admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=3)], operation_timeout=10)[TOPIC].result(15)
        until(lambda: all(TOPIC in cluster.nodes[n].read(lambda s: list(s.broker.image.topics)) for n in cluster.nodes), 5,
              "every node to know the topic")
        leader = partition_on(cluster, 1)[0]

        produce(cluster, 0, N)
        for n in cluster.nodes:
            until(lambda n=n: values_on(cluster, n) == [b"v%03d" % i for i in range(N)], 10, f"node {n}'s log to hold the records")
        held = until(lambda: sessions_on(cluster, leader), 10, "the leader to keep a follower's session")
        assert len(held) == 1

        # Two followers, one slot: the one without a session fetches sessionless, and its
        # full fetches do not evict the other's session (which is neither stale nor smaller).
        produce(cluster, N, N)
        for n in cluster.nodes:
            until(lambda n=n: values_on(cluster, n) == [b"v%03d" % i for i in range(2 * N)], 10,
                  f"node {n}'s log to hold the records")
        assert sessions_on(cluster, leader) == held
