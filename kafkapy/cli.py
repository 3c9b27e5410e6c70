"""The `kafkapy` command."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

import anyio

from .config import BrokerConfig, ConfigError


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
    except ConfigError as e:
        print(f"kafkapy: configuration error: {e}", file=sys.stderr)
        return 2
    return 0


def dump_log(argv: list[str]) -> int:
    from .tools.dump_log import main as dump_log_main

    return dump_log_main(argv)


def compat(argv: list[str]) -> int:
    from .compat.command import main as compat_main

    return compat_main(argv)


COMMANDS = {"run": run, "dump-log": dump_log, "compat": compat}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    if argv and argv[0] in ("-h", "--help"):
        print("usage: kafkapy [run] [server.properties] [--override KEY=VALUE ...]\n"
              f"commands: {', '.join(COMMANDS)}")
        return 0
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
