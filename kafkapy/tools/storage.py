"""`kafkapy storage`: format a node's log directories before its first start, and make
cluster ids, as `kafka-storage.sh format` and `kafka-storage.sh random-uuid` do.

    kafkapy storage random-uuid
    kafkapy storage format --cluster-id ID --config server.properties [--ignore-formatted]

Format writes meta.properties (node.id, directory.id, cluster.id) into each directory
of log.dirs. As Kafka's, it refuses a directory formatted for another cluster or node
whatever the flags; a directory already formatted for this one is an error unless
--ignore-formatted is given, and then it is left as it is, so formatting is repeatable.
Errors go to stderr with exit status 1, as Kafka's StorageTool."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from ..config import BrokerConfig, ConfigError
from ..metadata.brokers import METADATA_VERSION
from ..server.meta_properties import format_storage, random_cluster_id, verify_meta_properties

# The release name of the metadata.version a new cluster starts at, as Kafka prints it.
_RELEASE_OF_LEVEL = {21: "3.9-IV0"}


class _Parser(argparse.ArgumentParser):
    """Exits 1 on a bad command line, as Kafka's tools do (argparse would exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kafkapy storage", description="The kafkapy storage tool, as kafka-storage.sh.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("random-uuid", help="Print a random UUID, for a cluster id.")
    fmt = commands.add_parser("format", help="Format the log directories of this node.")
    fmt.add_argument("--config", "-c", required=True, help="The server.properties file of the node.")
    fmt.add_argument("--cluster-id", "-t", required=True, help="The cluster ID to use.")
    fmt.add_argument("--ignore-formatted", "-g", action="store_true",
                     help="Leave directories already formatted for this cluster and node as they are.")
    fmt.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                     help="set a config key, as `kafkapy run --override` does (repeatable)")
    return parser


class FormatError(Exception):
    """Formatting cannot go on; the message is Kafka's."""


def format_command(config: BrokerConfig, cluster_id: str, ignore_formatted: bool) -> list[str]:
    """Formats the node's directories; returns the lines to print. Checks everything
    before writing anything, so a refusal leaves every directory as it was."""
    if not cluster_id:
        raise FormatError("You must specify the cluster id.")
    dirs = sorted(set(config.log_dirs))
    if not dirs:
        raise FormatError("You must specify at least one directory to format")
    try:
        verify_meta_properties(dirs, config.node_id, cluster_id)
    except ConfigError as e:
        raise FormatError(str(e)) from e
    formatted = [d for d in dirs if (d / "meta.properties").exists()]
    if formatted and not ignore_formatted:
        raise FormatError(f"Log directory {formatted[0]} is already formatted. "
                          "Use --ignore-formatted to ignore this directory and format the others.")
    if len(formatted) == len(dirs):
        return ["All of the log directories are already formatted."]
    # The metadata log lives in the first of log.dirs (Kafka's default metadata.log.dir).
    metadata_dir = config.log_dirs[0]
    release = _RELEASE_OF_LEVEL.get(METADATA_VERSION, str(METADATA_VERSION))
    written = format_storage(dirs, config.node_id, cluster_id)
    return [f"Formatting {'metadata directory' if d == metadata_dir else 'data directory'} {d} "
            f"with metadata.version {release}." for d in written]


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.command == "random-uuid":
        print(random_cluster_id())
        return 0
    try:
        config = BrokerConfig.from_sources(Path(args.config), args.override)
    except (ConfigError, OSError) as e:
        print(f"kafkapy storage: configuration error: {e}", file=sys.stderr)
        return 1
    try:
        lines = format_command(config, args.cluster_id, args.ignore_formatted)
    except FormatError as e:
        print(e, file=sys.stderr)
        return 1
    except OSError as e:
        print(f"Error while writing meta.properties file: {e}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0
