"""Changing configs (IncrementalAlterConfigs and AlterConfigs, as records) and adding
partitions, as Kafka's controller decides them; and where a broker's effective config
values come from."""

import pytest
from kio.schema.errors import ErrorCode

from kafkapy.config import BrokerConfig, ConfigSource, effective_topic_configs
from kafkapy.log.config import LogConfig
from kafkapy.metadata.controller import (
    APPEND,
    DELETE,
    SET,
    SUBTRACT,
    ConfigChange,
    ConfigOp,
    Controller,
    NewTopic,
    alter_configs_records,
)
from kafkapy.metadata.image import MetadataImage
from kafkapy.metadata.records import RESOURCE_BROKER, RESOURCE_TOPIC, ConfigRecord
from test_metadata import CLUSTER, register, with_topics

IMAGE = with_topics(CLUSTER, "orders").apply(
    [ConfigRecord(resource_type=RESOURCE_TOPIC, resource_name="orders", name="retention.ms", value="1000")], 10
)


def alter(*changes: ConfigChange, image: MetadataImage = IMAGE, validate_only: bool = False):
    results, records = alter_configs_records(image, list(changes), validate_only)
    return [(r.error, r.message) for r in results], records


def topic(*ops: ConfigOp, name: str = "orders") -> ConfigChange:
    return ConfigChange(RESOURCE_TOPIC, name, list(ops))


def broker(*ops: ConfigOp, name: str = "") -> ConfigChange:
    return ConfigChange(RESOURCE_BROKER, name, list(ops))


def record(name: str, value: str | None, resource: str = "orders", kind: int = RESOURCE_TOPIC) -> ConfigRecord:
    return ConfigRecord(resource_type=kind, resource_name=resource, name=name, value=value)


OK = (ErrorCode.none, None)


# Topic configs


def test_set_and_delete_make_records_for_what_changes():
    results, records = alter(topic(
        ConfigOp("cleanup.policy", SET, "compact"), ConfigOp("retention.ms", DELETE, None),
        ConfigOp("segment.ms", SET, "5000"), ConfigOp("min.compaction.lag.ms", DELETE, None),
    ))
    assert results == [OK]
    assert records == [record("cleanup.policy", "compact"), record("retention.ms", None), record("segment.ms", "5000")]
    image = IMAGE.apply(records, 11)
    assert image.topic_configs("orders") == {"cleanup.policy": "compact", "segment.ms": "5000"}
    assert alter(topic(ConfigOp("segment.ms", SET, "5000")), image=image) == ([OK], [])  # unchanged: no record


def test_append_and_subtract_work_on_list_items_from_the_default():
    results, records = alter(topic(ConfigOp("cleanup.policy", APPEND, "compact")))
    assert (results, records) == ([OK], [record("cleanup.policy", "delete,compact")])
    image = IMAGE.apply(records, 11)
    assert alter(topic(ConfigOp("cleanup.policy", APPEND, "compact,delete")), image=image) == ([OK], [])
    assert alter(topic(ConfigOp("cleanup.policy", SUBTRACT, "delete")), image=image)[1] == [record("cleanup.policy", "compact")]
    assert alter(topic(ConfigOp("leader.replication.throttled.replicas", APPEND, "0:1,1:2")))[1] == [
        record("leader.replication.throttled.replicas", "0:1,1:2")
    ]


@pytest.mark.parametrize(
    ("op", "error", "message"),
    [
        (ConfigOp("retention.ms", APPEND, "5"), ErrorCode.invalid_config, "Can't APPEND to key retention.ms because its type is not LIST."),
        (ConfigOp("retention.ms", SUBTRACT, "5"), ErrorCode.invalid_config, "Can't SUBTRACT to key retention.ms because its type is not LIST."),
        (ConfigOp("retention.weeks", SET, "1"), ErrorCode.invalid_config, "Unknown topic config name: retention.weeks"),
        (ConfigOp("retention.ms", SET, "soon"), ErrorCode.invalid_config, "Invalid value soon for configuration retention.ms: expected a value of type LONG"),
        (ConfigOp("cleanup.policy", APPEND, "shred"), ErrorCode.invalid_config, "Invalid value delete,shred for configuration cleanup.policy: Value must be one of ['delete', 'compact']"),
        (ConfigOp("min.cleanable.dirty.ratio", SET, "1.5"), ErrorCode.invalid_config, "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be in [0, 1]"),
        (ConfigOp("retention.ms", SET, None), ErrorCode.invalid_request, "Null value not supported for : retention.ms"),
    ],
    ids=["append-to-a-long", "subtract-from-a-long", "unknown-name", "not-a-number", "not-a-policy", "out-of-range", "null"],
)
def test_refused_topic_changes(op, error, message):
    assert alter(topic(op)) == ([(error, message)], [])


def test_deleting_an_unknown_topic_config_is_a_no_op():
    assert alter(topic(ConfigOp("retention.weeks", DELETE, None))) == ([OK], [])


def test_the_topic_must_exist_but_its_name_and_configs_are_checked_first():
    assert alter(topic(ConfigOp("retention.ms", SET, "5"), name="ghost")) == (
        [(ErrorCode.unknown_topic_or_partition, "The topic 'ghost' does not exist.")], [],
    )
    assert alter(topic(ConfigOp("retention.ms", SET, "x"), name="ghost"))[0][0][0] == ErrorCode.invalid_config
    assert alter(topic(ConfigOp("retention.ms", SET, "5"), name="bad name"))[0][0][0] == ErrorCode.invalid_topic_exception
    assert alter(topic(ConfigOp("retention.ms", SET, "5"), name="")) == (
        [(ErrorCode.invalid_request, "Default topic resources are not allowed.")], [],
    )


# Broker configs


def test_broker_changes_always_make_records_so_brokers_reload():
    image = CLUSTER.apply([record("log.retention.ms", "5000", "1", RESOURCE_BROKER)], 5)
    results, records = alter(broker(ConfigOp("log.retention.ms", SET, "5000"), name="1"), broker(ConfigOp("num.partitions", SET, "3")), image=image)
    assert results == [OK, OK]
    assert records == [record("log.retention.ms", "5000", "1", RESOURCE_BROKER), record("num.partitions", "3", "", RESOURCE_BROKER)]


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (broker(ConfigOp("log.dirs", SET, "/elsewhere")), ErrorCode.invalid_request, "Cannot update these configs dynamically: Set(log.dirs)"),
        (broker(ConfigOp("log.retention.ms", SET, "never")), ErrorCode.invalid_request, "Invalid value never for configuration log.retention.ms: expected a value of type LONG"),
        (broker(ConfigOp("log.retention.ms", APPEND, "1")), ErrorCode.invalid_config, "Config value append is not allowed for config key: log.retention.ms"),
        (broker(ConfigOp("log.retention.weeks", SET, "1")), ErrorCode.invalid_config, "Unknown broker config name: log.retention.weeks"),
        (broker(ConfigOp("num.partitions", SET, "2"), name="one"), ErrorCode.invalid_request, "Unable to parse broker name as a base 10 number."),
        (ConfigChange(99, "x", [ConfigOp("a", SET, "b")]), ErrorCode.invalid_request, "Unsupported resource type 99"),
    ],
    ids=["read-only", "not-a-number", "append-to-a-long", "unknown-name", "bad-broker-name", "unknown-resource-type"],
)
def test_refused_broker_changes(change, error, message):
    assert alter(change) == ([(error, message)], [])


def test_deleting_a_read_only_broker_config_is_allowed():
    assert alter(broker(ConfigOp("log.dirs", DELETE, None), name="1")) == ([OK], [record("log.dirs", None, "1", RESOURCE_BROKER)])


# A request as a whole


def test_duplicates_are_invalid_request_and_other_resources_go_ahead():
    results, records = alter(
        topic(ConfigOp("segment.ms", SET, "1")), topic(ConfigOp("segment.ms", SET, "2")),
        topic(ConfigOp("segment.ms", SET, "1"), ConfigOp("segment.ms", DELETE, None), name="other"),
        broker(ConfigOp("num.partitions", SET, "2")),
        image=with_topics(IMAGE, "other"),
    )
    assert results == [
        (ErrorCode.invalid_request, "Each resource must appear at most once."),
        (ErrorCode.invalid_request, "Each resource must appear at most once."),
        (ErrorCode.invalid_request, "Error due to duplicate config keys"),
        OK,
    ]
    assert records == [record("num.partitions", "2", "", RESOURCE_BROKER)]


def test_validate_only_answers_without_records():
    results, records = alter(topic(ConfigOp("segment.ms", SET, "1")), topic(ConfigOp("segment.ms", SET, "x"), name="ghost"), validate_only=True)
    assert [e for e, _ in results] == [ErrorCode.none, ErrorCode.invalid_config]
    assert records == []


# Adding partitions


def grow(image: MetadataImage, *requests, validate_only: bool = False):
    results, records = Controller(BrokerConfig()).create_partitions(image, list(requests), validate_only)
    return [(r.name, r.error, r.message) for r in results], records


def test_create_partitions_places_new_partitions_on_unfenced_brokers():
    image = with_topics(CLUSTER, "orders").apply([register(2, fenced=True)], 20)
    results, records = grow(image, ("orders", 5, None))
    assert results == [("orders", ErrorCode.none, None)]
    assert [r.partition_id for r in records] == [2, 3, 4]
    assert all(r.replicas == r.isr == (r.leader,) and r.leader in (1, 3) for r in records)
    assert {r.leader for r in records} == {1, 3}  # round the unfenced brokers
    assert grow(image, ("orders", 5, None), validate_only=True) == (results, [])
    assert len(image.apply(records, 21).topics["orders"].partitions) == 5


def test_manual_assignments_keep_fenced_replicas_out_of_the_isr():
    _, created = Controller(BrokerConfig()).create_topics(CLUSTER, [NewTopic("pairs", 1, 2)])
    image = CLUSTER.apply(created, 5).apply([register(2, fenced=True)], 6)
    results, records = grow(image, ("pairs", 3, [[2, 3], [1, 3]]))
    assert results == [("pairs", ErrorCode.none, None)]
    assert [(r.partition_id, r.replicas, r.isr, r.leader) for r in records] == [(1, (2, 3), (3,), 3), (2, (1, 3), (1, 3), 1)]
    image = image.apply([register(1, fenced=True)], 7)
    assert grow(image, ("pairs", 2, None)) == (
        [("pairs", ErrorCode.invalid_replication_factor, "The target replication factor of 2 cannot be reached because only 1 broker(s) are registered.")],
        [],
    )


def test_a_topic_named_twice_gets_one_invalid_request_and_the_others_go_ahead():
    image = with_topics(CLUSTER, "orders", "other")
    results, records = grow(image, ("orders", 3, None), ("other", 3, None), ("orders", 4, None))
    assert results == [("orders", ErrorCode.invalid_request, "Duplicate topic name."), ("other", ErrorCode.none, None)]
    assert [(r.topic_id, r.partition_id) for r in records] == [(image.topics["other"].topic_id, 2)]


@pytest.mark.parametrize(
    ("request_", "error", "message"),
    [
        (("ghost", 3, None), ErrorCode.unknown_topic_or_partition, "The topic 'ghost' does not exist."),
        (("orders", 2, None), ErrorCode.invalid_partitions, "Topic already has 2 partition(s)."),
        (("orders", 1, None), ErrorCode.invalid_partitions, "The topic orders currently has 2 partition(s); 1 would not be an increase."),
        (("orders", 4, [[1]]), ErrorCode.invalid_replica_assignment, "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified."),
        (("orders", 3, [[]]), ErrorCode.invalid_replica_assignment, "The manual partition assignment includes an empty replica list."),
        (("orders", 3, [[9]]), ErrorCode.invalid_replica_assignment, "The manual partition assignment includes broker 9, but no such broker is registered."),
        (("orders", 3, [[1, 1]]), ErrorCode.invalid_replica_assignment, "The manual partition assignment includes the broker 1 more than once."),
        (("orders", 3, [[1, 2]]), ErrorCode.invalid_replica_assignment,
         "The manual partition assignment includes a partition with 2 replica(s), but this is not consistent with previous partitions, which have 1 replica(s)."),
        (("orders", 3, [[4]]), ErrorCode.invalid_replica_assignment,
         "All brokers specified in the manual partition assignment for partition 2 are fenced or in controlled shutdown."),
    ],
    ids=["unknown-topic", "same-count", "fewer", "assignment-count", "empty", "unknown-broker", "repeated-broker", "other-factor", "all-fenced"],
)
def test_refused_create_partitions(request_, error, message):
    image = with_topics(CLUSTER, "orders").apply([register(4, fenced=True)], 20)
    assert grow(image, request_) == ([(request_[0], error, message)], [])


# Where a broker's values come from


def test_dynamic_values_override_static_ones_node_first():
    static = BrokerConfig({"num.partitions": "2", "log.retention.hours": "5", "message.max.bytes": "1000"})
    config = static.with_dynamic({"num.partitions": "4", "log.segment.bytes": "2000"}, {"num.partitions": "6"})
    assert [(config.get(k), config.source_of(k)) for k in ("num.partitions", "log.segment.bytes", "message.max.bytes", "log.roll.hours")] == [
        (6, ConfigSource.DYNAMIC_BROKER_CONFIG),
        (2000, ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG),
        (1000, ConfigSource.STATIC_BROKER_CONFIG),
        (168, ConfigSource.DEFAULT_CONFIG),
    ]
    assert static.get("num.partitions") == 2  # the static configuration is left as it was


def test_stored_dynamic_values_that_cannot_apply_are_ignored():
    config = BrokerConfig().with_dynamic({"log.dirs": "/elsewhere", "no.such.key": "1", "num.partitions": "many"}, {"log.segment.bytes": "5"})
    assert (config.get("num.partitions"), config.source_of("log.dirs"), config.get("log.segment.bytes")) == (1, ConfigSource.DEFAULT_CONFIG, 1_073_741_824)


def test_topic_defaults_come_from_the_first_broker_synonym_set_anywhere():
    static = BrokerConfig({"log.retention.ms": "5"})
    config = static.with_dynamic({"log.cleaner.delete.retention.ms": "7"}, {"log.retention.hours": "1", "log.roll.hours": "2"})
    assert config.topic_default("retention.ms") == (5, ConfigSource.STATIC_BROKER_CONFIG, "log.retention.ms")  # ms beats hours
    assert config.topic_default("segment.ms") == (7_200_000, ConfigSource.DYNAMIC_BROKER_CONFIG, "log.roll.hours")
    assert config.topic_default("delete.retention.ms") == (7, ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG, "log.cleaner.delete.retention.ms")
    assert config.topic_default("min.cleanable.dirty.ratio") == (0.5, ConfigSource.DEFAULT_CONFIG, "log.cleaner.min.cleanable.ratio")
    assert config.topic_default("remote.storage.enable") == (False, ConfigSource.DEFAULT_CONFIG, None)
    log_config = LogConfig.from_topic_configs(effective_topic_configs({"segment.ms": "9"}, config))
    assert (log_config.retention_ms, log_config.segment_ms, log_config.delete_retention_ms) == (5, 9, 7)
