"""Client workloads with confluent-kafka. The harness runs each in a process of its own:

    python benchmarks/workloads.py NAME 'JSON keyword arguments'

and reads the result, one JSON object, from the last line of stdout. Every workload
has a deadline of its own, and the harness kills it if it overruns that.

Record values are random hex, so zstd compresses them about 2:1, as it would text-like
records; a value of one repeated byte would make the zstd figures meaningless. MB is
10^6 bytes of record values (keys, headers and framing not counted).
"""

from __future__ import annotations

import json
import math
import random
import socket
import struct
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import wire

MOCK = "mock"  # bootstrap of librdkafka's in-process mock cluster: the client's own ceiling
MOCK_PARTITIONS = 4  # the mock creates every topic with 4 partitions and has no CreateTopics
THROUGHPUT_PRODUCER = {"linger.ms": 5, "batch.size": 1_000_000, "queue.buffering.max.kbytes": 1_048_576}
_PAYLOAD_POOL = 256
_E2E_MEASURED, _E2E_WARMUP, _E2E_END = b"m", b"w", b"e"


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.seconds = seconds

    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def check(self, doing: str) -> None:
        if time.monotonic() > self.at:
            raise SystemExit(f"deadline of {self.seconds:.0f} s passed while {doing}")


def payloads(size: int) -> list[bytes]:
    rng = random.Random(size)
    return [rng.randbytes(size // 2 + 1).hex()[:size].encode() for _ in range(_PAYLOAD_POOL)]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def latency_summary(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    return {"p50_ms": percentile(ordered, 0.50), "p99_ms": percentile(ordered, 0.99),
            "p999_ms": percentile(ordered, 0.999), "max_ms": ordered[-1], "samples": len(ordered)}


def ensure_topic(bootstrap: str, topic: str, partitions: int, deadline: Deadline, client: Mapping[str, Any] | None = None,
                 config: Mapping[str, str] | None = None) -> None:
    """Creates the topic (another process may have created it already) and waits until
    every partition has a leader. `client`: more client settings (TLS, say); `config`:
    the topic's own configuration."""
    admin = AdminClient({"bootstrap.servers": bootstrap, **(client or {})})
    try:
        admin.create_topics([NewTopic(topic, partitions, 1, config=dict(config or {}))])[topic].result(deadline.left())
    except KafkaException as e:
        if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
    while True:
        described = admin.list_topics(topic, timeout=max(deadline.left(), 0.1)).topics.get(topic)
        if (described is not None and described.error is None and len(described.partitions) == partitions
                and all(p.leader >= 0 for p in described.partitions.values())):
            return
        deadline.check(f"waiting for topic {topic}")
        time.sleep(0.05)


def produce(bootstrap: str, topic: str, count: int, size: int, acks: str, compression: str, partitions: int,
            deadline_s: float, start_at: float | None = None, client: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Produces `count` records as fast as the client can; the clock runs from the first
    send to the last acknowledgement. `start_at` (time.monotonic(), which is one clock
    for all processes on Linux) lines up several producers after their connections are up."""
    deadline = Deadline(deadline_s)
    config: dict[str, Any] = {**THROUGHPUT_PRODUCER, "acks": acks, "compression.type": compression}
    partition = -1  # the partitioner chooses, by key
    if bootstrap == MOCK:
        config["test.mock.num.brokers"] = 1
        partition = 0 if partitions == 1 else -1
    else:
        config.update({"bootstrap.servers": bootstrap, **(client or {})})
        ensure_topic(bootstrap, topic, partitions, deadline, client)
    producer = Producer(config)
    producer.list_topics(topic, timeout=deadline.left())  # connect and learn leaders before the clock starts
    pool = payloads(size)
    errors: list[str] = []

    def on_delivery(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    if start_at is not None:
        time.sleep(max(0.0, start_at - time.monotonic()))
    started = time.monotonic()
    for i in range(count):
        value = pool[i % _PAYLOAD_POOL]
        while True:
            try:
                producer.produce(topic, value=value, key=b"%d" % i, partition=partition, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
                deadline.check("producing")
        producer.poll(0)
    if producer.flush(deadline.left()) != 0:
        deadline.check("waiting for acknowledgements")
    finished = time.monotonic()
    if errors:
        raise SystemExit(f"{len(errors)} delivery errors, first: {errors[0]}")
    seconds = finished - started
    return {"records": count, "bytes": count * size, "seconds": seconds, "mb_s": count * size / seconds / 1e6,
            "started": started, "finished": finished,
            "partitions": MOCK_PARTITIONS if bootstrap == MOCK and partitions > 1 else partitions}


def consume(bootstrap: str, topic: str, partitions: int, count: int, deadline_s: float,
            client: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Reads `count` records from the beginning of every partition, default consumer settings
    (and `client`'s)."""
    deadline = Deadline(deadline_s)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, **(client or {})})
    consumer.list_topics(topic, timeout=deadline.left())  # connect before the clock starts
    started = time.monotonic()
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    received = received_bytes = 0
    while received < count:
        deadline.check(f"consuming ({received} of {count} records so far)")
        # Asks for no more than is left: a batch call waits for its whole batch or its timeout.
        for message in consumer.consume(min(10_000, count - received), 1.0):
            if message.error():
                raise KafkaException(message.error())
            received += 1
            received_bytes += len(message.value())
    seconds = time.monotonic() - started
    consumer.close()
    return {"records": received, "bytes": received_bytes, "seconds": seconds, "mb_s": received_bytes / seconds / 1e6}


def e2e_consume(bootstrap: str, topic: str, deadline_s: float) -> dict[str, Any]:
    """The consumer half of end-to-end latency: default settings, one partition. Prints
    `ready` once it is fetching, then the latency of each measured record: the time it
    arrived here minus the time the producer handed it to its client (both monotonic)."""
    deadline = Deadline(deadline_s)
    ensure_topic(bootstrap, topic, 1, deadline)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}"})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    consumer.consume(1, 0.5)
    print("ready", flush=True)
    latencies_ms: list[float] = []
    while True:
        deadline.check(f"waiting for the end of the latency run ({len(latencies_ms)} records so far)")
        message = consumer.poll(0.1)  # one at a time: a batch would hold the first record back
        arrived = time.monotonic_ns()
        if message is None:
            continue
        if message.error():
            raise KafkaException(message.error())
        key = message.key()
        if key[:1] == _E2E_END:
            consumer.close()
            return {**latency_summary(latencies_ms), "expected": struct.unpack(">q", key[1:])[0]}
        if key[:1] == _E2E_MEASURED:
            latencies_ms.append((arrived - struct.unpack(">q", key[1:])[0]) / 1e6)


def e2e_produce(bootstrap: str, topic: str, rate: int, seconds: float, warmup_seconds: float, size: int,
                deadline_s: float) -> dict[str, Any]:
    """The producer half: a steady `rate` records/s on a fixed schedule, acks=all, and
    linger.ms=0 so that the figure is the broker's and the consumer's, not batching delay."""
    deadline = Deadline(deadline_s)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    producer.list_topics(topic, timeout=deadline.left())
    pool = payloads(size)
    warmup, measured = int(warmup_seconds * rate), int(seconds * rate)
    late = 0
    started = time.monotonic()
    for i in range(warmup + measured):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -0.001:
            late += 1
        kind = _E2E_WARMUP if i < warmup else _E2E_MEASURED
        producer.produce(topic, value=pool[i % _PAYLOAD_POOL], key=kind + struct.pack(">q", time.monotonic_ns()))
        producer.poll(0)
    producer.produce(topic, value=b"", key=_E2E_END + struct.pack(">q", measured))
    if producer.flush(deadline.left()) != 0:
        deadline.check("waiting for acknowledgements")
    return {"sent": measured, "sent_over_1ms_late": late}


def metadata_round_trips(host: str, port: int, requests: int, deadline: Deadline) -> dict[str, float]:
    """Latency of `requests` Metadata (all topics) round trips on one new connection."""
    with wire.connect(host, port, deadline.left()) as sock:
        timings = []
        for i in range(requests + 10):  # the first 10 warm the connection up
            request = wire.metadata_request(i)
            sent = time.perf_counter_ns()
            wire.round_trip(sock, request, i)
            timings.append((time.perf_counter_ns() - sent) / 1e6)
    return latency_summary(timings[10:])


def open_idle_connections(host: str, port: int, count: int, deadline: Deadline) -> list[socket.socket]:
    """`count` connections, each after an ApiVersions exchange as a client makes; the
    caller closes them."""
    idle: list[socket.socket] = []
    try:
        for i in range(count):
            deadline.check(f"opening idle connections ({i} so far)")
            sock = wire.connect(host, port, deadline.left())
            idle.append(sock)
            wire.round_trip(sock, wire.api_versions_request(i), i)
    except BaseException:
        for sock in idle:
            sock.close()
        raise
    return idle


def metadata_latency(bootstrap: str, idle_connections: int, requests: int, deadline_s: float) -> dict[str, Any]:
    """Round trips of Metadata (all topics) on one connection, first alone, then with
    `idle_connections` more open."""
    deadline = Deadline(deadline_s)
    host, port = bootstrap.rsplit(":", 1)
    alone = metadata_round_trips(host, int(port), requests, deadline)
    opened = time.perf_counter()
    idle = open_idle_connections(host, int(port), idle_connections, deadline)
    try:
        open_seconds = time.perf_counter() - opened
        crowded = metadata_round_trips(host, int(port), requests, deadline)
    finally:
        for sock in idle:
            sock.close()
    return {"alone": alone, "crowded": crowded, "idle_connections": idle_connections, "open_seconds": open_seconds}


def delete_topics(bootstrap: str, topics: list[str], deadline_s: float) -> dict[str, Any]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    errors = {}
    for topic, future in admin.delete_topics(topics, operation_timeout=deadline_s).items():
        try:
            future.result(deadline_s)
        except KafkaException as e:
            errors[topic] = str(e)
    return {"deleted": len(topics) - len(errors), "errors": errors}


WORKLOADS: dict[str, Callable[..., dict[str, Any]]] = {
    "produce": produce, "consume": consume, "e2e_consume": e2e_consume, "e2e_produce": e2e_produce,
    "metadata_latency": metadata_latency, "delete_topics": delete_topics,
}


def main() -> None:
    name, arguments = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(WORKLOADS[name](**arguments)), flush=True)


if __name__ == "__main__":
    main()
