"""Idempotent producers: many requests in flight and retries, and never a duplicate. The
batches the broker serves show the client really produced idempotently: one producer id,
sequence numbers that follow each other."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from ..adapters.base import Record
from ..checks import assert_equal, assert_same_records, end_offsets
from ..raw import served_batches
from ..registry import Context, scenario

PARTITIONS = 3
RECORDS = 6_000


def numbered(start: int, count: int) -> list[Record]:
    return [Record(b"k%d" % i, b"v%d" % i, partition=i % PARTITIONS) for i in range(start, start + count)]


def assert_in_order_once(ctx: Context, topic: str, acked: Sequence[Record]) -> None:
    """Each partition holds exactly the records acknowledged, in the order sent, at offsets
    from 0 without a gap, in batches of one producer whose sequence numbers follow each other."""
    for p in range(PARTITIONS):
        sent = [r for r in acked if r.partition == p]
        assert_equal([r.offset for r in sent], list(range(len(sent))), f"offsets of the records sent to partition {p}")
        batches = served_batches(ctx.client.bootstrap, topic, p, ctx.client.security)
        producers = {(b.producer_id, b.producer_epoch) for b in batches}
        assert len(producers) == 1 and min(producers)[0] >= 0, f"partition {p} has batches of producers (id, epoch) {producers}"
        sequences = [(b.base_sequence, b.records_count) for b in batches]
        gaps = [(a, b) for a, b in itertools.pairwise(sequences) if b[0] != a[0] + a[1]]
        assert sequences[0][0] == 0 and not gaps, f"partition {p}: sequences start at {sequences[0][0]}, breaks at {gaps[:3]}"
    assert_same_records(ctx.client.consume(topic, end_offsets(acked)), acked)


@scenario("idempotence.no_duplicates")
def no_duplicates(ctx: Context) -> None:
    """An idempotent producer sends 6000 records over three partitions, many requests in
    flight: each is stored once, in the order sent, with sequence numbers without a gap."""
    topic = ctx.topic()
    ctx.create_topic(topic, PARTITIONS)
    producer = ctx.client.producer()
    try:
        acked = producer.produce(topic, numbered(0, RECORDS))
    finally:
        producer.close()
    assert_in_order_once(ctx, topic, acked)


@scenario("idempotence.broker_restart", needs_broker_control=True)
def broker_restart(ctx: Context) -> None:
    """An idempotent producer goes on across a broker restart: the broker remembers its
    producer id and sequence numbers, so the records sent after follow those sent before,
    once each and in order, from the same producer."""
    assert ctx.broker is not None
    topic = ctx.topic()
    ctx.create_topic(topic, PARTITIONS)
    producer = ctx.client.producer()
    try:
        before = producer.produce(topic, numbered(0, RECORDS // 2))
        ctx.broker.restart()
        after = producer.produce(topic, numbered(RECORDS // 2, RECORDS // 2))
    finally:
        producer.close()
    assert_in_order_once(ctx, topic, before + after)
