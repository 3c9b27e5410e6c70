"""`kafkapy console`: the web console against any Kafka-compatible cluster, served by
uvicorn on 127.0.0.1."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio
import uvicorn

from ..client import ClientSecurity, SecurityConfigError
from ..tools.common import add_bootstrap_option, client_security
from .app import create_app
from .metrics import DEFAULT_SAMPLE_INTERVAL_S
from .serving import GRACEFUL_SHUTDOWN_S, bind_local

DEFAULT_PORT = 8080


async def serve(bootstrap: str, port: int, read_only: bool, compat_report: Path | None, sample_interval_s: float,
                security: ClientSecurity | None) -> None:
    listener, url = bind_local(port)
    config = uvicorn.Config(create_app(bootstrap, read_only, compat_report, sample_interval_s, security), log_level="warning",
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    server = uvicorn.Server(config)
    print(f"kafkapy console: serving {url}/ for the cluster at {bootstrap}"
          + (" (read-only)" if read_only else ""), file=sys.stderr, flush=True)
    await server.serve(sockets=[listener])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="kafkapy console",
        description="Serve a web console of a Kafka-compatible cluster on 127.0.0.1: its brokers, topics, "
                    "records and consumer groups, over the Kafka protocol.",
    )
    add_bootstrap_option(parser)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"the port to serve on (default {DEFAULT_PORT}; 0: any free port, printed at start)")
    parser.add_argument("--read-only", action="store_true",
                        help="show the cluster without any action that changes it")
    parser.add_argument("--compat-report", type=Path, metavar="PATH",
                        help="the JSON report of `kafkapy compat` (reports/compat.json) to show as its matrix")
    parser.add_argument("--sample-interval", type=float, default=DEFAULT_SAMPLE_INTERVAL_S, metavar="SECONDS",
                        help=f"how often the charts' offsets are sampled (default {DEFAULT_SAMPLE_INTERVAL_S:g})")
    args = parser.parse_args(argv)
    if args.sample_interval <= 0:
        parser.error("--sample-interval: a number of seconds above 0")
    try:
        security = client_security(args.command_config)
    except SecurityConfigError as e:
        print(f"kafkapy console: {e}", file=sys.stderr)
        return 1
    try:
        anyio.run(serve, args.bootstrap, args.port, args.read_only, args.compat_report, args.sample_interval, security,
                  backend="asyncio")
    except OSError as e:
        print(f"kafkapy console: cannot serve on 127.0.0.1:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0
