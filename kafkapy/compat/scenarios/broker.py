"""What clients see when the broker itself changes: these scenarios act on the broker, so
they run only on one that the suite started."""

from __future__ import annotations

from ..adapters.base import SET, TOPIC, Record
from ..checks import assert_equal, assert_same_records, end_offsets, keyed_records, once_it_works
from ..registry import Context, scenario

PARTITIONS = 3


@scenario("broker.restart", needs_broker_control=True)
def restart(ctx: Context) -> None:
    """After a graceful broker restart, the client's open admin connection recovers (retried
    as an application would) and finds the topic with its partitions and configs; every record reads back as
    acknowledged and new ones follow at the next offsets."""
    assert ctx.broker is not None
    topic = ctx.topic()
    ctx.create_topic(topic, PARTITIONS, {"retention.ms": "3600000"})
    ctx.client.incremental_alter_configs((TOPIC, topic), [("segment.ms", SET, "600000")])
    before = ctx.client.produce(topic, keyed_records(3_000), "gzip")
    ends = end_offsets(before)

    ctx.broker.restart()

    partitions = once_it_works(lambda: ctx.client.partitions(topic), "describing the topic after the restart")
    assert_equal([p.index for p in partitions], list(range(PARTITIONS)), "partition indexes")
    configs = ctx.client.describe_configs((TOPIC, topic))
    assert_equal((configs["retention.ms"].value, configs["segment.ms"].value), ("3600000", "600000"),
                 "(retention.ms, segment.ms) set before the restart")
    assert_same_records(ctx.client.consume(topic, ends), before)
    after = ctx.client.produce(topic, [Record(b"k", b"after restart", partition=p) for p in range(PARTITIONS)])
    assert_equal([(r.partition, r.offset) for r in after], [(p, ends[p]) for p in range(PARTITIONS)],
                 "(partition, offset) of the first records after the restart")
