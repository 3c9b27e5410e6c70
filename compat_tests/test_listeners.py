"""A broker with several listeners answers each client with the brokers' endpoints for the
listener it came on, as Kafka does: a confluent-kafka client bootstrapped on a PLAINTEXT
listener or on a SASL_PLAINTEXT one sees that listener's port in Metadata and for its
group coordinator, and produces and consumes through it. In a cluster whose brokers reach
each other on a second listener (inter.broker.listener.name), followers fetch over it."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.metadata.v12.request import MetadataRequest

import kafkapy
from kafkapy.compat.raw import RawConnection
from kafkapy.testing.cluster import Cluster
from test_tls import confluent_round_trip

pytestmark = [pytest.mark.timeout(60), pytest.mark.kafkapy_internals]

USERS = {"alice": "alice-secret"}
RECORDS = [b"record-%d" % i for i in range(10)]


@pytest.fixture(scope="module")
def broker():
    with kafkapy.Broker(security="sasl_plaintext", users=USERS, group_initial_rebalance_delay_ms=0,
                        listeners="PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0") as b:
        yield b


def client_settings(broker: kafkapy.Broker, listener: str) -> dict[str, object]:
    """A confluent-kafka client's settings bootstrapped on one listener of the broker."""
    security = broker.client_config(user="alice") if listener.startswith("SASL_") else {}
    return {**security, "bootstrap.servers": f"127.0.0.1:{broker.listener_ports[listener]}"}


@pytest.mark.parametrize("listener", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_a_client_sees_and_uses_the_endpoints_of_the_listener_it_came_on(broker: kafkapy.Broker, listener: str) -> None:
    settings = client_settings(broker, listener)
    port = broker.listener_ports[listener]
    admin = AdminClient(settings)
    assert [(b.host, b.port) for b in admin.list_topics(timeout=10).brokers.values()] == [("127.0.0.1", port)]
    group = f"{listener.lower()}-{uuid.uuid4().hex[:8]}"
    assert confluent_round_trip(settings, RECORDS, topic=group) == RECORDS
    [description] = [f.result(10) for f in admin.describe_consumer_groups([group], request_timeout=10).values()]
    assert (description.coordinator.host, description.coordinator.port) == ("127.0.0.1", port)


def test_brokers_replicate_over_the_inter_broker_listener_and_clients_see_their_own() -> None:
    with Cluster(brokers=3, internal_listener="INTERNAL") as cluster:
        client_ports = {n: cluster.nodes[n].port for n in cluster.broker_ids}
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
        metadata = admin.list_topics(timeout=10)
        assert {b.id: b.port for b in metadata.brokers.values()} == client_ports
        topic = "over-internal"
        # acks=all with min.insync.replicas=3: a record is acknowledged only once both followers fetched it.
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=3, config={"min.insync.replicas": "3"})],
                            operation_timeout=10)[topic].result(15)
        producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all"})
        errors: list[object] = []
        for value in RECORDS:
            producer.produce(topic, value, on_delivery=lambda err, _: errors.append(err) if err else None)
        assert producer.flush(30) == 0
        assert errors == []
        leader = metadata_leader(cluster, topic)
        # The followers' fetch connections are on the leader's INTERNAL listener.
        assert "INTERNAL" in cluster.nodes[leader].read(lambda s: s.connection_listeners())
        # The same Metadata asked on INTERNAL answers with the INTERNAL endpoints.
        internal_port = cluster.nodes[leader].read(lambda s: {b.name: b.port for b in s.bound}["INTERNAL"])
        with RawConnection(internal_port) as connection:
            response = connection.request(MetadataRequest(topics=(), allow_auto_topic_creation=False,
                                                          include_topic_authorized_operations=False))
        internal_ports = {n: cluster.nodes[n].read(lambda s: {b.name: b.port for b in s.bound}["INTERNAL"])
                          for n in cluster.broker_ids}
        assert {b.node_id: b.port for b in response.brokers} == internal_ports
        assert set(internal_ports.values()).isdisjoint(client_ports.values())


def metadata_leader(cluster: Cluster, topic: str) -> int:
    return cluster.nodes[cluster.broker_ids[0]].read(lambda s: s.broker.image.topics[topic].partitions[0].leader)
