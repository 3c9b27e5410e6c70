"""Decompression held to a bound: a batch that inflates past it is refused after at most
that many bytes of output, whatever its codec and framing, and the broker's readers of
client batches (produce validation, recompression, timestamp lookups, the cleaner) use it."""

import struct
import time

import cramjam
import pytest
import zstandard
from kio.schema.errors import ErrorCode

from helpers import open_log
from kafkapy.log.cleaner import LogCleaner, to_clean
from kafkapy.log.config import LogConfig
from kafkapy.log.partition import LogError
from kafkapy.wire.compression import Codec, DecompressedTooLarge, compress, decompress
from kafkapy.wire.records import Record, decode_records, encode_batch
from test_records import with_payload

PLAIN = bytes(range(256)) * 64  # 16 KiB that compresses, but not to nothing
CODECS = [c for c in Codec if c != Codec.NONE]


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_output_up_to_the_bound_decompresses(codec):
    assert decompress(codec, compress(codec, PLAIN), max_size=len(PLAIN)) == PLAIN


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_one_byte_past_the_bound_is_too_large(codec):
    with pytest.raises(DecompressedTooLarge):
        decompress(codec, compress(codec, PLAIN), max_size=len(PLAIN) - 1)


def repeated_frames(codec: int, frame_size: int, frames: int) -> bytes:
    """frames back-to-back compressed frames (or members) of frame_size zero bytes: the
    shape of a bomb, small on the wire and huge inflated."""
    zeros = b"\0" * frame_size
    if codec == Codec.SNAPPY:
        # Xerial framing: a header, then length-prefixed raw blocks.
        block = bytes(cramjam.snappy.compress_raw(zeros))
        return b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1) + (struct.pack(">i", len(block)) + block) * frames
    if codec == Codec.ZSTD:
        return zstandard.ZstdCompressor().compress(zeros) * frames
    if codec == Codec.LZ4:
        return compress(codec, zeros * frames)
    return compress(codec, zeros) * frames


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@pytest.mark.timeout(30)
def test_a_bomb_is_refused_without_inflating_it(codec):
    bomb = repeated_frames(codec, 4 << 20, 256)  # 1 GiB inflated
    started = time.process_time()
    with pytest.raises(DecompressedTooLarge):
        decompress(codec, bomb, max_size=1 << 20)
    # Inflating the whole of it takes seconds; stopping at the bound, milliseconds.
    assert time.process_time() - started < 0.5


def test_gzip_members_are_read_one_after_the_other():
    two = compress(Codec.GZIP, b"first ") + compress(Codec.GZIP, b"second")
    assert decompress(Codec.GZIP, two, max_size=12) == b"first second"
    with pytest.raises(DecompressedTooLarge):
        decompress(Codec.GZIP, two, max_size=11)


def bomb_batch(codec: int = Codec.ZSTD, inflated_mib: int = 64) -> bytes:
    """A valid batch header over a records section that inflates to inflated_mib MiB."""
    return with_payload(encode_batch([Record(0, 1_000, b"k", b"v")], codec=codec), codec,
                        repeated_frames(codec, 1 << 20, inflated_mib))


def test_decode_records_passes_the_bound_on():
    with pytest.raises(DecompressedTooLarge):
        decode_records(bomb_batch(), max_size=1 << 20)


@pytest.mark.parametrize("config", [
    LogConfig(cleanup_policy=("compact",)),
    LogConfig(message_timestamp_before_max_ms=1_000),
    LogConfig(compression_type="gzip"),
    LogConfig(),
], ids=["compacted", "timestamp-checked", "recompressed", "plain"])
def test_a_batch_the_log_opens_is_held_to_max_message_bytes_inflated(tmp_path, config):
    log = open_log(tmp_path / "t-0", config)
    try:
        with pytest.raises(LogError) as refused:
            log.append(bomb_batch(), 1_000)
        assert refused.value.code == ErrorCode.message_too_large
        assert log.next_offset == 0
        # A batch inside the bound is still accepted.
        assert log.append(encode_batch([Record(0, 1_000, b"k", b"v")], codec=Codec.ZSTD), 1_000).base_offset == 0
    finally:
        log.close()


def test_a_stored_bomb_answers_timestamp_lookups_from_its_header(tmp_path):
    # A replica copies its leader's batches unopened: a bomb can be in the log.
    log = open_log(tmp_path / "t-0")
    try:
        log.append(encode_batch([Record(0, 100, b"k", b"a")]), 1_000)
        log.append(bomb_batch(), 1_000, from_client=False)
        assert log.offset_for_timestamp(50, 10) == (100, 0)
        assert log.offset_for_timestamp(500, 10) == (1_000, 1)
        assert log.max_timestamp_offset() == (1_000, 1)
    finally:
        log.close()


def test_the_cleaner_keeps_a_bomb_whole_and_cleans_around_it(tmp_path):
    log = open_log(tmp_path / "t-0", LogConfig(cleanup_policy=("compact",), segment_bytes=200))
    try:
        for value in (b"old", b"new"):
            log.append(encode_batch([Record(0, 1_000, b"key", value)]), 1_000, from_client=False)
        bomb = bomb_batch()
        log.append(bomb, 1_000, from_client=False)  # as a follower copies it: unopened
        log.append(encode_batch([Record(0, 1_000, b"last", b"x")]), 1_000, from_client=False)
        log.high_watermark = log.next_offset
        cleaner = LogCleaner()
        cleaner.commit(cleaner.prepare(to_clean(log, None, 10_000), 10_000), 10_000)
        kept = [(header.base_offset, data) for header, data in log.iter_batches()]
        assert [offset for offset, _ in kept] == [1, 2, 3]
        assert kept[1][1][16:] == bomb[16:]  # all after the offset and leader epoch, as it came
    finally:
        log.close()
