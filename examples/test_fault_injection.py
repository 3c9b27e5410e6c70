"""A producer that must survive a flaky broker: injected NOT_LEADER_OR_FOLLOWER errors
and connections dropped after the broker has applied the request. With idempotence,
every record lands exactly once.

Run: pytest examples/test_fault_injection.py
"""

from confluent_kafka import Consumer, Producer, TopicPartition

import kafkapy

PRODUCE = 0


def test_idempotent_producer_survives_errors_and_dropped_connections():
    with kafkapy.Broker() as broker:
        errors = broker.faults.add("error", api_key=PRODUCE, error="NOT_LEADER_OR_FOLLOWER", count=3)
        drops = broker.faults.add("drop_connection", api_key=PRODUCE, count=2)
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "enable.idempotence": True, "linger.ms": 5})
        for i in range(200):
            producer.produce("payments", key=b"k", value=b"payment-%d" % i)
        assert producer.flush(30) == 0

        assert errors.fired == 3 and drops.fired == 2
        consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "audit", "enable.auto.commit": False})
        consumer.assign([TopicPartition("payments", 0, 0)])
        values = []
        while len(values) < 200:
            message = consumer.poll(10)
            assert message is not None and message.error() is None
            values.append(message.value())
        consumer.close()
        assert values == [b"payment-%d" % i for i in range(200)]  # in order, none twice
        assert consumer_end(broker) == 200


def consumer_end(broker: kafkapy.Broker) -> int:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "end"})
    low, high = consumer.get_watermark_offsets(TopicPartition("payments", 0), timeout=10)
    consumer.close()
    return high
