"""Does kafkapy stay flat under a long mixed load? One kafkapy process, and at the same
time, for --minutes (30 by default):

- an idempotent producer into two topics with a short `retention.ms` and small segments
  (retention deletes segments all the time) and, keyed with now and then a tombstone, into
  a `cleanup.policy=compact` topic with a low `min.cleanable.dirty.ratio` (the cleaner,
  its backoff shortened, compacts it all the time);
- consumer group churn: members that join, consume for a few seconds, commit and leave,
  in a group of eager (range, roundrobin) and one of cooperative-sticky members, beside
  one member that stays in a group of its own for the whole run;
- a loop that creates a topic, produces to it with acks=all and deletes it;
- transactions, committed or (one in three) aborted.

Every few seconds it samples the broker's RSS (VmRSS), its open files (/proc/PID/fd) and
two latencies: a probe produce (acks=all, one record, until acknowledged) and a Metadata
request (all topics, on a raw connection); and the data directory's size and number of
files, which are reported but not bounded. At the end it checks what the load should have
left: every kind of operation happened and none failed; retention moved the log start
offset; compaction removed records and kept the last value (or tombstone) of every key;
a read_committed consumer reads every committed transaction's records and none of an
aborted one. It writes `soak-DATE.csv` (the samples), `soak-DATE.json` (the summary) and
`soak-DATE.png` (RSS, open files and latency over time; needs matplotlib, the `bench`
extra) into --out, prints the first and last tenth after the warm-up, and exits non-zero
if RSS or open files grew by more than the bounds, latency by more than its bound, or
anything failed.

    python benchmarks/soak.py [--minutes 30] [--out benchmarks/results]

`compat_tests/test_soak.py` runs a 20 s form with loose bounds.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import random
import shlex
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

import wire
from brokers import KAFKAPY_TEMPLATE, BrokerSpec, RunningBroker
from workloads import Deadline, ensure_topic, payloads

RETAINED = ("soak-retained-0", "soak-retained-1")
COMPACTED = "soak-compacted"
TRANSACTIONAL = "soak-transactional"
PROBE = "soak-probe"
PARTITIONS = 3
KEYS = 500
TOMBSTONE_EVERY = 50
RECORD_BYTES = 200
TRANSACTION_RECORDS = 20
CLIENT_TIMEOUT_S = 30.0

BROKER_OVERRIDES: dict[str, object] = {
    "log.segment.bytes": 262_144,
    "log.retention.check.interval.ms": 1000,
    "log.segment.delete.delay.ms": 1000,
    "log.cleaner.backoff.ms": 1000,
    # Churn is the point: a new group rebalances at once instead of waiting 3 s for more members.
    "group.initial.rebalance.delay.ms": 0,
}
RETAINED_CONFIG = {"retention.ms": "5000", "segment.bytes": "131072"}
COMPACTED_CONFIG = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1", "segment.bytes": "65536"}

# What a run must have done; each count is checked to be above zero.
OPERATIONS = ("produced", "consumed", "joined", "assigned", "left", "topics_created", "topics_deleted",
              "transactions_committed", "transactions_aborted", "probe_produces", "probe_metadata")
# The first four are bounded; the data directory's size and file count are reported.
SERIES = ("rss_mb", "open_files", "produce_ms", "metadata_ms", "data_mb", "data_files")


class Tally:
    """Counts of what the workers did and every failure, shared between their threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.failures: list[str] = []
        self.slowest: dict[str, float] = {}
        self.started = time.monotonic()

    def add(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.counts[kind] += n

    def observe(self, kind: str, seconds: float) -> None:
        with self._lock:
            self.slowest[kind] = max(seconds, self.slowest.get(kind, 0.0))

    def fail(self, kind: str, error: object) -> None:
        with self._lock:
            self.failures.append(f"{time.monotonic() - self.started:7.1f} s  {kind}: {error}")


@dataclass
class Sample:
    seconds: float
    rss_mb: float
    open_files: int
    produce_ms: float | None
    metadata_ms: float | None
    cpu_seconds: float
    data_mb: float
    data_files: int
    load_1m: float


@dataclass
class Run:
    """What the workers share: where the broker is, when to stop, what they did."""
    bootstrap: str
    stop: threading.Event
    tally: Tally
    rate: float
    # The last value acknowledged for each key of the compacted topic (None: a tombstone).
    last_acked: dict[bytes, bytes | None]


def worker(run: Run, name: str, body: Callable[[], None]) -> threading.Thread:
    """A thread running `body`; an exception it lets out is a failure of the run."""
    def guarded() -> None:
        try:
            body()
        except Exception as e:
            run.tally.fail(name, repr(e))

    thread = threading.Thread(target=guarded, name=name, daemon=True)
    thread.start()
    return thread


def produce(run: Run) -> None:
    """Records on a fixed schedule, `rate` per second into each topic; the compacted topic's keyed."""
    producer = Producer({"bootstrap.servers": run.bootstrap, "enable.idempotence": True, "linger.ms": 5})
    pool = payloads(RECORD_BYTES)

    def delivered(err: KafkaError | None, message: Message) -> None:
        if err is not None:
            run.tally.fail("produce", err)
            return
        run.tally.add("produced")
        if message.topic() == COMPACTED:
            # One partition per key and an idempotent producer: acknowledgements come in log order.
            run.last_acked[message.key()] = message.value()

    started, i = time.monotonic(), 0
    while not run.stop.is_set():
        run.stop.wait(started + i / run.rate - time.monotonic())
        for topic in (*RETAINED, COMPACTED):
            key = b"key-%d" % (i % KEYS) if topic == COMPACTED else None
            value = None if topic == COMPACTED and i % TOMBSTONE_EVERY == TOMBSTONE_EVERY - 1 else pool[i % len(pool)]
            while True:
                try:
                    producer.produce(topic, value, key, on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.poll(0)
        i += 1
    if producer.flush(CLIENT_TIMEOUT_S):
        run.tally.fail("produce", f"{len(producer)} records not acknowledged at the end")


def group_member_churn(run: Run, group: str, strategy: str, lifetime_s: tuple[float, float], seed: int) -> None:
    """Members of `group` one after another: each joins, consumes for a lifetime, commits and leaves."""
    rng = random.Random(seed)
    while not run.stop.is_set():
        consumer = Consumer({"bootstrap.servers": run.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                             "partition.assignment.strategy": strategy, "auto.commit.interval.ms": 1000,
                             # librdkafka closes a cooperative member that holds no partition without
                             # a LeaveGroup: the group waits for its session to expire.
                             "session.timeout.ms": 10_000, "heartbeat.interval.ms": 1000})
        consumer.subscribe([*RETAINED, COMPACTED], on_assign=lambda _consumer, _partitions: run.tally.add("assigned"))
        run.tally.add("joined")
        leave_at = time.monotonic() + rng.uniform(*lifetime_s)
        while time.monotonic() < leave_at and not run.stop.is_set():
            for message in consumer.consume(500, 0.2):
                if message.error():
                    run.tally.fail(f"consume in {group}", message.error())
                else:
                    run.tally.add("consumed")
        closing = time.monotonic()
        consumer.close()
        run.tally.add("left")
        run.tally.observe(f"member close in {group} (s)", time.monotonic() - closing)
        run.stop.wait(rng.uniform(0.2, 1.0))


def topic_churn(run: Run, period_s: float) -> None:
    """Creates a topic, produces to it with acks=all, deletes it; again and again."""
    admin = AdminClient({"bootstrap.servers": run.bootstrap})

    def delivered(err: KafkaError | None, _message: Message) -> None:
        if err is not None:
            run.tally.fail("churn produce", err)

    n = 0
    while not run.stop.is_set():
        topic, n = f"soak-churn-{n}", n + 1
        try:
            ensure_topic(run.bootstrap, topic, 2, Deadline(CLIENT_TIMEOUT_S))
            run.tally.add("topics_created")
            # A producer of its own each time: one that outlived the topic would go on asking
            # for its metadata, and might have it created again.
            producer = Producer({"bootstrap.servers": run.bootstrap, "acks": "all", "allow.auto.create.topics": False})
            for i in range(20):
                producer.produce(topic, b"%d" % i, on_delivery=delivered)
            if producer.flush(CLIENT_TIMEOUT_S):
                run.tally.fail("churn produce", f"{len(producer)} records to {topic} not acknowledged")
            admin.delete_topics([topic], operation_timeout=CLIENT_TIMEOUT_S)[topic].result(CLIENT_TIMEOUT_S)
            run.tally.add("topics_deleted")
        except (KafkaException, SystemExit) as e:  # SystemExit: ensure_topic's deadline passed
            run.tally.fail(f"topic churn ({topic})", e)
        run.stop.wait(period_s)


def transactions(run: Run, period_s: float, seed: int) -> None:
    """Transactions of TRANSACTION_RECORDS records, one in three aborted; each record says
    which its transaction was meant to be."""
    rng = random.Random(seed)
    config = {"bootstrap.servers": run.bootstrap, "transactional.id": "soak-transactions", "transaction.timeout.ms": 30_000}
    producer = Producer(config)
    producer.init_transactions(CLIENT_TIMEOUT_S)
    n = 0
    while not run.stop.is_set():
        commit, n = rng.random() >= 1 / 3, n + 1
        try:
            producer.begin_transaction()
            for i in range(TRANSACTION_RECORDS):
                producer.produce(TRANSACTIONAL, b"%s-%d-%d" % (b"commit" if commit else b"abort", n, i), b"%d" % i)
            if commit:
                producer.commit_transaction(CLIENT_TIMEOUT_S)
                run.tally.add("transactions_committed")
            else:
                producer.abort_transaction(CLIENT_TIMEOUT_S)
                run.tally.add("transactions_aborted")
        except KafkaException as e:
            run.tally.fail("transaction", e)
            producer = Producer(config)  # a fresh start bumps the epoch and aborts what was open
            producer.init_transactions(CLIENT_TIMEOUT_S)
        run.stop.wait(period_s)


class Probes:
    """The two latencies sampled: a probe produce and a Metadata round trip."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.producer = Producer({"bootstrap.servers": run.bootstrap, "acks": "all", "linger.ms": 0})
        self.host, port = run.bootstrap.rsplit(":", 1)
        self.port = int(port)
        self.connection = wire.connect(self.host, self.port, CLIENT_TIMEOUT_S)
        self.correlation_id = 0

    def produce_ms(self) -> float | None:
        acknowledged: list[tuple[KafkaError | None, float]] = []
        sent = time.perf_counter()
        self.producer.produce(PROBE, b"probe", on_delivery=lambda err, _m: acknowledged.append((err, time.perf_counter())))
        self.producer.flush(CLIENT_TIMEOUT_S)
        if not acknowledged or acknowledged[0][0] is not None:
            self.run.tally.fail("probe produce", acknowledged[0][0] if acknowledged else "not acknowledged in time")
            return None
        self.run.tally.add("probe_produces")
        return (acknowledged[0][1] - sent) * 1000

    def metadata_ms(self) -> float | None:
        self.correlation_id += 1
        sent = time.perf_counter()
        try:
            wire.round_trip(self.connection, wire.metadata_request(self.correlation_id), self.correlation_id)
        except OSError as e:
            self.run.tally.fail("probe metadata", repr(e))
            self.connection.close()
            self.connection = wire.connect(self.host, self.port, CLIENT_TIMEOUT_S)
            return None
        self.run.tally.add("probe_metadata")
        return (time.perf_counter() - sent) * 1000

    def close(self) -> None:
        self.connection.close()
        self.producer.flush(CLIENT_TIMEOUT_S)


def directory_usage(path: Path) -> tuple[float, int]:
    """MB in the files under `path`, and how many files there are."""
    total = count = 0
    for root, _dirs, files in os.walk(path):
        count += len(files)
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:  # deleted by retention while we looked
                pass
    return total / 1e6, count


def read_to_end(bootstrap: str, topic: str, partitions: int, isolation: str) -> list[Message]:
    """Every record of the topic from its log start offset up to its end (the last stable
    offset for read_committed)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"soak-check-{topic}", "enable.auto.commit": False,
                         "enable.partition.eof": True, "isolation.level": isolation})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    records, at_end = [], set()
    deadline = Deadline(120)
    while len(at_end) < partitions:
        deadline.check(f"reading {topic} to its end")
        for message in consumer.consume(1000, 0.5):
            if message.error() is None:
                records.append(message)
            elif message.error().code() == KafkaError._PARTITION_EOF:
                at_end.add(message.partition())
            else:
                raise KafkaException(message.error())
    consumer.close()
    return records


def check_what_remains(run: Run) -> dict[str, Any]:
    """What retention, the cleaner and the transactions left in the topics, checked against what was sent."""
    checks: dict[str, Any] = {}
    consumer = Consumer({"bootstrap.servers": run.bootstrap, "group.id": "soak-check-watermarks"})
    checks["retained_log_start_offsets"] = {
        f"{topic}-{p}": consumer.get_watermark_offsets(TopicPartition(topic, p), CLIENT_TIMEOUT_S)[0]
        for topic in RETAINED for p in range(PARTITIONS)}
    compacted_span = sum(high - low for low, high in (
        consumer.get_watermark_offsets(TopicPartition(COMPACTED, p), CLIENT_TIMEOUT_S) for p in range(PARTITIONS)))
    consumer.close()
    latest: dict[bytes, bytes | None] = {}
    compacted = read_to_end(run.bootstrap, COMPACTED, PARTITIONS, "read_uncommitted")
    for message in compacted:
        latest[message.key()] = message.value()
    checks["compacted_records_removed"] = compacted_span - len(compacted)
    checks["compacted_keys_wrong"] = sorted(k.decode() for k in set(latest) | set(run.last_acked)
                                            if latest.get(k, b"missing") != run.last_acked.get(k, b"never acknowledged"))
    committed = read_to_end(run.bootstrap, TRANSACTIONAL, PARTITIONS, "read_committed")
    checks["transactional_records_read"] = len(committed)
    checks["transactional_records_expected"] = run.tally.counts["transactions_committed"] * TRANSACTION_RECORDS
    checks["aborted_records_read"] = sum(1 for m in committed if m.value().startswith(b"abort"))
    return checks


def check_failures(checks: dict[str, Any]) -> list[str]:
    failures = []
    if not any(offset > 0 for offset in checks["retained_log_start_offsets"].values()):
        failures.append("retention never moved a log start offset")
    if checks["compacted_records_removed"] <= 0:
        failures.append("the cleaner removed no record of the compacted topic")
    if checks["compacted_keys_wrong"]:
        failures.append(f"after compaction, not the last acknowledged value: keys {checks['compacted_keys_wrong'][:10]}")
    if checks["transactional_records_read"] != checks["transactional_records_expected"] or checks["aborted_records_read"]:
        failures.append(f"read_committed read {checks['transactional_records_read']} records, "
                        f"{checks['transactional_records_expected']} expected, {checks['aborted_records_read']} of them aborted")
    return failures


def trend(samples: list[Sample], field: str, warmup_s: float) -> dict[str, float | None]:
    """Medians of the first and last tenth after the warm-up, and the slope (per hour) of a least-squares line."""
    points = [(s.seconds, getattr(s, field)) for s in samples if s.seconds >= warmup_s and getattr(s, field) is not None]
    if len(points) < 2:
        return {"first": None, "last": None, "slope_per_hour": None}
    tenth = max(1, len(points) // 10)
    slope = statistics.linear_regression([t for t, _ in points], [v for _, v in points]).slope
    return {"first": statistics.median(v for _, v in points[:tenth]), "last": statistics.median(v for _, v in points[-tenth:]),
            "slope_per_hour": slope * 3600}


def flatness_failures(trends: dict[str, dict[str, float | None]], args: argparse.Namespace) -> list[str]:
    failures = []
    for field, limit, unit in (("rss_mb", args.max_rss_growth_mb, "MB"), ("open_files", args.max_open_files_growth, "files")):
        first, last = trends[field]["first"], trends[field]["last"]
        if first is None or last is None:
            failures.append(f"{field}: too few samples after the warm-up")
        elif last - first > limit:
            failures.append(f"{field} grew by {last - first:.1f} {unit} from the first to the last tenth (bound {limit} {unit})")
    for field in ("produce_ms", "metadata_ms"):
        first, last = trends[field]["first"], trends[field]["last"]
        if first is not None and last is not None and last > first * args.max_latency_ratio + args.latency_slack_ms:
            failures.append(f"{field} went from {first:.1f} to {last:.1f} ms "
                            f"(bound {args.max_latency_ratio} x first + {args.latency_slack_ms} ms)")
    return failures


def plot(samples: list[Sample], warmup_s: float, title: str, path: Path) -> bool:
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s.seconds / 60 for s in samples]
    figure, (rss, files, latency) = plt.subplots(3, 1, figsize=(11, 9), sharex=True)
    rss.plot(minutes, [s.rss_mb for s in samples], color="C0")
    rss.set_ylabel("RSS (MB)")
    rss.set_ylim(bottom=0)
    files.plot(minutes, [s.open_files for s in samples], color="C1")
    files.set_ylabel("open files")
    files.set_ylim(bottom=0)
    for field, label, colour in (("produce_ms", "probe produce, acks=all", "C2"), ("metadata_ms", "Metadata, all topics", "C3")):
        latency.plot(minutes, [getattr(s, field) for s in samples], ".", markersize=3, label=label, color=colour)
    latency.set_yscale("log")
    latency.set_ylabel("latency (ms)")
    latency.set_xlabel("minutes")
    latency.legend(fontsize=8)
    for ax in (rss, files, latency):
        ax.axvspan(0, warmup_s / 60, color="grey", alpha=0.15)
        ax.grid(alpha=0.3)
    rss.set_title(title + " (grey: warm-up)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


@contextmanager
def kafkapy(data_dir: Path) -> Iterator[RunningBroker]:
    overrides = " ".join(f"--override {shlex.quote(f'{k}={v}')}" for k, v in BROKER_OVERRIDES.items())
    with RunningBroker(BrokerSpec("kafkapy", template=f"{KAFKAPY_TEMPLATE} {overrides}"), data_dir) as broker:
        yield broker


def soak(args: argparse.Namespace, broker: RunningBroker) -> tuple[list[Sample], Run]:
    duration_s, rng = args.minutes * 60, random.Random(args.seed)
    run = Run(broker.bootstrap, threading.Event(), Tally(), args.rate, {})
    deadline = Deadline(CLIENT_TIMEOUT_S)
    for topic in RETAINED:
        ensure_topic(run.bootstrap, topic, PARTITIONS, deadline, config=RETAINED_CONFIG)
    ensure_topic(run.bootstrap, COMPACTED, PARTITIONS, deadline, config=COMPACTED_CONFIG)
    ensure_topic(run.bootstrap, TRANSACTIONAL, PARTITIONS, deadline)
    ensure_topic(run.bootstrap, PROBE, 1, deadline)
    probes = Probes(run)
    threads = [worker(run, "produce", lambda: produce(run)),
               worker(run, "topic churn", lambda: topic_churn(run, 1.0)),
               worker(run, "transactions", lambda: transactions(run, 1.0, rng.randrange(1 << 30))),
               worker(run, "steady member", lambda: group_member_churn(run, "soak-steady", "range", (1e9, 1e9), 0))]
    for i, (group, strategy) in enumerate([("soak-eager", "range,roundrobin")] * 2 + [("soak-cooperative", "cooperative-sticky")] * 2):
        seed = rng.randrange(1 << 30)
        threads.append(worker(run, f"member churn {i}",
                              lambda g=group, s=strategy, seed=seed: group_member_churn(run, g, s, (2.0, 6.0), seed)))
    samples = []
    started = time.monotonic()
    next_at = started
    while (now := time.monotonic()) < started + duration_s and broker.alive():
        run.stop.wait(next_at - now)
        next_at += args.sample_seconds
        memory, open_files, cpu = broker.memory(), broker.open_files(), broker.cpu_seconds()
        assert memory is not None and open_files is not None and cpu is not None
        samples.append(Sample(time.monotonic() - started, memory["rss_mb"], open_files, probes.produce_ms(), probes.metadata_ms(),
                              cpu, *directory_usage(broker.data_dir), os.getloadavg()[0]))
        if args.progress and len(samples) % max(1, int(60 / args.sample_seconds)) == 0:
            last = samples[-1]
            print(f"{last.seconds / 60:5.1f} min  RSS {last.rss_mb:6.1f} MB  {last.open_files:4d} files  produce {last.produce_ms or 0:6.1f} ms  "
                  f"metadata {last.metadata_ms or 0:6.1f} ms  data {last.data_mb:5.1f} MB in {last.data_files} files  failures {len(run.tally.failures)}", flush=True)
    if not broker.alive():
        run.tally.fail("broker", f"the broker exited during the run:\n{broker.log_tail()}")
    run.stop.set()
    for thread in threads:
        thread.join(2 * CLIENT_TIMEOUT_S)
        if thread.is_alive():
            run.tally.fail(thread.name, "did not stop")
    probes.close()
    return samples, run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--rate", type=float, default=200, help="records per second into each produced topic")
    parser.add_argument("--sample-seconds", type=float, help="default: 5, or less for a run under 15 minutes")
    parser.add_argument("--warmup-seconds", type=float, help="left out of the trends; default: 2 minutes or a quarter of a shorter run")
    parser.add_argument("--max-rss-growth-mb", type=float, default=25)
    parser.add_argument("--max-open-files-growth", type=float, default=25)
    parser.add_argument("--max-latency-ratio", type=float, default=3, help="last tenth's median latency at most this times the first's ...")
    parser.add_argument("--latency-slack-ms", type=float, default=20, help="... plus this")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--progress", action="store_true", help="a line every minute")
    args = parser.parse_args(argv)
    duration_s = args.minutes * 60
    if args.sample_seconds is None:
        args.sample_seconds = min(5.0, max(0.5, duration_s / 180))
    if args.warmup_seconds is None:
        args.warmup_seconds = min(120.0, duration_s / 4)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kafkapy-soak-") as scratch, kafkapy(Path(scratch) / "data") as broker:
        samples, run = soak(args, broker)
        checks = check_what_remains(run) if broker.alive() else {}
    counts = {kind: run.tally.counts[kind] for kind in OPERATIONS}
    trends = {field: trend(samples, field, args.warmup_seconds) for field in SERIES}
    failures = run.tally.failures + [f"no {kind} at all" for kind, n in counts.items() if n == 0]
    failures += (check_failures(checks) if checks else []) + flatness_failures(trends, args)
    stem = args.out / f"soak-{datetime.date.today().isoformat()}"
    args.out.mkdir(parents=True, exist_ok=True)
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(samples[0]))) if samples else None
        if writer:
            writer.writeheader()
            writer.writerows(asdict(s) for s in samples)
    summary = {"minutes": args.minutes, "samples": len(samples), "sample_seconds": args.sample_seconds,
               "warmup_seconds": args.warmup_seconds, "rate_per_topic": args.rate, "broker_overrides": BROKER_OVERRIDES,
               "retained_topic_config": RETAINED_CONFIG, "compacted_topic_config": COMPACTED_CONFIG,
               "bounds": {"rss_growth_mb": args.max_rss_growth_mb, "open_files_growth": args.max_open_files_growth,
                          "latency": f"last <= {args.max_latency_ratio} x first + {args.latency_slack_ms} ms"},
               "operations": counts, "slowest": run.tally.slowest, "checks": checks, "trends": trends, "failures": failures,
               "cpu_seconds": samples[-1].cpu_seconds if samples else None, "python": sys.version.split()[0]}
    stem.with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n")
    title = f"kafkapy soak, {args.minutes:g} min, {datetime.date.today().isoformat()}"
    plotted = plot(samples, args.warmup_seconds, title, stem.with_suffix(".png")) if samples else False
    print(report(summary, trends, failures))
    print(f"wrote {stem}.csv, {stem}.json" + (f", {stem}.png" if plotted else " (no plot: matplotlib, the bench extra, is not installed)"))
    return 1 if failures else 0


def report(summary: dict[str, Any], trends: dict[str, dict[str, float | None]], failures: list[str]) -> str:
    lines = [f"soak of {summary['minutes']:g} min: {summary['samples']} samples every {summary['sample_seconds']:g} s, "
             f"first {summary['warmup_seconds']:g} s left out as warm-up",
             "operations: " + ", ".join(f"{kind} {n}" for kind, n in summary["operations"].items()),
             "slowest: " + ", ".join(f"{kind} {s:.1f}" for kind, s in sorted(summary["slowest"].items()))]
    checks = summary["checks"]
    if checks:
        lines.append(f"retention: log start offsets {sorted(checks['retained_log_start_offsets'].values())}; "
                     f"compaction removed {checks['compacted_records_removed']} records; read_committed read "
                     f"{checks['transactional_records_read']} of {checks['transactional_records_expected']} committed records")
    lines.append(f"{'':12} {'first tenth':>12} {'last tenth':>12} {'slope/hour':>12}   (medians after the warm-up)")
    for field, values in trends.items():
        cells = ["-" if v is None else f"{v:.2f}" for v in values.values()]
        lines.append(f"{field:12} {cells[0]:>12} {cells[1]:>12} {cells[2]:>12}")
    lines.append(f"bounds: RSS +{summary['bounds']['rss_growth_mb']} MB, open files +{summary['bounds']['open_files_growth']}, "
                 f"latency {summary['bounds']['latency']}")
    lines += [f"FAILED: {f}" for f in failures[:50]] or ["flat, and every operation succeeded"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
