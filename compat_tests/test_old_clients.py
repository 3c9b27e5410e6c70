"""kafka-python pinned to old protocol levels (`api_version`): it then sends, without
asking ApiVersions, the versions a broker of that release spoke, so these prove the
widened ranges end to end: admin requests of Kafka 0.10.1 and 0.11 (CreateTopics v0,
DeleteTopics v0, DescribeConfigs v0), and a producer and a consumer group of 0.11, 1.0
and 2.0. Kafka 0.10's clients, which produce and fetch message format v1, are in
test_legacy_formats.py."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from waiting import until

TIMEOUT_S = 30


def test_admin_of_kafka_0_10_1_and_0_11_creates_describes_and_deletes_topics(broker, topic_name):
    old = KafkaAdminClient(bootstrap_servers=broker.bootstrap, api_version=(0, 10, 1), request_timeout_ms=TIMEOUT_S * 1000)
    newer = KafkaAdminClient(bootstrap_servers=broker.bootstrap, api_version=(0, 11), request_timeout_ms=TIMEOUT_S * 1000)
    try:
        old.create_topics([NewTopic(topic_name, num_partitions=2, replication_factor=1, topic_configs={"retention.ms": "3600000"})])
        until(lambda: topic_name in old.list_topics(), TIMEOUT_S, f"{topic_name} listed")
        described = newer.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic_name, ["retention.ms"])])
        entry = described["topic"][topic_name]["retention.ms"]
        assert (entry["value"], entry["is_default"]) == ("3600000", False)
        old.delete_topics([topic_name])
        until(lambda: topic_name not in old.list_topics(), TIMEOUT_S, f"{topic_name} deleted")
    finally:
        old.close()
        newer.close()


@pytest.mark.parametrize("api_version", [(0, 11), (1, 0), (2, 0)], ids=lambda v: ".".join(map(str, v)))
def test_producer_and_consumer_group_of_an_old_release(broker, topic_name, api_version):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, api_version=api_version)
    try:
        admin.create_topics([NewTopic(topic_name, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, api_version=api_version)
    try:
        for i in range(10):
            producer.send(topic_name, key=str(i).encode(), value=f"v{i}".encode(), partition=i % 2)
        producer.flush(timeout=TIMEOUT_S)
    finally:
        producer.close(timeout=10)
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = KafkaConsumer(topic_name, bootstrap_servers=broker.bootstrap, api_version=api_version, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=TIMEOUT_S * 1000)
    try:
        consumed = []
        for message in consumer:
            consumed.append(message.value)
            if len(consumed) == 10:
                break
        assert sorted(consumed) == sorted(f"v{i}".encode() for i in range(10))
        consumer.commit()
    finally:
        consumer.close()
    # Another member of the group, of the same release, finds the group's offsets.
    reader = KafkaConsumer(bootstrap_servers=broker.bootstrap, api_version=api_version, group_id=group, enable_auto_commit=False)
    try:
        assert [reader.committed(TopicPartition(topic_name, p)) for p in (0, 1)] == [5, 5]
    finally:
        reader.close()
