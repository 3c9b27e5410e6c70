"""What each of the APIs beyond produce, fetch, metadata and the group protocol answers a
principal the authorizer refuses, as Kafka's KafkaApis answers it. Requests go over a
socket as User:ANONYMOUS (the principal of an unauthenticated connection), whose ACLs
the test creates."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer
from kio.schema.errors import ErrorCode

from kafkapy import Broker
from kafkapy.client import Client
from kafkapy.metadata.acls import CLUSTER_NAME, Acl, AclOperation, AclPermission, PatternType, ResourceType
from kafkapy.security.authorizer import CLUSTER_ACL_OPERATIONS, operations_bitfield

pytestmark = [pytest.mark.kafkapy_internals, pytest.mark.timeout(60)]

ME = "User:ANONYMOUS"
AUTHORIZER = {"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
              "allow.everyone.if.no.acl.found": "true", "group.initial.rebalance.delay.ms": 0}


def acl(resource_type: ResourceType, name: str, operation: AclOperation, permission: AclPermission = AclPermission.DENY) -> Acl:
    return Acl(resource_type, name, PatternType.LITERAL, ME, "*", operation, permission)


@pytest.fixture
def bootstrap(tmp_path) -> Iterator[str]:
    with Broker(tmp_path, **AUTHORIZER) as broker:
        yield broker.bootstrap_servers


@pytest.fixture
def client(bootstrap: str) -> Iterator[Client]:
    with Client(bootstrap) as c:
        c.create_topic("t", 1, 1)
        yield c


def test_cluster_apis_are_refused_without_their_cluster_operation(client: Client) -> None:
    broker = client.any_broker()

    def describe_cluster_operations() -> int:
        return broker.request("describe_cluster", {"include_cluster_authorized_operations": True, "endpoint_type": 1, "include_fenced_brokers": False}
                              ).cluster_authorized_operations

    assert broker.request("describe_log_dirs", {"topics": None}).error_code == ErrorCode.none
    assert describe_cluster_operations() == operations_bitfield(CLUSTER_ACL_OPERATIONS)

    client.create_acls([acl(ResourceType.CLUSTER, CLUSTER_NAME, op)
                        for op in (AclOperation.DESCRIBE, AclOperation.ALTER, AclOperation.CLUSTER_ACTION)])

    log_dirs = broker.request("describe_log_dirs", {"topics": None})
    assert (log_dirs.error_code, log_dirs.results) == (ErrorCode.cluster_authorization_failed, ())
    # As Kafka: no operation at all is reported without DESCRIBE on the cluster.
    assert describe_cluster_operations() == 0

    elect = broker.request("elect_leaders", {"election_type": 0, "timeout": 5000,
                                             "topic_partitions": [{"topic": "t", "partitions": [0]}]})
    assert elect.error_code == ErrorCode.cluster_authorization_failed
    assert [(r.topic, p.partition_id, p.error_code) for r in elect.replica_election_results for p in r.partition_result] == [
        ("t", 0, ErrorCode.cluster_authorization_failed)]

    alter = broker.request("alter_partition_reassignments", {
        "timeout": 5000, "allow_replication_factor_change": True,
        "topics": [{"name": "t", "partitions": [{"partition_index": 0, "replicas": [1]}]}]})
    assert [(t.name, p.partition_index, p.error_code) for t in alter.responses for p in t.partitions] == [
        ("t", 0, ErrorCode.cluster_authorization_failed)]
    listed = broker.request("list_partition_reassignments", {"timeout": 5000, "topics": None})
    assert (listed.error_code, listed.topics) == (ErrorCode.cluster_authorization_failed, ())
    quorum = broker.request("describe_quorum", {"topics": [{"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]})
    assert quorum.error_code == ErrorCode.cluster_authorization_failed

    markers = broker.request("write_txn_markers", {"markers": [{
        "producer_id": 1, "producer_epoch": 0, "transaction_result": True, "coordinator_epoch": 0,
        "topics": [{"name": "t", "partition_indexes": [0]}]}]})
    assert [(m.producer_id, t.name, p.partition_index, p.error_code) for m in markers.markers for t in m.topics
            for p in t.partitions] == [(1, "t", 0, ErrorCode.cluster_authorization_failed)]
    # From v4 on, AddPartitionsToTxn is one broker verifying transactions with another.
    verify = broker.request("add_partitions_to_txn", {"transactions": [{
        "transactional_id": "x", "producer_id": 1, "producer_epoch": 0, "verify_only": True,
        "topics": [{"name": "t", "partitions": [0]}]}]})
    assert verify.error_code == ErrorCode.cluster_authorization_failed


def test_group_and_transaction_apis_answer_for_the_resources_refused(bootstrap: str, client: Client) -> None:
    client.create_topic("unreadable", 1, 1)
    client.commit_offsets("emptied", {("t", 0): 1, ("unreadable", 0): 1})
    hidden_txn, open_txn = f"hidden-{uuid.uuid4().hex[:6]}", f"open-{uuid.uuid4().hex[:6]}"
    # Made before the ACLs: a producer finds its coordinator only with DESCRIBE on its id.
    Producer({"bootstrap.servers": bootstrap, "transactional.id": hidden_txn}).init_transactions(20)
    client.create_topic("undescribable", 1, 1)
    ongoing = Producer({"bootstrap.servers": bootstrap, "transactional.id": open_txn})
    ongoing.init_transactions(20)
    ongoing.begin_transaction()
    for topic in ("t", "undescribable"):
        ongoing.produce(topic, b"v")
    assert ongoing.flush(20) == 0
    client.create_acls([
        acl(ResourceType.GROUP, "hidden", AclOperation.DESCRIBE),
        acl(ResourceType.GROUP, "undeletable", AclOperation.DELETE),
        acl(ResourceType.TOPIC, "unreadable", AclOperation.READ),
        acl(ResourceType.TRANSACTIONAL_ID, hidden_txn, AclOperation.DESCRIBE),
        acl(ResourceType.TOPIC, "undescribable", AclOperation.DESCRIBE),
    ])
    broker = client.any_broker()
    assert client.committed_offsets("emptied", ["t"]) == {("t", 0): 1}

    described = broker.request("consumer_group_describe", {"group_ids": ["hidden", "unknown"], "include_authorized_operations": False})
    assert {(g.group_id, g.error_code) for g in described.groups} == {
        ("hidden", ErrorCode.group_authorization_failed), ("unknown", ErrorCode.group_id_not_found)}

    def offset_delete(group: str) -> tuple[int, set[tuple[str, int, int]]]:
        response = broker.request("offset_delete", {"group_id": group, "topics": [
            {"name": name, "partitions": [{"partition_index": 0}]} for name in ("t", "unreadable")]})
        return response.error_code, {(t.name, p.partition_index, p.error_code) for t in response.topics for p in t.partitions}

    # As Kafka's ReplicaManager: no client cuts the group coordinator's log short, whatever its ACLs.
    cut = broker.request("delete_records", {"timeout": 5000, "topics": [
        {"name": "__consumer_offsets", "partitions": [{"partition_index": 0, "offset": -1}]}]})
    assert [(p.partition_index, p.error_code) for t in cut.topics for p in t.partitions] == [
        (0, ErrorCode.invalid_topic_exception)]

    assert offset_delete("undeletable") == (ErrorCode.group_authorization_failed, set())
    assert offset_delete("emptied") == (ErrorCode.none, {("t", 0, ErrorCode.none), ("unreadable", 0, ErrorCode.topic_authorization_failed)})
    assert client.committed_offsets("emptied", ["t"]) == {}

    transactions = broker.request("describe_transactions", {"transactional_ids": [hidden_txn, open_txn]})
    assert [(t.transactional_id, t.error_code) for t in transactions.transaction_states] == [
        (hidden_txn, ErrorCode.transactional_id_authorization_failed), (open_txn, ErrorCode.none)]
    # Of the transaction's partitions, only those of topics the principal may describe.
    assert [(t.topic, list(t.partitions)) for t in transactions.transaction_states[1].topics] == [("t", [0])]
    listed = broker.request("list_transactions", {"state_filters": [], "producer_id_filters": [], "duration_filter": -1})
    assert {t.transactional_id for t in listed.transaction_states} == {open_txn}
