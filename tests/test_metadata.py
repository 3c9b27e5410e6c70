import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode

from kafkapy.config import BrokerConfig
from kafkapy.metadata.controller import Controller, NewTopic
from kafkapy.metadata.image import BrokerImage, Endpoint, MetadataImage, PartitionImage
from kafkapy.metadata.records import (
    RECORD_TYPES,
    RESOURCE_BROKER,
    RESOURCE_TOPIC,
    AccessControlEntryRecord,
    BrokerEndpoint,
    BrokerFeature,
    ConfigRecord,
    FeatureLevelRecord,
    NoOpRecord,
    PartitionChangeRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    RemoveAccessControlEntryRecord,
    RemoveTopicRecord,
    RemoveUserScramCredentialRecord,
    TopicRecord,
    UnknownMetadataRecord,
    UserScramCredentialRecord,
    decode_record,
    encode_record,
)

ZERO_ID = uuid.UUID(int=0)


def register(node_id: int, *, fenced: bool = False, epoch: int = 0, port: int | None = None, rack: str | None = None) -> RegisterBrokerRecord:
    return RegisterBrokerRecord(
        broker_id=node_id,
        incarnation_id=uuid.UUID(int=node_id),
        broker_epoch=epoch,
        end_points=(BrokerEndpoint(name="PLAINTEXT", host=f"host{node_id}", port=port or 9090 + node_id, security_protocol=0),),
        features=(),
        rack=rack,
        fenced=fenced,
    )


CLUSTER = MetadataImage().apply([register(1), register(2), register(3)], 2)


def create(image: MetadataImage, *topics: NewTopic, validate_only: bool = False, config: BrokerConfig | None = None):
    return Controller(config or BrokerConfig()).create_topics(image, list(topics), validate_only)


def with_topics(image: MetadataImage, *names: str) -> MetadataImage:
    results, records = create(image, *(NewTopic(n, 2, 1) for n in names))
    assert all(r.error == ErrorCode.none for r in results)
    return image.apply(records, image.offset + len(records))


# The image


def test_register_broker_and_register_again():
    image = MetadataImage().apply([register(1, fenced=True, rack="r1")], 0)
    assert image.brokers[1] == BrokerImage(1, (Endpoint("PLAINTEXT", "host1", 9091),), "r1", True, 0, uuid.UUID(int=1))
    image = image.apply([register(1, epoch=1, port=9999)], 1)
    assert image.brokers[1] == BrokerImage(1, (Endpoint("PLAINTEXT", "host1", 9999),), None, False, 1, uuid.UUID(int=1))
    assert image.offset == 1


TOPIC_ID = uuid.UUID(int=77)
TOPIC_WITH_PARTITION = CLUSTER.apply(
    [
        TopicRecord(name="orders", topic_id=TOPIC_ID),
        PartitionRecord(partition_id=0, topic_id=TOPIC_ID, replicas=(1, 2, 3), isr=(1, 2), leader=1, leader_epoch=4, partition_epoch=6),
    ],
    4,
)


def test_topic_and_partition_records():
    image = CLUSTER.apply([TopicRecord(name="orders", topic_id=TOPIC_ID)], 3)
    assert image.topics["orders"].partitions == {}
    assert image.topic_by_id(TOPIC_ID).name == "orders"
    assert image.topic_by_id(uuid.UUID(int=5)) is None
    assert TOPIC_WITH_PARTITION.topics["orders"].partitions[0] == PartitionImage(0, (1, 2, 3), (1, 2), 1, 4, 6)


def changed(**fields) -> PartitionImage:
    image = TOPIC_WITH_PARTITION.apply([PartitionChangeRecord(partition_id=0, topic_id=TOPIC_ID, **fields)], 5)
    return image.topics["orders"].partitions[0]


def test_partition_change_of_isr_keeps_the_leader_epoch():
    assert changed(isr=(1, 2, 3)) == PartitionImage(0, (1, 2, 3), (1, 2, 3), 1, 4, 7)


def test_partition_change_of_leader_bumps_the_leader_epoch():
    assert changed(leader=2, isr=(2,)) == PartitionImage(0, (1, 2, 3), (2,), 2, 5, 7)
    assert changed(leader=-1) == PartitionImage(0, (1, 2, 3), (1, 2), -1, 5, 7)


def test_partition_change_naming_the_same_leader_still_bumps_the_leader_epoch():
    # Kafka's PartitionRegistration.merge: any leader other than -2 (no change) is a new
    # leadership, which the controller uses to fence a leader's old epoch.
    assert changed(leader=1) == PartitionImage(0, (1, 2, 3), (1, 2), 1, 5, 7)


def test_partition_change_of_replicas():
    assert changed(replicas=(3, 1)) == PartitionImage(0, (3, 1), (1, 2), 1, 4, 7)


def test_config_records_set_overwrite_and_remove():
    image = TOPIC_WITH_PARTITION.apply(
        [
            ConfigRecord(resource_type=RESOURCE_TOPIC, resource_name="orders", name="retention.ms", value="1000"),
            ConfigRecord(resource_type=RESOURCE_TOPIC, resource_name="orders", name="cleanup.policy", value="compact"),
            ConfigRecord(resource_type=RESOURCE_TOPIC, resource_name="orders", name="retention.ms", value="2000"),
            ConfigRecord(resource_type=RESOURCE_BROKER, resource_name="1", name="log.retention.ms", value="5"),
        ],
        5,
    )
    assert image.topic_configs("orders") == {"retention.ms": "2000", "cleanup.policy": "compact"}
    assert image.configs[(RESOURCE_BROKER, "1")] == {"log.retention.ms": "5"}
    image = image.apply([ConfigRecord(resource_type=RESOURCE_TOPIC, resource_name="orders", name="retention.ms", value=None)], 6)
    assert image.topic_configs("orders") == {"cleanup.policy": "compact"}


def test_remove_topic_takes_its_partitions_and_configs():
    other = uuid.UUID(int=88)
    image = TOPIC_WITH_PARTITION.apply(
        [
            TopicRecord(name="payments", topic_id=other),
            ConfigRecord(resource_type=RESOURCE_TOPIC, resource_name="orders", name="retention.ms", value="1"),
            RemoveTopicRecord(topic_id=TOPIC_ID),
        ],
        7,
    )
    assert set(image.topics) == {"payments"}
    assert image.topic_by_id(TOPIC_ID) is None
    assert image.topic_configs("orders") == {}
    assert image.topic_by_id(other).name == "payments"


def test_feature_level_producer_ids_and_no_op():
    image = CLUSTER.apply(
        [
            FeatureLevelRecord(name="metadata.version", feature_level=21),
            ProducerIdsRecord(broker_id=1, broker_epoch=0, next_producer_id=1000),
            NoOpRecord(),
        ],
        9,
    )
    assert image.features == {"metadata.version": 21}
    assert image.next_producer_id == 1000
    no_op = image.apply([NoOpRecord()], 10)
    assert (no_op.offset, no_op.brokers, no_op.topics, no_op.features, no_op.next_producer_id) == (
        10, image.brokers, image.topics, image.features, image.next_producer_id,
    )


def test_apply_leaves_the_old_image_as_it_was():
    before = TOPIC_WITH_PARTITION
    after = before.apply([PartitionChangeRecord(partition_id=0, topic_id=TOPIC_ID, leader=3), RemoveTopicRecord(topic_id=TOPIC_ID)], 9)
    assert "orders" not in after.topics
    assert before.topics["orders"].partitions[0].leader == 1
    assert before.offset == 4


# Creating topics


def test_create_topic_records():
    [result], records = create(CLUSTER, NewTopic("orders", 6, 2, configs={"cleanup.policy": "compact"}))
    assert (result.error, result.num_partitions, result.replication_factor) == (ErrorCode.none, 6, 2)
    assert result.topic_id != ZERO_ID
    assert result.configs == {"cleanup.policy": ["compact"]}
    assert records[:2] == [
        TopicRecord(name="orders", topic_id=result.topic_id),
        ConfigRecord(resource_type=RESOURCE_TOPIC, resource_name="orders", name="cleanup.policy", value="compact"),
    ]
    partitions = records[2:]
    assert [p.partition_id for p in partitions] == list(range(6))
    for p in partitions:
        assert p.topic_id == result.topic_id
        assert len(set(p.replicas)) == 2 and set(p.replicas) <= {1, 2, 3}
        assert (p.isr, p.leader, p.leader_epoch, p.partition_epoch) == (p.replicas, p.replicas[0], 0, 0)
    assert {p.leader for p in partitions} == {1, 2, 3}  # leadership spread over the brokers

    image = CLUSTER.apply(records, 3)
    assert len(image.topics["orders"].partitions) == 6
    assert image.topic_configs("orders") == {"cleanup.policy": "compact"}


def test_create_uses_the_broker_defaults():
    [result], records = create(CLUSTER, NewTopic("orders"), config=BrokerConfig({"num.partitions": "3", "default.replication.factor": "3"}))
    assert (result.num_partitions, result.replication_factor) == (3, 3)
    assert [len(p.replicas) for p in records[1:]] == [3, 3, 3]


def test_create_places_replicas_on_unfenced_brokers_only():
    image = CLUSTER.apply([register(2, fenced=True, epoch=1)], 3)
    [result], records = create(image, NewTopic("orders", 4, 2))
    assert result.error == ErrorCode.none
    assert all(set(p.replicas) == {1, 3} for p in records[1:])
    [result], _ = create(image, NewTopic("orders", 1, 3))
    assert result.error == ErrorCode.invalid_replication_factor


@pytest.mark.parametrize("name", ["", ".", "..", "a" * 250, "has space", "slash/ed", "ünïcode", "star*"])
def test_invalid_topic_names(name):
    [result], records = create(CLUSTER, NewTopic(name, 1, 1))
    assert (result.name, result.error, records) == (name, ErrorCode.invalid_topic_exception, [])
    assert result.message


@pytest.mark.parametrize("name", ["a" * 249, "a.b-c_D9", "...", "_"])
def test_valid_topic_names(name):
    [result], _ = create(CLUSTER, NewTopic(name, 1, 1))
    assert result.error == ErrorCode.none


def test_existing_topic_is_topic_already_exists():
    [result], records = create(with_topics(CLUSTER, "orders"), NewTopic("orders", 1, 1))
    assert (result.error, records) == (ErrorCode.topic_already_exists, [])


@pytest.mark.parametrize(("existing", "new"), [("a.b", "a_b"), ("a_b", "a.b")])
def test_names_colliding_on_dot_and_underscore(existing, new):
    [result], records = create(with_topics(CLUSTER, existing), NewTopic(new, 1, 1))
    assert (result.error, records) == (ErrorCode.invalid_topic_exception, [])
    assert existing in result.message


def test_cluster_metadata_topic_cannot_be_created():
    [result], records = create(CLUSTER, NewTopic("__cluster_metadata", 1, 1))
    assert (result.error, records) == (ErrorCode.invalid_request, [])


@pytest.mark.parametrize(
    ("partitions", "factor", "error"),
    [
        (0, 1, ErrorCode.invalid_partitions),
        (-2, 1, ErrorCode.invalid_partitions),
        (1, 0, ErrorCode.invalid_replication_factor),
        (1, -2, ErrorCode.invalid_replication_factor),
        (1, 4, ErrorCode.invalid_replication_factor),
        # Kafka checks the replication factor before the partition count.
        (0, 0, ErrorCode.invalid_replication_factor),
    ],
)
def test_bad_partition_counts_and_replication_factors(partitions, factor, error):
    [result], records = create(CLUSTER, NewTopic("orders", partitions, factor))
    assert (result.error, records) == (error, [])


@pytest.mark.parametrize(
    "configs",
    [{"retention.weeks": "1"}, {"cleanup.policy": "shred"}, {"segment.bytes": "10"}, {"retention.ms": "soon"}, {"retention.ms": None}],
)
def test_bad_configs_are_invalid_config(configs):
    [result], records = create(CLUSTER, NewTopic("orders", 1, 1, configs=configs))
    assert (result.error, records) == (ErrorCode.invalid_config, [])


def test_configs_are_checked_before_the_partition_count():
    [result], _ = create(CLUSTER, NewTopic("orders", 0, 1, configs={"cleanup.policy": "shred"}))
    assert result.error == ErrorCode.invalid_config


def test_validate_only_gives_results_and_no_records():
    results, records = create(CLUSTER, NewTopic("orders", 3, 2), NewTopic("bad name"), validate_only=True)
    assert [(r.name, r.error, r.num_partitions) for r in results] == [
        ("orders", ErrorCode.none, 3),
        ("bad name", ErrorCode.invalid_topic_exception, -1),
    ]
    assert records == []


def test_duplicate_names_in_one_request_are_invalid_request():
    results, records = create(CLUSTER, NewTopic("x", 1, 1), NewTopic("y", 1, 1), NewTopic("x", 2, 1))
    # As Kafka: one result per duplicated name, and the other topics go ahead.
    assert sorted((r.name, r.error) for r in results) == [("x", ErrorCode.invalid_request), ("y", ErrorCode.none)]
    assert [r.name for r in records if isinstance(r, TopicRecord)] == ["y"]


def test_one_bad_topic_does_not_stop_the_others():
    results, records = create(CLUSTER, NewTopic("good", 1, 1), NewTopic("bad", 0, 1), NewTopic("also-good", 2, 1))
    assert [r.error for r in results] == [ErrorCode.none, ErrorCode.invalid_partitions, ErrorCode.none]
    assert [r.name for r in records if isinstance(r, TopicRecord)] == ["good", "also-good"]


def test_manual_assignment():
    [result], records = create(CLUSTER, NewTopic("orders", assignments={0: [3, 1], 1: [2, 3]}))
    assert (result.error, result.num_partitions, result.replication_factor) == (ErrorCode.none, 2, 2)
    assert [(p.replicas, p.leader) for p in records[1:]] == [((3, 1), 3), ((2, 3), 2)]


@pytest.mark.parametrize(
    ("topic", "error"),
    [
        (NewTopic("t", 2, -1, assignments={0: [1]}), ErrorCode.invalid_request),
        (NewTopic("t", -1, 1, assignments={0: [1]}), ErrorCode.invalid_request),
        (NewTopic("t", assignments={0: [1], 2: [2]}), ErrorCode.invalid_replica_assignment),
        (NewTopic("t", assignments={0: [1, 9]}), ErrorCode.invalid_replica_assignment),
        (NewTopic("t", assignments={0: [1, 1]}), ErrorCode.invalid_replica_assignment),
        (NewTopic("t", assignments={0: [1, 2], 1: [3]}), ErrorCode.invalid_replica_assignment),
    ],
    ids=["with-partitions", "with-factor", "gap", "unknown-broker", "repeated-broker", "uneven-factor"],
)
def test_bad_manual_assignments(topic, error):
    [result], records = create(CLUSTER, topic)
    assert (result.error, records) == (error, [])


# Deleting topics


@pytest.fixture
def two_topics() -> MetadataImage:
    return with_topics(CLUSTER, "a", "b")


def delete(image: MetadataImage, names=(), ids=(), config: BrokerConfig | None = None):
    return Controller(config or BrokerConfig()).delete_topics(image, list(names), list(ids))


def test_delete_by_name(two_topics):
    a = two_topics.topics["a"]
    [result], records = delete(two_topics, names=["a"])
    assert (result.name, result.error, result.topic_id) == ("a", ErrorCode.none, a.topic_id)
    assert records == [RemoveTopicRecord(topic_id=a.topic_id)]
    assert set(two_topics.apply(records, 10).topics) == {"b"}


def test_delete_by_id(two_topics):
    b = two_topics.topics["b"]
    [result], records = delete(two_topics, ids=[b.topic_id])
    assert (result.name, result.error, result.topic_id) == ("b", ErrorCode.none, b.topic_id)
    assert records == [RemoveTopicRecord(topic_id=b.topic_id)]


def test_delete_unknown_names_and_ids(two_topics):
    unknown_id = uuid.UUID(int=12345)
    results, records = delete(two_topics, names=["nope", "a"], ids=[unknown_id])
    assert sorted((r.name or "", r.error) for r in results) == [
        ("", ErrorCode.unknown_topic_id),
        ("a", ErrorCode.none),
        ("nope", ErrorCode.unknown_topic_or_partition),
    ]
    assert [r.topic_id for r in results if r.error == ErrorCode.unknown_topic_id] == [unknown_id]
    assert records == [RemoveTopicRecord(topic_id=two_topics.topics["a"].topic_id)]


def test_delete_duplicates_are_invalid_request_once_each(two_topics):
    b = two_topics.topics["b"]
    results, records = delete(two_topics, names=["a", "a"], ids=[b.topic_id, b.topic_id])
    assert sorted((r.name or "", r.topic_id, r.error) for r in results) == [
        ("", b.topic_id, ErrorCode.invalid_request),
        ("a", ZERO_ID, ErrorCode.invalid_request),
    ]
    assert records == []


def test_delete_naming_a_topic_by_both_name_and_id_is_invalid_request(two_topics):
    a = two_topics.topics["a"]
    results, records = delete(two_topics, names=["a"], ids=[a.topic_id])
    assert [(r.name, r.topic_id, r.error) for r in results] == [("a", a.topic_id, ErrorCode.invalid_request)]
    assert records == []


def test_delete_when_deletion_is_disabled(two_topics):
    results, records = delete(two_topics, names=["a"], ids=[two_topics.topics["b"].topic_id], config=BrokerConfig({"delete.topic.enable": "false"}))
    assert [r.error for r in results] == [ErrorCode.topic_deletion_disabled] * 2
    assert records == []


# Record encoding


SAMPLES = [
    RegisterBrokerRecord(
        broker_id=3, incarnation_id=uuid.UUID(int=2**127 + 5), broker_epoch=2**40,
        end_points=(
            BrokerEndpoint(name="PLAINTEXT", host="10.0.0.3", port=65535, security_protocol=0),
            BrokerEndpoint(name="SSL", host="broker-3.example", port=9093, security_protocol=1),
        ),
        features=(BrokerFeature(name="metadata.version", min_supported_version=1, max_supported_version=21),),
        rack="rack-a", fenced=False, in_controlled_shutdown=True,
    ),
    register(1),
    TopicRecord(name="orders", topic_id=uuid.UUID(int=99)),
    PartitionRecord(
        partition_id=7, topic_id=uuid.UUID(int=99), replicas=(1, 2, 3), isr=(1, 3), removing_replicas=(2,),
        adding_replicas=(4,), leader=3, leader_recovery_state=1, leader_epoch=12, partition_epoch=40,
    ),
    ConfigRecord(resource_type=RESOURCE_TOPIC, resource_name="orders", name="retention.ms", value="1000"),
    ConfigRecord(resource_type=RESOURCE_BROKER, resource_name="", name="log.retention.ms", value=None),
    PartitionChangeRecord(partition_id=1, topic_id=uuid.UUID(int=99)),
    PartitionChangeRecord(
        partition_id=1, topic_id=uuid.UUID(int=99), isr=(2,), leader=2, replicas=(2, 1), removing_replicas=(1,),
        adding_replicas=(), leader_recovery_state=0,
    ),
    RemoveTopicRecord(topic_id=uuid.UUID(int=99)),
    FeatureLevelRecord(name="metadata.version", feature_level=21),
    ProducerIdsRecord(broker_id=1, broker_epoch=7, next_producer_id=2**50),
    AccessControlEntryRecord(id=uuid.UUID(int=5), resource_type=2, resource_name="orders", pattern_type=4,
                             principal="User:alice", host="*", operation=3, permission_type=3),
    RemoveAccessControlEntryRecord(id=uuid.UUID(int=5)),
    NoOpRecord(),
    UserScramCredentialRecord(name="alice", mechanism=2, salt=b"salt", stored_key=b"stored", server_key=b"server",
                              iterations=8192),
    RemoveUserScramCredentialRecord(name="alice", mechanism=1),
]


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_record_round_trip(record):
    data = encode_record(record)
    # Kafka's metadata serde frame: frame version 1, record type, record version.
    assert data[:3] == bytes([1, type(record).__record_type__, type(record).__version__])
    assert decode_record(data) == record


def test_record_types_are_kafkas_api_keys():
    assert {key: cls.__name__ for key, cls in RECORD_TYPES.items()} == {
        0: "RegisterBrokerRecord", 2: "TopicRecord", 3: "PartitionRecord", 4: "ConfigRecord",
        5: "PartitionChangeRecord", 9: "RemoveTopicRecord", 12: "FeatureLevelRecord",
        15: "ProducerIdsRecord", 17: "BrokerRegistrationChangeRecord", 18: "AccessControlEntryRecord",
        19: "RemoveAccessControlEntryRecord", 20: "NoOpRecord", 11: "UserScramCredentialRecord",
        22: "RemoveUserScramCredentialRecord",
    }


def test_topic_record_bytes_are_kafkas():
    topic_id = uuid.UUID(bytes=bytes(range(16)))
    # frame, type 2, version 0; compact string (length + 1); uuid; no tagged fields
    assert encode_record(TopicRecord(name="abc", topic_id=topic_id)) == b"\x01\x02\x00" + b"\x04abc" + bytes(range(16)) + b"\x00"


def test_partition_change_defaults_write_no_tagged_fields():
    record = PartitionChangeRecord(partition_id=1, topic_id=uuid.UUID(int=0))
    assert encode_record(record) == b"\x01\x05\x00" + b"\x00\x00\x00\x01" + bytes(16) + b"\x00"


@settings(max_examples=50)
@given(
    isr=st.none() | st.lists(st.integers(0, 2**31 - 1), max_size=5).map(tuple),
    leader=st.integers(-2, 2**31 - 1),
    replicas=st.none() | st.lists(st.integers(0, 2**31 - 1), max_size=5).map(tuple),
    recovery=st.integers(-1, 1),
)
def test_partition_change_round_trip(isr, leader, replicas, recovery):
    record = PartitionChangeRecord(
        partition_id=3, topic_id=uuid.UUID(int=1), isr=isr, leader=leader, replicas=replicas, leader_recovery_state=recovery,
    )
    assert decode_record(encode_record(record)) == record


@pytest.mark.parametrize(
    "data",
    [b"\x01\x63\x00", b"\x01\x02\x05" + b"\x04abc" + bytes(16) + b"\x00", b"\x02\x02\x00" + b"\x04abc" + bytes(16) + b"\x00"],
    ids=["unknown-type", "unknown-version", "unknown-frame-version"],
)
def test_unknown_records_are_refused(data):
    with pytest.raises(UnknownMetadataRecord):
        decode_record(data)
