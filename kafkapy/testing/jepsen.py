"""A Jepsen-style check of what a kafkapy cluster promises an acks=all producer: every
acknowledged record survives kills and network cuts, once, in order, and nothing
appears that was never sent.

A writer thread sends sequence numbers ("0", "1", ...) with confluent-kafka's idempotent
producer (acks=all) and records which were acknowledged, at which offset. A nemesis
thread meanwhile kills and restarts nodes (the partition's leader every other time) and,
where the target can, cuts the network between groups of nodes. At the end every node
is brought back, a consumer reads the whole topic, and `check` compares what was read
with what was acknowledged. The same scenario runs short in `make test` (in-process
cluster, kills and cuts) and long in benchmarks/jepsen.py (three processes, kill -9).

A value read twice is the broker's fault only if both copies carry the same producer id,
epoch and sequence: the broker should have known the second for a retry. librdkafka
makes copies of its own: when a message times out (message.timeout.ms) it drains and
bumps the producer's epoch, for every partition at once, and sends again the messages it
still holds for retry, renumbered from sequence 0 in the new epoch, even those whose first
send the broker wrote and could not acknowledge in time. Nothing ties the two sends
together any more, and Kafka appends both just the same. So the writer gives messages a
message.timeout.ms far beyond any failover, so that none times out, and
enable.gapless.guarantee, which turns the other epoch bump (after a batch failed for
good) into a fatal error: the writer then goes on with a new producer, whose records are
new ones. Duplicates the client made anyway are still reported, with the batch headers
of their copies, but not held against the broker.
"""

from __future__ import annotations

import bisect
import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from ..compat.raw import served_batches
from ..metadata.image import MetadataImage
from ..wire.records import BatchHeader
from .cluster import Cluster
from .process import BrokerProcess


class NemesisTarget(Protocol):
    """The cluster as the nemesis sees it."""

    node_ids: list[int]
    bootstrap_servers: str

    def is_running(self, node_id: int) -> bool: ...
    def kill(self, node_id: int) -> None: ...
    def restart(self, node_id: int) -> None: ...
    def leader_of(self, topic: str, partition: int) -> int | None: ...
    can_partition: bool

    def partition(self, *groups: set[int]) -> None: ...
    def heal(self) -> None: ...


@dataclass
class History:
    """What the writer sent and what it was told."""

    sent: int = 0
    acknowledged: dict[int, tuple[int, int]] = field(default_factory=dict)  # seq -> (partition, offset)
    acknowledged_at: dict[int, list[float]] = field(default_factory=dict)  # partition -> monotonic times
    failed: set[int] = field(default_factory=set)  # the producer said no: indeterminate
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class Copy:
    """One copy of a value in the log, with the producer fields of the batch it is in
    (None where the batch's header is unknown)."""

    partition: int
    offset: int
    producer_id: int | None = None
    producer_epoch: int | None = None
    sequence: int | None = None  # the record's own: its batch's base sequence plus its offset delta
    base_sequence: int | None = None

    def describe(self) -> str:
        return (f"{self.partition}@{self.offset} (producer {self.producer_id} epoch {self.producer_epoch} "
                f"base sequence {self.base_sequence}, sequence {self.sequence})")


@dataclass(frozen=True)
class Duplicate:
    """A value read more than once. Broker-side when two copies carry the same producer id,
    epoch and sequence (or a copy's producer fields are unknown): the broker should have
    answered DUPLICATE_SEQUENCE_NUMBER rather than append the second. Otherwise the client
    sent the value again under another epoch (librdkafka renumbers the records it still
    holds after an epoch bump) or another sequence, which no broker can tell from a new
    record: Kafka would append it too."""

    value: int
    status: str  # "acknowledged", "failed" (the producer said no) or "neither"
    copies: tuple[Copy, ...]

    @property
    def broker_side(self) -> bool:
        identities = [(c.producer_id, c.producer_epoch, c.sequence) for c in self.copies]
        unknown = any(c.producer_id is None or c.producer_id < 0 for c in self.copies)
        return unknown or len(set(identities)) < len(identities)

    @property
    def kind(self) -> str:
        if self.broker_side:
            return "same epoch and sequence"
        if len({c.producer_id for c in self.copies}) > 1:
            return "another producer"
        if len({c.producer_epoch for c in self.copies}) > 1:
            return "another epoch"
        return "another sequence in the same epoch"

    def describe(self) -> str:
        return f"{self.value} ({self.status}; {self.kind}): " + ", ".join(c.describe() for c in self.copies)


@dataclass
class Verdict:
    acknowledged: int
    read: int
    lost: list[int]
    duplicates: list[Duplicate]
    unexpected: list[str]
    out_of_order: list[tuple[int, int]]  # (seq read, seq read before it) in one partition

    @property
    def duplicated(self) -> list[int]:
        return [d.value for d in self.duplicates]

    @property
    def broker_duplicated(self) -> list[int]:
        return [d.value for d in self.duplicates if d.broker_side]

    @property
    def client_duplicated(self) -> list[int]:
        return [d.value for d in self.duplicates if not d.broker_side]

    @property
    def ok(self) -> bool:
        """Nothing the broker is to blame for: a value the client itself sent twice is not."""
        return not (self.lost or self.broker_duplicated or self.unexpected or self.out_of_order)

    def summary(self) -> str:
        return (f"{self.acknowledged} acknowledged, {self.read} read; lost {len(self.lost)}, duplicated "
                f"{len(self.broker_duplicated)} by the broker and {len(self.client_duplicated)} re-sent by the "
                f"client, never sent {len(self.unexpected)}, out of order {len(self.out_of_order)}")

    def details(self, limit: int = 20) -> str:
        lines = [f"lost (first {limit}): {self.lost[:limit]}", f"never sent: {self.unexpected[:limit]}",
                 f"out of order: {self.out_of_order[:limit]}"]
        kinds = Counter(f"{d.kind}, {d.status}" for d in self.duplicates)
        lines.append("duplicated values by kind and status: " + (", ".join(f"{k}: {n}" for k, n in sorted(kinds.items())) or "none"))
        lines += [f"duplicated {d.describe()}" for d in self.duplicates[:limit]]
        return "\n".join(lines)


def check(history: History, read: list[tuple[int, int, bytes | None]],
          batches: Mapping[int, Sequence[BatchHeader]] | None = None) -> Verdict:
    """`read`: (partition, offset, value) for every record of the topic, in offset order
    per partition; `batches`: the headers of each partition's batches in offset order,
    which tell who wrote each copy of a duplicated value."""
    copies: dict[int, list[tuple[int, int]]] = {}
    unexpected: list[str] = []
    in_log: list[tuple[int, int]] = []  # (partition, seq)
    for partition, offset, value in read:
        text = (value or b"").decode(errors="replace")
        if not text.isdigit() or int(text) >= history.sent:
            unexpected.append(text)
            continue
        seq = int(text)
        copies.setdefault(seq, []).append((partition, offset))
        in_log.append((partition, seq))
    duplicates = [Duplicate(seq, _status(history, seq), tuple(_copy(p, o, batches or {}) for p, o in found))
                  for seq, found in sorted(copies.items()) if len(found) > 1]
    resent = {d.value for d in duplicates if not d.broker_side}
    out_of_order: list[tuple[int, int]] = []
    last_in_partition: dict[int, int] = {}
    seen: set[int] = set()
    for partition, seq in in_log:
        again = seq in seen
        seen.add(seq)
        if again and seq in resent:
            continue  # the client's second send of it: where it lands says nothing of the broker
        previous = last_in_partition.get(partition)
        # The idempotent producer keeps its order within a partition: a record never
        # follows one sent after it.
        if previous is not None and seq < previous:
            out_of_order.append((seq, previous))
        last_in_partition[partition] = seq
    lost = sorted(seq for seq in history.acknowledged if seq not in copies)
    return Verdict(len(history.acknowledged), len(read), lost, duplicates, unexpected, out_of_order)


def _status(history: History, seq: int) -> str:
    if seq in history.acknowledged:
        return "acknowledged"
    return "failed" if seq in history.failed else "neither"


def _copy(partition: int, offset: int, batches: Mapping[int, Sequence[BatchHeader]]) -> Copy:
    headers = batches.get(partition, ())
    i = bisect.bisect_right(headers, offset, key=lambda h: h.base_offset) - 1
    if i < 0 or headers[i].last_offset < offset:
        return Copy(partition, offset)
    header = headers[i]
    sequence = header.base_sequence + (offset - header.base_offset) if header.base_sequence >= 0 else None
    return Copy(partition, offset, header.producer_id, header.producer_epoch, sequence, header.base_sequence)


# librdkafka's default: no message times out while a failover lasts, so the producer never
# bumps its epoch over messages it may have written already (see the module's docstring).
MESSAGE_TIMEOUT_MS = 300_000


class SequenceWriter:
    """Sends "0", "1", ... round the topic's partitions, acks=all and idempotent, until stopped."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, rate_per_s: float = 500.0,
                 message_timeout_ms: int = MESSAGE_TIMEOUT_MS) -> None:
        self.bootstrap, self.topic, self.partitions = bootstrap, topic, partitions
        self.message_timeout_ms = message_timeout_ms
        self.interval_s = 1.0 / rate_per_s
        self.history = History()
        self.errors: list[str] = []
        self._fatal = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jepsen-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 60.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _producer(self) -> Producer:
        return Producer({
            "bootstrap.servers": self.bootstrap, "enable.idempotence": True, "acks": "all", "enable.gapless.guarantee": True,
            "linger.ms": 5, "message.timeout.ms": self.message_timeout_ms, "retry.backoff.ms": 50,
            "topic.metadata.refresh.interval.ms": 1000, "error_cb": self._on_error,
        })

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self.errors.append(f"fatal: {error}")
            self._fatal.set()

    def _delivered(self, seq: int) -> Callable[[KafkaError | None, Message], None]:
        def report(error: KafkaError | None, message: Message) -> None:
            with self.history.lock:
                if error is None:
                    self.history.acknowledged[seq] = (message.partition() or 0, message.offset() or 0)
                    self.history.acknowledged_at.setdefault(message.partition() or 0, []).append(time.monotonic())
                else:
                    self.history.failed.add(seq)
                    if len(self.errors) < 20:
                        self.errors.append(str(error))
        return report

    def _run(self) -> None:
        producer = self._producer()
        next_send = time.monotonic()
        while not self._stop.is_set():
            seq = self.history.sent
            try:
                producer.produce(self.topic, str(seq).encode(), partition=seq % self.partitions, on_delivery=self._delivered(seq))
            except BufferError:
                producer.poll(0.05)
                continue
            self.history.sent += 1
            producer.poll(0)
            next_send += self.interval_s
            delay = next_send - time.monotonic()
            if delay > 0:
                producer.poll(delay)
            if self._fatal.is_set():
                # An idempotent producer that hit a fatal error takes nothing more: its
                # records in flight fail (indeterminate), and another one goes on.
                producer.flush(5)
                self._fatal.clear()
                producer = self._producer()
        producer.flush(35)


@dataclass
class NemesisLog:
    events: list[tuple[float, str]] = field(default_factory=list)
    leader_kills: list[float] = field(default_factory=list)  # monotonic times


class Nemesis:
    """Every `period_s`: kill a node (partition 0's leader every other time) and restart it
    after `down_s`; where the target can, every third action cuts a node off from the
    others for `down_s` instead (the leader every other time too)."""

    def __init__(self, target: NemesisTarget, topic: str, period_s: float, down_s: float, seed: int) -> None:
        self.target, self.topic, self.period_s, self.down_s = target, topic, period_s, down_s
        self.random = random.Random(seed)
        self.log = NemesisLog()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jepsen-nemesis", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(120)

    def _note(self, what: str) -> None:
        self.log.events.append((time.monotonic(), what))

    def _victim(self, nth: int) -> tuple[int, int | None]:
        """The partition's leader for the 0th, 2nd, 4th... action of a kind, a random node otherwise."""
        leader = self.target.leader_of(self.topic, 0)
        return (leader if nth % 2 == 0 and leader is not None else self.random.choice(self.target.node_ids)), leader

    def _run(self) -> None:
        round_ = kills = cuts = 0
        while not self._stop.wait(self.period_s):
            nodes = self.target.node_ids
            if self.target.can_partition and round_ % 3 == 2:
                victim, leader = self._victim(cuts)
                cuts += 1
                self.target.partition({victim}, set(nodes) - {victim})
                self._note(f"cut {victim} off" + (" (the leader)" if victim == leader else ""))
                self._stop.wait(self.down_s)
                self.target.heal()
                self._note("healed")
            else:
                victim, leader = self._victim(kills)
                kills += 1
                self.target.kill(victim)
                now = time.monotonic()
                if victim == leader:
                    self.log.leader_kills.append(now)
                self._note(f"killed {victim}" + (" (the leader)" if victim == leader else ""))
                self._stop.wait(self.down_s)
                self.target.restart(victim)
                self._note(f"restarted {victim}")
            round_ += 1


def failover_times(history: History, kills: list[float]) -> list[float]:
    """From each kill of partition 0's leader to the next acknowledgement of a record of
    partition 0."""
    acks = history.acknowledged_at.get(0, [])
    times = []
    for killed_at in kills:
        after = next((t for t in acks if t > killed_at), None)
        if after is not None:
            times.append(after - killed_at)
    return times


def read_topic(bootstrap: str, topic: str, partitions: int, timeout_s: float = 60.0) -> list[tuple[int, int, bytes | None]]:
    """Every record of the topic, up to each partition's high watermark as it is now."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"jepsen-check-{time.monotonic_ns()}",
                         "enable.auto.commit": False, "isolation.level": "read_uncommitted"})
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        positions = {p: -1 for p in range(partitions)}
        read: list[tuple[int, int, bytes | None]] = []
        deadline = time.monotonic() + timeout_s
        while any(positions[p] + 1 < ends[p] for p in range(partitions)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {len(read)} records; positions {positions}, ends {ends}")
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            partition, offset = message.partition() or 0, message.offset() or 0
            positions[partition] = offset
            read.append((partition, offset, message.value()))
        return read
    finally:
        consumer.close()


@dataclass
class RunOutcome:
    sent: int
    verdict: Verdict
    nemesis: NemesisLog
    failovers_s: list[float]
    writer_errors: list[str]

    def summary(self) -> str:
        text = f"{self.verdict.summary()}; {len(self.nemesis.events)} nemesis events, {len(self.nemesis.leader_kills)} leader kills"
        if self.failovers_s:
            text += (f"; failover (leader kill to next acknowledgement) median {statistics.median(self.failovers_s):.2f} s, "
                     f"max {max(self.failovers_s):.2f} s")
        return text


def run(target: NemesisTarget, topic: str, partitions: int, *, duration_s: float, period_s: float, down_s: float,
        seed: int = 0, rate_per_s: float = 500.0, message_timeout_ms: int = MESSAGE_TIMEOUT_MS) -> RunOutcome:
    """The topic must exist (replication factor 3, min.insync.replicas 2 for the promise)."""
    writer = SequenceWriter(target.bootstrap_servers, topic, partitions, rate_per_s, message_timeout_ms)
    nemesis = Nemesis(target, topic, period_s, down_s, seed)
    writer.start()
    nemesis.start()
    time.sleep(duration_s)  # the length of the scenario, not a wait for anything
    nemesis.stop()
    for node_id in target.node_ids:
        if not target.is_running(node_id):
            target.restart(node_id)
    target.heal()
    writer.stop()
    read = read_topic(target.bootstrap_servers, topic, partitions)
    verdict = check(writer.history, read)
    if verdict.duplicates:
        # Who wrote each copy is in its batch's header, which no consumer shows.
        address = target.bootstrap_servers.split(",")[0]
        batches = {p: served_batches(address, topic, p) for p in {c.partition for d in verdict.duplicates for c in d.copies}}
        verdict = check(writer.history, read, batches)
    return RunOutcome(writer.history.sent, verdict, nemesis.log, failover_times(writer.history, nemesis.log.leader_kills),
                      writer.errors)


class InProcessTarget:
    """A kafkapy.Cluster: kills, restarts and network cuts."""

    can_partition = True

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.node_ids = list(cluster.nodes)

    @property
    def bootstrap_servers(self) -> str:
        return self.cluster.bootstrap_servers

    def is_running(self, node_id: int) -> bool:
        return self.cluster.nodes[node_id].running

    def kill(self, node_id: int) -> None:
        self.cluster.kill(node_id)

    def restart(self, node_id: int) -> None:
        self.cluster.restart(node_id)

    def leader_of(self, topic: str, partition: int) -> int | None:
        for node in self.cluster.nodes.values():
            if node.running:
                leader = node.read(lambda s: _leader_in(s.broker.image, topic, partition) if s.broker else None)
                if leader is not None:
                    return int(leader)
        return None

    def partition(self, *groups: set[int]) -> None:
        self.cluster.partition(*groups)

    def heal(self) -> None:
        self.cluster.heal()


class ProcessTarget:
    """kafkapy processes (testing.process.cluster_processes): kill -9 and restarts."""

    can_partition = False

    def __init__(self, processes: list[BrokerProcess]) -> None:
        self.processes = {i: p for i, p in enumerate(processes, start=1)}
        self.node_ids = list(self.processes)

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(p.bootstrap for p in self.processes.values())

    def is_running(self, node_id: int) -> bool:
        return self.processes[node_id].running

    def kill(self, node_id: int) -> None:
        self.processes[node_id].kill()

    def restart(self, node_id: int) -> None:
        self.processes[node_id].start()

    def leader_of(self, topic: str, partition: int) -> int | None:
        live = ",".join(p.bootstrap for p in self.processes.values() if p.running)
        try:
            metadata = AdminClient({"bootstrap.servers": live}).list_topics(topic, timeout=5)
        except KafkaException:
            return None
        known = metadata.topics.get(topic)
        found = known.partitions.get(partition) if known is not None else None
        return found.leader if found is not None and found.leader >= 0 else None

    def partition(self, *groups: set[int]) -> None:
        raise NotImplementedError("processes are killed, not cut off")

    def heal(self) -> None:
        pass


def _leader_in(image: MetadataImage, topic: str, partition: int) -> int | None:
    known = image.topics.get(topic)
    found = known.partitions.get(partition) if known is not None else None
    return found.leader if found is not None and found.leader >= 0 else None
