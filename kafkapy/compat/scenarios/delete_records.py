"""DeleteRecords: moving a partition's log start forward."""

from __future__ import annotations

from ..adapters.base import Record
from ..checks import assert_equal, assert_same_records, refused_with
from ..registry import Context, scenario

RECORDS = 100
DELETE_BEFORE = 40


@scenario("delete_records.truncate")
def truncate(ctx: Context) -> None:
    """Deleting before an offset moves that partition's log start there and no other's;
    consumers below it restart from it; deleting past the end is refused with
    OFFSET_OUT_OF_RANGE, and deleting before -1 empties the partition."""
    topic = ctx.topic()
    ctx.create_topic(topic, 2)
    acked = ctx.client.produce(topic, [Record(b"k", b"%d" % i, partition=i % 2) for i in range(2 * RECORDS)])

    assert_equal(ctx.client.delete_records(topic, 0, DELETE_BEFORE), DELETE_BEFORE, "log start after deleting")

    assert_equal(ctx.client.watermarks(topic, 0), (DELETE_BEFORE, RECORDS), "(earliest, latest) offsets of partition 0")
    assert_equal(ctx.client.watermarks(topic, 1), (0, RECORDS), "(earliest, latest) offsets of partition 1")
    kept = [r for r in acked if r.partition == 1 or r.offset >= DELETE_BEFORE]  # type: ignore[operator]
    # Consumers asked for offset 0 of partition 0, now below its log start.
    assert_same_records(ctx.client.consume(topic, {0: RECORDS, 1: RECORDS}), kept)
    with refused_with("OFFSET_OUT_OF_RANGE"):
        ctx.client.delete_records(topic, 0, RECORDS + 1)
    assert_equal(ctx.client.delete_records(topic, 1, -1), RECORDS, "log start after deleting everything")
    assert_equal(ctx.client.watermarks(topic, 1), (RECORDS, RECORDS), "(earliest, latest) offsets of the emptied partition")
