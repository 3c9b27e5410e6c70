"""Kafka's validation of a producer's batches (LogValidator and UnifiedLog's checks), through
PartitionLog.append with a fake clock: what is refused with which error code and which
record indexes, and what is stored when a batch is accepted."""

import struct

import pytest
from crc32c import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode

from helpers import client_batch, make_records, stored_batches
from kafkapy.log.config import LogConfig
from kafkapy.log.partition import LogError, PartitionLog
from kafkapy.wire.compression import Codec
from kafkapy.wire.records import (
    HEADER_SIZE,
    NO_TIMESTAMP,
    InvalidRecords,
    Record,
    compiled_scan,
    crc_ok,
    decode_records,
    encode_batch,
    python_scan,
    read_header,
    scan_records,
)

NOW = 1_000_000
_FIELDS = {"attributes": (21, ">h"), "last_offset_delta": (23, ">i"), "max_timestamp": (35, ">q"), "records_count": (57, ">i")}


def forged(batch: bytes, **fields: int) -> bytes:
    """The batch with header fields overwritten and its CRC resealed, as a buggy or
    hostile client would send it (a valid CRC, so only validation can catch it)."""
    out = bytearray(batch)
    for name, value in fields.items():
        at, layout = _FIELDS[name]
        struct.pack_into(layout, out, at, value)
    struct.pack_into(">I", out, 17, crc32c(bytes(out[21:])))
    return bytes(out)


def with_records_bytes(batch: bytes, records: bytes) -> bytes:
    """The (uncompressed) batch with its records section replaced, lengths and CRC fixed."""
    out = bytearray(batch[:HEADER_SIZE] + records)
    struct.pack_into(">i", out, 8, len(out) - 12)
    struct.pack_into(">I", out, 17, crc32c(bytes(out[21:])))
    return bytes(out)


def refused(log: PartitionLog, batch: bytes, now_ms: int = NOW) -> LogError:
    before = (log.next_offset, stored_batches(log))
    with pytest.raises(LogError) as caught:
        log.append(batch, now_ms)
    assert (log.next_offset, stored_batches(log)) == before
    return caught.value


def timed(*timestamps: int, key: bytes | None = b"k") -> list[Record]:
    return [Record(i, ts, key, b"v") for i, ts in enumerate(timestamps)]


# The header against its records


def test_a_client_batch_must_start_at_offset_zero(opened, log_dir):
    log = opened(log_dir)
    error = refused(log, encode_batch(make_records(2, offset=5)))
    assert error.code == ErrorCode.invalid_record
    assert "should be 0, but it is 5" in error.message


@pytest.mark.parametrize(("fields", "says"), [
    ({"last_offset_delta": -1}, "invalid offset range"),
    ({"records_count": 0, "last_offset_delta": -1}, "invalid offset range"),
    ({"records_count": 0}, "Invalid reported count"),
    ({"records_count": 4}, "Inconsistent batch offset range"),
    ({"last_offset_delta": 3}, "Inconsistent batch offset range"),
])
def test_header_offset_range_and_count_must_agree(opened, log_dir, fields, says):
    log = opened(log_dir)
    error = refused(log, forged(client_batch(3), **fields))
    assert error.code == ErrorCode.invalid_record
    assert says in error.message


@pytest.mark.parametrize("codec", [Codec.NONE, Codec.LZ4], ids=["uncompressed", "lz4"])
@pytest.mark.parametrize("declared", [2, 4], ids=["fewer-declared", "more-declared"])
def test_the_records_must_be_as_many_as_the_header_declares(opened, log_dir, codec, declared):
    log = opened(log_dir)
    batch = forged(client_batch(3, codec=codec), records_count=declared, last_offset_delta=declared - 1)
    assert refused(log, batch).code == ErrorCode.invalid_record
    assert log.append(client_batch(3, codec=codec), NOW).records_count == 3


def test_a_record_whose_fields_do_not_fill_its_length_is_invalid_record(opened, log_dir):
    log = opened(log_dir)
    batch = client_batch(2)
    records = bytearray(batch[HEADER_SIZE:])
    records[0] += 2  # the first record's length (zigzag) one byte longer than its fields
    records.append(0)
    assert refused(log, with_records_bytes(batch, bytes(records))).code == ErrorCode.invalid_record


def test_record_offset_deltas_of_an_uncompressed_batch_are_kept_as_sent(opened, log_dir):
    # As Kafka: only the header's offsets are assigned; the producer's deltas stay.
    log = opened(log_dir)
    sent = encode_batch([Record(0, 5, b"a", b""), Record(2, 5, b"b", b"")], last_offset_delta=1)
    log.append(sent, NOW)
    [(_, data)] = stored_batches(log)
    assert data[HEADER_SIZE:] == sent[HEADER_SIZE:]
    assert [r.offset for r in decode_records(data)] == [0, 2]


@pytest.mark.parametrize("codec", [Codec.GZIP, Codec.ZSTD], ids=lambda c: c.name)
def test_a_compressed_batch_with_bad_inner_offsets_is_renumbered(opened, log_dir, codec):
    log = opened(log_dir)
    log.append(client_batch(1), NOW)
    records = [Record(0, 5, b"a", b"1"), Record(7, 9, b"b", b"2"), Record(3, 7, b"c", b"3")]
    result = log.append(encode_batch(records, last_offset_delta=2, codec=codec), NOW)
    assert (result.base_offset, result.last_offset) == (1, 3)
    [_, (_, data)] = stored_batches(log)
    header = read_header(data)
    assert (header.codec, header.max_timestamp, crc_ok(data, 0, header)) == (codec, 9, True)
    assert [(r.offset, r.key, r.timestamp) for r in decode_records(data)] == [(1, b"a", 5), (2, b"b", 9), (3, b"c", 7)]


# Timestamps (KIP-937) and record errors (KIP-467)


@pytest.mark.parametrize("codec", [Codec.NONE, Codec.SNAPPY], ids=["uncompressed", "snappy"])
def test_timestamps_outside_before_and_after_max_ms_are_refused_with_their_indexes(opened, log_dir, codec):
    log = opened(log_dir, LogConfig(message_timestamp_before_max_ms=1_000, message_timestamp_after_max_ms=500))
    batch = encode_batch(timed(NOW - 1_000, NOW - 1_001, NOW, NOW + 501, NOW + 500), codec=codec)
    error = refused(log, batch)
    assert error.code == ErrorCode.invalid_timestamp
    assert error.message == "One or more records have been rejected due to invalid timestamp"
    assert [index for index, _ in error.record_errors] == [1, 3]
    assert error.record_errors[0][1] == (f"Timestamp {NOW - 1_001} of message with offset 1 is out of range. "
                                         f"The timestamp should be within [{NOW - 1_000}, {NOW + 500}]")


def test_records_without_a_timestamp_are_not_range_checked(opened, log_dir):
    log = opened(log_dir, LogConfig(message_timestamp_before_max_ms=10, message_timestamp_after_max_ms=10))
    assert log.append(encode_batch(timed(NO_TIMESTAMP, NOW, NO_TIMESTAMP)), NOW).records_count == 3


@pytest.mark.parametrize(("config", "accepted", "refused_at"), [
    (LogConfig(message_timestamp_difference_max_ms=100), [NOW - 100, NOW + 100], [NOW - 101, NOW + 101]),
    # Set before/after win over the deprecated key; the unset one falls back to it.
    (LogConfig(message_timestamp_difference_max_ms=100, message_timestamp_before_max_ms=1_000), [NOW - 1_000, NOW + 100], [NOW + 101]),
    (LogConfig(message_timestamp_difference_max_ms=100, message_timestamp_after_max_ms=1_000), [NOW - 100, NOW + 1_000], [NOW - 101]),
], ids=["difference-alone", "before-set", "after-set"])
def test_the_deprecated_difference_max_ms_stands_in_for_unset_bounds(opened, log_dir, config, accepted, refused_at):
    log = opened(log_dir, config)
    assert log.append(encode_batch(timed(*accepted)), NOW).records_count == len(accepted)
    for timestamp in refused_at:
        assert refused(log, encode_batch(timed(timestamp))).code == ErrorCode.invalid_timestamp


def test_log_append_time_topics_do_not_range_check_producer_timestamps(opened, log_dir):
    log = opened(log_dir, LogConfig(message_timestamp_type="LogAppendTime", message_timestamp_before_max_ms=0))
    assert log.append(encode_batch(timed(0)), NOW).log_append_time == NOW


def test_on_a_compacted_topic_a_keyless_record_is_refused_for_its_key_not_its_timestamp(opened, log_dir):
    config = LogConfig(cleanup_policy=("compact",), message_timestamp_before_max_ms=10)
    log = opened(log_dir, config)
    keyless_and_late = [Record(0, NOW, b"k", b""), Record(1, 0, None, b"")]
    error = refused(log, encode_batch(keyless_and_late))
    assert (error.code, [i for i, _ in error.record_errors]) == (ErrorCode.invalid_record, [1])
    assert error.record_errors[0][1] == "Compacted topic cannot accept message without key"
    both = [Record(0, 0, b"k", b""), Record(1, 0, None, b"")]
    error = refused(log, encode_batch(both))
    assert (error.code, [i for i, _ in error.record_errors]) == (ErrorCode.invalid_timestamp, [0, 1])


# The batch's max timestamp and timestamp type


@pytest.mark.parametrize("codec", [Codec.NONE, Codec.ZSTD], ids=["uncompressed", "zstd"])
@pytest.mark.parametrize("sent_max", [NO_TIMESTAMP, 0, 10**12], ids=["missing", "too-small", "too-large"])
def test_the_stored_max_timestamp_is_the_records_and_lookups_by_time_find_them(opened, log_dir, codec, sent_max):
    log = opened(log_dir)
    log.append(encode_batch(timed(100, 200)), NOW)
    batch = forged(encode_batch(timed(300, 700, 500), codec=codec), max_timestamp=sent_max)
    log.append(batch, NOW)
    [_, (_, data)] = stored_batches(log)
    header = read_header(data)
    assert (header.max_timestamp, crc_ok(data, 0, header)) == (700, True)
    assert data[HEADER_SIZE:] == batch[HEADER_SIZE:]  # the records are stored as they came
    assert log.offset_for_timestamp(600, log.next_offset) == (700, 3)
    assert log.offset_for_timestamp(250, log.next_offset) == (300, 2)
    assert log.max_timestamp_offset() == (700, 3)
    assert log.segments[-1].max_timestamp == 700


def test_log_append_time_claimed_by_a_producer_is_refused_on_a_log_append_time_topic(opened, log_dir):
    log = opened(log_dir, LogConfig(message_timestamp_type="LogAppendTime"))
    error = refused(log, client_batch(3, log_append_time=True))
    assert error.code == ErrorCode.invalid_timestamp
    assert [index for index, _ in error.record_errors] == [0, 1, 2]


def test_log_append_time_claimed_without_a_timestamp_is_refused_on_a_create_time_topic(opened, log_dir):
    log = opened(log_dir)
    batch = forged(client_batch(2, log_append_time=True), max_timestamp=NO_TIMESTAMP)
    assert refused(log, batch).code == ErrorCode.invalid_timestamp


def test_log_append_time_claimed_with_a_timestamp_is_stored_as_create_time(opened, log_dir):
    # As Kafka: the records read the claimed time, which is then checked and kept as the
    # batch's max timestamp; the batch is stored as CreateTime.
    log = opened(log_dir, LogConfig(message_timestamp_before_max_ms=1_000))
    assert refused(log, client_batch(1, log_append_time=True, max_timestamp=NOW - 1_001)).code == ErrorCode.invalid_timestamp
    log.append(client_batch(2, timestamp=5, log_append_time=True, max_timestamp=NOW), NOW)
    [(_, data)] = stored_batches(log)
    header = read_header(data)
    assert (header.log_append_time, header.max_timestamp, crc_ok(data, 0, header)) == (False, NOW, True)


# compression.type


@pytest.mark.parametrize(("topic", "sent", "stored"), [
    ("producer", Codec.LZ4, Codec.LZ4),
    ("uncompressed", Codec.GZIP, Codec.NONE),
    ("zstd", Codec.NONE, Codec.ZSTD),
    ("snappy", Codec.ZSTD, Codec.SNAPPY),
])
def test_the_topics_compression_type_is_what_is_stored(opened, log_dir, topic, sent, stored):
    log = opened(log_dir, LogConfig(compression_type=topic))
    batch = forged(encode_batch(timed(300, 900, 600), codec=sent, producer_id=7, producer_epoch=1, base_sequence=0),
                   max_timestamp=NO_TIMESTAMP)
    log.append(batch, NOW)
    [(_, data)] = stored_batches(log)
    header = read_header(data)
    assert (header.codec, header.max_timestamp, header.producer_id, header.base_sequence) == (stored, 900, 7, 0)
    assert crc_ok(data, 0, header)
    assert [(r.key, r.timestamp) for r in decode_records(data)] == [(b"k", 300), (b"k", 900), (b"k", 600)]


def test_a_batch_already_in_the_topics_codec_is_stored_as_sent(opened, log_dir):
    log = opened(log_dir, LogConfig(compression_type="gzip", compression_gzip_level=1))
    batch = encode_batch(timed(300, 900), codec=Codec.GZIP, level=9)
    log.append(batch, NOW)
    [(_, data)] = stored_batches(log)
    assert data[HEADER_SIZE:] == batch[HEADER_SIZE:]


# The scan that validation reads records with, against the full decoder


record_strategy = st.builds(
    lambda ts, key, value, headers: (ts, key, value, tuple(headers)),
    st.integers(-(2**40), 2**40), st.one_of(st.none(), st.binary(max_size=200)), st.one_of(st.none(), st.binary(max_size=300)),
    st.lists(st.tuples(st.text(max_size=5), st.one_of(st.none(), st.binary(max_size=5))), max_size=3),
)


@settings(max_examples=150)
@given(records=st.lists(record_strategy, min_size=1, max_size=30), gaps=st.lists(st.integers(0, 3), min_size=30, max_size=30))
def test_scan_records_agrees_with_decode_records(records, gaps):
    offsets = [sum(gaps[: i + 1]) - gaps[0] for i in range(len(records))]
    batch = encode_batch([Record(o, ts, k, v, h) for o, (ts, k, v, h) in zip(offsets, records, strict=True)], base_offset=0)
    header = read_header(batch)
    decoded = decode_records(batch)
    scan = scan_records(batch[HEADER_SIZE:], header.records_count)
    deltas = [r.timestamp - header.base_timestamp for r in decoded]
    assert (scan.min_timestamp_delta, scan.max_timestamp_delta) == (min(deltas), max(deltas))
    assert scan.sequential_offsets == (offsets == list(range(len(records))))
    assert scan.keyless == [i for i, r in enumerate(decoded) if r.key is None]
    for cut in (1, len(batch) - HEADER_SIZE - 1):
        with pytest.raises(InvalidRecords):
            scan_records(batch[HEADER_SIZE:][:cut], header.records_count)


@pytest.mark.skipif(compiled_scan is None, reason="the C walk is not built here (`pip install` builds it)")
@settings(max_examples=300)
@given(records=st.lists(record_strategy, min_size=1, max_size=8), data=st.data())
def test_the_compiled_walk_agrees_with_the_python_walk(records, data):
    batch = encode_batch([Record(i, ts, k, v, h) for i, (ts, k, v, h) in enumerate(records)])
    body = bytearray(batch[HEADER_SIZE:])
    for _ in range(data.draw(st.integers(0, 3))):  # damage a few bytes, or none
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    count = data.draw(st.sampled_from([len(records), len(records) - 1, len(records) + 1]))
    outcomes = []
    for walk in (compiled_scan, python_scan):
        try:
            outcomes.append(walk(bytes(body), count))
        except (ValueError, IndexError):
            outcomes.append("refused")
    assert outcomes[0] == outcomes[1]
