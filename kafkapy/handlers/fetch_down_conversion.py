"""Fetch v0-3, which predate v2 batches: what the log read is converted to message format
v0 (Fetch v0-1) or v1 (Fetch v2-3), as Kafka 3.x's FetchResponse down-conversion does.

Only these versions come here: a current fetch sends its file ranges as they are. The
conversion reads what the fetch read, a window at a time, in a worker thread, and stops
once it has written as many bytes as the batches it converts (Kafka's bound, so the
answer stays within the fetch's max bytes), though always the first converted entry, so
that a consumer moves on. A topic with message.downconversion.enable=false answers
UNSUPPORTED_VERSION to consumers; one whose compression.type is zstd, or a zstd batch,
UNSUPPORTED_COMPRESSION_TYPE, as Kafka.
"""

from __future__ import annotations

import os
from typing import Any

import anyio
from kio.schema.errors import ErrorCode

from ..log.manager import TopicPartition
from ..replication.fetch_session import PartitionKey
from ..wire.legacy_records import UnsupportedDownConversion, down_convert_batch
from ..wire.protocol import FileSlice
from ..wire.records import iter_headers, read_header, read_size
from .context import Broker

FIRST_V2_FETCH_VERSION = 4
_WINDOW = 256 * 1024


def down_conversion_magic(version: int) -> int:
    return 0 if version <= 1 else 1


async def down_convert_answers(
    broker: Broker, version: int, read: list[tuple[Any, list[tuple[PartitionKey, dict[str, Any], int]]]],
    requested: dict[PartitionKey, Any], from_follower: bool,
) -> list[tuple[dict[str, Any], int, ErrorCode]]:
    """Replaces in each answer of the fetch the records read by their down-converted form;
    the answers that fail instead, with their partition and error."""
    failed = []
    magic = down_conversion_magic(version)
    for topic, answers in read:
        for key, entry, _ in answers:
            if entry["error_code"] != ErrorCode.none:
                continue
            log = broker.replicas.get(topic, key[1])
            records = entry["records"]
            error = None
            if log is None:
                continue
            try:
                if log.config.compression_type == "zstd":
                    error = ErrorCode.unsupported_compression_type
                elif not from_follower and not log.config.message_downconversion_enable:
                    error = ErrorCode.unsupported_version
                elif isinstance(records, FileSlice):
                    entry["records"] = await anyio.to_thread.run_sync(
                        read_down_converted, records, magic, requested[key].fetch_offset)
            except UnsupportedDownConversion:
                error = ErrorCode.unsupported_compression_type
            except OSError as e:
                error = broker.replicas.storage_failed(TopicPartition(topic, key[1]), log, e, "reading").code
            finally:
                # The file range is read (or not to be sent): its file may be let go of.
                if isinstance(records, FileSlice):
                    records.release()
            if error is not None:
                failed.append((entry, key[1], error))
    return failed


def read_down_converted(records: FileSlice, magic: int, fetch_offset: int) -> bytes:
    """The batches of a file range as a message set of this magic, within the range's size
    (but at least its first entry)."""
    budget = records.length
    out = bytearray()
    done = 0
    while done < records.length:
        window = os.pread(records.fd, min(_WINDOW, records.length - done), records.position + done)
        batches = list(iter_headers(window))
        if not batches:
            # A batch larger than the window: read it whole.
            _, size = read_size(window)
            window = os.pread(records.fd, size, records.position + done)
            batches = [(0, read_header(window))]
        view = memoryview(window)
        for at, header in batches:
            for entry in down_convert_batch(view[at : at + header.size], header, magic, fetch_offset):
                if out and len(out) + len(entry) > budget:
                    return bytes(out)
                out += entry
        done += batches[-1][0] + batches[-1][1].size
    return bytes(out)
