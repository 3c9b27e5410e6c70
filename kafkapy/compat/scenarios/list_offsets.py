"""ListOffsets: earliest, latest, and the first record at or after a time."""

from __future__ import annotations

from ..adapters.base import Record
from ..checks import assert_equal
from ..registry import Context, scenario

# Record timestamps in offset order, produced as three batches. They are not monotonic:
# offset 4 (5000) comes before offset 5 (4000).
BATCHES = [[1000, 2000, 2000], [3000, 5000], [4000, 6000]]
RECORD_COUNT = sum(map(len, BATCHES))

# Target timestamp -> the first offset whose timestamp is at or after it (None: none is).
FIRST_AT_OR_AFTER = {
    0: 0,
    1000: 0,  # exactly the first record
    1500: 1,  # between two records
    2000: 1,  # the first of two records with that timestamp
    2500: 3,  # between batches
    3000: 3,
    4000: 4,  # offset 4 (5000) is at or after 4000 and comes before offset 5 (4000) itself
    5500: 6,
    6000: 6,  # the last record
    6001: None,  # after the last record
}


@scenario("list_offsets.by_time")
def by_time(ctx: Context) -> None:
    """Offsets by time over three batches with out-of-order timestamps (exact hits, ties,
    gaps, past the end), and the earliest and latest offsets."""
    topic = ctx.topic()
    ctx.create_topic(topic, 1)
    offset = 0
    for timestamps in BATCHES:
        acked = ctx.client.produce(topic, [Record(b"k", b"%d" % ts, timestamp=ts, partition=0) for ts in timestamps])
        assert_equal([r.offset for r in acked], list(range(offset, offset + len(timestamps))), "offsets of a batch")
        offset += len(timestamps)

    found = {target: ctx.client.offset_for_time(topic, 0, target) for target in FIRST_AT_OR_AFTER}

    wrong = {t: f"{found[t]} (expected {expected})" for t, expected in FIRST_AT_OR_AFTER.items() if found[t] != expected}
    assert not wrong, f"first offset at or after timestamp, where wrong: {wrong}"
    assert_equal(ctx.client.watermarks(topic, 0), (0, RECORD_COUNT), "(earliest, latest) offsets")


@scenario("list_offsets.empty_partition")
def empty_partition(ctx: Context) -> None:
    """An empty partition's earliest and latest offsets are 0, and no offset is found by time."""
    topic = ctx.topic()
    ctx.create_topic(topic, 1)

    assert_equal(ctx.client.watermarks(topic, 0), (0, 0), "(earliest, latest) offsets")
    assert_equal(ctx.client.offset_for_time(topic, 0, 0), None, "offset at or after timestamp 0")
