"""`kafkapy groups`: list consumer groups, describe one (members, assignments, committed
offsets and lag), and reset a group's offsets, like kafka-consumer-groups.sh, on any
Kafka-compatible broker."""

from __future__ import annotations

import argparse
from typing import Any

from ..client import EARLIEST, LATEST, RESETTABLE_STATES, ClientError
from .common import add_bootstrap_option, add_format_option, connect, print_heading, print_json, print_table, run_tool, say


def list_groups(args: argparse.Namespace) -> int:
    with connect(args) as client:
        groups = client.list_groups()
    if args.format == "json":
        print_json([{"group_id": g.group_id, "state": g.state, "protocol_type": g.protocol_type} for g in groups])
    else:
        print_table(["Group", "State", "Protocol type"], [[g.group_id, g.state, g.protocol_type] for g in groups])
    return 0


def describe_group(args: argparse.Namespace) -> int:
    with connect(args) as client:
        group = client.describe_group(args.group)
        committed = client.committed_offsets(args.group)
        if group.state == "Dead" and not committed:
            raise ClientError(f"consumer group {args.group!r} does not exist")
        owners = {(topic, p): member for member in group.members
                  for topic, partitions in member.assignment.items() for p in partitions}
        partitions = sorted(set(committed) | set(owners))
        ends = client.log_end_offsets(partitions)  # none for offsets committed for a topic deleted since: no lag
    offsets = []
    for topic, partition in partitions:
        offset, end, owner = committed.get((topic, partition)), ends.get((topic, partition)), owners.get((topic, partition))
        offsets.append({
            "topic": topic, "partition": partition, "committed_offset": offset, "log_end_offset": end,
            "lag": None if offset is None or end is None else end - offset,
            "member_id": owner.member_id if owner else None,
        })
    members: list[dict[str, Any]] = [{"member_id": m.member_id, "client_id": m.client_id, "client_host": m.client_host,
                "assignment": m.assignment} for m in group.members]
    if args.format == "json":
        print_json({"group_id": group.group_id, "state": group.state, "protocol_type": group.protocol_type,
                    "protocol": group.protocol, "members": members, "offsets": offsets})
        return 0
    print_heading(f"Group {group.group_id}: {group.state}, protocol {group.protocol_type or '-'}/{group.protocol or '-'}, "
                  f"{len(members)} member(s)")
    if members:
        print_table(
            ["Member", "Client", "Host", "Assignment"],
            [[m["member_id"], m["client_id"], m["client_host"],
              "; ".join(f"{t}: {','.join(map(str, ps))}" for t, ps in sorted(m["assignment"].items()))] for m in members],
        )
    print_table(
        ["Topic", "Partition", "Committed offset", "Log end offset", "Lag", "Member"],
        [[o["topic"], o["partition"], o["committed_offset"], o["log_end_offset"], o["lag"], o["member_id"]] for o in offsets],
    )
    return 0


def reset_offsets(args: argparse.Namespace) -> int:
    with connect(args) as client:
        group = client.describe_group(args.group)
        if group.state not in RESETTABLE_STATES:
            raise ClientError(
                f"cannot reset the offsets of group {args.group!r}: it is {group.state} with {len(group.members)} "
                f"member(s), which would overwrite them; as with Kafka's tool, stop its consumers first"
            )
        new_offsets: dict[tuple[str, int], int] = {}
        for topic in args.topic:
            partitions = sorted(client.topic(topic).partitions)
            if args.to_earliest or args.to_latest:
                offsets = client.list_offsets(topic, partitions, EARLIEST if args.to_earliest else LATEST)
            else:
                starts = client.list_offsets(topic, partitions, EARLIEST)
                ends = client.list_offsets(topic, partitions, LATEST)
                offsets = {}
                for p in partitions:
                    # Out of range, a reset would only send the consumer to auto.offset.reset: clamp it, as Kafka's tool does.
                    offsets[p] = min(max(args.to_offset, starts[p]), ends[p])
                    if offsets[p] != args.to_offset:
                        say(f"offset {args.to_offset} is outside {topic}-{p}'s [{starts[p]}, {ends[p]}]: using {offsets[p]}")
            new_offsets.update({(topic, p): offset for p, offset in offsets.items()})
        if not args.dry_run:
            client.commit_offsets(args.group, new_offsets)
    rows = [{"topic": t, "partition": p, "new_offset": o} for (t, p), o in sorted(new_offsets.items())]
    if args.format == "json":
        print_json(rows)
    else:
        print_table(["Topic", "Partition", "New offset"], [[r["topic"], r["partition"], r["new_offset"]] for r in rows])
    say(f"{'Dry run: would reset' if args.dry_run else 'Reset'} the offsets of group {args.group} "
        f"for {len(rows)} partition(s)")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="kafkapy groups",
        description="Inspect and manage the consumer groups of any Kafka-compatible broker, over the Kafka protocol.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="list the groups", description="List every broker's groups, with their state.")
    add_format_option(listing)

    describe = actions.add_parser(
        "describe", help="show members, assignments, committed offsets and lag",
        description="Show a group's state and members with their partitions, and for each partition the group "
                    "owns or has committed: the committed offset, the log end offset and the lag between them.",
    )
    describe.add_argument("group")
    add_format_option(describe)

    reset = actions.add_parser(
        "reset-offsets", help="set a group's committed offsets",
        description="Set a group's committed offsets for every partition of the given topics. Only for a group "
                    "without members (Empty, or not yet existing), as with Kafka's tool.",
    )
    reset.add_argument("group")
    reset.add_argument("--topic", action="append", required=True, help="a topic whose offsets to reset (repeatable)")
    target = reset.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-earliest", action="store_true", help="to each partition's log start offset")
    target.add_argument("--to-latest", action="store_true", help="to each partition's log end offset")
    target.add_argument("--to-offset", type=int, metavar="N", help="to offset N (kept within each partition's offsets)")
    reset.add_argument("--dry-run", action="store_true", help="show the new offsets without committing them")
    add_format_option(reset)

    for action in (listing, describe, reset):
        add_bootstrap_option(action)
    args = parser.parse_args(argv)
    handlers = {"list": list_groups, "describe": describe_group, "reset-offsets": reset_offsets}
    return run_tool(f"kafkapy groups {args.action}", lambda: handlers[args.action](args))
