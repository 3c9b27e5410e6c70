"""DescribeConfigs, IncrementalAlterConfigs and the legacy AlterConfigs, on topics and brokers."""

from __future__ import annotations

from ..adapters.base import APPEND, BROKER, DELETE, SET, SUBTRACT, TOPIC
from ..checks import assert_equal, refused_with
from ..registry import Context, scenario

DYNAMIC_TOPIC = "DYNAMIC_TOPIC_CONFIG"


def topic_values(ctx: Context, topic: str, *names: str) -> dict[str, tuple[str | None, str]]:
    configs = ctx.client.describe_configs((TOPIC, topic))
    missing = [n for n in names if n not in configs]
    assert not missing, f"DescribeConfigs of {topic} lacks {missing}"
    return {n: (configs[n].value, configs[n].source) for n in names}


@scenario("configs.describe_topic")
def describe_topic(ctx: Context) -> None:
    """A topic's configs list every key; those set at creation have their value and the
    source DYNAMIC_TOPIC_CONFIG, the others another source."""
    topic = ctx.topic()
    ctx.create_topic(topic, 1, {"retention.ms": "123456789", "cleanup.policy": "compact"})

    configs = ctx.client.describe_configs((TOPIC, topic))

    for name in ("retention.ms", "cleanup.policy", "max.message.bytes", "segment.bytes", "compression.type"):
        assert name in configs, f"DescribeConfigs of a topic lacks {name}"
    assert_equal((configs["retention.ms"].value, configs["retention.ms"].source), ("123456789", DYNAMIC_TOPIC), "retention.ms")
    assert_equal((configs["cleanup.policy"].value, configs["cleanup.policy"].source), ("compact", DYNAMIC_TOPIC), "cleanup.policy")
    others = {n: c.source for n, c in configs.items() if n not in ("retention.ms", "cleanup.policy") and c.source == DYNAMIC_TOPIC}
    assert not others, f"keys not set on the topic described as set on it: {others}"


@scenario("configs.describe_broker")
def describe_broker(ctx: Context) -> None:
    """A broker's configs include the size and topic defaults, and a new topic's defaults
    are those of the broker."""
    broker_id = min(ctx.client.brokers())
    topic = ctx.topic()
    ctx.create_topic(topic, 1)

    broker = ctx.client.describe_configs((BROKER, str(broker_id)))
    topic_configs = ctx.client.describe_configs((TOPIC, topic))

    for name in ("message.max.bytes", "num.partitions", "log.retention.ms", "auto.create.topics.enable"):
        assert name in broker, f"DescribeConfigs of broker {broker_id} lacks {name}"
    assert int(broker["message.max.bytes"].value or 0) > 0, f"message.max.bytes is {broker['message.max.bytes'].value!r}"
    assert_equal(topic_configs["max.message.bytes"].value, broker["message.max.bytes"].value,
                 "a new topic's max.message.bytes against the broker's message.max.bytes")


@scenario("configs.incremental_alter")
def incremental_alter(ctx: Context) -> None:
    """SET, DELETE, APPEND and SUBTRACT each change exactly what they name; an invalid value
    is refused with INVALID_CONFIG and changes nothing of its request."""
    topic = ctx.topic()
    ctx.create_topic(topic, 1, {"retention.ms": "3600000"})
    default_segment_ms = topic_values(ctx, topic, "segment.ms")["segment.ms"]

    ctx.client.incremental_alter_configs((TOPIC, topic), [("segment.ms", SET, "7200000"), ("retention.ms", DELETE, None)])
    got = topic_values(ctx, topic, "segment.ms", "retention.ms", "cleanup.policy")
    assert_equal(got["segment.ms"], ("7200000", DYNAMIC_TOPIC), "segment.ms after SET")
    assert got["retention.ms"][1] != DYNAMIC_TOPIC, f"retention.ms after DELETE is still set on the topic: {got['retention.ms']}"

    ctx.client.incremental_alter_configs((TOPIC, topic), [("cleanup.policy", APPEND, "compact")])
    assert_equal(topic_values(ctx, topic, "cleanup.policy")["cleanup.policy"], ("delete,compact", DYNAMIC_TOPIC),
                 "cleanup.policy after APPEND compact")
    ctx.client.incremental_alter_configs((TOPIC, topic), [("cleanup.policy", SUBTRACT, "delete")])
    assert_equal(topic_values(ctx, topic, "cleanup.policy")["cleanup.policy"], ("compact", DYNAMIC_TOPIC),
                 "cleanup.policy after SUBTRACT delete")

    with refused_with("INVALID_CONFIG"):
        ctx.client.incremental_alter_configs((TOPIC, topic), [("segment.ms", DELETE, None), ("retention.ms", SET, "soon")])
    assert_equal(topic_values(ctx, topic, "segment.ms")["segment.ms"], ("7200000", DYNAMIC_TOPIC),
                 "segment.ms after a refused request that would have deleted it")
    ctx.client.incremental_alter_configs((TOPIC, topic), [("segment.ms", DELETE, None)])
    assert_equal(topic_values(ctx, topic, "segment.ms")["segment.ms"], default_segment_ms, "segment.ms back to its default")


@scenario("configs.alter_legacy")
def alter_legacy(ctx: Context) -> None:
    """The legacy AlterConfigs sets the named configs of a topic; an invalid value is refused
    with INVALID_CONFIG."""
    topic = ctx.topic()
    ctx.create_topic(topic, 1)

    ctx.client.alter_configs((TOPIC, topic), {"retention.ms": "86400000", "segment.ms": "3600000"})

    got = topic_values(ctx, topic, "retention.ms", "segment.ms")
    assert_equal(got, {"retention.ms": ("86400000", DYNAMIC_TOPIC), "segment.ms": ("3600000", DYNAMIC_TOPIC)}, "configs set")
    with refused_with("INVALID_CONFIG"):
        ctx.client.alter_configs((TOPIC, topic), {"retention.ms": "soon"})
    assert_equal(topic_values(ctx, topic, "retention.ms")["retention.ms"], ("86400000", DYNAMIC_TOPIC),
                 "retention.ms after a refused request")
