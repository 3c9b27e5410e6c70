import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode

from helpers import as_stored, client_batch, crash, make_records, open_log, stored_batches
from kafkapy.log.config import LogConfig
from kafkapy.log.partition import LogError, PartitionLog
from kafkapy.log.segment import segment_name
from kafkapy.wire.compression import Codec
from kafkapy.wire.records import (
    CONTROL_COMMIT,
    NO_TIMESTAMP,
    Record,
    crc_ok,
    decode_records,
    encode_batch,
    encode_control_batch,
    read_header,
)


def offsets_of(log: PartitionLog) -> list[int]:
    return [record.offset for header, data in log.iter_batches() for record in decode_records(data, header)]


def append_all(log: PartitionLog, batches: list[bytes]) -> list[bytes]:
    """Appends each batch on its own; returns the bytes the log should hold for them."""
    stored = []
    for batch in batches:
        result = log.append(batch, 0)
        stored.append(as_stored(batch, result.base_offset))
    return stored


# Appending


def test_appends_assign_consecutive_offsets_across_batches(opened, log_dir):
    log = opened(log_dir)
    results = [log.append(client_batch(n), 0) for n in (3, 1, 5)]
    assert [(r.base_offset, r.last_offset, r.records_count) for r in results] == [(0, 2, 3), (3, 3, 1), (4, 8, 5)]
    assert log.next_offset == 9
    assert offsets_of(log) == list(range(9))
    values = [r.value for h, d in log.iter_batches() for r in decode_records(d, h)]
    assert values == [r.value for n in (3, 1, 5) for r in make_records(n)]


def test_several_batches_in_one_append(opened, log_dir):
    log = opened(log_dir)
    log.append(client_batch(2), 0)
    first, second = client_batch(3), client_batch(4, codec=Codec.LZ4)
    result = log.append(first + second, 0)
    assert (result.base_offset, result.last_offset, result.records_count) == (2, 8, 7)
    assert [(h.base_offset, h.last_offset) for _, h in result.batches] == [(2, 4), (5, 8)]
    size_before = len(as_stored(client_batch(2), 0))
    assert [pos for pos, _ in result.batches] == [size_before, size_before + len(first)]
    assert stored_batches(log)[1:] == [(2, as_stored(first, 2)), (5, as_stored(second, 5))]


def test_leader_epoch_is_stamped_into_appended_batches(opened, log_dir):
    log = opened(log_dir)
    log.leader_epoch = 4
    log.append(client_batch(2), 0)
    [(_, data)] = stored_batches(log)
    header = read_header(data)
    assert header.partition_leader_epoch == 4
    assert crc_ok(data, 0, header)


def refused(log: PartitionLog, batch: bytes, now_ms: int = 0) -> LogError:
    """The error an append fails with, after checking it left the log as it was."""
    before = (log.next_offset, log.size, stored_batches(log))
    with pytest.raises(LogError) as caught:
        log.append(batch, now_ms)
    assert (log.next_offset, log.size, stored_batches(log)) == before
    return caught.value


def test_corrupt_crc_is_corrupt_message(opened, log_dir):
    log = opened(log_dir)
    log.append(client_batch(1), 0)
    batch = bytearray(client_batch(3))
    batch[-1] ^= 0x01
    assert refused(log, batch).code == ErrorCode.corrupt_message


def test_bytes_too_short_for_a_batch_are_corrupt_message(opened, log_dir):
    log = opened(log_dir)
    assert refused(log, client_batch(3) + b"\0" * 20).code == ErrorCode.corrupt_message


def test_batch_over_max_message_bytes_is_message_too_large(opened, log_dir):
    batch = client_batch(2, value_size=100)
    log = opened(log_dir, LogConfig(max_message_bytes=len(batch) - 1))
    assert refused(log, batch).code == ErrorCode.message_too_large
    assert log.append(client_batch(1), 0).base_offset == 0


@pytest.mark.parametrize(
    "batch",
    [
        pytest.param(encode_batch(make_records(3), last_offset_delta=5), id="count-below-offset-range"),
        pytest.param(encode_batch(make_records(3), last_offset_delta=1), id="count-above-offset-range"),
        pytest.param(encode_batch([]), id="no-records"),
        pytest.param(encode_batch(make_records(2), producer_id=5, producer_epoch=0, base_sequence=-1), id="producer-id-without-sequence"),
        pytest.param(
            encode_control_batch(CONTROL_COMMIT, offset=0, timestamp=0, producer_id=5, producer_epoch=0, coordinator_epoch=0),
            id="control-batch",
        ),
    ],
)
def test_batches_a_client_may_not_send_are_invalid_record(opened, log_dir, batch):
    log = opened(log_dir)
    assert refused(log, batch).code == ErrorCode.invalid_record


def test_broker_may_append_control_batches(opened, log_dir):
    log = opened(log_dir)
    log.append(client_batch(2), 0)
    marker = encode_control_batch(CONTROL_COMMIT, offset=0, timestamp=0, producer_id=5, producer_epoch=0, coordinator_epoch=0)
    result = log.append(marker, 0, from_client=False)
    assert (result.base_offset, log.next_offset) == (2, 3)
    assert read_header(stored_batches(log)[-1][1]).is_control


def test_keyless_record_in_a_compacted_topic_is_invalid_record(opened, log_dir):
    log = opened(log_dir, LogConfig(cleanup_policy=("compact",)))
    records = [Record(0, 0, b"a", b"1"), Record(1, 0, None, b"2"), Record(2, 0, b"c", b"3"), Record(3, 0, None, None)]
    error = refused(log, encode_batch(records, codec=Codec.GZIP))
    assert error.code == ErrorCode.invalid_record
    assert [index for index, _ in error.record_errors] == [1, 3]
    assert log.append(encode_batch([Record(0, 0, b"a", None)]), 0).base_offset == 0


def test_timestamps_out_of_range_are_invalid_timestamp(opened, log_dir):
    log = opened(log_dir, LogConfig(message_timestamp_before_max_ms=1_000, message_timestamp_after_max_ms=500))
    now = 100_000
    records = [Record(0, now - 1_000, b"k", b""), Record(1, now - 1_001, b"k", b""), Record(2, now + 501, b"k", b"")]
    error = refused(log, encode_batch(records), now)
    assert error.code == ErrorCode.invalid_timestamp
    assert [index for index, _ in error.record_errors] == [1, 2]
    edges = [Record(0, now - 1_000, b"k", b""), Record(1, now + 500, b"k", b"")]
    assert log.append(encode_batch(edges), now).last_offset == 1


@pytest.mark.parametrize("codec", list(Codec), ids=lambda c: c.name)
def test_log_append_time_is_stamped(opened, log_dir, codec):
    log = opened(log_dir, LogConfig(message_timestamp_type="LogAppendTime"))
    result = log.append(client_batch(3, timestamp=1_000, codec=codec), 77_000)
    assert result.log_append_time == 77_000
    [(_, data)] = stored_batches(log)
    header = read_header(data)
    assert header.log_append_time and header.max_timestamp == 77_000 and header.codec == codec
    assert crc_ok(data, 0, header)
    assert [r.timestamp for r in decode_records(data)] == [77_000] * 3


def test_create_time_topic_reports_no_append_time(opened, log_dir):
    log = opened(log_dir)
    assert log.append(client_batch(1), 5_000).log_append_time == -1


def test_topic_compression_type_recompresses_producer_batches(opened, log_dir):
    log = opened(log_dir, LogConfig(compression_type="zstd"))
    log.append(client_batch(4, codec=Codec.GZIP), 0)
    [(_, data)] = stored_batches(log)
    assert read_header(data).codec == Codec.ZSTD
    assert crc_ok(data, 0, read_header(data))
    assert decode_records(data) == make_records(4)


# Reading


@pytest.fixture
def three_batches(opened, log_dir):
    """A log holding batches of 2, 3 and 4 records (offsets 0-1, 2-4, 5-8)."""
    log = opened(log_dir)
    stored = append_all(log, [client_batch(n, value_size=20) for n in (2, 3, 4)])
    return log, stored


def test_read_returns_the_batches_from_the_one_holding_the_offset(three_batches):
    log, stored = three_batches
    for offset, first in [(0, 0), (1, 0), (2, 1), (4, 1), (5, 2), (8, 2)]:
        view = log.read(offset, 1 << 20, log.next_offset, False)
        assert view.read() == b"".join(stored[first:])
        assert view.position == sum(len(b) for b in stored[:first])


def test_read_honours_max_bytes_and_may_cut_the_last_batch(three_batches):
    log, stored = three_batches
    assert log.read(0, len(stored[0]), 9, False).read() == stored[0]
    assert log.read(0, len(stored[0]) + 10, 9, False).read() == stored[0] + stored[1][:10]
    assert log.read(0, 5, 9, False).read() == stored[0][:5]
    assert log.read(0, 0, 9, False) is None


def test_read_min_one_batch_returns_a_whole_batch_over_max_bytes(three_batches):
    log, stored = three_batches
    assert log.read(2, 1, 9, True).read() == stored[1]
    assert log.read(2, 0, 9, True).read() == stored[1]
    assert log.read(2, len(stored[1]) + 1, 9, True).read() == stored[1] + stored[2][:1]


def test_read_stops_before_the_batch_holding_upper_bound(three_batches):
    log, stored = three_batches
    assert log.read(0, 1 << 20, 5, False).read() == stored[0] + stored[1]
    assert log.read(0, 1 << 20, 2, False).read() == stored[0]
    assert log.read(3, 1 << 20, 5, True).read() == stored[1]
    assert log.read(5, 1 << 20, 5, True) is None
    assert log.read(2, 1 << 20, 1, True) is None


def test_read_at_the_log_end_is_empty(three_batches):
    log, _ = three_batches
    assert log.read(9, 1 << 20, 9, True) is None


@pytest.mark.parametrize("offset", [-1, 10, 2**40])
def test_read_outside_the_log_is_offset_out_of_range(three_batches, offset):
    log, _ = three_batches
    with pytest.raises(LogError) as caught:
        log.read(offset, 1 << 20, 9, True)
    assert caught.value.code == ErrorCode.offset_out_of_range


def test_read_below_log_start_offset_is_offset_out_of_range(opened, log_dir):
    log = opened(log_dir)
    append_all(log, [client_batch(3), client_batch(3)])
    log.close()
    log = opened(log_dir, log_start_offset=3, clean_shutdown=True)
    assert log.log_start_offset == 3
    with pytest.raises(LogError) as caught:
        log.read(2, 1 << 20, 6, True)
    assert caught.value.code == ErrorCode.offset_out_of_range
    assert read_header(log.read(3, 1 << 20, 6, True).read()).base_offset == 3


def test_read_serves_one_segment_at_a_time(opened, log_dir):
    batches = [client_batch(2, value_size=50) for _ in range(6)]
    log = opened(log_dir, LogConfig(segment_bytes=3 * len(batches[0])))
    stored = append_all(log, batches)
    assert [s.base_offset for s in log.segments] == [0, 6]
    assert log.read(3, 1 << 20, 12, False).read() == b"".join(stored[1:3])
    assert log.read(5, 1 << 20, 12, False).read() == stored[2]
    assert log.read(6, 1 << 20, 12, False).read() == b"".join(stored[3:])


# Rolling


def test_segment_rolls_when_the_next_append_would_pass_segment_bytes(opened, log_dir):
    batch = client_batch(1, value_size=100)
    log = opened(log_dir, LogConfig(segment_bytes=3 * len(batch)))
    stored = append_all(log, [batch] * 7)
    assert [(s.base_offset, s.size) for s in log.segments] == [(0, 3 * len(batch)), (3, 3 * len(batch)), (6, len(batch))]
    assert sorted(p.name for p in log_dir.glob("*.log")) == [segment_name(o, ".log") for o in (0, 3, 6)]
    assert (log_dir / segment_name(3, ".log")).read_bytes() == b"".join(stored[3:6])
    assert stored_batches(log) == list(enumerate(stored))


def test_batch_larger_than_segment_bytes_goes_into_an_empty_segment(opened, log_dir):
    big = client_batch(1, value_size=500)
    log = opened(log_dir, LogConfig(segment_bytes=100))
    append_all(log, [big, big])
    assert [(s.base_offset, s.size) for s in log.segments] == [(0, len(big)), (1, len(big))]


def test_segment_ms_rolls_on_record_timestamps_not_the_clock(opened, log_dir):
    # As in Kafka: once the first batch has a timestamp, the roll compares the incoming
    # batch's max timestamp with it.
    log = opened(log_dir, LogConfig(segment_ms=1_000))
    log.append(client_batch(1, timestamp=10_000), 0)
    log.append(client_batch(1, timestamp=11_000), 10**9)
    assert [s.base_offset for s in log.segments] == [0]
    log.append(client_batch(1, timestamp=11_001), 0)
    assert [s.base_offset for s in log.segments] == [0, 2]


def test_segment_ms_rolls_on_the_clock_without_timestamps(opened, log_dir):
    log = opened(log_dir, LogConfig(segment_ms=1_000), now_ms=5_000)
    log.append(client_batch(1, timestamp=NO_TIMESTAMP), 5_500)
    log.append(client_batch(1, timestamp=NO_TIMESTAMP), 6_000)
    assert [s.base_offset for s in log.segments] == [0]
    log.append(client_batch(1, timestamp=NO_TIMESTAMP), 6_001)
    assert [s.base_offset for s in log.segments] == [0, 2]
    log.append(client_batch(1, timestamp=NO_TIMESTAMP), 7_001)
    log.append(client_batch(1, timestamp=NO_TIMESTAMP), 7_002)
    assert [s.base_offset for s in log.segments] == [0, 2, 4]


def test_segment_ms_with_log_append_time_follows_the_clock(opened, log_dir):
    log = opened(log_dir, LogConfig(segment_ms=1_000, segment_jitter_ms=200, message_timestamp_type="LogAppendTime"))
    log.append(client_batch(1, timestamp=0), 50_000)
    log.append(client_batch(1, timestamp=0), 50_800)
    assert [s.base_offset for s in log.segments] == [0]
    log.append(client_batch(1, timestamp=0), 50_801)
    assert [s.base_offset for s in log.segments] == [0, 2]


def test_empty_segment_never_rolls_on_time(opened, log_dir):
    log = opened(log_dir, LogConfig(segment_ms=1))
    log.append(client_batch(1, timestamp=NO_TIMESTAMP), 10**9)
    assert [s.base_offset for s in log.segments] == [0]


# Indexes and timestamps


def test_offset_index_after_many_small_batches(opened, log_dir):
    log = opened(log_dir, LogConfig(index_interval_bytes=200))
    positions = {}
    for i in range(400):
        result = log.append(client_batch(1 + i % 3), 0)
        positions[result.base_offset] = result.batches[0][0]
    segment = log.active
    assert len(segment.index) > 50
    for offset, position in zip(segment.index.offsets, segment.index.positions, strict=True):
        assert positions[offset] == position
    bases = sorted(positions)
    for offset in range(log.next_offset):
        base = max(b for b in bases if b <= offset)
        view = log.read(offset, 1, log.next_offset, True)
        assert (view.position, read_header(view.read()).base_offset) == (positions[base], base)
        assert segment.index.lookup(offset) <= positions[base]


def brute_force_offset_for_timestamp(records: list[tuple[int, int]], target: int, upper: int) -> tuple[int, int] | None:
    return next(((ts, o) for o, ts in records if o < upper and ts >= target), None)


@settings(max_examples=80)
@given(
    timestamps=st.lists(st.lists(st.integers(0, 60), min_size=1, max_size=4), min_size=1, max_size=25),
    data=st.data(),
)
def test_offset_for_timestamp_finds_the_first_record_at_or_after_the_target(timestamps, data):
    with tempfile.TemporaryDirectory() as tmp:
        log = open_log(Path(tmp) / "t-0", LogConfig(index_interval_bytes=150, segment_bytes=600))
        try:
            for batch_timestamps in timestamps:
                records = [Record(i, ts, b"k", b"v" * 20) for i, ts in enumerate(batch_timestamps)]
                log.append(encode_batch(records), 0)
            flat = list(enumerate(ts for batch_timestamps in timestamps for ts in batch_timestamps))
            upper = data.draw(st.integers(0, log.next_offset))
            for target in range(-1, 63):
                assert log.offset_for_timestamp(target, log.next_offset) == brute_force_offset_for_timestamp(flat, target, log.next_offset)
                assert log.offset_for_timestamp(target, upper) == brute_force_offset_for_timestamp(flat, target, upper)
            best = max(ts for _, ts in flat)
            assert log.max_timestamp_offset() == (best, next(o for o, ts in flat if ts == best))
        finally:
            crash(log)


def test_offset_for_timestamp_is_a_record_inside_the_batch(opened, log_dir):
    log = opened(log_dir)
    log.append(encode_batch([Record(0, 100, b"k", b""), Record(1, 300, b"k", b""), Record(2, 200, b"k", b"")]), 0)
    log.append(encode_batch([Record(0, 150, b"k", b""), Record(1, 400, b"k", b"")]), 0)
    assert log.offset_for_timestamp(150, 5) == (300, 1)
    assert log.offset_for_timestamp(301, 5) == (400, 4)
    assert log.offset_for_timestamp(401, 5) is None
    assert log.max_timestamp_offset() == (400, 4)


def test_offset_for_timestamp_skips_records_below_log_start_offset(opened, log_dir):
    log = opened(log_dir)
    log.append(encode_batch([Record(i, 100 + i, b"k", b"") for i in range(5)]), 0)
    log.close()
    log = opened(log_dir, log_start_offset=3, clean_shutdown=True)
    assert log.offset_for_timestamp(0, 5) == (103, 3)


def test_max_timestamp_offset_of_an_empty_log_is_none(opened, log_dir):
    assert opened(log_dir).max_timestamp_offset() is None


def test_offset_for_timestamp_with_log_append_time(opened, log_dir):
    log = opened(log_dir, LogConfig(message_timestamp_type="LogAppendTime"))
    log.append(client_batch(2, timestamp=999_999), 1_000)
    log.append(client_batch(2, timestamp=0), 2_000)
    assert log.offset_for_timestamp(1_001, 4) == (2_000, 2)
    assert log.max_timestamp_offset() == (2_000, 2)


# Reopening


def fill(log: PartitionLog, count: int = 60) -> None:
    for i in range(count):
        records = [Record(j, 1_000 + (i * 7 + j) % 50, b"k", b"v" * (i % 40)) for j in range(1 + i % 3)]
        log.append(encode_batch(records, codec=list(Codec)[i % 5]), 0)


REOPEN_CONFIG = LogConfig(index_interval_bytes=100, segment_bytes=1_500)


def snapshot(log: PartitionLog) -> tuple:
    return (
        log.next_offset,
        stored_batches(log),
        [(s.base_offset, s.size, list(s.index.offsets), list(s.index.positions), s.max_timestamp) for s in log.segments],
        log.max_timestamp_offset(),
        log.offset_for_timestamp(1_030, log.next_offset),
    )


def test_reopen_after_clean_close_keeps_everything(log_dir, opened):
    log = opened(log_dir, REOPEN_CONFIG)
    fill(log)
    before = snapshot(log)
    assert len(before[2]) > 3
    log.close()
    log = opened(log_dir, REOPEN_CONFIG, clean_shutdown=True, recovery_point=before[0])
    assert snapshot(log) == before
    assert log.append(client_batch(2), 0).base_offset == before[0]
    assert offsets_of(log) == list(range(before[0] + 2))


def test_reopen_after_a_crash_keeps_everything(log_dir, opened):
    log = opened(log_dir, REOPEN_CONFIG)
    fill(log)
    before = snapshot(log)
    crash(log)
    del log
    log = opened(log_dir, REOPEN_CONFIG, clean_shutdown=False)
    assert snapshot(log) == before
    assert log.append(client_batch(2), 0).base_offset == before[0]


def test_reopen_with_a_recovery_point_trusts_the_flushed_segments(log_dir, opened):
    log = opened(log_dir, REOPEN_CONFIG)
    fill(log)
    before = snapshot(log)
    recovery_point = log.recovery_point
    assert 0 < recovery_point < log.next_offset  # rolled segments were flushed
    crash(log)
    log = opened(log_dir, REOPEN_CONFIG, clean_shutdown=False, recovery_point=recovery_point)
    assert snapshot(log) == before
    assert log.recovery_point == recovery_point


def test_clean_reopen_rebuilds_missing_or_malformed_index_files(log_dir, opened):
    log = opened(log_dir, REOPEN_CONFIG)
    fill(log)
    before = snapshot(log)
    log.close()
    (log_dir / segment_name(0, ".index")).unlink()
    (log_dir / segment_name(log.segments[1].base_offset, ".timeindex")).write_bytes(b"\0" * 5)
    log = opened(log_dir, REOPEN_CONFIG, clean_shutdown=True, recovery_point=before[0])
    assert snapshot(log) == before


def test_flush_moves_the_recovery_point_to_the_log_end(opened, log_dir):
    log = opened(log_dir, LogConfig(flush_messages=3))
    log.append(client_batch(2), 0)
    assert not log.needs_flush(0)
    log.append(client_batch(1), 0)
    assert log.needs_flush(0)
    log.flush(10)
    assert (log.recovery_point, log.needs_flush(10)) == (3, False)


def test_delete_removes_the_directory(opened, log_dir):
    log = opened(log_dir, LogConfig(segment_bytes=200))
    append_all(log, [client_batch(2, value_size=60)] * 4)
    log.close()
    log.delete()
    assert not os.path.exists(log_dir)


# Truncation


def test_truncate_to_removes_whole_batches_across_segments(opened, log_dir):
    log = opened(log_dir, LogConfig(segment_bytes=200))
    for epoch in (1, 1, 2, 2, 3):
        log.leader_epoch = epoch
        log.append(client_batch(2), 0)
    assert len(log.segments) > 1
    log.truncate_to(5)  # inside the batch of offsets 4-5: it goes whole
    assert log.next_offset == 4
    assert offsets_of(log) == [0, 1, 2, 3]
    assert log.epochs.epochs == [1]
    assert [s.base_offset <= 4 for s in log.segments] == [True] * len(log.segments)
    log.leader_epoch = 4
    assert log.append(client_batch(1), 0).base_offset == 4
    log.flush(0)
    crash(log)
    reopened = opened(log_dir, LogConfig(segment_bytes=200))
    assert offsets_of(reopened) == [0, 1, 2, 3, 4]
    assert reopened.epochs.epochs == [1, 4]
