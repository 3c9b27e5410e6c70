"""Compacted topics: the cleaner keeps the latest record of each key and, once
delete.retention.ms has passed, drops the keys deleted by a tombstone; a record without a
key is refused."""

from __future__ import annotations

import time

from ..adapters.base import Record
from ..checks import assert_equal, refused_with
from ..registry import Context, scenario

KEYS = 100
VERSIONS = 10
DELETED = frozenset(range(0, KEYS, 10))
# Records of this key roll the active segment (older than segment.ms) so that the records
# before become cleanable, and make the log dirty again for the cleaning that drops tombstones.
NUDGE_KEY = b"nudge"
# Small segments, cleanable at once, and a ratio low enough for a nudge to make the log
# dirty: the cleaner works as soon as it looks (every log.cleaner.backoff.ms, 15s by
# default in Kafka).
COMPACTED = {
    "cleanup.policy": "compact", "segment.bytes": "16384", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.001",
    "min.compaction.lag.ms": "0", "delete.retention.ms": "100",
}
CLEANING_WAIT_S = 60.0


def key(k: int) -> bytes:
    return b"key-%03d" % k


def version(k: int, v: int) -> bytes:
    return b"key %d version %d " % (k, v) + b"." * 100


LATEST = {key(k): version(k, VERSIONS - 1) for k in range(KEYS) if k not in DELETED}
DELETED_KEYS = {key(k) for k in DELETED}


def what_differs(consumed: list[Record]) -> str | None:
    """How the consumed records differ from one record per live key, its latest version."""
    values: dict[bytes | None, list[bytes | None]] = {}
    for r in consumed:
        if r.key != NUDGE_KEY:
            values.setdefault(r.key, []).append(r.value)
    stale = sorted(k for k, latest in LATEST.items() if k in values and values[k] != [latest])
    deleted = sorted(values.keys() & DELETED_KEYS)  # type: ignore[type-var]
    missing = sorted(LATEST.keys() - values.keys())
    if not (stale or deleted or missing):
        return None
    return (f"{len(stale)} keys with other records than their latest (first {stale[:3]}), "
            f"{len(deleted)} deleted keys still present (first {deleted[:3]}), {len(missing)} live keys missing")


@scenario("compaction.latest_values", deadline=CLEANING_WAIT_S + 30)
def latest_values(ctx: Context) -> None:
    """Ten versions of 100 keys, then tombstones for ten of them, in a compacted topic with
    small segments: once cleaned, a consumer reads exactly the latest version of each live
    key, and no deleted key once delete.retention.ms has passed."""
    topic = ctx.topic()
    ctx.create_topic(topic, 1, COMPACTED)
    for v in range(VERSIONS):
        ctx.client.produce(topic, [Record(key(k), version(k, v), partition=0) for k in range(KEYS)])
    ctx.client.produce(topic, [Record(key(k), None, partition=0) for k in sorted(DELETED)])

    deadline = time.monotonic() + CLEANING_WAIT_S
    while True:
        time.sleep(0.5)
        [nudge] = ctx.client.produce(topic, [Record(NUDGE_KEY, b"", partition=0)])
        difference = what_differs(ctx.client.consume(topic, {0: nudge.offset + 1}))  # type: ignore[operator]
        if difference is None:
            return
        assert time.monotonic() < deadline, f"not compacted within {CLEANING_WAIT_S:g}s: {difference}"


@scenario("compaction.keyless_refused")
def keyless_refused(ctx: Context) -> None:
    """A record without a key is refused by a compacted topic with INVALID_RECORD and not
    stored; a keyed record then is, at offset 0."""
    topic = ctx.topic()
    ctx.create_topic(topic, 1, {"cleanup.policy": "compact"})

    with refused_with("INVALID_RECORD"):
        ctx.client.produce(topic, [Record(None, b"without a key", partition=0)])

    [acked] = ctx.client.produce(topic, [Record(b"key", b"with a key", partition=0)])
    assert_equal(acked.offset, 0, "offset of the keyed record")
    assert_equal(ctx.client.watermarks(topic, 0), (0, 1), "(earliest, latest) offsets")
