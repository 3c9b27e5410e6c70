"""Produce, then consume, N records of a fixed size with confluent-kafka; print MB/s.

    python benchmarks/produce_consume.py --bootstrap 127.0.0.1:9092
    python benchmarks/produce_consume.py            # starts its own kafkapy process

Without --bootstrap it starts a kafkapy broker on 127.0.0.1 in a temporary directory
(default flush policy: page cache, as Kafka) and stops it at the end.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def produce(bootstrap: str, topic: str, count: int, size: int, acks: str, compression: str) -> float:
    producer = Producer({
        "bootstrap.servers": bootstrap, "acks": acks, "compression.type": compression,
        "linger.ms": 5, "batch.size": 1_000_000, "queue.buffering.max.kbytes": 1_048_576,
    })
    payload = b"x" * size
    errors: list[str] = []

    def on_delivery(err, _msg) -> None:  # type: ignore[no-untyped-def]
        if err is not None:
            errors.append(str(err))

    start = time.perf_counter()
    for i in range(count):
        while True:
            try:
                producer.produce(topic, value=payload, key=b"%d" % i, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    if producer.flush(120) != 0:
        raise SystemExit("producer did not finish within 120 s")
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"{len(errors)} delivery errors, first: {errors[0]}")
    return elapsed


def consume(bootstrap: str, topic: str, partitions: int, count: int) -> float:
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False, "fetch.max.bytes": 52_428_800,
    })
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    received = 0
    start = time.perf_counter()
    deadline = start + 120
    while received < count:
        if time.perf_counter() > deadline:
            raise SystemExit(f"consumed only {received} of {count} records within 120 s")
        for message in consumer.consume(10_000, 1.0):
            if message.error():
                raise KafkaException(message.error())
            received += 1
    elapsed = time.perf_counter() - start
    consumer.close()
    return elapsed


def run(bootstrap: str, args: argparse.Namespace) -> None:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, args.partitions, 1)])[topic].result(30)
    megabytes = args.count * args.size / 1_000_000
    produce_s = produce(bootstrap, topic, args.count, args.size, args.acks, args.compression)
    consume_s = consume(bootstrap, topic, args.partitions, args.count)
    print(f"records: {args.count} x {args.size} B, partitions: {args.partitions}, acks: {args.acks}, compression: {args.compression}")
    print(f"produce: {megabytes / produce_s:8.1f} MB/s  ({args.count / produce_s:,.0f} records/s, {produce_s:.2f} s)")
    print(f"consume: {megabytes / consume_s:8.1f} MB/s  ({args.count / consume_s:,.0f} records/s, {consume_s:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="HOST:PORT of a running broker (default: start a kafkapy)")
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--acks", default="all")
    parser.add_argument("--compression", default="none")
    args = parser.parse_args()
    if args.bootstrap:
        run(args.bootstrap, args)
        return
    from kafkapy.testing.process import BrokerProcess

    with tempfile.TemporaryDirectory() as data, BrokerProcess(data) as broker:
        try:
            run(broker.bootstrap, args)
        except BaseException:
            print(broker.output)
            raise


if __name__ == "__main__":
    main()
