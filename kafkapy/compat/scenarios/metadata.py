"""ApiVersions and Metadata: what a client learns about the cluster before anything else."""

from __future__ import annotations

from ..adapters.base import Record
from ..checks import assert_equal, end_offsets
from ..registry import Context, scenario

# The APIs every client needs for the simplest produce and consume.
ESSENTIAL_APIS = {0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 18: "ApiVersions"}
API_VERSIONS_KEY = 18


@scenario("metadata.api_versions")
def api_versions(ctx: Context) -> None:
    """The broker's ApiVersions lists the APIs every client needs, each with a valid range,
    and ApiVersions itself at v3 (KIP-511), which current clients open with."""
    versions = ctx.client.api_versions()

    missing = [name for key, name in ESSENTIAL_APIS.items() if key not in versions]
    assert not missing, f"ApiVersions does not list {missing}"
    invalid = {key: span for key, span in versions.items() if not 0 <= span[0] <= span[1]}
    assert not invalid, f"invalid version ranges (api key: (min, max)): {invalid}"
    assert versions[API_VERSIONS_KEY][1] >= 3, f"ApiVersions goes up to v{versions[API_VERSIONS_KEY][1]} only"


@scenario("metadata.cluster")
def cluster(ctx: Context) -> None:
    """The cluster has an id, brokers with addresses, and a controller among them."""
    found = ctx.client.cluster()

    assert found.cluster_id, f"no cluster id: {found.cluster_id!r}"
    assert found.brokers, "no brokers"
    bad = {node: address for node, address in found.brokers.items() if not address[0] or not 0 < address[1] < 65536}
    assert not bad, f"brokers with invalid addresses: {bad}"
    assert found.controller_id in found.brokers, f"controller {found.controller_id} is not among brokers {sorted(found.brokers)}"


@scenario("metadata.topic_partitions")
def topic_partitions(ctx: Context) -> None:
    """A new topic's partitions each have a leader among the brokers, which is also its only
    replica and in sync."""
    topic = ctx.topic()
    ctx.create_topic(topic, 3)

    partitions = ctx.client.partitions(topic)
    brokers = ctx.client.brokers()

    assert_equal([p.index for p in partitions], [0, 1, 2], "partition indexes")
    for p in partitions:
        assert p.leader in brokers, f"partition {p.index} has leader {p.leader}, not one of brokers {sorted(brokers)}"
        assert_equal((p.replicas, p.isr), ((p.leader,), (p.leader,)), f"(replicas, in-sync replicas) of partition {p.index}")


@scenario("metadata.auto_create_topic")
def auto_create_topic(ctx: Context) -> None:
    """Producing to a topic that does not exist creates it (auto.create.topics.enable, true
    by default), and the record is stored at offset 0."""
    topic = ctx.topic()

    try:
        [acked] = ctx.client.produce(topic, [Record(b"k", b"first record of an auto-created topic")])
    except Exception as e:
        created = "created it" if topic in ctx.client.topic_names() else "did not create it"
        raise AssertionError(f"producing to a topic that did not exist failed and {created}: {type(e).__name__}: {e}") from e

    assert_equal(acked.offset, 0, "offset of the first record")
    assert ctx.client.partitions(topic), f"{topic} has no partitions"
    [consumed] = ctx.client.consume(topic, end_offsets([acked]))
    assert_equal(consumed.value, acked.value, "value read back")
