"""`kafkapy produce`: one record per line of stdin, like kafka-console-producer.sh, to
any Kafka-compatible broker. Keyed records go where Kafka's default partitioner would
put them (murmur2 of the key), the others round robin."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Iterator

from ..client import ClientError
from ..wire.compression import Codec
from .common import add_bootstrap_option, connect, progress, run_tool, say

_READ_SIZE = 256 * 1024
_MAX_REQUEST_RECORDS = 10_000


def line_batches(fd: int) -> Iterator[list[bytes]]:
    """Lines (without their end) as they arrive: what one read returns is sent together, so
    typed lines go out at once and piped input in large requests."""
    partial = b""
    while chunk := os.read(fd, _READ_SIZE):
        *lines, partial = (partial + chunk).split(b"\n")
        for start in range(0, len(lines), _MAX_REQUEST_RECORDS):
            yield [line.removesuffix(b"\r") for line in lines[start : start + _MAX_REQUEST_RECORDS]]
    if partial:
        yield [partial.removesuffix(b"\r")]


def produce(args: argparse.Namespace) -> int:
    separator = args.separator.encode()
    codec = Codec.from_name(args.compression)
    counts: Counter[int] = Counter()
    line_number = 0
    with connect(args) as client, progress("records", enabled=not sys.stdin.isatty()) as bar:
        client.topic(args.topic)  # an unknown topic is reported before any input is read
        task = bar.add_task(f"Producing to {args.topic}")
        for lines in line_batches(sys.stdin.fileno()):
            records: list[tuple[bytes | None, bytes]] = []
            unparsed = None
            for line in lines:
                line_number += 1
                if not args.parse_key:
                    records.append((None, line))
                    continue
                key, found, value = line.partition(separator)
                if not found:
                    unparsed = line_number
                    break
                records.append((key, value))
            if records:
                counts.update(client.produce(args.topic, records, args.partition, codec))
            bar.update(task, completed=sum(counts.values()))
            if unparsed is not None:
                # As Kafka's console producer, stop there, with the lines before it sent.
                raise ClientError(f"line {unparsed} has no key separator {args.separator!r} "
                                  f"({sum(counts.values())} records were produced before it)")
    spread = ", ".join(f"partition {p}: {n}" for p, n in sorted(counts.items()))
    say(f"Produced {sum(counts.values())} records to {args.topic}" + (f" ({spread})" if spread else ""))
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="kafkapy produce",
        description="Produce each line of stdin as a record (its value, or with --parse-key its key and value), "
                    "acknowledged by all in-sync replicas. Records with a key go to the partition Kafka's default "
                    "partitioner picks (murmur2 of the key); the others round robin.",
    )
    parser.add_argument("--topic", required=True, help="the topic to write to")
    parser.add_argument("--parse-key", action="store_true", help="split each line at the first separator into key and value")
    parser.add_argument("--separator", default=":", help="what separates key and value (default %(default)r)")
    parser.add_argument("--partition", type=int, metavar="N", help="send every record to partition N")
    parser.add_argument("--compression", choices=("none", "gzip", "snappy", "lz4", "zstd"), default="none",
                        help="the codec of the record batches (default %(default)s)")
    add_bootstrap_option(parser)
    args = parser.parse_args(argv)
    return run_tool("kafkapy produce", lambda: produce(args))
