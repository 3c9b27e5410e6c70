"""The versions Kafka 3.9 accepted and Kafka 4 removed (KIP-896), spoken over a bare
connection to a real kafkapy: each request built from the entities generated from Kafka
3.9's JSON, each answer read back at its version and checked for what Kafka 3.9 did.

Also the walk over every API and every version the broker advertises: a request of that
version reaches the real handler and the answer decodes at that version."""

from __future__ import annotations

import datetime
import time
import uuid

import pytest
from kio.schema.create_acls.v1 import request as create_acls_v1
from kio.schema.describe_acls.v1.request import DescribeAclsRequest as DescribeAclsRequestV1
from kio.schema.errors import ErrorCode
from kio.schema.metadata.v0 import request as metadata_v0
from kio.schema.metadata.v1 import request as metadata_v1
from kio.schema.types import BrokerId, GroupId, ProducerId, TopicName
from kio.static.primitive import i8, i16, i32, i32Timedelta, i64

from kafkapy.compat.raw import RawConnection
from kafkapy.compat.runner import SUPER_USER_OVERRIDES
from kafkapy.handlers.registry import APIS
from kafkapy.schema.legacy.create_acls.v0 import request as create_acls_v0
from kafkapy.schema.legacy.create_topics.v0 import request as create_topics_v0
from kafkapy.schema.legacy.create_topics.v1 import request as create_topics_v1
from kafkapy.schema.legacy.delete_acls.v0 import request as delete_acls_v0
from kafkapy.schema.legacy.delete_topics.v0.request import DeleteTopicsRequest
from kafkapy.schema.legacy.describe_acls.v0.request import DescribeAclsRequest
from kafkapy.schema.legacy.describe_configs.v0 import request as describe_configs_v0
from kafkapy.schema.legacy.describe_log_dirs.v0.request import DescribeLogDirsRequest
from kafkapy.schema.legacy.list_offsets.v0 import request as list_offsets_v0
from kafkapy.schema.legacy.offset_commit.v0 import request as offset_commit_v0
from kafkapy.schema.legacy.offset_commit.v1 import request as offset_commit_v1
from kafkapy.schema.legacy.offset_fetch.v0 import request as offset_fetch_v0
from kafkapy.schema.legacy.offset_for_leader_epoch.v0 import request as epoch_v0
from kafkapy.schema.legacy.offset_for_leader_epoch.v1 import request as epoch_v1
from kafkapy.schema.legacy.write_txn_markers.v0 import request as write_txn_markers_v0
from kafkapy.testing.process import BrokerProcess
from kafkapy.wire.build import error_response
from kafkapy.wire.protocol import request_type
from waiting import until

LATEST, EARLIEST = -1, -2
RESOURCE_TOPIC = 2
TIMEOUT_S = 30
TIMEOUT = i32Timedelta.parse(datetime.timedelta(seconds=TIMEOUT_S))


def _create_topic_v0(connection: RawConnection, name: str, partitions: int = 1) -> ErrorCode:
    response = connection.request(create_topics_v0.CreateTopicsRequest(topics=(create_topics_v0.CreatableTopic(
        name=TopicName(name), num_partitions=i32(partitions), replication_factor=i16(1), assignments=(), configs=()),)))
    (result,) = response.topics
    assert result.name == name
    return result.error_code


def _produce(broker, topic: str, values: list[bytes]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, api_version=(2, 0))
    try:
        for value in values:
            producer.send(topic, value, partition=0)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


def _list_offsets_v0(connection: RawConnection, topic: str, timestamp: int, max_num_offsets: int, replica_id: int = -1):
    response = connection.request(list_offsets_v0.ListOffsetsRequest(replica_id=BrokerId(replica_id), topics=(
        list_offsets_v0.ListOffsetsTopic(name=TopicName(topic), partitions=(list_offsets_v0.ListOffsetsPartition(
            partition_index=i32(0), timestamp=i64(timestamp), max_num_offsets=i32(max_num_offsets)),)),)))
    (result,) = response.topics
    (partition,) = result.partitions
    return partition


def test_create_topics_v0_and_v1_and_delete_topics_v0(broker, topic_name):
    with RawConnection(broker.port) as connection:
        assert _create_topic_v0(connection, topic_name, partitions=3) == ErrorCode.none
        assert _create_topic_v0(connection, topic_name) == ErrorCode.topic_already_exists
        # v1: validate_only creates nothing, and the answer carries a message.
        other = topic_name + "-v1"
        validated = connection.request(create_topics_v1.CreateTopicsRequest(topics=(create_topics_v1.CreatableTopic(
            name=TopicName(other), num_partitions=i32(2), replication_factor=i16(1), assignments=(), configs=()),),
            timeout=TIMEOUT, validate_only=True))
        assert [(t.name, t.error_code) for t in validated.topics] == [(other, ErrorCode.none)]
        assert _create_topic_v0(connection, other) == ErrorCode.none  # validate_only left the name free
        bad = connection.request(create_topics_v1.CreateTopicsRequest(topics=(create_topics_v1.CreatableTopic(
            name=TopicName("bad/name"), num_partitions=i32(1), replication_factor=i16(1), assignments=(), configs=()),),
            validate_only=False))
        assert bad.topics[0].error_code == ErrorCode.invalid_topic_exception and bad.topics[0].error_message
        deleted = connection.request(DeleteTopicsRequest(topic_names=(TopicName(topic_name), TopicName(other), TopicName("no-such-topic")), timeout=TIMEOUT))
        assert {r.name: r.error_code for r in deleted.responses} == {
            topic_name: ErrorCode.none, other: ErrorCode.none, "no-such-topic": ErrorCode.unknown_topic_or_partition}


def test_list_offsets_v0_answers_offsets_before_a_time(broker, topic_name):
    with RawConnection(broker.port) as connection:
        assert _create_topic_v0(connection, topic_name) == ErrorCode.none
        empty = _list_offsets_v0(connection, topic_name, LATEST, 10)
        # An empty log: its one segment is empty, so its base offset alone is listed.
        assert (empty.error_code, empty.old_style_offsets) == (ErrorCode.none, (0,))
        _produce(broker, topic_name, [b"a", b"b", b"c"])
        latest = _list_offsets_v0(connection, topic_name, LATEST, 10)
        assert latest.old_style_offsets == (3, 0)  # the log end, then the segment's first offset
        assert _list_offsets_v0(connection, topic_name, LATEST, 1).old_style_offsets == (3,)
        assert _list_offsets_v0(connection, topic_name, EARLIEST, 10).old_style_offsets == (0,)
        # Before the segment was last written: nothing is that old.
        assert _list_offsets_v0(connection, topic_name, 1, 10).old_style_offsets == ()
        assert _list_offsets_v0(connection, topic_name, 2**62, 10).old_style_offsets == (3, 0)
        assert _list_offsets_v0(connection, topic_name, -3, 10).error_code == ErrorCode.unsupported_version
        assert _list_offsets_v0(connection, "no-such-topic", LATEST, 1).error_code == ErrorCode.unknown_topic_or_partition


def test_offset_commit_v0_v1_and_offset_fetch_v0(broker, topic_name):
    group = f"g-{uuid.uuid4().hex[:8]}"
    with RawConnection(broker.port) as connection:
        assert _create_topic_v0(connection, topic_name, partitions=2) == ErrorCode.none
        committed = connection.request(offset_commit_v0.OffsetCommitRequest(group_id=GroupId(group), topics=(
            offset_commit_v0.OffsetCommitRequestTopic(name=TopicName(topic_name), partitions=(
                offset_commit_v0.OffsetCommitRequestPartition(partition_index=i32(0), committed_offset=i64(5), committed_metadata="v0"),
                offset_commit_v0.OffsetCommitRequestPartition(partition_index=i32(7), committed_offset=i64(1), committed_metadata=None),
            )),)))
        assert {(p.partition_index, p.error_code) for t in committed.topics for p in t.partitions} == {
            (0, ErrorCode.none), (7, ErrorCode.unknown_topic_or_partition)}
        # v1 names the commit's time, and commits outside group management with generation -1.
        committed = connection.request(offset_commit_v1.OffsetCommitRequest(
            group_id=GroupId(group), generation_id_or_member_epoch=i32(-1), member_id="", topics=(
                offset_commit_v1.OffsetCommitRequestTopic(name=TopicName(topic_name), partitions=(
                    offset_commit_v1.OffsetCommitRequestPartition(partition_index=i32(1), committed_offset=i64(9),
                                                                  commit_timestamp=i64(1_600_000_000_000), committed_metadata="v1"),)),)))
        assert [p.error_code for t in committed.topics for p in t.partitions] == [ErrorCode.none]
        fetched = connection.request(offset_fetch_v0.OffsetFetchRequest(group_id=GroupId(group), topics=(
            offset_fetch_v0.OffsetFetchRequestTopic(name=TopicName(topic_name), partition_indexes=(i32(0), i32(1))),)))
        assert {(p.partition_index, p.committed_offset, p.metadata, p.error_code) for t in fetched.topics for p in t.partitions} == {
            (0, 5, "v0", ErrorCode.none), (1, 9, "v1", ErrorCode.none)}
        # The empty group id is served, for old clients' sake, as Kafka does.
        empty_group = connection.request(offset_fetch_v0.OffsetFetchRequest(group_id=GroupId(""), topics=(
            offset_fetch_v0.OffsetFetchRequestTopic(name=TopicName(topic_name), partition_indexes=(i32(0),)),)))
        assert [(p.committed_offset, p.error_code) for t in empty_group.topics for p in t.partitions] == [(-1, ErrorCode.none)]


def test_offset_for_leader_epoch_v0_v1_describe_configs_v0_log_dirs_v0_acls_v0(broker, topic_name):
    with RawConnection(broker.port) as connection:
        assert _create_topic_v0(connection, topic_name) == ErrorCode.none
        _produce(broker, topic_name, [b"x", b"y"])
        for module in (epoch_v0, epoch_v1):
            response = connection.request(module.OffsetForLeaderEpochRequest(topics=(module.OffsetForLeaderTopic(
                topic=TopicName(topic_name), partitions=(module.OffsetForLeaderPartition(partition=i32(0), leader_epoch=i32(0)),)),)))
            (partition,) = response.topics[0].partitions
            assert (partition.error_code, partition.end_offset) == (ErrorCode.none, 2)
            if module is epoch_v1:
                assert partition.leader_epoch == 0
        configs = connection.request(describe_configs_v0.DescribeConfigsRequest(resources=(describe_configs_v0.DescribeConfigsResource(
            resource_type=i8(RESOURCE_TOPIC), resource_name=topic_name, configuration_keys=("cleanup.policy", "retention.ms")),)))
        (result,) = configs.results
        assert result.error_code == ErrorCode.none
        assert {(c.name, c.value, c.is_default) for c in result.configs} == {
            ("cleanup.policy", "delete", True), ("retention.ms", "604800000", True)}
        log_dirs = connection.request(DescribeLogDirsRequest(topics=None))
        listed = {(t.name, p.partition_index) for r in log_dirs.results for t in r.topics for p in t.partitions}
        assert (topic_name, 0) in listed
        acls = connection.request(DescribeAclsRequest(resource_type_filter=i8(1), resource_name_filter=None, principal_filter=None,
                                                      host_filter=None, operation=i8(1), permission_type=i8(1)))
        assert acls.error_code == ErrorCode.security_disabled  # no authorizer configured, as Kafka answers


ADVERTISED = [(key, version) for key, api in sorted(APIS.items()) for version in range(api.min_version, api.max_version + 1)]


@pytest.fixture(scope="module")
def walk_connection(broker):
    with RawConnection(broker.port) as connection:
        yield connection


@pytest.mark.parametrize(("api_key", "version"), ADVERTISED, ids=[f"{k}-v{v}" for k, v in ADVERTISED])
def test_every_advertised_version_is_answered_at_that_version(walk_connection, api_key, version):
    # The emptiest request of that version (no topics, no groups, ids -1): it reaches the
    # handler, and the answer must encode and decode at the version asked for.
    # (Produce's acks is -1 too: an answer is wanted.)
    request = error_response(request_type(api_key, version), ErrorCode.none)
    response = walk_connection.request(request)
    assert type(response).__version__ == version


# Kafka's numbering of ACL parts (AclOperation, AclPermissionType, PatternType).
OPERATION_READ, OPERATION_WRITE, PERMISSION_ALLOW, PATTERN_LITERAL, PATTERN_PREFIXED = 3, 4, 3, 3, 4


@pytest.fixture(scope="module")
def authorizing_broker(tmp_path_factory):
    """A kafkapy with Kafka's authorizer, whose unauthenticated clients are super users."""
    with BrokerProcess(tmp_path_factory.mktemp("authorizing"), SUPER_USER_OVERRIDES) as process:
        yield process


def _describe_acls_v0(connection: RawConnection, resource_name: str) -> set[tuple[str, str, int, int]]:
    response = connection.request(DescribeAclsRequest(
        resource_type_filter=i8(RESOURCE_TOPIC), resource_name_filter=resource_name, principal_filter=None,
        host_filter=None, operation=i8(1), permission_type=i8(1)))  # 1: ANY
    assert response.error_code == ErrorCode.none
    return {(acl.principal, acl.host, acl.operation, acl.permission_type)
            for resource in response.resources for acl in resource.acls}


def test_create_acls_v0_and_delete_acls_v0_know_only_literal_patterns(authorizing_broker, topic_name):
    with RawConnection(authorizing_broker.port) as connection:
        created = connection.request(create_acls_v0.CreateAclsRequest(creations=(create_acls_v0.AclCreation(
            resource_type=i8(RESOURCE_TOPIC), resource_name=topic_name, principal="User:alice", host="*",
            operation=i8(OPERATION_READ), permission_type=i8(PERMISSION_ALLOW)),)))
        assert [(r.error_code, r.error_message) for r in created.results] == [(ErrorCode.none, None)]
        # A PREFIXED ACL on the same name, as v1 can create: v0's filters default to LITERAL
        # patterns (as Kafka 3.9 reads a v0 request), so they neither list nor delete it.
        prefixed = connection.request(create_acls_v1.CreateAclsRequest(creations=(create_acls_v1.AclCreation(
            resource_type=i8(RESOURCE_TOPIC), resource_name=topic_name, resource_pattern_type=i8(PATTERN_PREFIXED),
            principal="User:bob", host="*", operation=i8(OPERATION_WRITE), permission_type=i8(PERMISSION_ALLOW)),)))
        assert [r.error_code for r in prefixed.results] == [ErrorCode.none]
        until(lambda: _describe_acls_v0(connection, topic_name), TIMEOUT_S, "the v0 ACL listed")
        assert _describe_acls_v0(connection, topic_name) == {("User:alice", "*", OPERATION_READ, PERMISSION_ALLOW)}

        deleted = connection.request(delete_acls_v0.DeleteAclsRequest(filters=(delete_acls_v0.DeleteAclsFilter(
            resource_type_filter=i8(RESOURCE_TOPIC), resource_name_filter=topic_name, principal_filter=None,
            host_filter=None, operation=i8(1), permission_type=i8(1)),)))
        (result,) = deleted.filter_results
        assert result.error_code == ErrorCode.none
        assert [(a.error_code, a.resource_type, a.resource_name, a.principal, a.host, a.operation, a.permission_type)
                for a in result.matching_acls] == [
            (ErrorCode.none, RESOURCE_TOPIC, topic_name, "User:alice", "*", OPERATION_READ, PERMISSION_ALLOW)]
        until(lambda: not _describe_acls_v0(connection, topic_name), TIMEOUT_S, "the v0 ACL gone")
        remaining = connection.request(DescribeAclsRequestV1(
            resource_type_filter=i8(RESOURCE_TOPIC), resource_name_filter=topic_name, pattern_type_filter=i8(PATTERN_PREFIXED),
            principal_filter=None, host_filter=None, operation=i8(1), permission_type=i8(1)))
        assert [(r.pattern_type, [a.principal for a in r.acls]) for r in remaining.resources] == [(PATTERN_PREFIXED, ["User:bob"])]


def _write_marker_v0(connection: RawConnection, topic: str, partitions: tuple[int, ...], commit: bool):
    response = connection.request(write_txn_markers_v0.WriteTxnMarkersRequest(markers=(write_txn_markers_v0.WritableTxnMarker(
        producer_id=ProducerId(4242), producer_epoch=i16(0), transaction_result=commit, coordinator_epoch=i32(0),
        topics=(write_txn_markers_v0.WritableTxnMarkerTopic(name=TopicName(topic), partition_indexes=tuple(map(i32, partitions))),)),)))
    (marker,) = response.markers
    assert marker.producer_id == 4242
    return {(t.name, p.partition_index): p.error_code for t in marker.topics for p in t.partitions}


def test_write_txn_markers_v0_appends_a_marker_per_partition(broker, topic_name):
    with RawConnection(broker.port) as connection:
        assert _create_topic_v0(connection, topic_name, partitions=2) == ErrorCode.none
        assert _write_marker_v0(connection, topic_name, (0, 1, 5), commit=True) == {
            (topic_name, 0): ErrorCode.none, (topic_name, 1): ErrorCode.none,
            (topic_name, 5): ErrorCode.unknown_topic_or_partition}
        # Each control batch takes an offset: the log end of both partitions is 1.
        assert _list_offsets_v0(connection, topic_name, LATEST, 1).old_style_offsets == (1,)
        assert _write_marker_v0(connection, "no-such-topic", (0,), commit=False) == {
            ("no-such-topic", 0): ErrorCode.unknown_topic_or_partition}


def _metadata_v0(connection: RawConnection, topics: tuple[str, ...]) -> dict[str, ErrorCode]:
    response = connection.request(metadata_v0.MetadataRequest(topics=tuple(
        metadata_v0.MetadataRequestTopic(name=TopicName(t)) for t in topics)))
    assert [(b.host, b.port) for b in response.brokers] == [("127.0.0.1", connection.sock.getpeername()[1])]
    return {t.name: t.error_code for t in response.topics}


def test_metadata_v0_empty_list_means_every_topic_and_naming_one_creates_it(broker, topic_name):
    with RawConnection(broker.port) as connection:
        assert _create_topic_v0(connection, topic_name) == ErrorCode.none
        until(lambda: _metadata_v0(connection, ()).get(topic_name) == ErrorCode.none, TIMEOUT_S, "the topic listed by v0")
        # From v1 on the empty list means no topic (null means all).
        newer = connection.request(metadata_v1.MetadataRequest(topics=()))
        assert newer.topics == ()
        # v0-v3 have no allow_auto_topic_creation: naming a topic creates it (auto.create.topics.enable).
        named = f"{topic_name}-auto"
        assert _metadata_v0(connection, (named,))[named] in (ErrorCode.none, ErrorCode.leader_not_available)
        until(lambda: _metadata_v0(connection, (named,))[named] == ErrorCode.none, TIMEOUT_S, "the named topic created")


@pytest.fixture(scope="module")
def expiring_broker(tmp_path_factory):
    """A kafkapy that keeps an empty group's offsets for Kafka's shortest retention, a
    minute, and looks for expired ones every 100 ms."""
    overrides = {"offsets.retention.minutes": 1, "offsets.retention.check.interval.ms": 100}
    with BrokerProcess(tmp_path_factory.mktemp("expiring"), overrides) as process:
        yield process


def _fetch_offsets_v0(connection: RawConnection, group: str, topic: str, partitions: tuple[int, ...]) -> dict[int, int]:
    fetched = connection.request(offset_fetch_v0.OffsetFetchRequest(group_id=GroupId(group), topics=(
        offset_fetch_v0.OffsetFetchRequestTopic(name=TopicName(topic), partition_indexes=tuple(map(i32, partitions))),)))
    return {p.partition_index: p.committed_offset for t in fetched.topics for p in t.partitions}


def test_offset_commit_v1_commit_timestamp_is_when_the_offset_expires_from(expiring_broker, topic_name):
    """v1's commit timestamp is the commit's time as Kafka 3.9 keeps it (-1: now): an
    offset of an empty group expires offsets.retention.minutes after it."""
    group = f"g-{uuid.uuid4().hex[:8]}"
    two_minutes_ago = int(time.time() * 1000) - 120_000
    with RawConnection(expiring_broker.port) as connection:
        assert _create_topic_v0(connection, topic_name, partitions=2) == ErrorCode.none
        committed = connection.request(offset_commit_v1.OffsetCommitRequest(
            group_id=GroupId(group), generation_id_or_member_epoch=i32(-1), member_id="", topics=(
                offset_commit_v1.OffsetCommitRequestTopic(name=TopicName(topic_name), partitions=(
                    offset_commit_v1.OffsetCommitRequestPartition(partition_index=i32(0), committed_offset=i64(7),
                                                                  commit_timestamp=i64(two_minutes_ago), committed_metadata=""),
                    offset_commit_v1.OffsetCommitRequestPartition(partition_index=i32(1), committed_offset=i64(9),
                                                                  commit_timestamp=i64(-1), committed_metadata=""),
                )),)))
        assert [p.error_code for t in committed.topics for p in t.partitions] == [ErrorCode.none, ErrorCode.none]
        # Committed two minutes ago: past the retention at the next check. Committed now: kept.
        until(lambda: _fetch_offsets_v0(connection, group, topic_name, (0, 1)) == {0: -1, 1: 9}, TIMEOUT_S,
              "the offset committed two minutes ago expired, the one committed now kept",
              lambda: _fetch_offsets_v0(connection, group, topic_name, (0, 1)))
