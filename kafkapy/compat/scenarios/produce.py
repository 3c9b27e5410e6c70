"""Produce with acks=all and consume back: each codec, headers, null keys and values,
records near the size limit. Records produced by one client are read by every client."""

from __future__ import annotations

import functools
import random
from collections import defaultdict

from ..adapters.base import BROKER, COMPRESSIONS, TOPIC, Record
from ..checks import assert_equal, assert_same_records, end_offsets, keyed_records, refused_with
from ..raw import served_codecs
from ..registry import Context, scenario

PARTITIONS = 3
CODEC_RECORDS = 10_000


def keyed_round_trip(ctx: Context, compression: str) -> None:
    topic = ctx.topic()
    ctx.create_topic(topic, PARTITIONS)

    acked = ctx.client.produce(topic, keyed_records(CODEC_RECORDS), compression)

    offsets_by_partition: dict[int | None, list[int | None]] = defaultdict(list)  # acked: never None
    for r in acked:
        offsets_by_partition[r.partition].append(r.offset)
    assert_equal(set(offsets_by_partition), set(range(PARTITIONS)), "partitions the keys spread over")
    for partition, offsets in offsets_by_partition.items():
        assert offsets == list(range(len(offsets))), f"offsets of partition {partition} are not consecutive in send order"
    partitions_of_key: dict[bytes | None, set[int]] = defaultdict(set)
    for r in acked:
        partitions_of_key[r.key].add(r.partition)  # type: ignore[arg-type]
    assert all(len(p) == 1 for p in partitions_of_key.values()), "records with one key landed in several partitions"

    ends = end_offsets(acked)
    for reader in [ctx.client, *ctx.others]:
        consumed = reader.consume(topic, ends)
        assert_same_records(consumed, acked, reader.name)
        for partition, offsets in offsets_by_partition.items():
            assert [r.offset for r in consumed if r.partition == partition] == offsets, \
                f"{reader.name} did not fetch partition {partition} in offset order"
    for partition in range(PARTITIONS):
        codecs = served_codecs(ctx.client.bootstrap, topic, partition, ctx.client.security)
        # Producers send a batch uncompressed when compressing would not make it smaller.
        assert compression in codecs and codecs <= {"none", compression}, \
            f"partition {partition} serves batches compressed with {sorted(codecs)}, not {compression}"


for _codec in COMPRESSIONS:
    scenario(f"produce.codec_{_codec}", summary=(
        f"{CODEC_RECORDS:,} keyed records with headers, compression {_codec}: offsets consecutive per partition, "
        f"one partition per key, read back identically by every client, and served as {_codec} batches."
    ))(functools.partial(keyed_round_trip, compression=_codec))


@scenario("produce.null_key_and_value")
def null_key_and_value(ctx: Context) -> None:
    """Null and empty keys and values survive the round trip, distinct from each other."""
    topic = ctx.topic()
    ctx.create_topic(topic, 1)
    sent = [
        Record(key=None, value=b"value without key", partition=0),
        Record(key=b"key without value", value=None, partition=0),
        Record(key=b"", value=b"", partition=0),
        Record(key=None, value=b"", partition=0),
    ]

    acked = ctx.client.produce(topic, sent)

    assert_equal([r.offset for r in acked], list(range(len(sent))), "offsets")
    for reader in [ctx.client, *ctx.others]:
        consumed = reader.consume(topic, end_offsets(acked))
        assert_equal([(r.key, r.value) for r in consumed], [(r.key, r.value) for r in sent], f"read by {reader.name}")


@scenario("produce.headers")
def headers(ctx: Context) -> None:
    """Headers keep their order, duplicates, UTF-8 names, empty and binary values; records
    without headers have none."""
    topic = ctx.topic()
    ctx.create_topic(topic, 1)
    sent = [
        Record(b"k", b"no headers", (), partition=0),
        Record(b"k", b"one", (("name", b"value"),), partition=0),
        Record(b"k", b"duplicates", (("dup", b"1"), ("other", b"x"), ("dup", b"2"), ("dup", b"")), partition=0),
        Record(b"k", b"utf-8 and binary", (("clé-ü-ключ-鍵", bytes(range(256))), ("", b"empty name")), partition=0),
        Record(b"k", b"many", tuple((f"h{i:03d}", b"%d" % i) for i in range(200)), partition=0),
    ]

    acked = ctx.client.produce(topic, sent)

    for reader in [ctx.client, *ctx.others]:
        consumed = reader.consume(topic, end_offsets(acked))
        assert_equal([r.headers for r in consumed], [r.headers for r in sent], f"headers read by {reader.name}")


@scenario("produce.null_header_value")
def null_header_value(ctx: Context) -> None:
    """A header whose value is null reads back as null, not as empty."""
    topic = ctx.topic()
    ctx.create_topic(topic, 1)
    sent = [Record(b"k", b"v", (("null", None), ("empty", b"")), partition=0)]

    acked = ctx.client.produce(topic, sent)

    for reader in [ctx.client, *ctx.others]:
        [consumed] = reader.consume(topic, end_offsets(acked))
        assert_equal(consumed.headers, sent[0].headers, f"headers read by {reader.name}")


# A v2 batch holding one record adds 61 bytes of batch header and a few bytes of record
# framing (lengths as varints, attributes, deltas) to the key and value.
BATCH_OVERHEAD_BOUND = 100


@scenario("produce.large_message")
def large_message(ctx: Context) -> None:
    """A record just under the topic's max.message.bytes is stored and read back byte for
    byte; one just over it is refused with MESSAGE_TOO_LARGE."""
    topic = ctx.topic()
    ctx.create_topic(topic, 1)
    limit = int(ctx.client.describe_configs((TOPIC, topic))["max.message.bytes"].value or 0)
    broker_id = min(ctx.client.brokers())
    broker_limit = ctx.client.describe_configs((BROKER, str(broker_id)))["message.max.bytes"].value
    assert_equal(str(limit), broker_limit, "the topic's max.message.bytes (the broker's message.max.bytes by default)")
    # Random bytes, so that no codec could shrink them below the limit.
    payload = random.Random(limit).randbytes(limit - BATCH_OVERHEAD_BOUND)

    [acked] = ctx.client.produce(topic, [Record(b"big", payload, partition=0)])
    with refused_with("MESSAGE_TOO_LARGE", "RECORD_LIST_TOO_LARGE"):
        ctx.client.produce(topic, [Record(b"too big", payload + bytes(2 * BATCH_OVERHEAD_BOUND), partition=0)])

    assert_equal(ctx.client.watermarks(topic, 0), (0, 1), "watermarks: only the record under the limit is stored")
    for reader in [ctx.client, *ctx.others]:
        [consumed] = reader.consume(topic, end_offsets([acked]))
        assert consumed.value == payload, f"{reader.name} read {len(consumed.value or b'')} bytes back, not the {len(payload)} sent"
