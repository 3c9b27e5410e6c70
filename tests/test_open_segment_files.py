"""Segments other than the active one close their log files while idle, within a bound
over every log, and open them again when read; what a send holds stays open."""

import os

import pytest

from helpers import client_batch, open_log, stored_batches
from kafkapy.log.cleaner import LogCleaner, to_clean
from kafkapy.log.config import LogConfig
from kafkapy.log.partition import PartitionLog
from kafkapy.log.segment import OpenSegmentFiles
from kafkapy.wire.records import Record, encode_batch, read_header

LIMIT = 3


@pytest.fixture(autouse=True)
def no_fsync(monkeypatch):
    """Every roll fsyncs; what is tested here is which files are open, not durability."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def segmented(log: PartitionLog, count: int) -> list[bytes]:
    """`count` closed segments of one batch each; returns the batches as stored."""
    for i in range(count):
        log.append(client_batch(1, value_size=50 + i), 0)
        log.roll(0)
    log.high_watermark = log.next_offset
    return [data for _, data in stored_batches(log)]


def files_open(log: PartitionLog) -> list[int]:
    return [s.base_offset for s in log.segments if s.file_open]


def test_idle_segments_close_their_files_within_the_bound_and_reopen_when_read(log_dir, opened):
    open_files = OpenSegmentFiles(LIMIT)
    before = open_descriptors()
    log = opened(log_dir, LogConfig(), open_files=open_files)
    stored = segmented(log, 40)
    assert open_descriptors() <= before + LIMIT + 1  # and the active segment's
    assert len(files_open(log)) <= LIMIT + 1 and log.active.file_open

    assert [data for _, data in stored_batches(log)] == stored  # each segment opened again in turn
    for offset in range(40):
        records = log.read(offset, 1 << 20, log.next_offset, True)
        assert records is not None
        assert records.read() == stored[offset]
        records.release()
    assert open_descriptors() <= before + LIMIT + 1
    assert files_open(log)[-LIMIT - 1:] == [37, 38, 39, 40]  # the most recently read, and the active one


def test_a_file_a_send_holds_stays_that_segments_while_others_are_read(log_dir, opened):
    log = opened(log_dir, LogConfig(), open_files=OpenSegmentFiles(1))
    stored = segmented(log, 10)
    in_flight = log.read(0, 1 << 20, log.next_offset, True)
    assert in_flight is not None
    for offset in range(1, 10):  # closes segment 0's file for the bound, but not while held
        log.read(offset, 1 << 20, log.next_offset, True).release()  # type: ignore[union-attr]
    assert not log.segments[0].file_open
    assert in_flight.read() == stored[0]
    assert os.fstat(in_flight.fd).st_size == log.segments[0].size
    in_flight.release()
    with pytest.raises(OSError):
        os.fstat(in_flight.fd)  # closed by the last release
    assert log.read(0, 1 << 20, log.next_offset, True).read() == stored[0]  # type: ignore[union-attr]


def test_a_log_opened_again_keeps_within_the_bound_and_truncation_reopens_the_new_active_segment(log_dir, opened):
    log = opened(log_dir, LogConfig())
    stored = segmented(log, 30)
    log.close()
    before = open_descriptors()
    log = opened(log_dir, LogConfig(), open_files=OpenSegmentFiles(LIMIT))
    assert open_descriptors() <= before + LIMIT + 1
    assert [data for _, data in stored_batches(log)] == stored

    log.truncate_to(5)  # segment 5, long closed for the bound, is the active one again
    assert log.active.base_offset == 5 and log.active.file_open
    assert log.append(client_batch(1), 0).base_offset == 5
    assert [read_header(data).base_offset for _, data in stored_batches(log)] == [0, 1, 2, 3, 4, 5]


def test_the_cleaner_reads_and_swaps_in_segments_whose_files_were_closed(log_dir, opened):
    config = LogConfig(cleanup_policy=("compact",), segment_bytes=200)
    log = opened(log_dir, config, open_files=OpenSegmentFiles(1))
    for version in range(3):
        for k in range(10):
            log.append(encode_batch([Record(0, 1_000, b"k%d" % k, b"v%d" % version)]), 1_000, from_client=False)
    log.roll(1_000)
    log.high_watermark = log.next_offset
    cleaner = LogCleaner()
    cleaner.commit(cleaner.prepare(to_clean(log, None, 10**6), 10**6), 10**6)
    kept = [(header.base_offset, data) for header, data in log.iter_batches()]
    assert [read_header(data).base_offset for _, data in kept] == list(range(20, 30))
    assert len(files_open(log)) <= 2
    log.remove_retired(10**9)
    assert [(header.base_offset, data) for header, data in log.iter_batches()] == kept


def test_lookups_by_timestamp_and_time_retention_read_segments_whose_files_were_closed(log_dir, opened):
    log = opened(log_dir, LogConfig(retention_ms=1_000), open_files=OpenSegmentFiles(1))
    for ts in (1_000, 2_000, 3_000, -1):  # the last batch without a timestamp
        log.append(client_batch(1, timestamp=ts), 0)
        log.roll(0)
    log.high_watermark = log.next_offset
    assert not log.segments[1].file_open
    assert log.offset_for_timestamp(1_500, log.next_offset) == (2_000, 1)  # ListOffsets by timestamp
    assert log.max_timestamp_offset() == (3_000, 2)
    os.utime(log.segments[3].log_path, (10, 10))  # a segment without timestamps goes by its file's age
    assert not log.segments[3].file_open
    assert [s.base_offset for s in log.expired_segments(3_500)] == [0, 1]
    assert [s.base_offset for s in log.expired_segments(10**6)] == [0, 1, 2, 3]


def test_without_a_bound_every_file_stays_open(log_dir):
    log = open_log(log_dir, LogConfig())
    segmented(log, 5)
    assert files_open(log) == [s.base_offset for s in log.segments]
    log.close()
