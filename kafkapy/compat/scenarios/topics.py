"""CreateTopics, DeleteTopics, CreatePartitions."""

from __future__ import annotations

from ...testing.process import wait_until
from ..adapters.base import TIMEOUT_S, Record
from ..checks import assert_equal, assert_same_records, end_offsets, refused_with
from ..registry import Context, scenario


@scenario("topics.create_and_delete")
def create_and_delete(ctx: Context) -> None:
    """A topic is created with its configs, listed, deleted, then unknown; created again
    under the same name, it starts empty."""
    topic = ctx.topic()
    ctx.client.create_topic(topic, 2, {"retention.ms": "3600000"})
    assert topic in ctx.client.topic_names(), f"{topic} is not listed after its creation"
    assert_equal(ctx.client.describe_configs(("topic", topic))["retention.ms"].value, "3600000", "retention.ms")
    acked = ctx.client.produce(topic, [Record(b"k", b"before deletion", partition=p) for p in (0, 1)])
    assert_equal(end_offsets(acked), {0: 1, 1: 1}, "end offsets")

    ctx.client.delete_topic(topic)

    wait_until(lambda: topic not in ctx.client.topic_names(), TIMEOUT_S, message=f"{topic} to leave the topic list")
    with refused_with("UNKNOWN_TOPIC_OR_PARTITION"):
        ctx.client.partitions(topic)
    ctx.client.create_topic(topic, 1)
    assert_equal(ctx.client.watermarks(topic, 0), (0, 0), "(earliest, latest) offsets of the re-created topic")


@scenario("topics.refusals")
def refusals(ctx: Context) -> None:
    """Creating an existing topic, creating one with an invalid config, and deleting an
    unknown one are refused with Kafka's error codes."""
    topic = ctx.topic()
    ctx.client.create_topic(topic, 1)

    with refused_with("TOPIC_ALREADY_EXISTS"):
        ctx.client.create_topic(topic, 1)
    with refused_with("INVALID_CONFIG"):
        ctx.client.create_topic(ctx.topic(), 1, {"cleanup.policy": "no-such-policy"})
    with refused_with("UNKNOWN_TOPIC_OR_PARTITION"):
        ctx.client.delete_topic(ctx.topic())


@scenario("topics.create_partitions")
def create_partitions(ctx: Context) -> None:
    """Growing a topic from 1 to 3 partitions keeps partition 0's records and makes the new
    partitions writable from offset 0; shrinking is refused."""
    topic = ctx.topic()
    ctx.client.create_topic(topic, 1)
    before = ctx.client.produce(topic, [Record(b"k", b"%d" % i, partition=0) for i in range(5)])

    ctx.client.create_partitions(topic, 3)

    assert_equal([p.index for p in ctx.client.partitions(topic)], [0, 1, 2], "partition indexes")
    after = ctx.client.produce(topic, [Record(b"k", b"new partition %d" % p, partition=p) for p in (1, 2)])
    assert_equal([(r.partition, r.offset) for r in after], [(1, 0), (2, 0)], "(partition, offset) of records in the new partitions")
    assert_same_records(ctx.client.consume(topic, end_offsets(before + after)), before + after)
    with refused_with("INVALID_PARTITIONS"):
        ctx.client.create_partitions(topic, 2)
