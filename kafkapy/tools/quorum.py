"""`kafkapy quorum describe --status | --replication`: the KRaft metadata quorum, printed
as `kafka-metadata-quorum.sh describe` prints it, from any broker of the cluster."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import NoReturn

from ..client import QuorumInfo, QuorumReplica
from ..log.manager import kafka_uuid
from .common import DEFAULT_BOOTSTRAP, add_command_config_option, connect, run_tool


class UsageError(Exception):
    """A combination of options the command refuses, with Kafka's words."""


class _Parser(argparse.ArgumentParser):
    """Exits 1 on a bad command line, as Kafka's tools do (argparse would exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def _add_bootstrap(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--bootstrap-server", "--bootstrap", dest="bootstrap", default=default, metavar="HOST:PORT",
                        help=f"a broker of the cluster, or several separated by commas (default {DEFAULT_BOOTSTRAP})")
    add_command_config_option(parser, argparse.SUPPRESS if default == argparse.SUPPRESS else None)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kafkapy quorum", description="Describe the KRaft metadata quorum, as kafka-metadata-quorum.sh.")
    # Accepted before the subcommand, as Kafka's tool takes it, and after it.
    _add_bootstrap(parser, DEFAULT_BOOTSTRAP)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    describe = commands.add_parser("describe", help="Describe the metadata quorum info")
    _add_bootstrap(describe, argparse.SUPPRESS)
    describe.add_argument("--status", action="store_true",
                          help="A short summary of the quorum: leader, epoch, high watermark, lag, voters, observers.")
    describe.add_argument("--replication", action="store_true", help="Detailed information about the status of replication")
    describe.add_argument("--human-readable", action="store_true", help="Human-readable output (with --replication)")
    return parser


def _leader(quorum: QuorumInfo) -> QuorumReplica:
    return next(v for v in quorum.voters if v.replica_id == quorum.leader_id)


def _replica_list(quorum: QuorumInfo, replicas: Sequence[QuorumReplica]) -> str:
    """[{"id": 1, "endpoints": ["CONTROLLER://host:port"]}, ...]: Kafka's form, with the
    directory id only when there is one."""
    items = []
    for r in replicas:
        parts = [f'"id": {r.replica_id}']
        if r.directory_id.int:
            parts.append(f'"directoryId": "{kafka_uuid(r.directory_id)}"')
        endpoints = quorum.endpoints.get(r.replica_id, [])
        if endpoints:
            parts.append('"endpoints": [' + ", ".join(f'"{e}"' for e in endpoints) + "]")
        items.append("{" + ", ".join(parts) + "}")
    return "[" + ", ".join(items) + "]"


def status_lines(cluster_id: str | None, quorum: QuorumInfo) -> list[str]:
    leader = _leader(quorum)
    max_lag_follower = min(quorum.voters, key=lambda v: v.log_end_offset)
    if max_lag_follower is leader:
        max_lag_time = 0
    elif leader.last_caught_up_timestamp >= 0 and max_lag_follower.last_caught_up_timestamp >= 0:
        max_lag_time = leader.last_caught_up_timestamp - max_lag_follower.last_caught_up_timestamp
    else:
        max_lag_time = -1
    return [
        f"ClusterId:              {cluster_id}",
        f"LeaderId:               {quorum.leader_id}",
        f"LeaderEpoch:            {quorum.leader_epoch}",
        f"HighWatermark:          {quorum.high_watermark}",
        f"MaxFollowerLag:         {leader.log_end_offset - max_lag_follower.log_end_offset}",
        f"MaxFollowerLagTimeMs:   {max_lag_time}",
        f"CurrentVoters:          {_replica_list(quorum, quorum.voters)}",
        f"CurrentObservers:       {_replica_list(quorum, quorum.observers)}",
    ]


def _timestamp(value: int, human_readable: bool, now_ms: int) -> str:
    if value < 0:
        return "-1"
    return f"{now_ms - value} ms ago" if human_readable else str(value)


def replication_lines(quorum: QuorumInfo, human_readable: bool = False, now_ms: int | None = None) -> list[str]:
    """Kafka's table: the leader, then the other voters, then the observers; each cell
    padded to its column's width and followed by a tab."""
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    leader = _leader(quorum)
    rows = [["NodeId", "DirectoryId", "LogEndOffset", "Lag", "LastFetchTimestamp", "LastCaughtUpTimestamp", "Status"]]
    groups = (([leader], "Leader"), ([v for v in quorum.voters if v is not leader], "Follower"), (quorum.observers, "Observer"))
    for replicas, status in groups:
        for r in replicas:
            rows.append([str(r.replica_id), kafka_uuid(r.directory_id), str(r.log_end_offset),
                         str(leader.log_end_offset - r.log_end_offset),
                         _timestamp(r.last_fetch_timestamp, human_readable, now),
                         _timestamp(r.last_caught_up_timestamp, human_readable, now), status])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["".join(cell.ljust(width) + "\t" for cell, width in zip(row, widths, strict=True)) for row in rows]


def describe(args: argparse.Namespace) -> int:
    if args.status and args.replication:
        raise UsageError("Only one of --status or --replication should be specified with describe sub-command")
    if not (args.status or args.replication):
        raise UsageError("One of --status or --replication must be specified with describe sub-command")
    if args.status and args.human_readable:
        raise UsageError("The option --human-readable is only supported along with --replication")
    with connect(args) as client:
        quorum = client.describe_quorum()
        lines = (status_lines(client.metadata([]).cluster_id, quorum) if args.status
                 else replication_lines(quorum, args.human_readable))
    print("\n".join(lines))
    return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)

    def action() -> int:
        try:
            return describe(args)
        except UsageError as e:
            print(e, file=sys.stderr)
            return 1

    return run_tool("kafkapy quorum", action)
