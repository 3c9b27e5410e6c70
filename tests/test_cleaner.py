"""The log cleaner (compaction), its choice of log, and its crash safety."""

import os
import random
from pathlib import Path

import pytest

from helpers import crash, open_log
from kafkapy.log.cleaner import CleanPlan, LogCleaner, filthiest, needs_cleaning, to_clean
from kafkapy.log.config import LogConfig
from kafkapy.log.manager import CLEANER_OFFSETS, LogManager, TopicPartition, read_checkpoint
from kafkapy.log.partition import PartitionLog
from kafkapy.log.segment import segment_name
from kafkapy.testing.crash.states import least_and_most, materialise, random_state
from kafkapy.testing.crash.trace import Recorder
from kafkapy.wire.compression import Codec
from kafkapy.wire.records import (
    CONTROL_COMMIT,
    DELETE_HORIZON_BIT,
    BatchHeader,
    Record,
    crc_ok,
    decode_records,
    encode_batch,
    encode_control_batch,
    read_header,
)

COMPACT = LogConfig(cleanup_policy=("compact",), segment_bytes=4_000, delete_retention_ms=10_000)
NOW = 1_000_000


@pytest.fixture(autouse=True)
def no_fsync(monkeypatch):
    """The crashes simulated here are process kills, which fsync does not change; skipping
    it keeps the many small logs of these tests fast."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


def release(log: PartitionLog, plan: CleanPlan | None = None) -> None:
    """Closes every file the log (and a plan for it) holds, as a killed process would."""
    crash(log)
    for cleaned, old in plan.replacements if plan else []:
        cleaned.close()
        for segment in old:
            segment.close()


def key(k: int) -> bytes:
    return b"key-%03d" % k


def produce(log: PartitionLog, items: list[tuple[bytes | None, bytes | None]], ts: int = 1_000, **batch: object) -> int:
    """Appends one batch of (key, value) records, a None value being a tombstone, and
    commits it (moves the high watermark); returns its base offset."""
    return append(log, encode_batch([Record(i, ts, k, v) for i, (k, v) in enumerate(items)], **batch), ts)  # type: ignore[arg-type]


def append(log: PartitionLog, batch: bytes, now: int = 1_000) -> int:
    base = log.append(batch, now, from_client=False).base_offset
    log.high_watermark = log.next_offset
    return base


def batches(log: PartitionLog) -> list[tuple[BatchHeader, bytes]]:
    return list(log.iter_batches())


def records(log: PartitionLog) -> list[Record]:
    return [r for h, data in log.iter_batches() if not h.is_control for r in decode_records(data, h)]


def latest_values(rs: list[Record]) -> dict[bytes | None, bytes | None]:
    return {r.key: r.value for r in rs}


def clean(log: PartitionLog, checkpoint: int | None = None, now: int = NOW, cleaner: LogCleaner | None = None) -> int | None:
    cleaner = cleaner or LogCleaner()
    return cleaner.commit(cleaner.prepare(to_clean(log, checkpoint, now), now), now)


def many_versions(log: PartitionLog, keys: int = 100, versions: int = 10, seed: int = 7) -> dict[bytes, tuple[int, bytes]]:
    """Writes `versions` values of each key in shuffled batches of ten; returns each
    key's latest (offset, value)."""
    rng = random.Random(seed)
    latest = {}
    for version in range(versions):
        order = list(range(keys))
        rng.shuffle(order)
        for first in range(0, keys, 10):
            items = [(key(k), b"v%d-%d" % (k, version)) for k in order[first : first + 10]]
            base = produce(log, items)
            for i, (k, v) in enumerate(items):
                latest[k] = (base + i, v)
    return latest


# What a clean keeps


def test_only_the_latest_value_of_each_key_remains_at_its_offset(opened, log_dir):
    log = opened(log_dir, COMPACT)
    latest = many_versions(log)
    log.roll(NOW)
    end = log.next_offset
    segments_before = len(log.segments)
    assert segments_before > 5

    assert clean(log) == end
    kept = records(log)
    assert [(r.offset, r.key, r.value) for r in kept] == sorted((o, k, v) for k, (o, v) in latest.items())
    assert log.next_offset == end
    assert all(crc_ok(data, 0, h) for h, data in batches(log))
    # Every segment was rewritten in place; the old files wait out file.delete.delay.ms.
    assert sorted(p.name for p in log_dir.glob("*.log")) == [segment_name(s.base_offset, ".log") for s in log.segments]
    assert len(list(log_dir.glob("*.log.deleted"))) == segments_before - 1
    assert not list(log_dir.glob("*.cleaned")) + list(log_dir.glob("*.swap"))
    log.remove_retired(NOW + COMPACT.file_delete_delay_ms)
    assert not list(log_dir.glob("*.deleted"))
    assert records(log) == kept


def test_reads_under_way_finish_from_the_replaced_files(opened, log_dir):
    log = opened(log_dir, COMPACT)
    many_versions(log, keys=20, versions=5)
    log.roll(NOW)
    in_flight = log.read(0, 1 << 20, log.next_offset, True)
    before = in_flight.read()
    clean(log)
    assert in_flight.read() == before
    assert log.read(0, 1 << 20, log.next_offset, True).read() != before


def test_the_active_segment_and_data_above_the_high_watermark_are_never_cleaned(opened, log_dir):
    log = opened(log_dir, COMPACT)
    produce(log, [(key(1), b"a"), (key(1), b"b")])
    log.roll(NOW)
    produce(log, [(key(2), b"a"), (key(2), b"b")])
    log.roll(NOW)
    produce(log, [(key(3), b"a"), (key(3), b"b")])
    log.high_watermark = 3  # inside the second segment: it is not committed yet
    clean(log)
    assert [(r.offset, r.value) for r in records(log)] == [(1, b"b"), (2, b"a"), (3, b"b"), (4, b"a"), (5, b"b")]
    log.high_watermark = log.next_offset
    clean(log, checkpoint=2)
    assert [(r.offset, r.value) for r in records(log)] == [(1, b"b"), (3, b"b"), (4, b"a"), (5, b"b")]


def test_a_clean_survives_reopening_cleanly_or_after_a_crash(tmp_path):
    for clean_shutdown in (True, False):
        directory = tmp_path / f"t-{int(clean_shutdown)}"
        log = open_log(directory, COMPACT)
        many_versions(log, keys=30, versions=4)
        log.roll(NOW)
        clean(log)
        kept, end = records(log), log.next_offset
        if clean_shutdown:
            log.close()
        else:
            release(log)
        log = open_log(directory, COMPACT, clean_shutdown=clean_shutdown, recovery_point=end)
        try:
            assert (records(log), log.next_offset) == (kept, end)
            for r in kept:
                first = read_header(log.read(r.offset, 1 << 20, end, True).read())
                assert first.base_offset <= r.offset <= first.last_offset
        finally:
            release(log)


def test_tombstones_stay_until_the_delete_horizon_then_go(opened, log_dir):
    log = opened(log_dir, COMPACT)
    produce(log, [(key(k), b"v%d" % k) for k in range(10)])
    produce(log, [(key(k), None) for k in range(5)], ts=2_000)
    log.roll(NOW)

    def filler(n: int) -> None:
        produce(log, [(b"filler-%d" % n, b"x")] * 20)
        log.roll(NOW)

    checkpoint = clean(log, now=NOW)
    horizon = NOW + COMPACT.delete_retention_ms
    tombstone_batch = next(h for h, data in batches(log) if any(r.value is None for r in decode_records(data, h)))
    assert tombstone_batch.attributes & DELETE_HORIZON_BIT and tombstone_batch.base_timestamp == horizon
    assert [(r.key, r.value, r.timestamp) for r in records(log)] == (
        [(key(k), b"v%d" % k, 1_000) for k in range(5, 10)] + [(key(k), None, 2_000) for k in range(5)]
    )

    filler(1)
    checkpoint = clean(log, checkpoint, now=horizon - 1)
    assert latest_values(records(log)) == {**{key(k): None for k in range(5)}, **{key(k): b"v%d" % k for k in range(5, 10)}, b"filler-1": b"x"}
    assert any(h.base_timestamp == horizon and h.attributes & DELETE_HORIZON_BIT for h, _ in batches(log))

    filler(2)
    clean(log, checkpoint, now=horizon)
    assert latest_values(records(log)) == {**{key(k): b"v%d" % k for k in range(5, 10)}, b"filler-1": b"x", b"filler-2": b"x"}


def test_min_compaction_lag_protects_recent_segments(opened, log_dir):
    config = LogConfig(cleanup_policy=("compact",), min_compaction_lag_ms=20_000)
    log = opened(log_dir, config)
    for version in range(2):
        produce(log, [(key(k), b"old-%d" % version) for k in range(5)], ts=1_000)
    log.roll(NOW)
    produce(log, [(key(k), b"new") for k in range(5)], ts=50_000)
    log.roll(NOW)

    target = to_clean(log, None, 60_000)
    assert target.first_uncleanable_offset == 10  # the recent segment's base
    LogCleaner().commit(LogCleaner().prepare(target, 60_000), 60_000)
    assert [(r.offset, r.value) for r in records(log)] == [(5 + k, b"old-1") for k in range(5)] + [(10 + k, b"new") for k in range(5)]

    assert to_clean(log, 10, 70_001).first_uncleanable_offset == 15
    clean(log, now=70_001)
    assert [(r.offset, r.value) for r in records(log)] == [(10 + k, b"new") for k in range(5)]


def test_max_compaction_lag_forces_a_clean_below_the_dirty_ratio(opened, log_dir):
    config = LogConfig(cleanup_policy=("compact",), min_cleanable_dirty_ratio=0.9, max_compaction_lag_ms=30_000)
    log = opened(log_dir, config)
    many_versions(log, keys=50, versions=1)
    log.roll(NOW)
    checkpoint = clean(log)
    produce(log, [(key(1), b"again")], ts=100_000)
    log.roll(NOW)

    assert needs_cleaning(log, checkpoint, 130_000) is None
    forced = needs_cleaning(log, checkpoint, 130_001)
    assert forced is not None and forced.needs_compaction_now
    assert forced.cleanable_ratio < 0.9
    LogCleaner().commit(LogCleaner().prepare(forced, 130_001), 130_001)
    assert [r.value for r in records(log) if r.key == key(1)] == [b"again"]


def test_dirty_ratio_threshold_and_the_filthiest_log(tmp_path):
    logs = {}
    for name, ratio in (("a", 0.5), ("b", 0.5), ("c", 0.3)):
        log = open_log(tmp_path / name, LogConfig(cleanup_policy=("compact",), min_cleanable_dirty_ratio=ratio, segment_bytes=600))
        many_versions(log, keys=30, versions=2)
        log.roll(NOW)
        logs[name] = log
    try:
        sizes = [s.size for s in logs["a"].segments]
        assert len(sizes) == 4 and sizes[-1] == 0  # three closed segments and an empty active one
        checkpoint = logs["a"].segments[2].base_offset
        target = to_clean(logs["a"], checkpoint, NOW)
        assert (target.clean_bytes, target.cleanable_bytes) == (sizes[0] + sizes[1], sizes[2])
        assert target.cleanable_ratio == pytest.approx(sizes[2] / sum(sizes))
        assert 0.3 < target.cleanable_ratio < 0.5
        assert needs_cleaning(logs["a"], checkpoint, NOW) is None
        assert needs_cleaning(logs["c"], checkpoint, NOW) == to_clean(logs["c"], checkpoint, NOW)

        picked = filthiest([(name, log, checkpoint if name != "b" else None) for name, log in logs.items()], NOW)
        assert picked is not None and picked[0] == "b" and picked[1].cleanable_ratio == 1.0
        assert needs_cleaning(logs["b"], logs["b"].next_offset, NOW) is None  # nothing dirty
        deleting = open_log(tmp_path / "d", LogConfig(segment_bytes=600))
        many_versions(deleting, keys=30, versions=2)
        deleting.roll(NOW)
        assert filthiest([("d", deleting, None)], NOW) is None  # only compacted topics are cleaned
        release(deleting)
    finally:
        for log in logs.values():
            release(log)


@pytest.mark.parametrize("codec", list(Codec), ids=lambda c: c.name)
def test_compressed_batches_are_recompressed_with_their_own_codec(opened, log_dir, codec):
    log = opened(log_dir, COMPACT)
    log.leader_epoch = 3
    produce(log, [(key(k), b"first-%d" % k) for k in range(10)], codec=codec, producer_id=9, producer_epoch=2, base_sequence=0)
    produce(log, [(key(k), b"second-%d" % k) for k in range(0, 10, 2)], codec=codec)
    produce(log, [(key(k), b"only-%d" % k) for k in range(20, 25)], codec=codec)
    log.roll(NOW)
    before = batches(log)
    clean(log)
    after = batches(log)

    assert [(h.base_offset, h.last_offset) for h, _ in after] == [(h.base_offset, h.last_offset) for h, _ in before]
    rewritten, second, third = after
    assert rewritten[0].codec == codec and rewritten[0].records_count == 5
    assert (rewritten[0].producer_id, rewritten[0].producer_epoch, rewritten[0].base_sequence) == (9, 2, 0)
    assert rewritten[0].partition_leader_epoch == 3
    assert crc_ok(rewritten[1], 0, rewritten[0])
    assert [r.value for r in decode_records(rewritten[1], rewritten[0])] == [b"first-%d" % k for k in range(1, 10, 2)]
    assert second == before[1] and third == before[2]  # kept whole: copied byte for byte


def test_headers_timestamps_and_log_append_time_are_kept(opened, log_dir):
    log = opened(log_dir, COMPACT)
    appended = [Record(i, 3_000, key(i), b"lat-%d" % i, (("h", b"%d" % i),)) for i in range(4)]
    append(log, encode_batch(appended, log_append_time=True, max_timestamp=777))
    created = [Record(i, 5_000 + 7 * i, key(i % 3), b"value-%d" % i, (("trace", b"t-%d" % i), ("empty", None))) for i in range(9)]
    append(log, encode_batch(created))
    log.roll(NOW)
    clean(log)

    assert records(log) == [Record(3, 777, key(3), b"lat-3", (("h", b"3"),))] + [
        Record(4 + r.offset, r.timestamp, r.key, r.value, r.headers) for r in created[6:]
    ]
    lat, create_time = (h for h, _ in batches(log))
    assert (lat.log_append_time, lat.max_timestamp, lat.base_offset, lat.last_offset) == (True, 777, 0, 3)
    assert (create_time.log_append_time, create_time.max_timestamp) == (False, 5_056)


def test_a_live_producers_last_batch_is_kept_empty(opened, log_dir):
    log = opened(log_dir, LogConfig(cleanup_policy=("compact",)))
    produce(log, [(key(1), b"a")], ts=NOW - 10, producer_id=7, producer_epoch=1, base_sequence=0)
    produce(log, [(key(2), b"a"), (key(3), b"a")], ts=NOW - 10, producer_id=7, producer_epoch=1, base_sequence=1)
    produce(log, [(key(4), b"a")], ts=1_000, producer_id=8, producer_epoch=0, base_sequence=0)  # expired
    produce(log, [(key(k), b"b") for k in range(1, 5)])
    log.roll(NOW)
    clean(log, cleaner=LogCleaner(producer_id_expiration_ms=60_000))

    kept = batches(log)
    assert [(h.base_offset, h.last_offset, h.records_count, h.producer_id) for h, _ in kept] == [(1, 2, 0, 7), (4, 7, 4, -1)]
    empty, data = kept[0]
    assert (empty.producer_epoch, empty.base_sequence, empty.last_sequence, empty.max_timestamp) == (1, 1, 2, NOW - 10)
    assert crc_ok(data, 0, empty) and decode_records(data, empty) == []


def test_keyless_records_go_and_the_last_batch_of_a_clean_stays(opened, log_dir):
    log = opened(log_dir, LogConfig())  # written while the topic was not compacted
    produce(log, [(key(1), b"a")])
    produce(log, [(None, b"x"), (None, b"y")])
    log.roll(NOW)
    produce(log, [(None, b"z")])
    log.config = COMPACT
    clean(log)
    assert [(h.base_offset, h.last_offset, h.records_count) for h, _ in batches(log)] == [(0, 0, 1), (1, 2, 0), (3, 3, 1)]
    assert log.next_offset == 4


def test_transactional_and_control_batches_are_left_as_they_are(opened, log_dir):
    log = opened(log_dir, COMPACT)
    produce(log, [(key(2), b"before the transaction")])
    produce(log, [(key(1), b"txn"), (key(2), b"txn")], producer_id=5, producer_epoch=0, base_sequence=0, transactional=True)
    append(log, encode_control_batch(CONTROL_COMMIT, offset=0, timestamp=1_000, producer_id=5, producer_epoch=0, coordinator_epoch=0))
    produce(log, [(key(1), b"plain"), (key(1), b"latest")])
    log.roll(NOW)
    before = batches(log)
    clean(log)
    after = batches(log)
    assert after[:3] == before[:3]  # transactional records neither replace others nor are replaced
    assert [r.value for r in decode_records(after[3][1], after[3][0])] == [b"latest"]


def test_a_full_key_map_cleans_part_of_the_log_and_the_next_clean_goes_on(opened, log_dir):
    log = opened(log_dir, COMPACT)
    latest = many_versions(log, keys=100, versions=3)
    log.roll(NOW)
    cleaner = LogCleaner(max_map_entries=30)
    checkpoints = [0]
    while checkpoints[-1] < log.active.base_offset:
        checkpoints.append(clean(log, checkpoints[-1], cleaner=cleaner))
    assert len(checkpoints) > 4 and checkpoints == sorted(set(checkpoints))
    clean(log, 0)  # one pass over the whole log with room for every key
    assert [(r.offset, r.key, r.value) for r in records(log)] == sorted((o, k, v) for k, (o, v) in latest.items())


def test_later_cleans_merge_shrunken_segments(opened, log_dir):
    log = opened(log_dir, COMPACT)
    latest = many_versions(log, keys=20, versions=20)
    log.roll(NOW)
    many = len(log.segments)
    clean(log)
    assert len(log.segments) == many  # each segment was as large as a group may be
    assert clean(log, 0) == log.active.base_offset
    assert len(log.segments) == 2  # now they fit one: the cleaned one and the active one
    assert [(r.offset, r.key) for r in records(log)] == sorted((o, k) for k, (o, _) in latest.items())


def test_appends_and_rolls_during_a_clean_are_kept(opened, log_dir):
    log = opened(log_dir, COMPACT)
    latest = many_versions(log, keys=20, versions=3)
    log.roll(NOW)
    cleaner = LogCleaner()
    plan = cleaner.prepare(to_clean(log, None, NOW), NOW)
    produce(log, [(key(0), b"during")])
    log.roll(NOW)
    produce(log, [(key(1), b"during")])
    assert cleaner.commit(plan, NOW) == plan.end_offset
    assert latest_values(records(log)) == {**{k: v for k, (_, v) in latest.items()}, key(0): b"during", key(1): b"during"}


def test_a_plan_overtaken_by_retention_or_deletion_is_dropped(opened, log_dir):
    log = opened(log_dir, COMPACT)
    many_versions(log)
    log.roll(NOW)
    before = records(log)
    cleaner = LogCleaner()
    plan = cleaner.prepare(to_clean(log, None, NOW), NOW)
    assert list(log_dir.glob("*.log.cleaned"))
    log.delete_segments(log.segments[:1], NOW)
    assert cleaner.commit(plan, NOW) is None
    assert not list(log_dir.glob("*.cleaned"))
    assert records(log) == [r for r in before if r.offset >= log.log_start_offset]

    plan = cleaner.prepare(to_clean(log, None, NOW), NOW)
    log.directory = log_dir.with_name("gone")  # as LogManager.delete leaves a deleted partition
    assert cleaner.commit(plan, NOW) is None
    assert not list(log_dir.glob("*.cleaned"))


def test_compact_delete_also_applies_retention(tmp_path):
    for policy, survivors in ((("compact",), 30), (("compact", "delete"), 10)):
        manager = LogManager([tmp_path / "-".join(policy)])
        manager.startup()
        log = manager.open(TopicPartition("t", 0), LogConfig(cleanup_policy=policy, retention_ms=60_000), 0)
        for ts in (1_000, 2_000, NOW):
            produce(log, [(key(k), b"%d" % ts) for k in range(10)], ts=ts)
            log.roll(NOW)
        manager.enforce_retention(NOW)
        assert len(records(log)) == survivors
        manager.shutdown()


# Crash safety


CRASH_CONFIG = LogConfig(cleanup_policy=("compact",), segment_bytes=800)


class Killed(Exception):
    """Stands for the process being killed at this point."""


def build_for_crash(directory: Path) -> tuple[PartitionLog, list[Record]]:
    log = open_log(directory, CRASH_CONFIG)
    many_versions(log, keys=20, versions=4, seed=3)
    produce(log, [(key(k), None) for k in range(0, 20, 5)])
    log.roll(NOW)
    return log, records(log)


def assert_consistent(directory: Path, original: list[Record], next_offset: int) -> list[Record]:
    """Reopens after a kill: every key's latest value is there, each record is the one
    written at its offset, the log reads back in order, and no leftover file remains."""
    log = PartitionLog.open(directory, CRASH_CONFIG, NOW, clean_shutdown=False)
    try:
        kept = records(log)
        by_offset = {r.offset: r for r in original}
        assert all(by_offset[r.offset] == r for r in kept)
        assert [r.offset for r in kept] == sorted({r.offset for r in kept})
        assert latest_values(kept) == latest_values(original)
        assert log.next_offset == next_offset
        assert all(crc_ok(data, 0, h) for h, data in batches(log))
        for r in kept:
            first = read_header(log.read(r.offset, 1 << 20, next_offset, True).read())
            assert first.base_offset <= r.offset <= first.last_offset
        assert sorted(p.name for p in directory.glob("*.log")) == [segment_name(s.base_offset, ".log") for s in log.segments]
        live = {segment_name(s.base_offset, kind) for s in log.segments for kind in (".log", ".index", ".timeindex", ".txnindex")}
        segment_files = {p.name for p in directory.iterdir() if p.name[:20].isdigit() and p.suffix != ".snapshot"}
        assert segment_files <= live
        return kept
    finally:
        release(log)


def test_a_kill_at_any_step_of_a_commit_loses_nothing(tmp_path, monkeypatch):
    cleaner = LogCleaner()
    kept_after = []
    step = 0
    while True:
        directory = tmp_path / f"run-{step}" / "t-0"
        log, original = build_for_crash(directory)
        end = log.next_offset
        plan = cleaner.prepare(to_clean(log, None, NOW), NOW)
        # A new segment's files are renamed twice (to .swap, then live), an old one's once.
        existing = [sum(path.exists() for _, path in s._files()) for new, old in plan.replacements for s in (new, *old)]
        new_files = sum(sum(path.exists() for _, path in new._files()) for new, _ in plan.replacements)
        renames_in_commit = sum(existing) + new_files
        renames = 0

        def rename(src, dst, *, real=os.rename, step=step):
            nonlocal renames
            if renames == step:
                raise Killed
            renames += 1
            real(src, dst)

        with monkeypatch.context() as patched:
            patched.setattr(os, "rename", rename)
            try:
                cleaner.commit(plan, NOW)
                finished = True
            except Killed:
                finished = False
        release(log, plan)
        kept_after.append(len(assert_consistent(directory, original, end)))
        if finished:
            break
        step += 1
    assert len(plan.replacements) > 2 and step == renames_in_commit
    assert kept_after[0] == len(original) and kept_after[-1] == 20  # nothing swapped in yet; all of it


def test_a_kill_before_the_commit_leaves_the_log_as_it_was(tmp_path):
    directory = tmp_path / "t-0"
    log, original = build_for_crash(directory)
    end = log.next_offset
    plan = LogCleaner().prepare(to_clean(log, None, NOW), NOW)
    cleaned = sorted(directory.glob("*.log.cleaned"))
    assert len(cleaned) == len(plan.replacements)
    os.truncate(cleaned[-1], cleaned[-1].stat().st_size // 2)  # as if killed while writing it
    release(log, plan)
    assert assert_consistent(directory, original, end) == original


def test_a_power_failure_at_any_point_of_a_clean_leaves_a_whole_log(tmp_path):
    """A kill leaves every write in place; a power failure keeps only what was fsynced and,
    of the rest, some prefix for each file and directory (kafkapy.testing.crash.states). At
    every crash point of a prepare and its commit, the least, the most and a random state
    that may survive reopen to a whole log: no half-swapped file, nothing twice, every
    key's latest value."""
    root = tmp_path / "root"
    root.mkdir()
    with Recorder(root) as recorder:
        log, original = build_for_crash(root / "t-0")
        end = log.next_offset
        log.flush(NOW)
        flushed = recorder.mark()
        cleaner = LogCleaner()
        plan = cleaner.prepare(to_clean(log, None, NOW), NOW)
        cleaner.commit(plan, NOW)
        release(log, plan)
    ops, rng = recorder.ops, random.Random(11)
    assert len(plan.replacements) > 2 and len(ops) - flushed > 10
    for point in range(flushed, len(ops) + 1):
        for n, state in enumerate((*least_and_most(ops, point), random_state(ops, point, rng))):
            into = tmp_path / f"state-{point}-{n}"
            into.mkdir()
            materialise(ops, state, into)
            try:
                assert_consistent(into / "t-0", original, end)
            except AssertionError as e:
                raise AssertionError(f"{state.describe(ops)}\n{e}") from e


# The log manager's part


def test_log_manager_picks_tracks_and_checkpoints_cleans(tmp_path):
    dirs = [tmp_path / "a", tmp_path / "b"]
    manager = LogManager(dirs)
    manager.startup()
    config = LogConfig(cleanup_policy=("compact",), segment_bytes=2_000, retention_ms=0)
    tps = [TopicPartition("c", p) for p in range(3)]
    for tp in tps:
        many_versions(manager.open(tp, config, 0), keys=20, versions=3 if tp.partition != 1 else 1)
    many_versions(manager.open(TopicPartition("d", 0), LogConfig(segment_bytes=2_000), 0), keys=20, versions=1)
    for log in manager.logs.values():
        log.roll(NOW)

    first = manager.grab_filthiest_compacted_log(NOW)
    second = manager.grab_filthiest_compacted_log(NOW)
    assert first is not None and second is not None and first[0] != second[0]
    tp, target = first
    target.log.delete_records_before(target.log.segments[1].base_offset)
    assert manager.enforce_retention(NOW) == 0  # retention waits for the clean
    cleaner = LogCleaner()
    end = cleaner.commit(cleaner.prepare(target, NOW), NOW)
    manager.done_cleaning(tp, target.log, end)
    assert read_checkpoint(manager.dir_of(tp) / CLEANER_OFFSETS) == {tp: end}
    assert manager.enforce_retention(NOW) == 1

    manager.done_cleaning(second[0], second[1].log, None)  # a clean that failed
    third = manager.grab_filthiest_compacted_log(NOW)
    assert third is not None and third[0] not in (tp, second[0])
    manager.done_cleaning(third[0], third[1].log, 0)
    assert manager.grab_filthiest_compacted_log(NOW)[0] == third[0]  # type: ignore[index]
    manager.shutdown()

    manager = LogManager(dirs)
    manager.startup()
    for p in tps:
        manager.open(p, config, 0)
    again = manager.grab_filthiest_compacted_log(NOW)
    assert again is not None and again[1].first_dirty_offset == 0 and again[0] != tp
    manager.done_cleaning(again[0], again[1].log, None)
    assert needs_cleaning(manager.get(tp), end, NOW) is None  # type: ignore[arg-type]
    directory = manager.dir_of(tp)
    assert directory is not None and tp in read_checkpoint(directory / CLEANER_OFFSETS)
    manager.delete(tp, NOW, 0)
    assert tp not in read_checkpoint(directory / CLEANER_OFFSETS)
    assert read_checkpoint(manager.dir_of(third[0]) / CLEANER_OFFSETS) == {third[0]: 0}  # type: ignore[operator]
    manager.shutdown()


def test_a_deleted_partition_keeps_its_files_until_its_clean_is_done(tmp_path):
    manager = LogManager([tmp_path])
    manager.startup()
    tp = TopicPartition("c", 0)
    log = manager.open(tp, COMPACT, 0)
    many_versions(log, keys=20, versions=3)
    log.roll(NOW)
    picked = manager.grab_filthiest_compacted_log(NOW)
    assert picked is not None
    plan = LogCleaner().prepare(picked[1], NOW)
    manager.delete(tp, NOW, 0)
    manager.remove_deleted(NOW)
    [grave] = [p for p in tmp_path.iterdir() if p.name.endswith("-delete")]
    assert LogCleaner().commit(plan, NOW) is None
    manager.done_cleaning(tp, log, None)
    manager.remove_deleted(NOW)
    assert not grave.exists()
    manager.shutdown()
