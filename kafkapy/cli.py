"""The `kafkapy` command."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

import anyio

from .config import BrokerConfig, ConfigError
from .log.files import StorageError


def _configure_logging() -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="[%(asctime)s] %(levelname)s %(message)s (%(name)s)",
    )


async def _serve(config: BrokerConfig) -> None:
    from .server import Supervisor

    server = Supervisor(config)

    async def stop_on_signal() -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                server.stop()
                return

    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_on_signal)
        await server.run()
        tg.cancel_scope.cancel()


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kafkapy run", description="Start a broker.")
    parser.add_argument("properties", nargs="?", help="a server.properties file")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE", help="set a config key (repeatable)")
    args = parser.parse_args(argv)
    _configure_logging()
    try:
        config = BrokerConfig.from_sources(args.properties, args.override)
    except (ConfigError, OSError) as e:
        print(f"kafkapy: configuration error: {e}", file=sys.stderr)
        return 2
    try:
        anyio.run(_serve, config, backend="asyncio")
    except (ConfigError, StorageError, BaseExceptionGroup) as e:
        # Found at start-up (unformatted storage, say), it comes out of the task groups wrapped.
        error = _startup_error(e)
        if error is None:
            raise
        kind = "storage" if isinstance(error, StorageError) else "configuration"
        print(f"kafkapy: {kind} error: {error}", file=sys.stderr)
        return 2
    return 0


def _startup_error(error: BaseException) -> ConfigError | StorageError | None:
    if isinstance(error, ConfigError | StorageError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            if (found := _startup_error(inner)) is not None:
                return found
    return None


def dump_log(argv: list[str]) -> int:
    from .tools.dump_log import main as dump_log_main

    return dump_log_main(argv)


def metadata(argv: list[str]) -> int:
    from .tools.metadata import main as metadata_main

    return metadata_main(argv)


def compat(argv: list[str]) -> int:
    from .compat.command import main as compat_main

    return compat_main(argv)


def topics(argv: list[str]) -> int:
    from .tools.topics import main as topics_main

    return topics_main(argv)


def produce(argv: list[str]) -> int:
    from .tools.produce import main as produce_main

    return produce_main(argv)


def consume(argv: list[str]) -> int:
    from .tools.consume import main as consume_main

    return consume_main(argv)


def groups(argv: list[str]) -> int:
    from .tools.groups import main as groups_main

    return groups_main(argv)


def acls(argv: list[str]) -> int:
    from .tools.acls import main as acls_main

    return acls_main(argv)


def users(argv: list[str]) -> int:
    from .tools.users import main as users_main

    return users_main(argv)


def storage(argv: list[str]) -> int:
    from .tools.storage import main as storage_main

    return storage_main(argv)


def quorum(argv: list[str]) -> int:
    from .tools.quorum import main as quorum_main

    return quorum_main(argv)


def console(argv: list[str]) -> int:
    from .console.command import main as console_main

    return console_main(argv)


COMMANDS = {
    "run": run, "dump-log": dump_log, "metadata": metadata, "compat": compat,
    "topics": topics, "produce": produce, "consume": consume, "groups": groups, "storage": storage,
    "quorum": quorum, "acls": acls, "users": users, "console": console,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    if argv and argv[0] in ("-h", "--help"):
        print("usage: kafkapy [run] [server.properties] [--override KEY=VALUE ...]\n"
              "       kafkapy COMMAND [--help] ...\n\n"
              "commands:\n"
              "  run        start a broker (the default)\n"
              "  dump-log   print the batches and records of log segment files\n"
              "  metadata   dump PATH: print the metadata log or a snapshot, records decoded\n"
              "  compat     run the cross-client compatibility suite\n"
              "  topics     list, create, describe, alter and delete topics of any Kafka broker\n"
              "  produce    produce lines of stdin as records\n"
              "  consume    print a topic's records, alone or as a consumer group member\n"
              "  groups     list and describe consumer groups, reset their offsets\n"
              "  console    serve a web console of any Kafka cluster on 127.0.0.1 (--port, --read-only)\n"
              "  quorum     describe --status | --replication: the KRaft metadata quorum\n"
              "  acls       list, add and remove ACLs (kafka-acls.sh's options)\n"
              "  users      list, set and delete SCRAM users (their mechanisms and iterations)\n"
              "  storage    format a node's log directories with a cluster id; random-uuid makes one\n\n"
              "The console tools speak the Kafka protocol to --bootstrap HOST:PORT (default 127.0.0.1:9092).")
        return 0
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
