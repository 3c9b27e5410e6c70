"""Recovery after an unclean stop: a torn or corrupt tail is cut off at the last whole,
valid batch, and nothing after it survives."""

import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import client_batch, crash, open_log, stored_batches
from kafkapy.log.config import LogConfig
from kafkapy.log.index import OffsetIndex, TimeIndex
from kafkapy.log.partition import PartitionLog
from kafkapy.log.segment import segment_name
from kafkapy.wire.records import HEADER_SIZE, read_header

# Small segments and index intervals, so that logs of a few batches roll and index.
CONFIG = LogConfig(segment_bytes=1_000, index_interval_bytes=120)


@dataclass
class Written:
    log: PartitionLog
    earlier: list[tuple[int, bytes]]  # batches of the segments before the active one
    active: list[tuple[int, bytes]]  # batches of the active segment, in order
    active_path: Path

    def end_of(self, count: int) -> int:
        """Where the first count batches of the active segment end in its file."""
        return sum(len(data) for _, data in self.active[:count])


def write(directory: Path, batches: list[bytes], close_after: int | None = None) -> Written:
    """Appends the batches; after the first close_after of them, closes the log cleanly
    and opens it again, so that index files on disk predate the crash."""
    log = open_log(directory, CONFIG)
    for i, batch in enumerate(batches):
        if i == close_after:
            log.close()
            log = open_log(directory, CONFIG, clean_shutdown=True)
        log.append(batch, 0)
    stored = stored_batches(log)
    base = log.active.base_offset
    return Written(
        log,
        [b for b in stored if b[0] < base],
        [b for b in stored if b[0] >= base],
        directory / segment_name(base, ".log"),
    )


def assert_recovered_to(directory: Path, written: Written, kept: int) -> None:
    """Reopens after a crash and checks that exactly the first `kept` batches of the
    active segment survive, byte for byte, that appends go on from there, and that the
    indexes written at the next clean close are right."""
    expected = written.earlier + written.active[:kept]
    expected_next = read_header(expected[-1][1]).next_offset if expected else 0
    log = PartitionLog.open(directory, CONFIG, 0, clean_shutdown=False)
    try:
        assert stored_batches(log) == expected
        assert log.next_offset == expected_next
        assert os.path.getsize(written.active_path) == written.end_of(kept)
        result = log.append(client_batch(2), 0)
        assert (result.base_offset, log.next_offset) == (expected_next, expected_next + 2)
        after = stored_batches(log)
        assert [offset for offset, _ in after] == [offset for offset, _ in expected] + [expected_next]
        log.close()
        log = PartitionLog.open(directory, CONFIG, 0, clean_shutdown=True)
        assert (stored_batches(log), log.next_offset) == (after, expected_next + 2)
        for segment in log.segments:
            for offset, position in zip(segment.index.offsets, segment.index.positions, strict=True):
                assert read_header(segment.read(position, HEADER_SIZE)).base_offset == offset
    finally:
        crash(log)


batch_lists = st.lists(
    st.builds(lambda count, size: client_batch(count, value_size=size), st.integers(1, 4), st.integers(0, 90)),
    min_size=1,
    max_size=14,
)


@settings(max_examples=1000)
@given(batches=batch_lists, data=st.data())
def test_torn_write_keeps_exactly_the_complete_batches(batches, data):
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "t-0"
        close_after = data.draw(st.none() | st.integers(1, len(batches)), label="clean close after")
        written = write(directory, batches, close_after)
        crash(written.log)
        cut = data.draw(st.integers(0, written.end_of(len(written.active))), label="cut")
        os.truncate(written.active_path, cut)
        kept = max(n for n in range(len(written.active) + 1) if written.end_of(n) <= cut)
        assert_recovered_to(directory, written, kept)


def detectable_positions(batch: bytes) -> list[int]:
    """Positions in a batch whose corruption recovery must notice: the length, magic and
    CRC fields and everything the CRC covers. (The base offset and leader epoch are not
    covered by the CRC; Kafka cannot tell a changed one either.)"""
    return [*range(8, 12), *range(16, len(batch))]


@settings(max_examples=1000)
@given(batches=batch_lists, data=st.data())
def test_corrupt_byte_keeps_exactly_the_batches_before_it(batches, data):
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "t-0"
        close_after = data.draw(st.none() | st.integers(1, len(batches)), label="clean close after")
        written = write(directory, batches, close_after)
        crash(written.log)
        victim = data.draw(st.integers(0, len(written.active) - 1), label="victim batch")
        position = data.draw(st.sampled_from(detectable_positions(written.active[victim][1])), label="position")
        mask = data.draw(st.integers(1, 255), label="xor mask")
        start = written.end_of(victim)
        with open(written.active_path, "r+b") as f:
            f.seek(start + position)
            byte = f.read(1)[0]
            f.seek(start + position)
            f.write(bytes([byte ^ mask]))
        assert_recovered_to(directory, written, victim)


@pytest.mark.parametrize("victim", [0, 2])
def test_base_offset_going_backwards_ends_the_valid_data(tmp_path, victim):
    directory = tmp_path / "t-0"
    written = write(directory, [client_batch(2) for _ in range(4)])
    crash(written.log)
    start = written.end_of(victim)
    previous_next = read_header(written.active[victim - 1][1]).next_offset if victim else written.active[0][0]
    with open(written.active_path, "r+b") as f:
        f.seek(start)
        f.write(struct.pack(">q", previous_next - 1))
    assert_recovered_to(directory, written, victim)


def test_garbage_after_the_last_batch_is_cut(tmp_path):
    directory = tmp_path / "t-0"
    written = write(directory, [client_batch(3), client_batch(1)])
    crash(written.log)
    with open(written.active_path, "ab") as f:
        f.write(b"\0" * 100)
    assert_recovered_to(directory, written, 2)


def test_corrupt_batch_in_a_middle_segment_drops_all_later_segments(tmp_path):
    directory = tmp_path / "t-0"
    log = open_log(directory, CONFIG)
    for _ in range(30):
        log.append(client_batch(2, value_size=60), 0)
    bases = [s.base_offset for s in log.segments]
    assert len(bases) >= 4
    middle = log.segments[1]
    batches = list(middle.batches())
    (position, header) = batches[2]
    crash(log)
    with open(directory / segment_name(middle.base_offset, ".log"), "r+b") as f:
        f.seek(position + 40)
        byte = f.read(1)[0]
        f.seek(position + 40)
        f.write(bytes([byte ^ 0xFF]))

    log = PartitionLog.open(directory, CONFIG, 0, clean_shutdown=False)
    try:
        assert [s.base_offset for s in log.segments] == bases[:2]
        assert log.next_offset == header.base_offset
        assert sorted(p.name for p in directory.glob("*.log")) == [segment_name(b, ".log") for b in bases[:2]]
        assert not [p for p in directory.iterdir() if p.name[:20].isdigit() and int(p.name[:20]) > bases[1]]
        assert log.append(client_batch(1), 0).base_offset == header.base_offset
    finally:
        crash(log)


def test_index_files_agree_with_the_log_after_recovery_and_a_clean_close(tmp_path):
    directory = tmp_path / "t-0"
    dense = LogConfig(index_interval_bytes=50)
    log = open_log(directory, dense)
    for _ in range(10):
        log.append(client_batch(1, value_size=40), 0)
    log.close()  # writes index files with entries throughout the segment
    log = open_log(directory, dense, clean_shutdown=True)
    second_batch = log.active.index.positions[0]
    crash(log)
    os.truncate(directory / segment_name(0, ".log"), second_batch + 10)

    sparse = LogConfig(index_interval_bytes=10_000)  # so no entry is made after recovery
    log = open_log(directory, sparse, clean_shutdown=False)
    assert log.next_offset == 1
    log.append(client_batch(5, value_size=200), 0)  # past where stale entries pointed
    log.close()

    index = OffsetIndex(directory / segment_name(0, ".index"), 0)
    time_index = TimeIndex(directory / segment_name(0, ".timeindex"), 0)
    assert index.load(log.active.size) and time_index.load(log.next_offset)
    assert (list(index.offsets), list(time_index.offsets)) == ([], [])
