"""Each kind of injected fault, seen through a real client: it retries, surfaces the
error, or rebalances, as it would against a real misbehaving broker. These need an
embedded kafkapy (its fault injector and clock), so they never run against --bootstrap."""

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kafkapy import Broker
from kafkapy.clock import FakeClock
from kafkapy.testing.process import wait_until

pytestmark = pytest.mark.kafkapy_internals

PRODUCE, METADATA = 0, 3


@pytest.fixture
def broker():
    with Broker(**{"group.initial.rebalance.delay.ms": 0, "group.min.session.timeout.ms": 1000}) as b:
        yield b


def new_topic(bootstrap: str, partitions: int = 1, **config: str) -> str:
    name = f"faults-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, config=config)])[name].result(10)
    return name


def deliver(producer: Producer, topic: str, values: list[bytes]) -> list[tuple[KafkaError | None, int]]:
    results: list[tuple[KafkaError | None, int]] = []
    for value in values:
        producer.produce(topic, value, on_delivery=lambda err, msg: results.append((err, msg.offset())))
    assert producer.flush(30) == 0
    return results


def test_a_non_retriable_error_reaches_the_application(broker):
    topic = new_topic(broker.bootstrap_servers)
    fault = broker.faults.add("error", api_key=PRODUCE, topic=topic, error="TOPIC_AUTHORIZATION_FAILED", count=1)
    results = deliver(Producer({"bootstrap.servers": broker.bootstrap_servers}), topic, [b"refused"])
    assert [err.code() for err, _ in results] == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
    assert fault.fired == 1


def test_a_retriable_error_is_retried_and_the_record_lands_once(broker):
    topic = new_topic(broker.bootstrap_servers)
    fault = broker.faults.add("error", api_key=PRODUCE, error="NOT_LEADER_OR_FOLLOWER", count=3)
    results = deliver(Producer({"bootstrap.servers": broker.bootstrap_servers, "retry.backoff.ms": 10}), topic, [b"x"])
    assert results == [(None, 0)] and fault.fired == 3


def test_latency_delays_every_answer_of_that_api(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.list_topics(timeout=10)  # connected before the fault, so only Metadata is measured
    fault = broker.faults.add("latency", api_key=METADATA, latency_ms=400, count=1)
    started = time.monotonic()
    admin.list_topics(timeout=10)
    assert time.monotonic() - started >= 0.4
    assert fault.fired == 1


def test_a_leaderless_partition_holds_records_until_it_has_a_leader_again(broker):
    topic = new_topic(broker.bootstrap_servers)
    fault = broker.faults.add("leaderless", topic=topic, partition=0, duration_ms=1500)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    assert admin.list_topics(topic, timeout=10).topics[topic].partitions[0].leader == -1
    results = deliver(Producer({"bootstrap.servers": broker.bootstrap_servers, "retry.backoff.ms": 50}), topic, [b"waited"])
    assert results == [(None, 0)] and fault.fired > 0
    assert admin.list_topics(topic, timeout=10).topics[topic].partitions[0].leader == 1


def test_unanswered_heartbeats_expire_the_member_and_it_rejoins(broker):
    topic = new_topic(broker.bootstrap_servers)
    assignments: list[list[int]] = []
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap_servers, "group.id": f"g-{topic}", "session.timeout.ms": 1500,
        "heartbeat.interval.ms": 100, "auto.offset.reset": "earliest",
    })
    consumer.subscribe([topic], on_assign=lambda c, ps: assignments.append([p.partition for p in ps]))
    wait_until(lambda: consumer.poll(0.1) is None and assignments, timeout=30, message="the first assignment")
    fault = broker.faults.add("no_heartbeats", duration_ms=3000)
    wait_until(lambda: consumer.poll(0.1) is None and len(assignments) >= 2, timeout=30, message="a rebalance")
    consumer.close()
    assert assignments[:2] == [[0], [0]] and fault.fired > 0


def test_a_restart_keeps_data_and_clients_carry_on(broker):
    topic = new_topic(broker.bootstrap_servers)
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    assert deliver(producer, topic, [b"before"]) == [(None, 0)]
    broker.restart()
    assert deliver(producer, topic, [b"after"]) == [(None, 1)]
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "reader"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    values = [consumer.poll(10).value() for _ in range(2)]
    consumer.close()
    assert values == [b"before", b"after"]


def test_a_manual_clock_drives_retention_without_waiting():
    now = int(time.time() * 1000)
    with Broker(clock=FakeClock(wall_ms=now), **{"log.retention.check.interval.ms": 1000}) as broker:
        topic = new_topic(broker.bootstrap_servers, **{"retention.ms": "3600000"})
        deliver(Producer({"bootstrap.servers": broker.bootstrap_servers}), topic, [b"old"] * 10)
        consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "x"})
        assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 10)
        broker.advance_clock(2 * 3600 * 1000)  # two hours, at once
        wait_until(lambda: consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[0] == 10,
                   timeout=30, message="retention to delete the expired records")
        consumer.close()
