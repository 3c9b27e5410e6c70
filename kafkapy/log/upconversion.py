"""Message formats v0 and v1 on produce (Produce v0-2 from clients older than Kafka 0.11),
converted on append as Kafka 3.x's LogValidator does, whose logs hold v2 batches only:
every message checked (its CRC, its size against max.message.bytes, one magic for all, a
compressed message alone in its request and holding plain messages of its own magic) and
the records put in one v2 batch, compressed with the topic's compression.type (or the
producer's codec). The batch then goes through the checks of any append (timestamps,
keys of compacted topics, its size), its offsets and timestamp type assigned there.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from ..wire.compression import Codec, CompressionError, DecompressedTooLarge
from ..wire.legacy_records import CorruptMessage, InvalidMessage, LegacyMessage, inner_messages, iter_messages
from ..wire.records import NO_TIMESTAMP, Record, encode_batch
from .config import LogConfig
from .validation import LogError, compression_level


def upconvert(data: bytes | bytearray, config: LogConfig) -> bytes:
    """One v2 batch (base offset 0, no producer id) of the records of a v0 or v1 message set."""
    try:
        entries = list(iter_messages(data))
    except CorruptMessage as e:
        raise LogError(ErrorCode.corrupt_message, str(e)) from e
    if not entries:
        raise LogError(ErrorCode.invalid_record, "Record batch has no batches at all")
    first = entries[0]
    source_codec = next((e.codec for e in reversed(entries) if e.codec), Codec.NONE)
    if source_codec != Codec.NONE and len(entries) > 1:
        raise LogError(ErrorCode.invalid_record, "Compressed outer record has more than one batch")
    records: list[Record] = []
    for entry in entries:
        if entry.magic != first.magic:
            raise LogError(ErrorCode.invalid_record, f"Batch magic {entry.magic} is not the same as the first batch's magic byte {first.magic}")
        if entry.size > config.max_message_bytes:
            raise LogError(ErrorCode.message_too_large,
                           f"The message of {entry.size} bytes is larger than max.message.bytes {config.max_message_bytes}")
        for message in _messages_of(entry, config):
            # Inner messages of a LogAppendTime wrapper carry the wrapper's timestamp.
            timestamp = entry.timestamp if entry.log_append_time else message.timestamp
            if entry.log_append_time and (config.log_append_time or timestamp == NO_TIMESTAMP):
                raise LogError(ErrorCode.invalid_timestamp, "Invalid timestamp type in message. Producer should not set timestamp type to LogAppendTime.",
                               [(len(records), "Producer should not set timestamp type to LogAppendTime.")])
            records.append(Record(len(records), timestamp, message.key, message.value))
    wanted = config.compression_type
    codec = source_codec if wanted == "producer" else Codec.from_name(wanted)
    return encode_batch(records, codec=codec, level=compression_level(config, codec))


def _messages_of(entry: LegacyMessage, config: LogConfig) -> list[LegacyMessage]:
    if not entry.codec:
        return [entry]
    try:
        return inner_messages(entry, config.max_message_bytes)
    except DecompressedTooLarge as e:
        raise LogError(ErrorCode.message_too_large, f"The message at offset {entry.offset} decompresses to more than "
                       f"max.message.bytes {config.max_message_bytes}") from e
    except InvalidMessage as e:
        raise LogError(ErrorCode.invalid_record, str(e)) from e
    except (CorruptMessage, CompressionError) as e:
        raise LogError(ErrorCode.corrupt_message, str(e)) from e
