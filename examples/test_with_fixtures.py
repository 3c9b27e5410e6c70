"""Testing code that uses Kafka with kafkapy's pytest fixtures: no Docker, no JVM.

Run: pytest examples/test_with_fixtures.py
"""

import pytest
from confluent_kafka import Consumer, Producer


@pytest.mark.kafka_topic(partitions=3)
def test_every_order_is_consumed(kafka_bootstrap, kafka_topic):
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(30):
        producer.produce(kafka_topic, key=b"customer-%d" % (i % 5), value=b"order-%d" % i)
    assert producer.flush(10) == 0

    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "billing", "auto.offset.reset": "earliest"})
    consumer.subscribe([kafka_topic])
    orders = set()
    while len(orders) < 30:
        message = consumer.poll(10)
        assert message is not None, "no message within 10 s"
        assert message.error() is None
        orders.add(message.value())
    consumer.close()
    assert orders == {b"order-%d" % i for i in range(30)}
