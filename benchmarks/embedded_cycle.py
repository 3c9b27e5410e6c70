"""How fast kafkapy is as the Kafka of a test suite: embedded start to ready, and the
full cycle (start, create topic, produce 1 record, consume it, stop).

    python benchmarks/embedded_cycle.py [--repeats 20]

Start to ready ends at the first answered Metadata request. Imports are done before
timing, as a test suite would have done them once.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import struct
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.metadata.v12.request import MetadataRequest

from kafkapy import Broker
from kafkapy.wire.protocol import encode_request

_METADATA = encode_request(MetadataRequest(topics=(), allow_auto_topic_creation=False, include_topic_authorized_operations=False), 1)


def metadata_answered(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(_METADATA)
        size = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))[0]
        sock.recv(size, socket.MSG_WAITALL)


def start_to_ready() -> tuple[float, float]:
    started = time.perf_counter()
    broker = Broker().start()
    metadata_answered(broker.port)
    ready = time.perf_counter() - started
    stop_started = time.perf_counter()
    broker.stop()
    return ready * 1000, (time.perf_counter() - stop_started) * 1000


def full_cycle() -> float:
    started = time.perf_counter()
    with Broker() as broker:
        bootstrap = broker.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("cycle", 1)])["cycle"].result(10)
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
        producer.produce("cycle", b"one record")
        if producer.flush(10):
            raise SystemExit("the record was not delivered")
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "cycle", "enable.auto.commit": False})
        consumer.assign([TopicPartition("cycle", 0, 0)])
        message = consumer.poll(10)
        if message is None or message.value() != b"one record":
            raise SystemExit("the record was not consumed")
        consumer.close()
        del producer, admin
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    start_to_ready()  # warm caches once
    starts, stops = zip(*(start_to_ready() for _ in range(args.repeats)), strict=True)
    cycles = [full_cycle() for _ in range(max(3, args.repeats // 4))]
    for name, values in (("start to ready", starts), ("stop", stops), ("full cycle", cycles)):
        print(f"{name:15} median {statistics.median(values):7.1f} ms   min {min(values):7.1f}   max {max(values):7.1f}   (n={len(values)})")


if __name__ == "__main__":
    main()
