import gzip
import struct
import warnings

import cramjam
import pytest
import zstandard
from crc32c import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import make_records
from kafkapy.wire.compression import Codec, CompressionError, compress, decompress
from kafkapy.wire.records import (
    CONTROL_ABORT,
    CONTROL_COMMIT,
    HEADER_SIZE,
    TIMESTAMP_TYPE_BIT,
    InvalidRecords,
    Record,
    control_marker,
    crc_ok,
    decode_records,
    encode_batch,
    encode_control_batch,
    iter_headers,
    read_header,
    stamped_header,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # kafka-python loads its schemas on import
    import kafka.codec

CODECS = list(Codec)
XERIAL_HEADER = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)


@st.composite
def record_lists(draw: st.DrawFn) -> list[Record]:
    """Records as a batch may hold them: increasing offsets, gaps (as compaction leaves
    them) or none, any timestamps, null or empty keys and values, headers."""
    count = draw(st.integers(1, 12))
    offset = draw(st.integers(0, 2**40))
    records = []
    for _ in range(count):
        records.append(
            Record(
                offset=offset,
                timestamp=draw(st.integers(-1, 2**42)),
                key=draw(st.none() | st.binary(max_size=24)),
                value=draw(st.none() | st.binary(max_size=200)),
                headers=tuple(draw(st.lists(st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=8)), max_size=3))),
            )
        )
        offset += 1 + draw(st.sampled_from([0, 0, 0, 1, 1000, 2**20]))
    return records


def with_payload(batch: bytes, codec: int, payload: bytes) -> bytes:
    """The batch with its records section replaced by payload under codec, CRC resealed:
    how another client's compressor output reaches the broker."""
    out = bytearray(batch[:HEADER_SIZE] + payload)
    struct.pack_into(">i", out, 8, len(out) - 12)
    struct.pack_into(">h", out, 21, (read_header(batch).attributes & ~0x07) | codec)
    struct.pack_into(">I", out, 17, crc32c(bytes(out[21:])))
    return bytes(out)


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@settings(max_examples=100)
@given(records=record_lists())
def test_round_trip(codec, records):
    data = encode_batch(records, codec=codec)
    header = read_header(data)
    assert header.size == len(data)
    assert (header.magic, header.codec, header.records_count) == (2, codec, len(records))
    assert (header.base_offset, header.last_offset) == (records[0].offset, records[-1].offset)
    assert header.base_timestamp == records[0].timestamp
    assert header.max_timestamp == max(r.timestamp for r in records)
    assert crc_ok(data, 0, header)
    assert decode_records(data) == records


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_producer_fields_and_flags_round_trip(codec):
    data = encode_batch(
        make_records(3), codec=codec, producer_id=77, producer_epoch=5, base_sequence=2**31 - 2,
        transactional=True, partition_leader_epoch=9,
    )
    header = read_header(data)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (77, 5, 2**31 - 2)
    assert header.is_transactional and not header.is_control and not header.log_append_time
    assert header.partition_leader_epoch == 9
    assert header.last_sequence == 0  # sequences wrap at 2^31
    assert decode_records(data) == make_records(3)


def test_delete_horizon_is_carried_in_the_base_timestamp():
    records = [Record(0, 5_000, b"k", None), Record(1, 7_000, b"k", b"v")]
    data = encode_batch(records, delete_horizon_ms=90_000)
    header = read_header(data)
    assert header.base_timestamp == 90_000
    assert header.attributes & 0x40
    assert decode_records(data) == records


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_flipping_any_byte_covered_by_the_crc_fails_it(codec):
    data = encode_batch(make_records(4, value_size=30), codec=codec)
    for position in range(21, len(data)):
        for mask in (0x01, 0x80, 0xFF):
            corrupt = bytearray(data)
            corrupt[position] ^= mask
            assert not crc_ok(corrupt, 0, read_header(corrupt)), f"byte {position} ^ {mask:#x} went unnoticed"


def test_base_offset_and_leader_epoch_are_outside_the_crc():
    data = bytearray(encode_batch(make_records(2)))
    for position in (*range(0, 8), *range(12, 16)):
        data[position] ^= 0xFF
    assert crc_ok(data, 0, read_header(data))


def test_crc_is_checked_at_a_position_inside_a_larger_buffer():
    first, second = encode_batch(make_records(2)), encode_batch(make_records(3, offset=2))
    buf = bytearray(first + second)
    assert crc_ok(buf, len(first), read_header(buf, len(first)))
    buf[len(first) + 40] ^= 1
    assert crc_ok(buf, 0, read_header(buf))
    assert not crc_ok(buf, len(first), read_header(buf, len(first)))


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_stamped_offsets_keep_the_crc(codec):
    batch = encode_batch(make_records(3), codec=codec)
    stored = stamped_header(batch, read_header(batch), 1_000_000, 7) + batch[HEADER_SIZE:]
    header = read_header(stored)
    assert (header.base_offset, header.partition_leader_epoch) == (1_000_000, 7)
    assert header.crc == read_header(batch).crc
    assert crc_ok(stored, 0, header)
    assert [r.offset for r in decode_records(stored)] == [1_000_000, 1_000_001, 1_000_002]


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_stamped_log_append_time_reseals_the_crc(codec):
    batch = encode_batch(make_records(3, timestamp=1_000), codec=codec)
    appended = read_header(batch)._replace(max_timestamp=123_456, attributes=read_header(batch).attributes | TIMESTAMP_TYPE_BIT)
    stored = stamped_header(batch, appended, 5, 0) + batch[HEADER_SIZE:]
    header = read_header(stored)
    assert header.log_append_time and header.codec == codec
    assert header.max_timestamp == 123_456
    assert header.base_timestamp == 1_000  # Kafka leaves the producer's base timestamp
    assert crc_ok(stored, 0, header)
    assert [r.timestamp for r in decode_records(stored)] == [123_456] * 3


@pytest.mark.parametrize("marker", [CONTROL_COMMIT, CONTROL_ABORT], ids=["commit", "abort"])
def test_control_batch(marker):
    data = encode_control_batch(
        marker, offset=42, timestamp=5_000, producer_id=7, producer_epoch=3, coordinator_epoch=11,
        partition_leader_epoch=2,
    )
    header = read_header(data)
    assert header.is_control and header.is_transactional
    assert (header.base_offset, header.records_count, header.last_offset_delta) == (42, 1, 0)
    assert (header.producer_id, header.producer_epoch, header.partition_leader_epoch) == (7, 3, 2)
    assert crc_ok(data, 0, header)
    [record] = decode_records(data)
    assert (record.offset, record.timestamp) == (42, 5_000)
    # Kafka's control record key (version, type) and EndTransactionMarker value
    # (version, coordinator epoch).
    assert record.key == struct.pack(">hh", 0, marker)
    assert record.value == struct.pack(">hi", 0, 11)
    assert control_marker(record) == marker


def test_iter_headers_stops_before_a_partial_batch():
    batches = [encode_batch(make_records(n, offset=o)) for n, o in ((1, 0), (2, 1), (3, 3))]
    buf = b"".join(batches)
    complete = [(pos, h.base_offset) for pos, h in iter_headers(buf)]
    assert complete == [(0, 0), (len(batches[0]), 1), (len(batches[0]) + len(batches[1]), 3)]
    assert [h.base_offset for _, h in iter_headers(buf[:-1])] == [0, 1]
    assert [h.base_offset for _, h in iter_headers(buf, len(batches[0]))] == [1, 3]


def test_records_count_above_the_records_present_is_invalid():
    data = bytearray(encode_batch(make_records(2)))
    struct.pack_into(">i", data, 57, 3)
    with pytest.raises(InvalidRecords):
        decode_records(data)


def test_bytes_after_the_last_record_are_invalid():
    data = bytearray(encode_batch(make_records(2)))
    struct.pack_into(">i", data, 57, 1)
    with pytest.raises(InvalidRecords):
        decode_records(data)


def test_record_field_running_past_the_batch_is_invalid():
    data = bytearray(encode_batch([Record(0, 0, b"key", b"value")]))
    data[HEADER_SIZE + 4] = 0x7E  # key length varint: 63 bytes, more than the record holds
    with pytest.raises(InvalidRecords):
        decode_records(data)


def test_null_header_key_is_invalid():
    data = bytearray(encode_batch([Record(0, 0, None, None, (("", b"v"),))]))
    # Record length, attributes, timestamp delta, offset delta, null key, null value,
    # header count, then the header key's length: 0 made -1 (null), which Kafka refuses.
    assert data[HEADER_SIZE + 7] == 0
    data[HEADER_SIZE + 7] = 1
    with pytest.raises(InvalidRecords):
        decode_records(data)


@pytest.mark.parametrize("codec", [Codec.GZIP, Codec.SNAPPY, Codec.LZ4, Codec.ZSTD], ids=lambda c: c.name)
def test_undecompressable_payload_is_invalid(codec):
    batch = with_payload(encode_batch(make_records(2)), codec, b"\x00\x01not compressed at all" * 3)
    with pytest.raises(InvalidRecords):
        decode_records(batch)


# Interop with the framings other clients write.

LARGE = b"".join(encode_batch(make_records(50, offset=i * 50, value_size=40))[HEADER_SIZE:] for i in range(40))


def test_raw_snappy_as_librdkafka_writes_it_decodes():
    records = make_records(20, value_size=50)
    plain = encode_batch(records)
    raw = bytes(cramjam.snappy.compress_raw(plain[HEADER_SIZE:]))
    batch = with_payload(plain, Codec.SNAPPY, raw)
    assert not raw.startswith(XERIAL_HEADER[:8])
    assert decode_records(batch) == records


@pytest.mark.parametrize("data", [b"small payload", LARGE], ids=["one block", "many blocks"])
def test_our_snappy_is_xerial_framed_and_decodes_elsewhere(data):
    payload = compress(Codec.SNAPPY, data)
    assert payload.startswith(XERIAL_HEADER)
    assert kafka.codec.snappy_decode(payload) == data
    assert decompress(Codec.SNAPPY, payload) == data


def test_our_xerial_snappy_blocks_hold_32_kib_each():
    payload = compress(Codec.SNAPPY, LARGE)
    blocks, pos = [], len(XERIAL_HEADER)
    while pos < len(payload):
        (size,) = struct.unpack_from(">i", payload, pos)
        blocks.append(bytes(cramjam.snappy.decompress_raw(payload[pos + 4 : pos + 4 + size])))
        pos += 4 + size
    assert [len(b) for b in blocks[:-1]] == [32 * 1024] * (len(LARGE) // (32 * 1024))
    assert b"".join(blocks) == LARGE


def test_xerial_snappy_from_another_client_decodes():
    assert decompress(Codec.SNAPPY, kafka.codec.snappy_encode(LARGE, xerial_compatible=True)) == LARGE


def test_truncated_xerial_snappy_is_a_compression_error():
    payload = compress(Codec.SNAPPY, LARGE)
    with pytest.raises(CompressionError):
        decompress(Codec.SNAPPY, payload[:-10])


def test_lz4_frames_interoperate():
    assert kafka.codec.lz4_decode(compress(Codec.LZ4, LARGE)) == LARGE
    assert decompress(Codec.LZ4, kafka.codec.lz4_encode(LARGE)) == LARGE


def test_gzip_interoperates():
    assert gzip.decompress(compress(Codec.GZIP, LARGE)) == LARGE
    assert decompress(Codec.GZIP, gzip.compress(LARGE, compresslevel=1)) == LARGE


def test_streamed_zstd_without_a_content_size_decodes():
    compressor = zstandard.ZstdCompressor().compressobj()
    streamed = compressor.compress(LARGE) + compressor.flush()
    assert zstandard.get_frame_parameters(streamed).content_size == zstandard.CONTENTSIZE_UNKNOWN
    assert decompress(Codec.ZSTD, streamed) == LARGE
    assert zstandard.ZstdDecompressor().decompress(compress(Codec.ZSTD, LARGE)) == LARGE


@pytest.mark.parametrize(
    ("codec", "level"),
    # The bounds of compression.gzip.level, compression.lz4.level and compression.zstd.level.
    [(Codec.GZIP, -1), (Codec.GZIP, 1), (Codec.GZIP, 9), (Codec.LZ4, 1), (Codec.LZ4, 17), (Codec.ZSTD, -131072), (Codec.ZSTD, 22)],
)
def test_every_configurable_level_compresses(codec, level):
    assert decompress(codec, compress(codec, LARGE, level)) == LARGE


@pytest.mark.parametrize("codec", [Codec.GZIP, Codec.SNAPPY, Codec.LZ4, Codec.ZSTD], ids=lambda c: c.name)
def test_garbage_is_a_compression_error(codec):
    with pytest.raises(CompressionError):
        decompress(codec, b"\xffthis is not compressed data\x00" * 4)


def test_unknown_codec_is_a_compression_error():
    with pytest.raises(CompressionError):
        decompress(5, b"")
    with pytest.raises(CompressionError):
        compress(7, b"data")


@pytest.mark.parametrize(("name", "codec"), [("none", Codec.NONE), ("uncompressed", Codec.NONE), ("gzip", Codec.GZIP), ("snappy", Codec.SNAPPY), ("lz4", Codec.LZ4), ("zstd", Codec.ZSTD)])
def test_codec_from_config_name(name, codec):
    assert Codec.from_name(name) is codec
