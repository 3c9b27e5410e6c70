"""`kafkapy consume`: print a topic's records, like kafka-console-consumer.sh, from any
Kafka-compatible broker: from the beginning, the end or an offset, or as a member of a
consumer group that commits how far it got and resumes from there."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from typing import TextIO

from kio.schema.errors import ErrorCode

from ..client import EARLIEST, LATEST, Client, GroupMember, KafkaError, TopicInfo
from ..wire.records import Record
from .common import add_bootstrap_option, connect, progress, run_tool, say, text

_COMMIT_INTERVAL_S = 1.0
# Commit refusals that mean this member's generation is over: its offsets are not taken,
# and what it consumed since its last commit will be consumed again.
_FENCED = (ErrorCode.illegal_generation, ErrorCode.unknown_member_id, ErrorCode.rebalance_in_progress)


def render(record: Record, topic: str, partition: int, output_format: str, separator: str) -> str:
    if output_format == "value":
        return text(record.value)
    if output_format == "key-value":
        return f"{text(record.key)}{separator}{text(record.value)}"
    return json.dumps({
        "topic": topic, "partition": partition, "offset": record.offset, "timestamp": record.timestamp,
        "key": None if record.key is None else text(record.key),
        "value": None if record.value is None else text(record.value),
        "headers": [[k, None if v is None else text(v)] for k, v in record.headers],
    })


def _starting_positions(client: Client, info: TopicInfo, args: argparse.Namespace) -> dict[int, int]:
    partitions = [args.partition] if args.partition is not None else sorted(info.partitions)
    if args.offset is not None and args.offset not in ("earliest", "latest"):
        return dict.fromkeys(partitions, int(args.offset))
    at = EARLIEST if args.from_beginning or args.offset == "earliest" else LATEST
    return client.list_offsets(info.name, partitions, at)


def _join(client: Client, member: GroupMember, topic: str, reset: int) -> tuple[TopicInfo, dict[int, int]]:
    """Joins the group; the topic's metadata (its partitions may have grown) and where to
    read each assigned partition: its committed offset, or where `reset` says."""
    partitions = member.join().get(topic, [])
    info = client.topic(topic)
    committed = client.committed_offsets(member.group, [topic])
    positions = {p: committed[(topic, p)] for p in partitions if (topic, p) in committed}
    missing = [p for p in partitions if p not in positions]
    if missing:
        positions.update(client.list_offsets(topic, missing, reset))
    return info, positions


def _commit(member: GroupMember, topic: str, positions: Mapping[int, int], committed: dict[int, int]) -> None:
    changed = {p: offset for p, offset in positions.items() if committed.get(p) != offset}
    if not changed:
        return
    try:
        member.commit({(topic, p): offset for p, offset in changed.items()})
    except KafkaError as e:
        if e.code not in _FENCED:
            raise
        say(f"warning: {e}; the records since the last commit will be consumed again")
        member.rejoin_needed.set()
        return
    committed.update(changed)


def consume(args: argparse.Namespace, out: TextIO) -> int:
    reset = EARLIEST if args.from_beginning else LATEST
    consumed = 0
    with connect(args) as client, progress("messages", enabled=not out.isatty()) as bar:
        task = bar.add_task(f"Consuming from {args.topic}")
        info = client.topic(args.topic)
        member = GroupMember(client, args.group, [args.topic]) if args.group else None
        positions = {} if member else _starting_positions(client, info, args)
        committed: dict[int, int] = {}
        last_record = last_commit = time.monotonic()
        try:
            while consumed != args.max_messages:
                if member is not None and member.rejoin_needed.is_set():
                    _commit(member, args.topic, positions, committed)  # before its partitions may move
                    info, positions = _join(client, member, args.topic, reset)
                    committed = {}
                if member is not None and not positions:
                    member.rejoin_needed.wait(0.5)  # more members than partitions: this one has none
                got_records = False
                for partition, result in sorted(client.fetch(info, positions).items()):
                    if result.error == ErrorCode.offset_out_of_range:
                        [offset] = client.list_offsets(args.topic, [partition], reset).values()
                        say(f"offset {positions[partition]} of partition {partition} is out of range: "
                            f"reading from offset {offset}")
                        positions[partition] = offset
                        continue
                    if result.error != ErrorCode.none:
                        error = KafkaError(result.error, f"fetching from {args.topic}-{partition}")
                        if not error.retriable:
                            raise error
                        info = client.topic(args.topic)  # leadership moved: look it up again
                        continue
                    for record in result.records[: None if args.max_messages is None else args.max_messages - consumed]:
                        out.write(render(record, args.topic, partition, args.format, args.separator) + "\n")
                        positions[partition] = record.offset + 1
                        consumed += 1
                        got_records = True
                    if consumed == args.max_messages:
                        break
                out.flush()
                bar.update(task, completed=consumed)
                now = time.monotonic()
                if got_records:
                    last_record = now
                elif args.timeout_ms is not None and now - last_record >= args.timeout_ms / 1000:
                    break
                if member is not None and now - last_commit >= _COMMIT_INTERVAL_S:
                    _commit(member, args.topic, positions, committed)
                    last_commit = now
        except KeyboardInterrupt:
            pass  # how a console consumer is usually stopped
        finally:
            if member is not None:
                _commit(member, args.topic, positions, committed)
                member.close()
    say(f"Processed a total of {consumed} messages")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="kafkapy consume",
        description="Print the records of a topic, one per line, until --max-messages, --timeout-ms or Ctrl-C. "
                    "With --group, read as a member of a consumer group (range assignment, like Kafka's consumer): "
                    "start from the group's committed offsets and commit the offsets of what was printed.",
    )
    parser.add_argument("--topic", required=True, help="the topic to read")
    parser.add_argument("--group", help="consume as a member of this consumer group, committing offsets")
    parser.add_argument("--from-beginning", action="store_true",
                        help="start at the earliest offset (of partitions the group has not committed, with --group); "
                             "the default is the end, for new records only")
    parser.add_argument("--partition", type=int, metavar="N", help="read only partition N")
    parser.add_argument("--offset", metavar="OFFSET", help="with --partition: where to start, earliest, latest or an offset")
    parser.add_argument("--max-messages", type=int, metavar="N", help="stop after N records")
    parser.add_argument("--timeout-ms", type=int, metavar="MS", help="stop when no record has come for MS milliseconds")
    parser.add_argument("--format", choices=("value", "key-value", "json"), default="value",
                        help="value: the value (the default); key-value: key, separator, value; "
                             "json: one object per line with partition, offset, timestamp, key, value and headers")
    parser.add_argument("--separator", default=":", help="between key and value in key-value format (default %(default)r)")
    add_bootstrap_option(parser)
    args = parser.parse_args(argv)
    if args.group and (args.partition is not None or args.offset is not None):
        parser.error("--group reads the partitions the group assigns and the offsets it committed: "
                     "leave out --partition and --offset")
    if args.offset is not None:
        if args.partition is None:
            parser.error("--offset needs --partition")
        if args.offset not in ("earliest", "latest") and not args.offset.isdigit():
            parser.error(f"--offset must be earliest, latest or a non-negative number, not {args.offset!r}")
    if args.max_messages is not None and args.max_messages < 1:
        parser.error("--max-messages must be at least 1")
    return run_tool("kafkapy consume", lambda: consume(args, sys.stdout))
