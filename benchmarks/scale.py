"""How kafkapy's costs grow with partitions and with connections: one process of
`python -m kafkapy` per point of each curve.

    python benchmarks/scale.py [--partitions 1000,10000] [--connections 1000,5000]
        [--records 100000] [--samples 100] [--out benchmarks/results]

Partitions, for each N (topics of up to 1,000 partitions, one CreateTopics each):
- create: the first CreateTopics sent to every partition having a leader in Metadata;
- Metadata p99 of all topics (N partitions in each answer);
- produce: --records records of 100 bytes, acks=1, keyed over the first topic's 1,000
  partitions (confluent-kafka, as benchmarks/workloads.py produces);
- fetch latency: a consumer assigned those 1,000 partitions (at their end), a record
  produced to one of them in turn, the time until the consumer has it; --samples times;
- start-up: the broker stopped and started again on that data directory, exec to its
  first Metadata answered; and its RSS then.
Connections, for each C on an empty broker: RSS before and with C idle connections open
(each after an ApiVersions exchange, as a client makes), and Metadata p99 with them open.

Writes scale.json and scale.md (and scale.png where matplotlib is installed, as the
`bench` extra installs it) in --out. Each point has a deadline; the defaults finish in a
few minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import report
from startup import broker_process, rss_mib
from workloads import Deadline, latency_summary, metadata_round_trips, open_idle_connections, produce

HERE = Path(__file__).resolve().parent
TREE = HERE.parent
TOPIC_PARTITIONS = 1_000  # the largest topic: produce and fetch run on one topic of this size
RECORD_SIZE = 100
METADATA_REQUESTS = 200


def raise_fd_limit(needed: int) -> None:
    """This process's soft limit on open files, raised within the hard one where `needed`
    is more; the broker it starts inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        if wanted < needed:
            print(f"the hard limit on open files is {hard}: fewer than the {needed} this run wants")


def create_partitions(bootstrap: str, partitions: int, deadline: Deadline) -> tuple[list[str], float]:
    """Topics holding `partitions` partitions in all, and the seconds from CreateTopics to
    every partition having a leader."""
    sizes = [TOPIC_PARTITIONS] * (partitions // TOPIC_PARTITIONS) + ([partitions % TOPIC_PARTITIONS] if partitions % TOPIC_PARTITIONS else [])
    topics = [f"scale-{i}" for i in range(len(sizes))]
    # librdkafka gives up on a request after socket.timeout.ms (60 s by default).
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": min(300_000, int(deadline.left() * 1000))})
    started = time.perf_counter()
    for topic, size in zip(topics, sizes, strict=True):  # one CreateTopics each, as a tool creating many would
        admin.create_topics([NewTopic(topic, size, 1)], request_timeout=deadline.left())[topic].result(deadline.left())
    while True:
        described = admin.list_topics(timeout=max(deadline.left(), 0.1)).topics
        led = sum(1 for t in topics if t in described for p in described[t].partitions.values() if p.leader >= 0)
        if led == partitions:
            return topics, time.perf_counter() - started
        deadline.check(f"waiting for leaders ({led} of {partitions})")
        time.sleep(0.05)


def fetch_latency(bootstrap: str, topic: str, partitions: int, samples: int, deadline: Deadline) -> dict[str, float]:
    """A consumer assigned every partition of `topic` at its end; one record at a time,
    to partition after partition, timed from produce() until the consumer returns it."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "scale-fetch", "enable.auto.commit": False})
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "1"})
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in range(partitions)])
        producer.list_topics(topic, timeout=deadline.left())
        # Until the consumer fetches at a partition's end, a record sent there could come
        # before the position it resolves, and be skipped: each partition is sent a record
        # (again, now and then) until the consumer has had one from each.
        silent = set(range(partitions))
        resent = 0.0
        while silent:
            deadline.check(f"waiting for the consumer to fetch every partition ({len(silent)} silent)")
            if time.monotonic() - resent > 2.0:
                for p in silent:
                    producer.produce(topic, value=b"warm-up", partition=p)
                producer.flush(deadline.left())
                resent = time.monotonic()
            for message in consumer.consume(1000, 0.2):
                if not message.error():
                    silent.discard(message.partition())
        timings = []
        for i in range(samples + 10):  # the first 10 are warm-up
            marker = f"{i}-{time.monotonic_ns()}".encode()
            sent = time.perf_counter_ns()
            producer.produce(topic, value=marker, partition=(i * 7919) % partitions)
            producer.poll(0)
            while True:
                deadline.check(f"waiting for fetched record {i}")
                message = consumer.poll(0.5)
                if message is not None and not message.error() and message.value() == marker:
                    break
            timings.append((time.perf_counter_ns() - sent) / 1e6)
        producer.flush(deadline.left())
        return latency_summary(timings[10:])
    finally:
        consumer.close()


def partitions_point(partitions: int, records: int, samples: int, deadline_s: float) -> dict[str, Any]:
    deadline = Deadline(deadline_s)
    with tempfile.TemporaryDirectory(prefix="kafkapy-scale-") as data_dir:
        with broker_process(TREE, Path(data_dir)) as (_, port, _):
            bootstrap = f"127.0.0.1:{port}"
            topics, create_s = create_partitions(bootstrap, partitions, deadline)
            print(f"{partitions} partitions created in {create_s:.2f} s", flush=True)
            metadata = metadata_round_trips("127.0.0.1", port, METADATA_REQUESTS, deadline)
            produced = produce(bootstrap, topics[0], records, RECORD_SIZE, "1", "none", min(partitions, TOPIC_PARTITIONS),
                               deadline.left())
            fetch = fetch_latency(bootstrap, topics[0], min(partitions, TOPIC_PARTITIONS), samples, deadline)
        with broker_process(TREE, Path(data_dir)) as (process, _, ready_ms):
            rss = rss_mib(process.pid)
    return {"partitions": partitions, "create_s": create_s, "metadata": metadata,
            "produce": {k: produced[k] for k in ("records", "seconds", "mb_s")}, "fetch": fetch,
            "start_ms": ready_ms, "rss_mib": rss}


def connections_point(connections: int, deadline_s: float) -> dict[str, Any]:
    deadline = Deadline(deadline_s)
    with tempfile.TemporaryDirectory(prefix="kafkapy-scale-") as data_dir, \
            broker_process(TREE, Path(data_dir)) as (process, port, _):
        alone = metadata_round_trips("127.0.0.1", port, METADATA_REQUESTS, deadline)
        rss_before = rss_mib(process.pid)
        opened = time.perf_counter()
        idle = open_idle_connections("127.0.0.1", port, connections, deadline)
        try:
            open_s = time.perf_counter() - opened
            crowded = metadata_round_trips("127.0.0.1", port, METADATA_REQUESTS, deadline)
            rss_with = rss_mib(process.pid)
        finally:
            for sock in idle:
                sock.close()
    return {"connections": connections, "open_s": open_s, "rss_before_mib": rss_before, "rss_with_mib": rss_with,
            "kib_per_connection": (rss_with - rss_before) * 1024 / connections,
            "metadata_alone": alone, "metadata_crowded": crowded}


def growth(points: list[dict[str, Any]], size_key: str, value: Any) -> str:
    """How a figure grew from the first point to the last against the size: 1.0 is linear."""
    if len(points) < 2:
        return ""
    first, last = points[0], points[-1]
    size_ratio = last[size_key] / first[size_key]
    value_ratio = value(last) / value(first) if value(first) else float("nan")
    return f"{value_ratio / size_ratio:.2f}"


def markdown(data: dict[str, Any]) -> str:
    parts, conns = data["partitions"], data["connections"]
    lines = ["# Scale curves", "", f"`{data['command']}` on {data['environment']['cores']} cores, {data['date']}.", ""]
    if parts:
        lines += ["## Partitions", "",
                  "| partitions | create | Metadata p50 / p99 | produce (over up to 1,000 partitions) | fetch p50 / p99 (up to 1,000 assigned) | restart to first Metadata | RSS after restart |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for p in parts:
            lines.append(f"| {p['partitions']:,} | {p['create_s']:.2f} s | {p['metadata']['p50_ms']:.2f} / {p['metadata']['p99_ms']:.2f} ms "
                         f"| {p['produce']['mb_s']:.1f} MB/s | {p['fetch']['p50_ms']:.2f} / {p['fetch']['p99_ms']:.2f} ms "
                         f"| {p['start_ms']:.0f} ms | {p['rss_mib']:.1f} MiB |")
        lines += ["", "Growth from the smallest to the largest point, per unit of size (1.00: linear; below: better): "
                  f"create {growth(parts, 'partitions', lambda p: p['create_s'])}, "
                  f"Metadata p99 {growth(parts, 'partitions', lambda p: p['metadata']['p99_ms'])}, "
                  f"restart {growth(parts, 'partitions', lambda p: p['start_ms'])}, "
                  f"RSS {growth(parts, 'partitions', lambda p: p['rss_mib'])}.", ""]
    if conns:
        lines += ["## Idle connections", "",
                  "| connections | opening them | RSS before / with them | per connection | Metadata p99 alone / with them |",
                  "|---:|---:|---:|---:|---:|"]
        for c in conns:
            lines.append(f"| {c['connections']:,} | {c['open_s']:.2f} s | {c['rss_before_mib']:.1f} / {c['rss_with_mib']:.1f} MiB "
                         f"| {c['kib_per_connection']:.1f} KiB | {c['metadata_alone']['p99_ms']:.2f} / {c['metadata_crowded']['p99_ms']:.2f} ms |")
        lines.append("")
    return "\n".join(lines)


def chart(data: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    parts, conns = data["partitions"], data["connections"]
    if parts:
        sizes = [p["partitions"] for p in parts]
        for label, values in (("create (s)", [p["create_s"] for p in parts]),
                              ("restart (s)", [p["start_ms"] / 1000 for p in parts]),
                              ("Metadata p99 (10 ms)", [p["metadata"]["p99_ms"] / 10 for p in parts])):
            axes[0].plot(sizes, values, marker="o", label=label)
        axes[0].set_xlabel("partitions")
        axes[0].legend()
    if conns:
        sizes = [c["connections"] for c in conns]
        axes[1].plot(sizes, [c["rss_with_mib"] for c in conns], marker="o", label="RSS (MiB)")
        axes[1].plot(sizes, [c["metadata_crowded"]["p99_ms"] for c in conns], marker="o", label="Metadata p99 (ms)")
        axes[1].set_xlabel("idle connections")
        axes[1].legend()
    figure.tight_layout()
    figure.savefig(path)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partitions", default="1000,10000", help="comma-separated; empty for none")
    parser.add_argument("--connections", default="1000,5000", help="comma-separated; empty for none")
    parser.add_argument("--records", type=int, default=100_000, help="records produced over 1,000 partitions")
    parser.add_argument("--samples", type=int, default=100, help="fetch latency samples")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds each point may take")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    partition_sizes = [int(n) for n in args.partitions.split(",") if n]
    connection_counts = [int(n) for n in args.connections.split(",") if n]
    # Each idle connection is a socket here and one in the broker; each partition its
    # active segment's file in the broker (the others it bounds with log.fds settings).
    raise_fd_limit(max([0, *connection_counts, *partition_sizes]) + 1024)
    results: dict[str, Any] = {"partitions": [], "connections": []}
    for n in partition_sizes:
        point = partitions_point(n, args.records, args.samples, args.deadline)
        print(json.dumps(point), flush=True)
        results["partitions"].append(point)
    for n in connection_counts:
        point = connections_point(n, args.deadline)
        print(json.dumps(point), flush=True)
        results["connections"].append(point)
    results.update(command=report.portable("python benchmarks/scale.py " + " ".join(
        f"--{k} {v}" for k, v in (("partitions", args.partitions), ("connections", args.connections),
                                  ("records", args.records), ("samples", args.samples)))),
                   environment=report.environment(), date=time.strftime("%Y-%m-%d"))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "scale.md").write_text(markdown(results))
    drawn = chart(results, args.out / "scale.png")
    print(markdown(results))
    if not drawn:
        print("(no chart: matplotlib is not installed; the bench extra installs it)")


if __name__ == "__main__":
    main()
