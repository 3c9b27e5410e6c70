"""The versions Kafka 3.9 accepted and Kafka 4 removed (KIP-896), spoken over a bare
connection to a real kafkapy: each request built from the entities generated from Kafka
3.9's JSON, each answer read back at its version and checked for what Kafka 3.9 did.

Also the walk over every API and every version the broker advertises: a request of that
version reaches the real handler and the answer decodes at that version."""

from __future__ import annotations

import datetime
import uuid

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.types import BrokerId, GroupId, TopicName
from kio.static.primitive import i8, i16, i32, i32Timedelta, i64

from kafkapy.compat.raw import RawConnection
from kafkapy.handlers.registry import APIS
from kafkapy.schema.legacy.create_topics.v0 import request as create_topics_v0
from kafkapy.schema.legacy.create_topics.v1 import request as create_topics_v1
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
from kafkapy.wire.build import error_response
from kafkapy.wire.protocol import request_type

LATEST, EARLIEST = -1, -2
RESOURCE_TOPIC = 2
TIMEOUT = i32Timedelta.parse(datetime.timedelta(seconds=30))


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
