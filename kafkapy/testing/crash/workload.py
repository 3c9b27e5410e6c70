"""The workload whose file operations the checker replays: a real broker in this process
(flush.messages=1 for every topic, so an acknowledgement always follows the fsync that
covered it), driven by confluent-kafka, while a Recorder writes the trace. A compacted
topic is written key by key, overwritten and tombstoned while the cleaner swaps its
cleaned segments in, pass after pass. Each thing
the broker acknowledged is noted with the trace's length when the client saw the
acknowledgement: every crash state from that point on must keep it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ...log.files import read_checkpoint_file
from ...log.manager import CLEANER_OFFSETS
from ...log.swaps import CLEANED_SUFFIX, SWAP_SUFFIX
from ..embedded import Broker
from .trace import Link, Op, Recorder

GROUP = "crash-group"
TRANSACTIONAL_ID = "crash-txn"
PLAIN, RETAINED, DOOMED, COMPACTED = "plain", "retained", "doomed", "compacted"
COMPACTED_KEYS = 4

BROKER_SETTINGS: dict[str, Any] = {
    "log.flush.interval.messages": 1,
    "offsets.topic.num.partitions": 1,
    "transaction.state.log.num.partitions": 1,
    "log.segment.delete.delay.ms": 0,
    "log.retention.check.interval.ms": 100,
    "group.initial.rebalance.delay.ms": 0,
    # Small, so that the metadata log is snapshotted and cleaned during the workload.
    "metadata.log.max.record.bytes.between.snapshots": 2048,
    "log.cleaner.backoff.ms": 50,
}


@dataclass(frozen=True)
class Acked:
    mark: int
    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None


@dataclass(frozen=True)
class Transaction:
    mark: int
    """When EndTxn was answered; -1 for one never ended (the crash came first)."""
    committed: bool
    records: tuple[Acked, ...]


@dataclass
class Workload:
    ops: list[Op]
    acked: list[Acked] = field(default_factory=list)
    commits: list[tuple[int, str, int, int]] = field(default_factory=list)
    """(mark, topic, partition, offset) of each offset commit the coordinator answered."""
    transactions: list[Transaction] = field(default_factory=list)
    created: list[tuple[int, str]] = field(default_factory=list)
    deleted: list[tuple[int, int, str]] = field(default_factory=list)
    """(mark when DeleteTopics was sent, mark when it was answered, topic)."""
    cleaned: list[tuple[int, int]] = field(default_factory=list)
    """(mark, offset the next clean of the compacted topic starts from) after each clean seen."""


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the workload waited too long for {what}")
        time.sleep(0.02)


def clean_points(ops: list[Op]) -> list[int]:
    """Every crash point of each clean's swap: from its first `.cleaned` file made to just
    after the last `.swap` file took its live name (and the directory fsync after it),
    the old segments' renames to `.deleted` included. Where a crash leaves a swap half done."""
    windows: list[tuple[int, int]] = []
    start: int | None = None
    swapped: int | None = None
    for i, op in enumerate(ops):
        if not isinstance(op, Link):
            continue
        if op.name.endswith(CLEANED_SUFFIX) and (start is None or swapped is not None):
            if start is not None and swapped is not None:
                windows.append((start, swapped))
            start, swapped = i, None
        elif op.source is not None and op.source[1].endswith(SWAP_SUFFIX):
            swapped = i
    if start is not None and swapped is not None:
        windows.append((start, swapped))
    return [point for first, last in windows for point in range(first + 1, min(last + 3, len(ops) + 1))]


def _cleaner_offset(data_dir: Path) -> int:
    """Where the next clean of the compacted topic starts, from the cleaner's checkpoint (0: never cleaned)."""
    entries = read_checkpoint_file(data_dir / CLEANER_OFFSETS, lambda fields: (fields[0], int(fields[1]), int(fields[2])))
    return max((offset for topic, partition, offset in entries if (topic, partition) == (COMPACTED, 0)), default=0)


def _cleaned_past(data_dir: Path, offset: int) -> bool:
    return _cleaner_offset(data_dir) >= offset


def run_workload(data_dir: Path, records_per_producer: int = 12) -> Workload:
    """Runs the whole workload on a fresh broker in `data_dir` and returns its trace and
    what was acknowledged when."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    data_dir.mkdir(parents=True, exist_ok=True)
    with Recorder(data_dir) as recorder:
        result = Workload(recorder.ops)
        broker = Broker(data_dir, **BROKER_SETTINGS).start()
        try:
            servers = {"bootstrap.servers": broker.bootstrap_servers}
            admin = AdminClient({**servers, "log_level": 0})
            topics = [NewTopic(PLAIN, 2, 1, config={"segment.bytes": "600"}),
                      NewTopic(RETAINED, 1, 1, config={"segment.bytes": "300", "retention.bytes": "300"}),
                      NewTopic(DOOMED, 1, 1),
                      # Segments of a few batches, cleaned as soon as anything is dirty.
                      NewTopic(COMPACTED, 1, 1, config={"cleanup.policy": "compact", "segment.bytes": "250",
                                                         "min.cleanable.dirty.ratio": "0.01"})]
            for name, future in admin.create_topics(topics, operation_timeout=10).items():
                future.result(timeout=20)
                result.created.append((recorder.mark(), name))

            def producer(settings: dict[str, Any], into: list[Acked]) -> Producer:
                def delivered(error: Any, message: Any) -> None:
                    assert error is None, error
                    into.append(Acked(recorder.mark(), message.topic(), message.partition(), message.offset(),
                                      message.value(), message.key()))
                return Producer({**servers, "log_level": 0, "linger.ms": 0, "on_delivery": delivered, **settings})

            for kind, settings in (("acks1", {"acks": 1, "enable.idempotence": False}),
                                   ("idempotent", {"enable.idempotence": True})):
                p = producer(settings, result.acked)
                for i in range(records_per_producer):
                    p.produce(PLAIN, f"{kind}-{i}".encode(), partition=i % 2)
                    p.produce(RETAINED, f"{kind}-retained-{i}".encode() * 4)
                    p.flush(10)

            consumer = Consumer({**servers, "log_level": 0, "group.id": GROUP, "auto.offset.reset": "earliest",
                                 "enable.auto.commit": False})
            consumer.subscribe([PLAIN])
            consumed = 0
            deadline = time.monotonic() + 20
            while consumed < records_per_producer and time.monotonic() < deadline:
                message = consumer.poll(0.2)
                if message is None or message.error():
                    continue
                consumed += 1
                if consumed % 3 == 0:
                    committed = consumer.commit(asynchronous=False)
                    for tp in committed:
                        result.commits.append((recorder.mark(), tp.topic, tp.partition, tp.offset))
            consumer.close()
            assert consumed >= records_per_producer, f"the group consumed {consumed} records"

            _compact(producer, result, recorder.mark, data_dir, records_per_producer)

            for commit in (True, False):
                in_txn: list[Acked] = []
                txn = producer({"transactional.id": TRANSACTIONAL_ID}, in_txn)
                txn.init_transactions(10)
                txn.begin_transaction()
                for i in range(3):
                    txn.produce(PLAIN, f"txn-{'commit' if commit else 'abort'}-{i}".encode(), partition=i % 2)
                txn.flush(10)
                (txn.commit_transaction if commit else txn.abort_transaction)(10)
                result.transactions.append(Transaction(recorder.mark(), commit, tuple(in_txn)))

            # After the transactions, enough records to roll the segments that hold them.
            p = producer({"acks": 1, "enable.idempotence": False}, result.acked)
            for i in range(records_per_producer):
                p.produce(PLAIN, f"after-{i}".encode() * 8, partition=i % 2)
                p.flush(10)

            requested = recorder.mark()
            for name, future in admin.delete_topics([DOOMED], operation_timeout=10).items():
                future.result(timeout=20)
                result.deleted.append((requested, recorder.mark(), name))

            probe = Consumer({**servers, "log_level": 0, "group.id": "crash-probe"})
            _wait_for(lambda: probe.get_watermark_offsets(TopicPartition(RETAINED, 0), timeout=5)[0] > 0,
                      "retention to delete a segment of " + RETAINED)
            probe.close()
        finally:
            broker.stop()
    return result


def _compact(producer: Callable[[dict[str, Any], list[Acked]], Any], result: Workload, mark: Callable[[], int],
             data_dir: Path, records_per_producer: int) -> None:
    """Rounds of writes to the compacted topic's keys, each followed by a clean: every key
    overwritten, one tombstoned and one written again after its tombstone."""
    rounds = max(records_per_producer // 3, 2)
    for round_ in range(rounds):
        p = producer({"acks": "all", "enable.idempotence": round_ % 2 == 0}, result.acked)
        for k in range(COMPACTED_KEYS):
            tombstone = k == round_ % COMPACTED_KEYS
            p.produce(COMPACTED, None if tombstone else f"k{k}-r{round_}".encode() * 3, key=f"k{k}".encode())
            p.flush(10)
        # Closes the segment holding the round's last record, for the clean to reach it.
        p.produce(COMPACTED, f"filler-r{round_}".encode() * 30, key=b"filler")
        p.flush(10)
        end = max(a.offset for a in result.acked if a.topic == COMPACTED)
        _wait_for(partial(_cleaned_past, data_dir, end), f"the cleaner to clean {COMPACTED} up to {end}")
        result.cleaned.append((mark(), _cleaner_offset(data_dir)))
