"""Transactions: read_committed consumers see committed transactions only; a
consume-transform-produce worker killed within a transaction and restarted yields each
input exactly once; fencing; transactions across broker restarts; the timeout limit."""

from __future__ import annotations

import time
from typing import Any

from ...testing.process import wait_until
from ..adapters.base import BROKER, READ_COMMITTED, TIMEOUT_S, Client, Membership, Record
from ..checks import assert_equal, assert_same_records, end_offsets, refused_with
from ..child import Channel, Child
from ..registry import Context, scenario

PARTITIONS = 2
# Short, so that the broker aborts an abandoned transaction well within a consumer's wait.
ABANDONED_TRANSACTION_TIMEOUT_MS = 5000


def records(label: str, count: int) -> list[Record]:
    return [Record(b"k%d" % i, b"%s %d" % (label.encode(), i), partition=i % PARTITIONS) for i in range(count)]


def ends(ctx: Context, topic: str) -> dict[int, int]:
    return {p: ctx.client.watermarks(topic, p)[1] for p in range(PARTITIONS)}


@scenario("transactions.commit_and_abort")
def commit_and_abort(ctx: Context) -> None:
    """Of three transactions over two partitions (committed, aborted, committed),
    read_committed consumers see the records of the committed ones only; read_uncommitted
    consumers see all three."""
    topic = ctx.topic()
    ctx.create_topic(topic, PARTITIONS)
    producer = ctx.client.producer(transactional_id=topic)
    sent: dict[str, list[Record]] = {}
    try:
        for label in ("committed", "aborted", "committed again"):
            producer.begin()
            sent[label] = producer.produce(topic, records(label, 20))
            if label == "aborted":
                producer.abort()
            else:
                producer.commit()
    finally:
        producer.close()
    everything = [r for batch in sent.values() for r in batch]
    for reader in [ctx.client, *ctx.others]:
        assert_same_records(reader.consume(topic, end_offsets(everything), isolation=READ_COMMITTED),
                            sent["committed"] + sent["committed again"], f"{reader.name}, read_committed")
        assert_same_records(reader.consume(topic, end_offsets(everything)), everything, f"{reader.name}, read_uncommitted")


def transformed(r: Record) -> Record:
    return Record(r.key, b"out:" + (r.value or b""), partition=r.partition)


def transformer(client: Client, spec: dict[str, Any], channel: Channel) -> None:
    """The child's program: consume-transform-produce. It reads the input topic in its
    group and, for each batch polled, in one transaction writes each record transformed
    to the same partition of the output topic and commits the batch's offsets. With
    stall_at it stops within that transaction (counted from 0), after producing and adding
    the offsets, and says so: the parent kills it there. Command: close."""
    consumer = client.group_consumer(Membership(group=spec["group"], topic=spec["input"], isolation=READ_COMMITTED))
    producer = client.producer(transactional_id=spec["transactional_id"])

    def close() -> None:
        consumer.close()
        producer.close()

    transactions = 0
    while True:
        for command, _ in channel.commands():
            if command == "close":
                channel.answer(close)
                return
        batch = consumer.poll(0.1)
        if not batch:
            continue
        producer.begin()
        producer.produce(spec["output"], [transformed(r) for r in batch])
        producer.send_offsets(consumer, end_offsets(batch))
        if transactions == spec.get("stall_at"):
            channel.emit({"stalled": len(batch)})
            while True:
                time.sleep(1)
        producer.commit()
        transactions += 1
        channel.emit({"committed": len(batch)})


@scenario("transactions.exactly_once_transform")
def exactly_once_transform(ctx: Context) -> None:
    """A consume-transform-produce worker (a child process) committing its input offsets
    with send_offsets_to_transaction is killed (SIGKILL) within a transaction and restarted
    with the same transactional.id: the output holds each input transformed exactly once
    for read_committed consumers, while read_uncommitted ones also see the killed transaction's."""
    source, sink = ctx.topic(), ctx.topic()
    for topic in (source, sink):
        ctx.create_topic(topic, PARTITIONS)
    spec = {"group": source, "input": source, "output": sink, "transactional_id": source}

    def worker(name: str, **options: Any) -> Child:
        return Child(f"{__name__}:transformer", ctx.client.name, ctx.client.bootstrap, {**spec, **options}, name,
                     ctx.client.security)

    first = ctx.client.produce(source, records("first", 100))
    with worker("killed worker", stall_at=1) as killed:
        killed.wait_until(lambda: any("committed" in e for e in killed.events), TIMEOUT_S, "first transaction")
        second = ctx.client.produce(source, records("second", 200))
        stalled = killed.wait_until(lambda: next((e["stalled"] for e in killed.events if "stalled" in e), 0),
                                    TIMEOUT_S, "records in a transaction")
        killed.kill()
    with worker("restarted worker") as restarted:
        def caught_up() -> bool:
            restarted.check()
            return {p: c.offset for (_, p), c in ctx.client.group_offsets(source).items()} == end_offsets(first + second)

        wait_until(caught_up, TIMEOUT_S, message="the group's committed offsets to reach the end of the input")
        restarted.close()

    expected = sorted(transformed(r).value for r in first + second)  # type: ignore[type-var]
    output = ctx.client.consume(sink, ends(ctx, sink), isolation=READ_COMMITTED)
    assert_equal(sorted(r.value for r in output), expected, "values read_committed from the output")  # type: ignore[type-var]
    assert_equal(len(ctx.client.consume(sink, ends(ctx, sink))), len(expected) + stalled,
                 "number of records read_uncommitted from the output (the killed transaction's included)")


@scenario("transactions.fencing")
def fencing(ctx: Context) -> None:
    """A second producer with the same transactional.id fences the first: the first's
    transaction is aborted and its commit refused (PRODUCER_FENCED or INVALID_PRODUCER_EPOCH),
    while the second's commits."""
    topic = ctx.topic()
    ctx.create_topic(topic, PARTITIONS)
    zombie = ctx.client.producer(transactional_id=topic)
    try:
        zombie.begin()
        fenced = zombie.produce(topic, records("fenced", 10))
        successor = ctx.client.producer(transactional_id=topic)
        try:
            with refused_with("PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH"):
                zombie.commit()
            successor.begin()
            committed = successor.produce(topic, records("successor", 10))
            successor.commit()
        finally:
            successor.close()
    finally:
        zombie.close()
    assert_same_records(ctx.client.consume(topic, end_offsets(fenced + committed), isolation=READ_COMMITTED), committed)


@scenario("transactions.abort_after_restart", needs_broker_control=True)
def abort_after_restart(ctx: Context) -> None:
    """A transaction open across a broker restart can still be aborted: its records stay
    invisible to read_committed consumers, and the producer's next transaction commits."""
    assert ctx.broker is not None
    topic = ctx.topic()
    ctx.create_topic(topic, PARTITIONS)
    producer = ctx.client.producer(transactional_id=topic)
    try:
        producer.begin()
        aborted = producer.produce(topic, records("aborted", 20))
        ctx.broker.restart()
        producer.abort()
        producer.begin()
        committed = producer.produce(topic, records("committed", 20))
        producer.commit()
    finally:
        producer.close()
    assert_same_records(ctx.client.consume(topic, end_offsets(aborted + committed), isolation=READ_COMMITTED), committed)


@scenario("transactions.timeout_after_restart", needs_broker_control=True)
def timeout_after_restart(ctx: Context) -> None:
    """A transaction left open across a broker restart is aborted by the broker once its
    transaction.timeout.ms has passed: read_committed consumers then read past it, and see
    only the records written after it."""
    assert ctx.broker is not None
    topic = ctx.topic()
    ctx.create_topic(topic, PARTITIONS)
    abandoned = ctx.client.producer(transactional_id=topic, transaction_timeout_ms=ABANDONED_TRANSACTION_TIMEOUT_MS)
    try:
        abandoned.begin()
        abandoned.produce(topic, records("abandoned", 20))
        ctx.broker.restart()
        later = ctx.client.produce(topic, records("later", 20))
        assert_same_records(ctx.client.consume(topic, end_offsets(later), isolation=READ_COMMITTED), later)
    finally:
        abandoned.close()


@scenario("transactions.invalid_timeout")
def invalid_timeout(ctx: Context) -> None:
    """A transactional producer asking for a transaction timeout over the broker's
    transaction.max.timeout.ms is refused with INVALID_TRANSACTION_TIMEOUT; one asking for
    exactly that much is not."""
    broker_id = min(ctx.client.brokers())
    configs = ctx.client.describe_configs((BROKER, str(broker_id)))
    assert "transaction.max.timeout.ms" in configs, f"DescribeConfigs of broker {broker_id} lacks transaction.max.timeout.ms"
    limit = int(configs["transaction.max.timeout.ms"].value or 0)
    with refused_with("INVALID_TRANSACTION_TIMEOUT"):
        ctx.client.producer(transactional_id=ctx.topic(), transaction_timeout_ms=limit + 1).close()
    ctx.client.producer(transactional_id=ctx.topic(), transaction_timeout_ms=limit).close()

