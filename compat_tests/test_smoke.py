"""A first end-to-end check with confluent-kafka."""

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def test_produce_and_consume(broker, topic_name):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(10)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    for i in range(100):
        producer.produce(topic_name, key=b"k%d" % i, value=b"v%d" % i)
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic_name, 0, 0)])
    got = []
    while len(got) < 100:
        message = consumer.poll(10)
        assert message is not None and message.error() is None
        got.append((message.key(), message.value(), message.offset()))
    consumer.close()
    assert got == [(b"k%d" % i, b"v%d" % i, i) for i in range(100)]
