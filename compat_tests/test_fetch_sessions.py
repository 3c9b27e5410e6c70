"""Incremental fetch sessions (KIP-227). Between followers and a leader on a three-node
kafkapy cluster (kafkapy.Cluster, in one process): max.incremental.fetch.session.cache.slots
bounds the sessions a leader keeps, and a follower left without one still copies every
record, fetching sessionless, without evicting the other follower's session. With a
consumer, over a bare connection: kafkapy keeps no session for it (session id 0, which
KIP-227 lets a broker answer), so its incremental fetches are answered as Kafka answers
those of an unknown session."""

from __future__ import annotations

import datetime

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.types import TopicName
from kio.static.primitive import i32, i32Timedelta, i64

from kafkapy.compat.raw import RawConnection
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


def produce(bootstrap: str, first: int, count: int, topic: str = TOPIC) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(first, first + count):
        producer.produce(topic, b"v%03d" % i, partition=0)
    assert producer.flush(20) == 0


def test_a_leader_keeps_at_most_its_slots_and_the_follower_without_one_still_copies_everything() -> None:
    with Cluster(brokers=3, max_incremental_fetch_session_cache_slots=1) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
        admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=3)], operation_timeout=10)[TOPIC].result(15)
        until(lambda: all(TOPIC in cluster.nodes[n].read(lambda s: list(s.broker.image.topics)) for n in cluster.nodes), 5,
              "every node to know the topic")
        leader = partition_on(cluster, 1)[0]

        produce(cluster.bootstrap_servers, 0, N)
        for n in cluster.nodes:
            until(lambda n=n: values_on(cluster, n) == [b"v%03d" % i for i in range(N)], 10, f"node {n}'s log to hold the records")
        held = until(lambda: sessions_on(cluster, leader), 10, "the leader to keep a follower's session")
        assert len(held) == 1

        # Two followers, one slot: the one without a session fetches sessionless, and its
        # full fetches do not evict the other's session (which is neither stale nor smaller).
        produce(cluster.bootstrap_servers, N, N)
        for n in cluster.nodes:
            until(lambda n=n: values_on(cluster, n) == [b"v%03d" % i for i in range(2 * N)], 10,
                  f"node {n}'s log to hold the records")
        assert sessions_on(cluster, leader) == held


def _consumer_fetch(connection: RawConnection, topic: str, session_id: int, epoch: int):
    return connection.request(FetchRequest(
        max_wait=i32Timedelta.parse(datetime.timedelta(0)), min_bytes=i32(0), max_bytes=i32(1 << 20), session_id=i32(session_id),
        session_epoch=i32(epoch), forgotten_topics_data=(), topics=(FetchTopic(topic=TopicName(topic), partitions=(
            FetchPartition(partition=i32(0), fetch_offset=i64(0), partition_max_bytes=i32(1 << 20)),)),)))


@pytest.mark.kafkapy_internals
def test_a_consumer_gets_no_session_and_its_incremental_fetch_is_fetch_session_id_not_found(broker, topic_name):
    produce(broker.bootstrap, 0, 3, topic_name)
    with RawConnection(broker.port) as connection:
        full = _consumer_fetch(connection, topic_name, 0, 0)  # epoch 0: a full fetch asking for a session
        assert (full.error_code, full.session_id) == (ErrorCode.none, 0)
        [partition] = full.responses[0].partitions
        assert (partition.error_code, partition.high_watermark) == (ErrorCode.none, 3)
        incremental = _consumer_fetch(connection, topic_name, 777, 1)
        assert (incremental.error_code, incremental.session_id, incremental.responses) == (
            ErrorCode.fetch_session_id_not_found, 0, ())
        # A full fetch naming a session closes it if kept: no error for one that is not.
        closing = _consumer_fetch(connection, topic_name, 777, -1)
        assert (closing.error_code, closing.session_id, len(closing.responses)) == (ErrorCode.none, 0, 1)
