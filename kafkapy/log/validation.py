"""What an append must pass before it reaches the log, as Kafka's UnifiedLog and
LogValidator: the batches' framing, CRC, magic and size; then, for a producer's batches,
the header's offset range and count, control and sequence flags, every record's structure,
key (compacted topics) and timestamp, with the batch's max timestamp taken from its records
and the re-encoding that a topic's compression.type or bad inner offsets ask for. Pure
functions of the bytes, the topic's config and the time."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from ..wire.compression import Codec, CompressionError, DecompressedTooLarge, decompress
from ..wire.records import (
    HEADER_SIZE,
    NO_TIMESTAMP,
    TIMESTAMP_TYPE_BIT,
    BatchHeader,
    InvalidRecords,
    Record,
    crc_ok,
    decode_records,
    encode_batch,
    iter_headers,
    scan_records,
)
from .config import LogConfig


class LogError(Exception):
    """An append or read refused with a Kafka error code."""

    def __init__(self, code: ErrorCode, message: str = "", record_errors: list[tuple[int, str]] | None = None) -> None:
        super().__init__(message or code.name)
        self.code = code
        self.message = message
        self.record_errors = record_errors or []


Batches = list[tuple[int, BatchHeader]]


def validate_batches(data: bytes | bytearray, config: LogConfig, now_ms: int, from_client: bool) -> tuple[Batches, set[int]]:
    """The (position, header) of each batch of an append, checked as Kafka checks them, and
    the positions of the batches whose records must be re-encoded with offsets renumbered.
    A client's batch comes back with the header the log is to store (its max timestamp
    from its records); `from_client` is False for batches the broker wrote itself or copied
    from a leader, which skip the checks aimed at producers."""
    headers = list(iter_headers(data))
    consumed = headers[-1][0] + headers[-1][1].size if headers else 0
    if not headers or consumed != len(data):
        raise LogError(ErrorCode.corrupt_message, "Record batch is truncated or malformed")
    for pos, header in headers:
        if header.magic != 2:
            raise LogError(ErrorCode.invalid_record, f"Unsupported record batch magic {header.magic}")
        if from_client and header.base_offset != 0:
            raise LogError(ErrorCode.invalid_record,
                           f"The baseOffset of the record batch in the append should be 0, but it is {header.base_offset}")
        if header.size > config.max_message_bytes and from_client:
            raise LogError(
                ErrorCode.message_too_large,
                f"The record batch of {header.size} bytes is larger than max.message.bytes {config.max_message_bytes}",
            )
        if not crc_ok(data, pos, header):
            raise LogError(ErrorCode.corrupt_message, "Record batch failed its CRC check")
    if not from_client:
        return headers, set()
    validated: Batches = []
    renumbered: set[int] = set()
    for pos, header in headers:
        _check_client_header(header)
        stored, sequential = _validate_records(data, pos, header, config, now_ms)
        validated.append((pos, stored))
        if not sequential and header.codec != Codec.NONE:
            # As Kafka: a compressed batch whose inner offsets are not 0, 1, 2, ... (some
            # old clients) is rebuilt rather than refused; an uncompressed one is kept as is.
            renumbered.add(pos)
    return validated, renumbered


def _check_client_header(header: BatchHeader) -> None:
    last_offset = header.last_offset_delta
    if last_offset < 0:
        raise LogError(ErrorCode.invalid_record, f"Batch has an invalid offset range: [0, {last_offset}]")
    if header.records_count <= 0:
        raise LogError(ErrorCode.invalid_record, f"Invalid reported count for record batch: {header.records_count}")
    if last_offset + 1 != header.records_count:
        raise LogError(ErrorCode.invalid_record,
                       f"Inconsistent batch offset range [0, {last_offset}] and count of records {header.records_count}")
    if header.is_control:
        raise LogError(ErrorCode.invalid_record, "Clients are not allowed to write control records")
    if header.producer_id >= 0 and header.base_sequence < 0:
        raise LogError(ErrorCode.invalid_record,
                       f"Invalid sequence number {header.base_sequence} in record batch with producerId {header.producer_id}")


def _validate_records(data: bytes | bytearray, pos: int, header: BatchHeader, config: LogConfig,
                      now_ms: int) -> tuple[BatchHeader, bool]:
    """The header to store for a client's batch, and whether its offset deltas run 0, 1, 2, ...;
    or LogError with each refused record's index, as KIP-467's record_errors. Every batch a
    client sends comes here: the common case (nothing refused) takes no detour."""
    payload = _records_bytes(memoryview(data)[pos : pos + header.size], header, config)
    try:
        low_delta, high_delta, sequential, keyless = scan_records(payload, header.records_count)
    except InvalidRecords as e:
        raise LogError(ErrorCode.invalid_record, str(e)) from e
    claims_log_append_time = header.attributes & TIMESTAMP_TYPE_BIT
    if claims_log_append_time:
        # A batch marked LogAppendTime reads every record's timestamp as its max timestamp.
        lowest = highest = header.max_timestamp
    else:
        lowest, highest = header.base_timestamp + low_delta, header.base_timestamp + high_delta
    log_append_time = config.log_append_time
    timestamp_errors: dict[int, str] = {}
    if log_append_time or (claims_log_append_time and header.max_timestamp == NO_TIMESTAMP):
        if claims_log_append_time:
            timestamp_errors = dict.fromkeys(
                range(header.records_count), "Invalid timestamp type in message. Producer should not set timestamp type to LogAppendTime.")
    elif lowest < now_ms - config.timestamp_before_max_ms or highest > now_ms + config.timestamp_after_max_ms:
        timestamp_errors = _timestamp_errors(data, pos, header, config, now_ms)
    if timestamp_errors or (keyless and config.compact):
        _refuse(timestamp_errors, keyless if config.compact else [])
    if log_append_time:
        return header, sequential  # the partition stamps its own time at the append
    max_timestamp = max(highest, NO_TIMESTAMP)
    if max_timestamp == header.max_timestamp and not claims_log_append_time:
        return header, sequential
    return header._replace(max_timestamp=max_timestamp, attributes=header.attributes & ~TIMESTAMP_TYPE_BIT), sequential


def _timestamp_errors(data: bytes | bytearray, pos: int, header: BatchHeader, config: LogConfig, now_ms: int) -> dict[int, str]:
    earliest = now_ms - config.timestamp_before_max_ms
    latest = now_ms + config.timestamp_after_max_ms
    return {
        index: f"Timestamp {record.timestamp} of message with offset {record.offset} is out of range. "
               f"The timestamp should be within [{earliest}, {latest}]"
        for index, record in enumerate(_client_records(data, pos, header, config))
        if record.timestamp != NO_TIMESTAMP and not earliest <= record.timestamp <= latest
    }


def _refuse(timestamp_errors: dict[int, str], keyless: list[int]) -> None:
    """As Kafka: one error per record, a missing key before a bad timestamp; the batch is
    INVALID_TIMESTAMP if any record is refused for its timestamp."""
    key_errors = dict.fromkeys(keyless, "Compacted topic cannot accept message without key")
    record_errors = sorted((timestamp_errors | key_errors).items())
    if any(index not in key_errors for index in timestamp_errors):
        raise LogError(ErrorCode.invalid_timestamp, "One or more records have been rejected due to invalid timestamp", record_errors)
    shown = ", ".join(f"record {index}: {message}" for index, message in record_errors[:3])
    raise LogError(ErrorCode.invalid_record, f"One or more records have been rejected due to {len(record_errors)} "
                   f"record errors in total, and only showing the first three errors at most: [{shown}]", record_errors)


def _records_bytes(batch: memoryview, header: BatchHeader, config: LogConfig) -> bytes | memoryview:
    """The records of a client's batch, decompressed no further than max.message.bytes (a
    batch the broker must open is held to it once decompressed, too)."""
    payload = batch[HEADER_SIZE:]
    if header.codec == Codec.NONE:
        return payload
    limit = config.max_message_bytes
    try:
        return decompress(header.codec, payload, limit)
    except DecompressedTooLarge as e:
        raise LogError(ErrorCode.message_too_large, f"The record batch at offset {header.base_offset} "
                       f"decompresses to more than max.message.bytes {limit}") from e
    except CompressionError as e:
        raise LogError(ErrorCode.corrupt_message, str(e)) from e


def _client_records(data: bytes | bytearray, pos: int, header: BatchHeader, config: LogConfig) -> list[Record]:
    """The records of a client's batch whose framing validation already checked."""
    try:
        return decode_records(memoryview(data)[pos : pos + header.size], header, config.max_message_bytes)
    except (InvalidRecords, CompressionError, DecompressedTooLarge) as e:
        raise LogError(ErrorCode.invalid_record, str(e)) from e


def maybe_recompress(data: bytes | bytearray, headers: Batches, renumbered: set[int], config: LogConfig,
                     from_client: bool) -> tuple[bytes | bytearray, Batches]:
    """Re-encodes the batches whose codec is not the topic's compression.type (unless that is
    `producer`) or whose inner offsets Kafka renumbers; the others are kept byte for byte."""
    wanted = config.compression_type
    if not from_client or (wanted == "producer" and not renumbered):
        return data, headers
    target = None if wanted == "producer" else Codec.from_name(wanted)
    if not renumbered and all(h.codec == target for _, h in headers):
        return data, headers
    out = bytearray()
    stored: Batches = []
    for pos, h in headers:
        codec = h.codec if target is None else target
        if codec == h.codec and pos not in renumbered:
            stored.append((len(out), h))
            out += memoryview(data)[pos : pos + h.size]
            continue
        records = [Record(i, r.timestamp, r.key, r.value, r.headers, r.attributes)
                   for i, r in enumerate(_client_records(data, pos, h, config))]
        rebuilt = encode_batch(
            records, base_offset=0, codec=codec, level=compression_level(config, codec),
            producer_id=h.producer_id, producer_epoch=h.producer_epoch, base_sequence=h.base_sequence,
            transactional=h.is_transactional, partition_leader_epoch=h.partition_leader_epoch,
        )
        stored.extend((len(out) + p, rebuilt_header) for p, rebuilt_header in iter_headers(rebuilt))
        out += rebuilt
    return out, stored


def compression_level(config: LogConfig, codec: int) -> int | None:
    """The topic's level for a codec the broker compresses with (None: the codec has no level)."""
    return {Codec.GZIP: config.compression_gzip_level, Codec.LZ4: config.compression_lz4_level,
            Codec.ZSTD: config.compression_zstd_level}.get(Codec(codec))
