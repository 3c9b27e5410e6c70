"""The authorizer on real brokers, seen by confluent-kafka and kafka-python: ACLs for
User:ANONYMOUS (the principal of every unauthenticated connection), created with
CreateAcls and kept as metadata records."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError

import waiting
from kafkapy import Broker
from kafkapy.testing.cluster import Cluster

ME = "User:ANONYMOUS"
AUTHORIZER = {"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
              "allow.everyone.if.no.acl.found": "true", "group.initial.rebalance.delay.ms": 0}


def binding(resource: ResourceType, name: str, operation: AclOperation, permission: AclPermissionType = AclPermissionType.ALLOW,
            pattern: ResourcePatternType = ResourcePatternType.LITERAL) -> AclBinding:
    return AclBinding(resource, name, pattern, ME, "*", operation, permission)


def create_acls(admin: AdminClient, *acls: AclBinding) -> None:
    for future in admin.create_acls(list(acls), request_timeout=10).values():
        future.result(timeout=10)


def create_topics(admin: AdminClient, *names: str) -> None:
    for future in admin.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        future.result(timeout=10)


def listed_topics(admin: AdminClient) -> set[str]:
    return set(admin.list_topics(timeout=10).topics)


def produce_error(bootstrap: str, topic: str) -> KafkaError | None:
    delivered: list[KafkaError | None] = []
    producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 10_000})
    producer.produce(topic, b"v", on_delivery=lambda err, msg: delivered.append(err))
    producer.flush(15)
    assert delivered, "no delivery report"
    return delivered[0]


@pytest.fixture
def broker(tmp_path):
    with Broker(tmp_path, **AUTHORIZER) as b:
        yield b


def test_producer_without_write_is_refused_and_a_consumer_without_group_read(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    topic, group = f"acl-{uuid.uuid4().hex[:6]}", "acl-group"
    create_topics(admin, topic)
    # READ (so DESCRIBE) on the topic only: the topic is no longer open to all.
    create_acls(admin, binding(ResourceType.TOPIC, topic, AclOperation.READ),
                binding(ResourceType.GROUP, group, AclOperation.DESCRIBE))
    error = produce_error(broker.bootstrap_servers, topic)
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    kp = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, retries=0)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            kp.send(topic, b"v").get(timeout=15)
    finally:
        kp.close(timeout=5)

    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": group, "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([topic])
        error = waiting.until(lambda: (m := consumer.poll(0.5)) is not None and m.error(), 20, "a group error")
        assert error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED
    finally:
        consumer.close()

    kc = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap_servers, group_id=group, consumer_timeout_ms=5000)
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            waiting.until(lambda: kc.poll(timeout_ms=500) and False, 20, "a group error")
    finally:
        kc.close()


def test_metadata_shows_describable_topics_prefixed_acls_and_deny_over_allow(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    create_topics(admin, "pay-in", "pay-out", "secret")
    create_acls(
        admin,
        binding(ResourceType.TOPIC, "pay-", AclOperation.WRITE, pattern=ResourcePatternType.PREFIXED),
        binding(ResourceType.TOPIC, "pay-out", AclOperation.WRITE, AclPermissionType.DENY),
        binding(ResourceType.TOPIC, "secret", AclOperation.READ, AclPermissionType.DENY),
        binding(ResourceType.TOPIC, "secret", AclOperation.DESCRIBE, AclPermissionType.DENY),
    )
    assert not {"pay-in", "pay-out"} - listed_topics(admin)  # WRITE implies DESCRIBE
    assert "secret" not in listed_topics(admin)
    assert produce_error(broker.bootstrap_servers, "pay-in") is None
    error = produce_error(broker.bootstrap_servers, "pay-out")
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # Named explicitly, a hidden topic is refused whether it exists or not.
    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers)
    try:
        assert "secret" not in kc.topics()
    finally:
        kc.close()
    described = admin.describe_acls(AclBindingFilter(ResourceType.TOPIC, "pay-out", ResourcePatternType.MATCH, None, None,
                                                     AclOperation.ANY, AclPermissionType.ANY)).result(timeout=10)
    assert {(b.name, b.permission_type) for b in described} == {("pay-", AclPermissionType.ALLOW), ("pay-out", AclPermissionType.DENY)}


def test_acls_survive_a_restart_and_can_be_deleted(tmp_path):
    with Broker(tmp_path, **AUTHORIZER) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        create_topics(admin, "kept")
        create_acls(admin, binding(ResourceType.TOPIC, "kept", AclOperation.READ))
        broker.restart()
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        error = produce_error(broker.bootstrap_servers, "kept")
        assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                                      AclPermissionType.ANY)
        deleted = admin.delete_acls([everything], request_timeout=10)[everything].result(timeout=10)
        assert [(b.name, b.operation) for b in deleted] == [("kept", AclOperation.READ)]
        assert produce_error(broker.bootstrap_servers, "kept") is None


def test_without_an_authorizer_acl_apis_answer_security_disabled(tmp_path):
    with Broker(tmp_path) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        with pytest.raises(KafkaException) as refused:
            create_acls(admin, binding(ResourceType.TOPIC, "t", AclOperation.READ))
        assert refused.value.args[0].code() == KafkaError.SECURITY_DISABLED


def test_an_acl_created_through_one_broker_applies_on_another(tmp_path):
    with Cluster(brokers=3, data_dir=tmp_path, **AUTHORIZER) as cluster:
        first = AdminClient({"bootstrap.servers": f"127.0.0.1:{cluster.nodes[1].port}"})
        create_topics(first, "shared")
        create_acls(first, binding(ResourceType.TOPIC, "shared", AclOperation.READ))
        third = f"127.0.0.1:{cluster.nodes[3].port}"

        def refused_on_third() -> bool:
            error = produce_error(third, "shared")
            return error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

        waiting.until(refused_on_third, 60, "the ACL to apply on broker 3")
