"""`kafkapy topics`: list, create, describe, alter and delete topics on any Kafka-compatible
broker, as kafka-topics.sh (and kafka-configs.sh, for a topic's configs) do."""

from __future__ import annotations

import argparse
from typing import Any

from kio.schema.errors import ErrorCode

from ..client import EARLIEST, LATEST, TOPIC_CONFIG_SOURCE, TOPIC_RESOURCE, Client, KafkaError, TopicInfo
from .common import add_bootstrap_option, add_format_option, connect, print_json, print_table, progress, run_tool


def _config_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return name, value


def _replica_assignment(text: str) -> list[list[int]]:
    """kafka-topics.sh's --replica-assignment: partitions separated by commas, the brokers
    of each by colons (1:2,2:3 is two partitions on brokers 1 and 2, then 2 and 3)."""
    try:
        return [[int(b) for b in partition.split(":")] for partition in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not BROKER:BROKER,BROKER:BROKER,...") from None


def list_topics(args: argparse.Namespace) -> int:
    with connect(args) as client:
        topics = sorted(client.metadata().topics.values(), key=lambda t: t.name)
    topics = [t for t in topics if not (args.exclude_internal and t.internal)]
    if args.format == "json":
        print_json([{"name": t.name, "topic_id": str(t.topic_id), "partitions": len(t.partitions),
                     "internal": t.internal} for t in topics])
    else:
        print_table(["Topic", "Partitions", "Topic ID"], [[t.name, len(t.partitions), str(t.topic_id)] for t in topics])
    return 0


def create_topic(args: argparse.Namespace) -> int:
    with connect(args) as client:
        try:
            partitions = client.create_topic(args.topic, args.partitions, args.replication_factor, dict(args.config),
                                             args.replica_assignment or ())
        except KafkaError as e:
            if args.if_not_exists and e.code == ErrorCode.topic_already_exists:
                print(f"Topic {args.topic} already exists.")
                return 0
            raise
    print(f"Created topic {args.topic}" + (f" with {partitions} partitions." if partitions > 0 else "."))
    return 0


def _describe(client: Client, info: TopicInfo) -> dict[str, Any]:
    partitions = sorted(info.partitions)
    starts = client.list_offsets(info.name, partitions, EARLIEST)
    ends = client.list_offsets(info.name, partitions, LATEST)
    overrides = {c.name: c.value for c in client.describe_configs(TOPIC_RESOURCE, info.name)
                 if c.source == TOPIC_CONFIG_SOURCE}
    return {
        "name": info.name, "topic_id": str(info.topic_id), "internal": info.internal,
        "partition_count": len(partitions),
        "replication_factor": len(info.partitions[partitions[0]].replicas) if partitions else 0,
        "configs": overrides,
        "partitions": [{
            "partition": p, "leader": info.partitions[p].leader, "replicas": list(info.partitions[p].replicas),
            "isr": list(info.partitions[p].isr), "log_start_offset": starts[p], "log_end_offset": ends[p],
        } for p in partitions],
    }


def describe_topics(args: argparse.Namespace) -> int:
    with connect(args) as client, progress("topics") as bar:
        if args.topics:
            infos = [client.topic(name) for name in args.topics]
        else:
            infos = sorted((t for t in client.metadata().topics.values() if not t.internal), key=lambda t: t.name)
        task = bar.add_task("Describing", total=len(infos))
        described = []
        for info in infos:
            described.append(_describe(client, info))
            bar.advance(task)
    if args.format == "json":
        print_json(described)
        return 0
    for topic in described:
        configs = ",".join(f"{k}={v}" for k, v in sorted(topic["configs"].items()))
        print_table(
            ["Partition", "Leader", "Replicas", "ISR", "Log start offset", "Log end offset"],
            [[p["partition"], p["leader"], ",".join(map(str, p["replicas"])), ",".join(map(str, p["isr"])),
              p["log_start_offset"], p["log_end_offset"]] for p in topic["partitions"]],
            title=f"Topic: {topic['name']}  TopicId: {topic['topic_id']}  PartitionCount: {topic['partition_count']}  "
                  f"ReplicationFactor: {topic['replication_factor']}  Configs: {configs}",
        )
    return 0


def alter_topic(args: argparse.Namespace) -> int:
    changes = []
    with connect(args) as client:
        if args.partitions is not None:
            client.create_partitions(args.topic, args.partitions)
            changes.append(f"{args.partitions} partitions")
        if args.config or args.delete_config:
            client.alter_configs(TOPIC_RESOURCE, args.topic, dict(args.config), args.delete_config)
            changes += [f"set {k}={v}" for k, v in args.config] + [f"deleted {k}" for k in args.delete_config]
    print(f"Altered topic {args.topic}: {', '.join(changes)}.")
    return 0


def delete_topics(args: argparse.Namespace) -> int:
    with connect(args) as client:
        for name in args.topics:
            try:
                client.delete_topic(name)
            except KafkaError as e:
                if args.if_exists and e.code == ErrorCode.unknown_topic_or_partition:
                    continue
                raise
            print(f"Deleted topic {name}.")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="kafkapy topics",
        description="Manage the topics of any Kafka-compatible broker, over the Kafka protocol.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="list the topics", description="List the topics and their partition counts.")
    listing.add_argument("--exclude-internal", action="store_true", help="leave out internal topics (__consumer_offsets, ...)")
    add_format_option(listing)

    create = actions.add_parser("create", help="create a topic", description="Create a topic.")
    create.add_argument("topic")
    create.add_argument("--partitions", type=int, default=-1, metavar="N", help="number of partitions (default: the broker's num.partitions)")
    create.add_argument("--replication-factor", type=int, default=-1, metavar="N",
                        help="copies of each partition (default: the broker's default.replication.factor)")
    create.add_argument("--config", type=_config_pair, action="append", default=[], metavar="KEY=VALUE",
                        help="a topic config, e.g. cleanup.policy=compact (repeatable)")
    create.add_argument("--replica-assignment", type=_replica_assignment, metavar="B:B,B:B,...",
                        help="the brokers of each partition, instead of --partitions and --replication-factor: "
                             "partitions separated by commas, their brokers by colons, the first the preferred leader")
    create.add_argument("--if-not-exists", action="store_true", help="succeed if the topic already exists")

    describe = actions.add_parser(
        "describe", help="show partitions, leaders, offsets and configs",
        description="Show each partition's leader, replicas, in-sync replicas and log start and end offsets, "
                    "and the configs set on the topic itself.",
    )
    describe.add_argument("topics", nargs="*", metavar="TOPIC", help="topics to describe (default: all but internal ones)")
    add_format_option(describe)

    alter = actions.add_parser("alter", help="add partitions or change configs",
                               description="Add partitions to a topic, or set or delete its configs.")
    alter.add_argument("topic")
    alter.add_argument("--partitions", type=int, metavar="N", help="grow the topic to N partitions")
    alter.add_argument("--config", type=_config_pair, action="append", default=[], metavar="KEY=VALUE",
                       help="set a config (repeatable)")
    alter.add_argument("--delete-config", action="append", default=[], metavar="KEY",
                       help="remove a config set on the topic, back to the broker's default (repeatable)")

    delete = actions.add_parser("delete", help="delete topics", description="Delete topics and their data.")
    delete.add_argument("topics", nargs="+", metavar="TOPIC")
    delete.add_argument("--if-exists", action="store_true", help="succeed for topics that do not exist")

    for action in (listing, create, describe, alter, delete):
        add_bootstrap_option(action)
    args = parser.parse_args(argv)
    if args.action == "create" and args.replica_assignment and (args.partitions != -1 or args.replication_factor != -1):
        create.error("--replica-assignment cannot be used with --partitions or --replication-factor")
    if args.action == "alter" and args.partitions is None and not args.config and not args.delete_config:
        alter.error("nothing to alter: give --partitions, --config or --delete-config")
    handlers = {"list": list_topics, "create": create_topic, "describe": describe_topics,
                "alter": alter_topic, "delete": delete_topics}
    return run_tool(f"kafkapy topics {args.action}", lambda: handlers[args.action](args))
