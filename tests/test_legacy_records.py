"""Message formats v0 and v1: produced message sets converted to v2 batches on append
(kafkapy.log.upconversion), and v2 batches converted for Fetch v0-3
(kafkapy.wire.legacy_records, kafkapy.handlers.fetch_down_conversion). The other side of
each round trip is kafka-python's own legacy record encoder and decoder."""

from __future__ import annotations

import gzip
import os
import zlib

import lz4.frame
import pytest
from kafka.record.legacy_records import LegacyRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords
from kio.schema.errors import ErrorCode

from kafkapy.handlers.fetch_down_conversion import read_down_converted
from kafkapy.log.config import LogConfig
from kafkapy.log.upconversion import upconvert
from kafkapy.log.validation import LogError
from kafkapy.wire.compression import Codec, lz4_frame_for_magic_v0, xxh32
from kafkapy.wire.legacy_records import (
    UnsupportedDownConversion,
    down_convert_batch,
    encode_message,
    inner_messages,
    iter_messages,
    magic_of,
)
from kafkapy.wire.protocol import FileSlice
from kafkapy.wire.records import (
    NO_TIMESTAMP,
    Record,
    decode_records,
    encode_batch,
    encode_control_batch,
    iter_headers,
    read_header,
)

CODECS = [Codec.NONE, Codec.GZIP, Codec.SNAPPY, Codec.LZ4]
T0 = 1_700_000_000_000


def kafka_python_message_set(magic: int, codec: int, messages: list[tuple[bytes | None, bytes | None]]) -> bytes:
    """What kafka-python's producer sends pinned to an old release: offsets 0.., timestamps T0.."""
    builder = LegacyRecordBatchBuilder(magic=magic, compression_type=codec, batch_size=1 << 20)
    for i, (key, value) in enumerate(messages):
        assert builder.append(i, timestamp=T0 + i, key=key, value=value) is not None
    return bytes(builder.build())


def stored(batch: bytes) -> list[Record]:
    (header,) = [h for _, h in iter_headers(batch)]
    return decode_records(batch, header)


MESSAGES = [(b"k0", b"v0"), (None, b"v1"), (b"k2", None), (b"k3", b"x" * 3000)]


# kafka-python writes magic 0 LZ4 only with xxhash, not installed: that framing has a test of its own.
@pytest.mark.parametrize(("magic", "codec"), [(m, c) for m in (0, 1) for c in CODECS if (m, c) != (0, Codec.LZ4)],
                         ids=lambda v: v.name if isinstance(v, Codec) else f"magic{v}")
def test_a_produced_message_set_becomes_one_v2_batch(magic, codec):
    data = kafka_python_message_set(magic, codec, MESSAGES)
    assert magic_of(data) == magic
    batch = upconvert(data, LogConfig())
    (header,) = [h for _, h in iter_headers(batch)]
    assert (header.magic, header.codec, header.records_count, header.producer_id) == (2, codec, 4, -1)
    records = decode_records(batch, header)
    expected_ts = [NO_TIMESTAMP] * 4 if magic == 0 else [T0 + i for i in range(4)]
    assert [(r.offset, r.timestamp, r.key, r.value) for r in records] == [
        (i, ts, k, v) for i, (ts, (k, v)) in enumerate(zip(expected_ts, MESSAGES, strict=True))]
    assert header.max_timestamp == (NO_TIMESTAMP if magic == 0 else T0 + 3)


def test_magic_0_lz4_is_read_with_either_header_checksum():
    inner = b"".join(encode_message(i, 0, 0, NO_TIMESTAMP, None, f"v{i}".encode()) for i in range(3))
    proper = lz4.frame.compress(inner, block_linked=False)
    broken = lz4_frame_for_magic_v0(proper)
    assert broken != proper  # Kafka 0.8/0.9's checksum covers the frame's magic too
    for frame in (proper, broken):
        wrapper = encode_message(2, 0, Codec.LZ4, NO_TIMESTAMP, None, frame)
        assert [r.value for r in stored(upconvert(wrapper, LogConfig()))] == [b"v0", b"v1", b"v2"]


def test_xxh32_matches_the_reference_values():
    assert [xxh32(b""), xxh32(b"a"), xxh32(b"abc")] == [0x02CC5D05, 0x550D7456, 0x32D153FF]
    assert xxh32(b"Nobody inspects the spammish repetition") == 0xE2293B2F


def test_the_topic_compression_type_decides_the_stored_codec():
    data = kafka_python_message_set(1, Codec.GZIP, MESSAGES)
    batch = upconvert(data, LogConfig(compression_type="snappy"))
    assert read_header(batch).codec == Codec.SNAPPY
    plain = upconvert(kafka_python_message_set(1, Codec.NONE, MESSAGES), LogConfig(compression_type="lz4"))
    assert read_header(plain).codec == Codec.LZ4
    assert [r.value for r in stored(plain)] == [v for _, v in MESSAGES]


def refusal(data: bytes, config: LogConfig | None = None) -> LogError:
    with pytest.raises(LogError) as e:
        upconvert(data, config or LogConfig())
    return e.value


def test_a_message_failing_its_crc_is_corrupt_message():
    data = bytearray(kafka_python_message_set(1, Codec.NONE, MESSAGES[:2]))
    data[-1] ^= 0xFF
    assert refusal(bytes(data)).code == ErrorCode.corrupt_message
    assert refusal(bytes(data[:-3])).code == ErrorCode.corrupt_message  # truncated


def test_an_inner_message_failing_its_crc_is_corrupt_message():
    inner = bytearray(encode_message(0, 1, 0, T0, b"k", b"value"))
    inner[-1] ^= 0xFF
    wrapper = encode_message(0, 1, Codec.GZIP, T0, None, gzip.compress(bytes(inner)))
    assert refusal(wrapper).code == ErrorCode.corrupt_message


def test_messages_of_two_magics_are_invalid_record():
    data = kafka_python_message_set(0, Codec.NONE, MESSAGES[:1]) + kafka_python_message_set(1, Codec.NONE, MESSAGES[:1])
    assert refusal(data).code == ErrorCode.invalid_record


def test_two_compressed_messages_in_one_request_are_invalid_record():
    one = kafka_python_message_set(1, Codec.GZIP, MESSAGES[:2])
    assert refusal(one + one).code == ErrorCode.invalid_record


def test_a_compressed_message_inside_a_compressed_message_is_invalid_record():
    nested = kafka_python_message_set(1, Codec.GZIP, MESSAGES[:1])
    wrapper = encode_message(0, 1, Codec.GZIP, T0, None, gzip.compress(nested))
    assert refusal(wrapper).code == ErrorCode.invalid_record
    empty = encode_message(0, 1, Codec.GZIP, T0, None, gzip.compress(b""))
    assert refusal(empty).code == ErrorCode.invalid_record
    null_value = encode_message(0, 1, Codec.GZIP, T0, None, None)
    assert refusal(null_value).code == ErrorCode.invalid_record


def test_inner_messages_of_another_magic_are_invalid_record():
    inner = encode_message(0, 0, 0, NO_TIMESTAMP, None, b"v")
    wrapper = encode_message(0, 1, Codec.GZIP, T0, None, gzip.compress(inner))
    assert refusal(wrapper).code == ErrorCode.invalid_record


def test_max_message_bytes_holds_for_each_message_and_what_it_inflates_to():
    big = kafka_python_message_set(1, Codec.NONE, [(None, b"x" * 2000)])
    assert refusal(big, LogConfig(max_message_bytes=1000)).code == ErrorCode.message_too_large
    bomb = encode_message(0, 1, Codec.GZIP, T0, None, gzip.compress(encode_message(0, 1, 0, T0, None, b"\0" * 100_000)))
    assert len(bomb) < 1000
    assert refusal(bomb, LogConfig(max_message_bytes=1000)).code == ErrorCode.message_too_large


def test_a_producer_may_not_claim_log_append_time():
    claimed = encode_message(0, 1, 0x08, T0, None, b"v")
    assert refusal(claimed, LogConfig(message_timestamp_type="LogAppendTime")).code == ErrorCode.invalid_timestamp
    no_time = encode_message(0, 1, 0x08, NO_TIMESTAMP, None, b"v")
    assert refusal(no_time).code == ErrorCode.invalid_timestamp
    # A CreateTime topic takes the claimed time as the record's, as Kafka.
    assert [r.timestamp for r in stored(upconvert(claimed, LogConfig()))] == [T0]


def test_inner_messages_of_a_log_append_time_wrapper_take_its_timestamp():
    inner = b"".join(encode_message(i, 1, 0, T0 + i, None, b"v") for i in range(2))
    wrapper = encode_message(1, 1, Codec.GZIP | 0x08, T0 + 50, None, gzip.compress(inner))
    assert [r.timestamp for r in stored(upconvert(wrapper, LogConfig()))] == [T0 + 50, T0 + 50]


def test_an_empty_message_set_is_invalid_record():
    assert refusal(b"").code == ErrorCode.invalid_record


# Down-conversion

RECORDS = [Record(100 + i, T0 + i, f"k{i}".encode() if i % 2 else None, f"v{i}".encode(), (("h", b"x"),)) for i in range(5)]


def kafka_python_read(data: bytes) -> list[tuple[int, int, int, int, bytes | None, bytes | None]]:
    """(magic, offset, timestamp, timestamp type, key, value) of each record, as kafka-python's consumer reads them."""
    found = []
    records = MemoryRecords(data)
    while (batch := records.next_batch()) is not None:
        found += [(batch.magic, r.offset, r.timestamp, r.timestamp_type, r.key, r.value) for r in batch]
    return found


def down_converted(batch: bytes, magic: int, fetch_offset: int) -> bytes:
    (header,) = [h for _, h in iter_headers(batch)]
    return b"".join(down_convert_batch(batch, header, magic, fetch_offset))


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: Codec(c).name)
def test_a_v2_batch_down_converted_to_magic_1_reads_back_in_kafka_python(codec):
    batch = encode_batch(RECORDS, codec=codec, producer_id=7, producer_epoch=0, base_sequence=0)
    found = kafka_python_read(down_converted(batch, 1, 100))
    assert found == [(1, r.offset, r.timestamp, 0, r.key, r.value) for r in RECORDS]


@pytest.mark.parametrize("codec", CODECS[:3], ids=lambda c: Codec(c).name)
def test_a_v2_batch_down_converted_to_magic_0_has_no_timestamps(codec):
    batch = encode_batch(RECORDS, codec=codec)
    found = kafka_python_read(down_converted(batch, 0, 100))
    assert found == [(0, r.offset, None, None, r.key, r.value) for r in RECORDS]


def test_magic_0_lz4_is_written_with_the_old_header_checksum():
    batch = encode_batch(RECORDS, codec=Codec.LZ4)
    (wrapper,) = iter_messages(down_converted(batch, 0, 100))
    assert (wrapper.magic, wrapper.codec, wrapper.offset) == (0, Codec.LZ4, 104)
    frame = wrapper.value
    assert frame is not None and frame[6] == (xxh32(frame[:6]) >> 8) & 0xFF
    assert [(m.offset, m.value) for m in inner_messages(wrapper, None)] == [(r.offset, r.value) for r in RECORDS]


def test_an_uncompressed_batch_starts_at_the_fetch_offset_and_a_compressed_one_is_whole():
    plain = encode_batch(RECORDS)
    assert [f[1] for f in kafka_python_read(down_converted(plain, 1, 102))] == [102, 103, 104]
    compressed = encode_batch(RECORDS, codec=Codec.GZIP)
    assert [f[1] for f in kafka_python_read(down_converted(compressed, 1, 102))] == [100, 101, 102, 103, 104]
    (wrapper,) = iter_messages(down_converted(compressed, 1, 102))
    # Magic 1: the wrapper carries the last offset and its max timestamp; inner offsets are relative.
    assert (wrapper.offset, wrapper.timestamp) == (104, T0 + 4)
    assert [m.offset for m in inner_messages(wrapper, None)] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("codec", [Codec.NONE, Codec.GZIP], ids=lambda c: Codec(c).name)
def test_log_append_time_is_carried_to_magic_1(codec):
    batch = encode_batch(RECORDS, codec=codec, log_append_time=True, max_timestamp=T0 + 999)
    found = kafka_python_read(down_converted(batch, 1, 100))
    assert {(f[2], f[3]) for f in found} == {(T0 + 999, 1)}


def test_control_batches_are_dropped_and_aborted_records_kept():
    aborted = encode_batch(RECORDS[:2], producer_id=5, producer_epoch=0, base_sequence=0, transactional=True)
    marker = encode_control_batch(0, offset=102, timestamp=T0, producer_id=5, producer_epoch=0, coordinator_epoch=0)
    assert down_converted(marker, 1, 102) == b""
    assert [f[1] for f in kafka_python_read(down_converted(aborted, 1, 100))] == [100, 101]


def test_zstd_batches_cannot_be_down_converted():
    batch = encode_batch(RECORDS, codec=Codec.ZSTD)
    with pytest.raises(UnsupportedDownConversion):
        down_converted(batch, 1, 100)


def file_slice(tmp_path, data: bytes) -> FileSlice:
    path = tmp_path / "segment"
    path.write_bytes(b"\0" * 7 + data)
    fd = os.open(path, os.O_RDONLY)
    return FileSlice(fd, 7, len(data))


def test_the_conversion_of_a_file_range_stays_within_its_size(tmp_path):
    # Small records grow when down-converted: the answer keeps to the bytes read, in whole entries.
    batches = b"".join(encode_batch([Record(i * 10 + j, T0, None, b"v") for j in range(10)], base_offset=i * 10) for i in range(20))
    records = file_slice(tmp_path, batches)
    try:
        converted = read_down_converted(records, 1, 0)
    finally:
        os.close(records.fd)
    assert 0 < len(converted) <= len(batches)
    offsets = [f[1] for f in kafka_python_read(converted)]
    assert offsets == list(range(len(offsets)))
    assert sum(1 for _ in iter_messages(converted)) == len(offsets)


def test_the_first_entry_is_sent_whatever_its_size(tmp_path):
    # One compressed batch of highly compressible values: its converted entry is larger than
    # the batch on disk, and is still answered whole, as a consumer needs it to move on.
    records = [Record(i, T0, None, b"a" * 50) for i in range(400)]
    batch = encode_batch(records, codec=Codec.GZIP) + encode_batch([Record(400, T0, None, b"b")], base_offset=400)
    view = file_slice(tmp_path, batch)
    try:
        converted = read_down_converted(view, 1, 0)
    finally:
        os.close(view.fd)
    assert [f[1] for f in kafka_python_read(converted)] == list(range(400))


def test_a_batch_larger_than_the_read_window_is_converted(tmp_path):
    big = encode_batch([Record(0, T0, None, os.urandom(600_000))])
    view = file_slice(tmp_path, big)
    try:
        converted = read_down_converted(view, 0, 0)
    finally:
        os.close(view.fd)
    (message,) = iter_messages(converted)
    assert (message.offset, message.value) == (0, decode_records(big)[0].value)
    assert zlib.crc32(converted[16:]) == int.from_bytes(converted[12:16], "big")
