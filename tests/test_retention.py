"""Retention: which segments go and when, the log start offset, DeleteRecords, and how
deleted files linger for reads under way."""

import os

import pytest
from kio.schema.errors import ErrorCode

from helpers import client_batch
from kafkapy.log.cleaner import LogCleaner, to_clean
from kafkapy.log.config import LogConfig
from kafkapy.log.manager import LOG_START_OFFSETS, METADATA_PARTITION, LogManager, TopicPartition, read_checkpoint
from kafkapy.log.partition import LogError, PartitionLog
from kafkapy.log.segment import segment_name
from kafkapy.wire.records import Record, encode_batch, read_header

BATCH = client_batch(2, value_size=100)


def append(log: PartitionLog, batch: bytes = BATCH, now: int = 0) -> int:
    """Appends and commits a batch; returns its base offset."""
    base = log.append(batch, now).base_offset
    log.high_watermark = log.next_offset
    return base


def segmented(log: PartitionLog, timestamps: list[list[int]]) -> PartitionLog:
    """One closed segment per list, holding a two-record batch per timestamp."""
    for segment in timestamps:
        for ts in segment:
            append(log, client_batch(2, timestamp=ts, value_size=100))
        log.roll(0)
    return log


def bases(segments) -> list[int]:
    return [s.base_offset for s in segments]


# Which segments expire


def test_time_retention_goes_by_each_segments_largest_timestamp(opened, log_dir):
    log = segmented(opened(log_dir, LogConfig(retention_ms=3_000)), [[1_000], [1_000, 7_000], [1_000]])
    assert bases(log.expired_segments(9_000)) == [0]  # the second's newest record is recent; the third waits behind it
    assert bases(log.expired_segments(10_000)) == [0]  # exactly retention.ms old is not yet past it
    assert bases(log.expired_segments(10_001)) == [0, 2, 6]
    assert log.expired_segments(10_001)[-1] is not log.active  # the empty active segment never goes


def test_size_retention_keeps_the_log_at_or_just_above_retention_bytes(opened, log_dir):
    log = opened(log_dir, LogConfig(retention_bytes=int(2.5 * len(BATCH))))
    for _ in range(5):
        append(log)
        log.roll(0)
    append(log)
    expired = log.expired_segments(0)
    assert bases(expired) == [0, 2, 4]
    log.delete_segments(expired, 0)
    assert log.size == 3 * len(BATCH) >= log.config.retention_bytes > log.size - log.segments[0].size


def test_unlimited_retention_and_compacted_topics_keep_everything_above_the_start_offset(opened, log_dir):
    for config in (LogConfig(retention_ms=-1, retention_bytes=-1), LogConfig(cleanup_policy=("compact",), retention_ms=1, retention_bytes=1)):
        log = segmented(opened(log_dir / str(config.cleanup_policy), config), [[1_000], [1_000], [1_000]])
        assert log.expired_segments(10**12) == []
        log.delete_records_before(3)
        assert bases(log.expired_segments(10**12)) == [0]  # wholly below the start offset: goes whatever the policy


def test_nothing_at_or_above_the_high_watermark_expires(opened, log_dir):
    log = segmented(opened(log_dir, LogConfig(retention_ms=0)), [[1_000], [1_000], [1_000]])
    log.high_watermark = 3
    assert bases(log.expired_segments(10**9)) == [0]
    log.high_watermark = 4
    assert bases(log.expired_segments(10**9)) == [0, 2]


def test_an_empty_segment_left_by_the_cleaner_expires_in_its_turn(opened, log_dir):
    log = opened(log_dir, LogConfig(cleanup_policy=("compact", "delete"), retention_ms=5_000, segment_bytes=100))
    for value in (b"old", b"new"):
        append(log, encode_batch([Record(0, 1_000, b"k", value)]))
        log.roll(0)
    append(log, encode_batch([Record(0, 9_000, b"other", b"x")]))
    log.roll(0)
    cleaner = LogCleaner()
    cleaner.commit(cleaner.prepare(to_clean(log, None, 10_000), 10_000), 10_000)
    emptied, kept = log.segments[:2]
    assert (emptied.size, kept.size > 0) == (0, True)
    os.utime(emptied.log_path, (1, 1))  # with no record left, its age is the file's
    assert bases(log.expired_segments(10_000)) == [0, 1]


# Deleting segments and the log start offset


def test_deleting_segments_moves_the_log_start_offset_and_appends_report_it(opened, log_dir):
    log = segmented(opened(log_dir, LogConfig(retention_ms=1_000)), [[1_000], [1_000], [5_000]])
    log.delete_segments(log.expired_segments(3_000), 3_000)
    assert (log.log_start_offset, bases(log.segments)) == (4, [4, 6])
    assert log.append(client_batch(1), 3_000).log_start_offset == 4
    with pytest.raises(LogError) as caught:
        log.read(3, 1 << 20, log.next_offset, True)
    assert caught.value.code == ErrorCode.offset_out_of_range


def test_deleted_files_are_renamed_and_removed_after_file_delete_delay(opened, log_dir):
    log = segmented(opened(log_dir, LogConfig(retention_ms=0, file_delete_delay_ms=500)), [[1_000], [1_000]])
    in_flight = log.read(0, 1 << 20, 2, True)
    expected = in_flight.read()
    log.delete_segments(log.expired_segments(10_000)[:1], 10_000)
    assert not (log_dir / segment_name(0, ".log")).exists()
    deleted = sorted(p.name for p in log_dir.glob("*.deleted"))
    assert segment_name(0, ".log.deleted") in deleted
    assert all(name.startswith(segment_name(0, ".")) for name in deleted)
    assert in_flight.read() == expected  # a read under way finishes from the open file

    log.remove_retired(10_499)
    assert sorted(p.name for p in log_dir.glob("*.deleted")) == deleted
    log.remove_retired(10_500)
    assert not list(log_dir.glob("*.deleted")) and log.retired == []


def test_a_slice_being_sent_keeps_its_segment_file_open_past_file_delete_delay(opened, log_dir):
    log = segmented(opened(log_dir, LogConfig(retention_ms=0, file_delete_delay_ms=0)), [[1_000], [1_000]])
    in_flight = log.read(0, 1 << 20, 2, True)
    expected = in_flight.read()
    log.delete_segments(log.expired_segments(10_000)[:1], 10_000)
    log.remove_retired(10_000)
    assert not list(log_dir.glob("*.deleted")) and log.retired == []
    # New files made now must not take the descriptor number the send still reads from.
    others = [os.open(log_dir / f"other-{i}", os.O_RDWR | os.O_CREAT) for i in range(4)]
    try:
        assert in_flight.fd not in others
        assert in_flight.read() == expected
        assert read_header(expected).base_offset == 0
    finally:
        for fd in others:
            os.close(fd)

    in_flight.release()
    with pytest.raises(OSError):
        os.fstat(in_flight.fd)  # closed by the last release
    in_flight.release()  # once only: a second release is no release


def test_a_slice_released_before_its_segment_closes_leaves_the_file_to_the_segment(opened, log_dir):
    log = segmented(opened(log_dir, LogConfig(retention_ms=0, file_delete_delay_ms=0)), [[1_000], [1_000]])
    sent = log.read(0, 1 << 20, 2, True)
    sent.release()
    assert os.fstat(sent.fd).st_size == log.segments[0].size  # still the segment's, open
    log.delete_segments(log.expired_segments(10_000)[:1], 10_000)
    log.remove_retired(10_000)
    with pytest.raises(OSError):
        os.fstat(sent.fd)


def test_the_active_segment_goes_only_by_rolling_first(opened, log_dir):
    log = opened(log_dir, LogConfig(retention_ms=1_000))
    append(log, client_batch(2, timestamp=1_000))
    log.roll(0)
    append(log, client_batch(3, timestamp=1_000))
    active = log.active
    expired = log.expired_segments(5_000)
    assert expired[-1] is active
    log.delete_segments(expired, 5_000)
    assert (bases(log.segments), log.active.size, log.log_start_offset, log.next_offset) == ([5], 0, 5, 5)
    assert log.expired_segments(10**9) == []  # an empty active segment never expires
    assert append(log, client_batch(1)) == 5


def test_delete_records_moves_the_start_offset_only_forward_and_only_below_the_high_watermark(opened, log_dir):
    log = segmented(opened(log_dir, LogConfig()), [[1_000], [1_000]])
    log.high_watermark = 3
    assert log.delete_records_before(1) == 1
    assert log.delete_records_before(0) == 1
    with pytest.raises(LogError) as caught:
        log.delete_records_before(4)
    assert caught.value.code == ErrorCode.offset_out_of_range
    assert log.delete_records_before(3) == 3
    assert bases(log.segments) == [0, 2, 4]  # the files go at the next retention pass
    with pytest.raises(LogError) as caught:
        log.read(2, 1 << 20, 3, True)
    assert caught.value.code == ErrorCode.offset_out_of_range
    assert read_header(log.read(3, 1 << 20, 4, True).read()).base_offset == 2  # the batch holding offset 3
    assert bases(log.expired_segments(0)) == [0]


# Producer state snapshots


def idempotent_batch(sequence: int) -> bytes:
    return encode_batch([Record(0, 1_000, b"k", b"v" * 100)], producer_id=7, producer_epoch=0, base_sequence=sequence)


def snapshot_offsets(log_dir) -> list[int]:
    return sorted(int(p.name.split(".")[0]) for p in log_dir.glob("*.snapshot"))


def test_producer_snapshots_go_with_the_segments_retention_deletes_and_dedup_survives_a_restart(opened, log_dir):
    config = LogConfig(retention_bytes=3 * len(idempotent_batch(0)))
    log = opened(log_dir, config)
    for sequence in range(300):
        append(log, idempotent_batch(sequence))
        log.roll(0)  # one snapshot per roll, as segment.bytes tiny or segment.ms=1 would make
        log.delete_segments(log.expired_segments(0), 0)
    assert len(log.segments) <= 5
    assert snapshot_offsets(log_dir) == [s.base_offset for s in log.segments if s.base_offset > 0]
    log.close()

    log = opened(log_dir, config)
    retried = log.append(idempotent_batch(299), 0)
    assert (retried.base_offset, retried.records_count, log.next_offset) == (299, 0, 300)  # answered, not written again
    with pytest.raises(LogError) as caught:
        log.append(idempotent_batch(301), 0)
    assert caught.value.code == ErrorCode.out_of_order_sequence_number


def test_deleting_records_drops_the_snapshots_of_the_segments_that_go(opened, log_dir):
    log = opened(log_dir, LogConfig())
    for sequence in range(6):
        append(log, idempotent_batch(sequence))
        log.roll(0)
    assert snapshot_offsets(log_dir) == [1, 2, 3, 4, 5, 6]
    log.delete_records_before(4)
    log.delete_segments(log.expired_segments(0), 0)
    assert snapshot_offsets(log_dir) == [4, 5, 6]


def test_on_start_only_the_segments_snapshots_and_the_latest_other_one_are_kept(opened, log_dir):
    log = opened(log_dir, LogConfig())
    for sequence in range(3):
        append(log, idempotent_batch(sequence))
        log.close()  # a clean shutdown snapshots the log end, within the active segment
        log = opened(log_dir, LogConfig())
    # Taken at 1 and 2 by earlier shutdowns, neither a segment's base nor the latest.
    assert snapshot_offsets(log_dir) == [3]
    append(log, idempotent_batch(3))
    log.roll(0)
    append(log, idempotent_batch(4))
    log.close()
    log = opened(log_dir, LogConfig())
    assert snapshot_offsets(log_dir) == [4, 5]  # the base of the second segment, and the log end
    assert log.append(idempotent_batch(4), 0).base_offset == 4  # a retry is still recognised


# The log manager


def test_enforce_retention_over_all_logs_and_the_start_offset_checkpoint(tmp_path):
    manager = LogManager([tmp_path])
    manager.startup()
    config = LogConfig(retention_ms=1_000)
    logs = {tp: manager.open(tp, config, 0) for tp in (TopicPartition("a", 0), TopicPartition("b", 0), TopicPartition(*METADATA_PARTITION))}
    for log in logs.values():
        segmented(log, [[1_000], [9_000]])
    assert manager.enforce_retention(5_000) == 2  # one in each topic; the metadata log is never trimmed
    assert [log.log_start_offset for log in logs.values()] == [2, 2, 0]
    manager.checkpoint()
    assert read_checkpoint(tmp_path / LOG_START_OFFSETS) == {TopicPartition("a", 0): 2, TopicPartition("b", 0): 2, TopicPartition(*METADATA_PARTITION): 0}
    manager.remove_deleted(5_000 + config.file_delete_delay_ms)
    assert not list(tmp_path.rglob("*.deleted"))
    manager.shutdown()

    manager = LogManager([tmp_path])
    manager.startup()
    reopened = manager.open(TopicPartition("a", 0), config, 0)
    assert (reopened.log_start_offset, bases(reopened.segments)) == (2, [2, 4])
    manager.shutdown()
