import itertools
import random
import struct
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kafkapy.wire.framing import FrameError, FrameReader

MAX_FRAME = 1 << 20


def frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def deliver(reader: FrameReader, data: bytes, cuts: Iterable[int] = ()) -> list[bytes]:
    """Feeds data as a socket would: into the buffers the reader hands out, arriving in
    the pieces that cuts delimit (a piece larger than a buffer takes several reads)."""
    frames: list[bytes] = []
    bounds = [0, *sorted(cuts), len(data)]
    for start, end in itertools.pairwise(bounds):
        piece = memoryview(data)[start:end]
        while piece:
            with reader.recv_buffer() as buf:
                assert len(buf) > 0, "the reader offered no room to receive into"
                n = min(len(buf), len(piece))
                buf[:n] = piece[:n]
            frames += [bytes(f) for f in reader.received(n)]
            piece = piece[n:]
    return frames


def body(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


SMALL_FRAMES = [body(0), body(1, 1), body(7, 2), body(300, 3)]
SMALL_STREAM = b"".join(frame(b) for b in SMALL_FRAMES)


@pytest.mark.parametrize("cut", range(1, len(SMALL_STREAM)))
def test_frames_split_at_any_byte_boundary(cut):
    reader = FrameReader(MAX_FRAME)
    assert deliver(reader, SMALL_STREAM, [cut]) == SMALL_FRAMES
    assert not reader.mid_frame


def test_frames_arriving_one_byte_at_a_time():
    reader = FrameReader(MAX_FRAME)
    assert deliver(reader, SMALL_STREAM, range(1, len(SMALL_STREAM))) == SMALL_FRAMES


def test_mid_frame_until_the_last_byte_arrives():
    data = frame(b"hello")
    reader = FrameReader(MAX_FRAME)
    for i in range(len(data) - 1):
        assert deliver(reader, data[i : i + 1]) == []
        assert reader.mid_frame
    assert deliver(reader, data[-1:]) == [b"hello"]
    assert not reader.mid_frame


def test_many_frames_in_one_chunk():
    bodies = [body(i % 23, i) for i in range(2000)]
    data = b"".join(frame(b) for b in bodies)
    reader = FrameReader(MAX_FRAME)
    buf = reader.recv_buffer()
    assert len(buf) >= len(data)
    buf[: len(data)] = data
    assert [bytes(f) for f in reader.received(len(data))] == bodies
    assert not reader.mid_frame


def test_large_frame_is_filled_through_a_buffer_of_its_own():
    large = body(100_000, 7)
    data = frame(large) + frame(b"next")
    reader = FrameReader(MAX_FRAME)
    with reader.recv_buffer() as buf:
        buf[:1004] = data[:1004]
    assert reader.received(1004) == []
    # The rest of the frame: the socket writes the body where it ends up, never past its end.
    received, frames = 1004, []
    while not frames:
        with reader.recv_buffer() as buf:
            assert 0 < len(buf) <= 4 + len(large) - received
            buf[:] = data[received : received + len(buf)]
            n = len(buf)
        received += n
        frames = reader.received(n)
    assert frames == [large]
    assert not reader.mid_frame
    assert deliver(reader, data[4 + len(large) :]) == [b"next"]


def test_a_large_frame_holds_memory_for_what_arrived_not_for_what_it_announced():
    announced = 100 << 20
    reader = FrameReader(announced)
    deliver(reader, struct.pack(">i", announced) + b"only this")
    with reader.recv_buffer() as buf:
        assert len(buf) <= 64 * 1024
    sent = len(b"only this")
    while sent < 3 << 20:
        with reader.recv_buffer() as buf:
            assert len(buf) <= max(sent, 64 * 1024), "the buffer grows at most by doubling what arrived"
            n = len(buf)
        sent += n
        assert reader.received(n) == []
    assert reader.mid_frame


def test_declared_bytes_count_each_frame_once_when_its_size_is_known():
    reader = FrameReader(MAX_FRAME)
    large = body(200_000)
    stream = frame(b"abc") + frame(large)
    deliver(reader, stream[:10])
    assert reader.declared_bytes == 3  # the small frame; the large one's size is not complete yet
    deliver(reader, stream[10:20])
    assert reader.declared_bytes == 3 + len(large)  # counted as it begins, before its body
    assert deliver(reader, stream[20:]) == [large]
    assert reader.declared_bytes == 3 + len(large)


def test_frame_larger_than_half_a_chunk_arriving_whole_is_cut_from_the_chunk():
    bodies = [body(40_000, 1), b"tail"]
    data = b"".join(frame(b) for b in bodies)
    reader = FrameReader(MAX_FRAME)
    buf = reader.recv_buffer()
    buf[: len(data)] = data
    assert [bytes(f) for f in reader.received(len(data))] == bodies


@settings(max_examples=200)
@given(
    sizes=st.lists(st.one_of(st.integers(0, 40), st.integers(0, 120_000)), min_size=1, max_size=6),
    seed=st.integers(0, 2**32),
    data=st.data(),
)
def test_any_frames_in_any_pieces(sizes, seed, data):
    bodies = [body(size, seed + i) for i, size in enumerate(sizes)]
    stream = b"".join(frame(b) for b in bodies)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    reader = FrameReader(MAX_FRAME)
    assert deliver(reader, stream, cuts) == bodies
    assert not reader.mid_frame


@pytest.mark.parametrize("prefix", [-1, -(2**31)])
def test_negative_size_is_a_frame_error(prefix):
    reader = FrameReader(MAX_FRAME)
    with pytest.raises(FrameError):
        deliver(reader, struct.pack(">i", prefix))


def test_size_over_the_limit_is_a_frame_error_before_the_body_arrives():
    reader = FrameReader(1000)
    with pytest.raises(FrameError):
        deliver(reader, struct.pack(">i", 1001))


def test_size_at_the_limit_is_accepted():
    reader = FrameReader(1000)
    assert deliver(reader, frame(body(1000))) == [body(1000)]


def test_oversized_frame_after_a_good_one_is_a_frame_error():
    reader = FrameReader(1000)
    with pytest.raises(FrameError):
        deliver(reader, frame(b"ok") + struct.pack(">i", 5000))
