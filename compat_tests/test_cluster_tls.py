"""A three-node kafkapy cluster whose nodes reach each other securely, with Kafka's
authorizer and no anonymous super user: the controller listener over mutual TLS (Raft,
the controller channel), the broker listener (replica fetchers) over mutual TLS or
SASL_SSL with PLAIN. Each node connects with its own key store, trust store and SASL
login and is authorized as that principal (a super user); a client consumes every
acknowledged record from the follower that leads once the leader is killed; an ordinary
user allowed to read the topic is refused a fetch that claims to come from a replica,
and a Vote (Kafka's rule: both need CLUSTER_ACTION on the cluster)."""

from __future__ import annotations

import datetime

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.types import BrokerId, TopicName
from kio.static.primitive import i32, i32Timedelta, i64

from kafkapy.compat.adapters.base import AclEntry, Record
from kafkapy.compat.adapters.confluent import ConfluentKafka
from kafkapy.compat.raw import RawConnection
from kafkapy.compat.security import ClientSecurity
from kafkapy.raft.messages import VoteRequest
from kafkapy.raft.wire import request_to_kafka
from kafkapy.testing.certificates import TestCertificates
from kafkapy.testing.cluster import Cluster
from waiting import until

pytestmark = [pytest.mark.timeout(90), pytest.mark.kafkapy_internals]

TOPIC = "replicated-over-tls"
RECORDS = [Record(b"k%d" % i, b"v%03d" % i, partition=0) for i in range(30)]
BROKER_PRINCIPAL = "User:CN=localhost,O=kafkapy test"


def client_security(certificates: TestCertificates, user: str) -> ClientSecurity:
    certificate, key = certificates.client(user)
    return ClientSecurity("SSL", ca_location=str(certificates.ca_path), certificate_location=str(certificate),
                          key_location=str(key))


def follower_fetch(port: int, security: ClientSecurity, replica_id: int) -> ErrorCode:
    """The partition's error in the answer to a Fetch of TOPIC-0 claiming to come from replica_id (-1: a consumer)."""
    with RawConnection(port, security=security) as connection:
        response = connection.request(FetchRequest(
            replica_id=BrokerId(replica_id), max_wait=i32Timedelta.parse(datetime.timedelta(0)), min_bytes=i32(0),
            max_bytes=i32(1 << 20), forgotten_topics_data=(),
            topics=(FetchTopic(topic=TopicName(TOPIC), partitions=(FetchPartition(
                partition=i32(0), fetch_offset=i64(0), partition_max_bytes=i32(1 << 20)),)),),
        ))
    [answer] = response.responses[0].partitions
    return answer.error_code


def vote_error(port: int, security: ClientSecurity) -> ErrorCode:
    """The error of the answer to a pre-vote request sent to a controller listener."""
    request = request_to_kafka(VoteRequest(1, 1_000, 1, 1_000, 1 << 40, True), 1)
    with RawConnection(port, security=security) as connection:
        return connection.request(request).error_code


def secured(protocol: str, certificates: TestCertificates) -> tuple[dict[str, object], ClientSecurity, ClientSecurity, str]:
    """The nodes' settings with the broker listener over `protocol` (SSL: mutual TLS;
    SASL_SSL: PLAIN, the brokers logging in to each other as User:broker) and the
    controller listener over mutual TLS; the admin's and alice's client settings on the
    broker listener, and alice's principal there."""
    settings: dict[str, object] = {
        "listener.security.protocol.map": f"{protocol}:{protocol},CONTROLLER:SSL",
        "ssl.keystore.type": "PEM", "ssl.keystore.location": str(certificates.server()), "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(certificates.ca_path), "listener.name.controller.ssl.client.auth": "required",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    }
    if protocol == "SSL":
        settings |= {"ssl.client.auth": "required", "super.users": f"{BROKER_PRINCIPAL};User:CN=admin,O=kafkapy test"}
        return settings, client_security(certificates, "admin"), client_security(certificates, "alice"), \
            "User:CN=alice,O=kafkapy test"
    settings |= {
        "sasl.enabled.mechanisms": "PLAIN", "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="broker" password="broker-secret" user_broker="broker-secret" user_admin="admin-secret" '
        'user_alice="alice-secret";',
        "super.users": f"User:broker;User:admin;{BROKER_PRINCIPAL}",
    }

    def user(name: str) -> ClientSecurity:
        return ClientSecurity("SASL_SSL", "PLAIN", name, f"{name}-secret", ca_location=str(certificates.ca_path))

    return settings, user("admin"), user("alice"), "User:alice"


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_nodes_reach_each_other_securely_and_a_user_cannot_act_as_one(tmp_path, protocol):
    certificates = TestCertificates(tmp_path / "ca")
    settings, admin, alice, alice_principal = secured(protocol, certificates)
    with Cluster(brokers=3, broker_listener=protocol, **settings) as cluster:
        client = ConfluentKafka(cluster.bootstrap_servers, admin)
        try:
            creator = AdminClient({"bootstrap.servers": cluster.bootstrap_servers, **admin.confluent()})
            creator.create_topics([NewTopic(TOPIC, 1, 3, config={"min.insync.replicas": "2"})])[TOPIC].result(20)
            written = client.produce(TOPIC, RECORDS)
            assert [r.offset for r in written] == list(range(len(RECORDS)))
            [partition] = client.partitions(TOPIC)
            assert sorted(partition.isr) == [1, 2, 3]  # acks=all acknowledged: every follower fetched it
            client.create_acls([AclEntry("TOPIC", TOPIC, "LITERAL", alice_principal, "*", "READ", "ALLOW")])

            cluster.kill(partition.leader)
            survivors = [n for n in cluster.broker_ids if n != partition.leader]
            survivor_bootstrap = ",".join(f"127.0.0.1:{cluster.nodes[n].port}" for n in survivors)
            client.close()
            client = ConfluentKafka(survivor_bootstrap, admin)
            new_leader = until(lambda: (lambda p: p.leader if p.leader in survivors else None)(client.partitions(TOPIC)[0]),
                               20, "a surviving follower to lead the partition")
            consumed = client.consume(TOPIC, {0: len(RECORDS)})
            assert [(r.offset, r.value) for r in consumed] == [(r.offset, r.value) for r in written]

            port = cluster.nodes[new_leader].port
            assert until(lambda: follower_fetch(port, alice, -1) == ErrorCode.none, 10, "alice's ACL to reach the leader")
            other = next(n for n in survivors if n != new_leader)
            assert follower_fetch(port, alice, other) == ErrorCode.topic_authorization_failed
            assert follower_fetch(port, admin, other) == ErrorCode.none
            [controller] = [v for v in cluster.nodes[other].config.quorum_voters if v.node_id == other]
            assert vote_error(controller.port, client_security(certificates, "alice")) == ErrorCode.cluster_authorization_failed
        finally:
            client.close()
