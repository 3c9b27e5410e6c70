"""What an append must pass before it reaches the log, as Kafka's LogValidator: the
batches' framing, CRC, magic and size, the checks aimed at producers (offsets and
counts, control records, sequences, timestamps, keys of compacted topics), and the
re-encoding a topic's compression.type asks for. Pure functions of the bytes, the
topic's config and the time."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from ..wire.compression import Codec, CompressionError, DecompressedTooLarge
from ..wire.records import (
    NO_TIMESTAMP,
    BatchHeader,
    InvalidRecords,
    Record,
    crc_ok,
    decode_records,
    encode_batch,
    iter_headers,
)
from .config import LONG_MAX, LogConfig


class LogError(Exception):
    """An append or read refused with a Kafka error code."""

    def __init__(self, code: ErrorCode, message: str = "", record_errors: list[tuple[int, str]] | None = None) -> None:
        super().__init__(message or code.name)
        self.code = code
        self.message = message
        self.record_errors = record_errors or []


def validate_batches(data: bytes | bytearray, config: LogConfig, now_ms: int, from_client: bool) -> list[tuple[int, BatchHeader]]:
    """The (position, header) of each batch of an append, checked as Kafka's LogValidator
    checks them; `from_client` is False for batches the broker wrote itself or copied from
    a leader, which skip the checks aimed at producers."""
    headers = list(iter_headers(data))
    consumed = headers[-1][0] + headers[-1][1].size if headers else 0
    if not headers or consumed != len(data):
        raise LogError(ErrorCode.corrupt_message, "Record batch is truncated or malformed")
    for pos, header in headers:
        if header.magic != 2:
            raise LogError(ErrorCode.invalid_record, f"Unsupported record batch magic {header.magic}")
        if header.size > config.max_message_bytes and from_client:
            raise LogError(
                ErrorCode.message_too_large,
                f"The record batch of {header.size} bytes is larger than max.message.bytes {config.max_message_bytes}",
            )
        if not crc_ok(data, pos, header):
            raise LogError(ErrorCode.corrupt_message, "Record batch failed its CRC check")
        if not from_client:
            continue
        if header.records_count <= 0 or header.last_offset_delta + 1 != header.records_count:
            raise LogError(
                ErrorCode.invalid_record,
                f"Inconsistent batch offset range and record count {header.records_count}",
            )
        if header.is_control:
            raise LogError(ErrorCode.invalid_record, "Clients are not allowed to write control records")
        if header.producer_id >= 0 and header.base_sequence < 0:
            raise LogError(ErrorCode.invalid_record, f"Invalid sequence number {header.base_sequence}")
        if header.log_append_time and not config.log_append_time:
            raise LogError(ErrorCode.invalid_timestamp, "Producer should not set timestamp type to LogAppendTime")
        if config.compact or _checks_timestamps(config):
            _validate_records(data, pos, header, config, now_ms)
    return headers

def _checks_timestamps(c: LogConfig) -> bool:
    return not c.log_append_time and (
        c.message_timestamp_before_max_ms != LONG_MAX or c.message_timestamp_after_max_ms != LONG_MAX
    )

def _validate_records(data: bytes | bytearray, pos: int, header: BatchHeader, config: LogConfig, now_ms: int) -> None:
    records = _client_records(memoryview(data)[pos : pos + header.size], header, config)
    errors: list[tuple[int, str]] = []
    code = ErrorCode.none
    for index, record in enumerate(records):
        if config.compact and record.key is None:
            code = ErrorCode.invalid_record
            errors.append((index, "Compacted topic cannot accept message without key"))
        elif _checks_timestamps(config) and record.timestamp != NO_TIMESTAMP and not (
            now_ms - config.message_timestamp_before_max_ms <= record.timestamp <= now_ms + config.message_timestamp_after_max_ms
        ):
            code = code or ErrorCode.invalid_timestamp
            errors.append((index, f"Timestamp {record.timestamp} of message with offset {record.offset} is out of range"))
    if errors:
        raise LogError(code, errors[0][1], errors)

def _client_records(batch: memoryview, header: BatchHeader, config: LogConfig) -> list[Record]:
    """The records of a batch a client sent, inflated no further than max.message.bytes
    (a batch the broker must open is held to it once decompressed, too)."""
    limit = config.max_message_bytes
    try:
        return decode_records(batch, header, limit)
    except DecompressedTooLarge as e:
        raise LogError(ErrorCode.message_too_large, f"The record batch at offset {header.base_offset} "
                       f"decompresses to more than max.message.bytes {limit}") from e
    except (InvalidRecords, CompressionError) as e:
        raise LogError(ErrorCode.corrupt_message, str(e)) from e

def maybe_recompress(data: bytes | bytearray, headers: list[tuple[int, BatchHeader]], config: LogConfig,
                     from_client: bool) -> tuple[bytes | bytearray, list[tuple[int, BatchHeader]]]:
    """Re-encodes batches when the topic's compression.type names a codec other than the producer's."""
    wanted = config.compression_type
    if not from_client or wanted == "producer":
        return data, headers
    codec = Codec.from_name(wanted)
    if all(h.codec == codec for _, h in headers):
        return data, headers
    out = bytearray()
    for pos, h in headers:
        records = _client_records(memoryview(data)[pos : pos + h.size], h, config)
        out += encode_batch(
            records, base_offset=h.base_offset, last_offset_delta=h.last_offset_delta,
            base_timestamp=h.base_timestamp, max_timestamp=h.max_timestamp, codec=codec, level=compression_level(config, codec),
            producer_id=h.producer_id, producer_epoch=h.producer_epoch, base_sequence=h.base_sequence,
            transactional=h.is_transactional, partition_leader_epoch=h.partition_leader_epoch,
        )
    return out, list(iter_headers(out))


def compression_level(config: LogConfig, codec: int) -> int | None:
    """The topic's level for a codec the broker compresses with (None: the codec has no level)."""
    return {Codec.GZIP: config.compression_gzip_level, Codec.LZ4: config.compression_lz4_level,
            Codec.ZSTD: config.compression_zstd_level}.get(Codec(codec))
