"""`kafkapy dump-log`: print the batches (and records) of segment files, like
kafka-dump-log.sh, or the entries of index files. Reads files only; no broker needed."""

from __future__ import annotations

import argparse
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ..wire.compression import Codec, CompressionError
from ..wire.records import (
    HEADER_SIZE,
    LOG_OVERHEAD,
    BatchHeader,
    InvalidRecords,
    Record,
    control_marker,
    crc_ok,
    decode_records,
    read_header,
)
from .common import text

# How one record is printed after its "| offset: N Time: T" prefix: given the batch
# header and the record. kafkapy metadata dump passes the metadata decoder.
RecordPrinter = Callable[[BatchHeader, Record], str]


def print_record(header: BatchHeader, r: Record) -> str:
    """A record as kafka-dump-log.sh prints one of a plain topic."""
    if header.is_control:
        return f"endTxnMarker: {'COMMIT' if control_marker(r) else 'ABORT'}"
    headers = ", ".join(f"{k}={text(v)}" for k, v in r.headers)
    return (
        f"keySize: {len(r.key) if r.key is not None else -1} "
        f"valueSize: {len(r.value) if r.value is not None else -1} headers: [{headers}] "
        f"key: {text(r.key)} payload: {text(r.value)}"
    )


def dump_segment(path: Path, print_records: bool, out: TextIO, printer: RecordPrinter = print_record) -> int:
    """Prints every batch; returns the number of problems found (bad CRC, torn tail)."""
    data = path.read_bytes()
    base = int(path.stem) if path.stem.isdigit() else 0
    print(f"Dumping {path}\nLog starting offset: {base}", file=out)
    problems = 0
    position = 0
    while position < len(data):
        if len(data) - position < HEADER_SIZE:
            print(f"Found {len(data) - position} trailing bytes at position {position}: a torn write", file=out)
            return problems + 1
        header = read_header(data, position)
        if header.batch_length < HEADER_SIZE - LOG_OVERHEAD or position + header.size > len(data):
            print(f"Found an incomplete batch at position {position}: a torn write", file=out)
            return problems + 1
        valid = crc_ok(data, position, header)
        problems += not valid
        timestamp_type = "LogAppendTime" if header.log_append_time else "CreateTime"
        print(
            f"baseOffset: {header.base_offset} lastOffset: {header.last_offset} count: {header.records_count} "
            f"baseSequence: {header.base_sequence} lastSequence: {header.last_sequence} producerId: {header.producer_id} "
            f"producerEpoch: {header.producer_epoch} partitionLeaderEpoch: {header.partition_leader_epoch} "
            f"isTransactional: {str(header.is_transactional).lower()} isControl: {str(header.is_control).lower()} "
            f"position: {position} {timestamp_type}: {header.max_timestamp} size: {header.size} magic: {header.magic} "
            f"compresscodec: {Codec(header.codec).name.lower()} crc: {header.crc} isvalid: {str(valid).lower()}",
            file=out,
        )
        if print_records and valid:
            try:
                records = decode_records(data[position : position + header.size], header)
            except (InvalidRecords, CompressionError) as e:
                print(f"| cannot decode records: {e}", file=out)
                problems += 1
                records = []
            for r in records:
                print(f"| offset: {r.offset} {timestamp_type}: {r.timestamp} {printer(header, r)}", file=out)
        position += header.size
    return problems


def dump_index(path: Path, out: TextIO) -> int:
    base = int(path.stem) if path.stem.isdigit() else 0
    data = path.read_bytes()
    print(f"Dumping {path}", file=out)
    if path.suffix == ".index":
        for rel, position in struct.iter_unpack(">ii", data[: len(data) // 8 * 8]):
            print(f"offset: {base + rel} position: {position}", file=out)
    else:
        for timestamp, rel in struct.iter_unpack(">qi", data[: len(data) // 12 * 12]):
            print(f"timestamp: {timestamp} offset: {base + rel}", file=out)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kafkapy dump-log", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path, help=".log, .index or .timeindex files")
    parser.add_argument("--print-data-log", action="store_true", help="also print every record")
    args = parser.parse_args(argv)
    problems = 0
    for path in args.files:
        if not path.is_file():
            print(f"kafkapy dump-log: no such file: {path}", file=sys.stderr)
            return 2
        if path.suffix in (".index", ".timeindex"):
            problems += dump_index(path, sys.stdout)
        else:
            problems += dump_segment(path, args.print_data_log, sys.stdout)
    return 1 if problems else 0
