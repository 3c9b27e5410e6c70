"""`kafkapy compat`: every scenario with every client, against a broker, with reports."""

from __future__ import annotations

import argparse
import fnmatch
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from .adapters import ADAPTERS
from .progress import Progress
from .reports import Report, write
from .runner import BrokerUnavailable, EmbeddedBroker, ExternalBroker, Target, run_matrix
from .scenarios import load
from .security import PLAINTEXT, ClientSecurity, SecurityFileError

DEFAULT_JOBS = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kafkapy compat",
        description="Run the client compatibility scenarios against a broker and write the matrix as "
                    "Markdown, HTML and JSON. Exits 1 if any scenario fails.",
    )
    parser.add_argument("--bootstrap", metavar="HOST:PORT",
                        help="the broker to test; without it, kafkapy brokers are started on 127.0.0.1")
    parser.add_argument("--security", metavar="FILE",
                        help="the clients' settings for a secured --bootstrap: a properties file of librdkafka's keys "
                             "(security.protocol, sasl.mechanism, sasl.username, sasl.password, ssl.ca.location, "
                             "ssl.certificate.location, ssl.key.location, ssl.key.password)")
    parser.add_argument("--client", action="append", choices=sorted(ADAPTERS), help="only this client (repeatable)")
    parser.add_argument("--scenario", action="append", metavar="PATTERN",
                        help="only scenarios whose name matches this glob, e.g. 'produce.*' (repeatable)")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help=f"runs at a time (default {DEFAULT_JOBS})")
    parser.add_argument("--deadline", type=float, metavar="SECONDS", help="each run's deadline instead of the scenario's own")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="a config of the started kafkapy, e.g. to see which scenarios a setting breaks (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="directory of the reports (default ./reports)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return parser


def main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    scenarios = [s for s in load().values()
                 if not args.scenario or any(fnmatch.fnmatchcase(s.name, p) for p in args.scenario)]
    if args.list:
        for s in scenarios:
            print(f"{s.name:32} {s.summary}")
        return 0
    if not scenarios:
        parser.error(f"no scenario matches {args.scenario}")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.bootstrap and args.override:
        parser.error("--override configures the kafkapy that compat starts; it cannot apply to --bootstrap")
    if args.security and not args.bootstrap:
        parser.error("--security configures the clients of a --bootstrap broker; the kafkapy compat starts is plaintext")
    try:
        security = ClientSecurity.read(args.security) if args.security else PLAINTEXT
    except SecurityFileError as e:
        parser.error(str(e))
    overrides = dict(o.split("=", 1) for o in args.override if "=" in o)
    if len(overrides) != len(args.override):
        parser.error("--override takes KEY=VALUE")
    clients = args.client or list(ADAPTERS)

    console = Console()
    started, began = datetime.now(UTC), time.monotonic()
    target: Target = ExternalBroker(args.bootstrap, security) if args.bootstrap else EmbeddedBroker(overrides)
    try:
        with target, Progress([s.name for s in scenarios], clients, f"kafkapy compat: {target.description}", console) as progress:
            outcomes = run_matrix(target, [(s, c) for s in scenarios for c in clients], args.jobs, progress.update, args.deadline)
    except BrokerUnavailable as e:
        print(f"kafkapy compat: {e}", file=sys.stderr)
        return 2
    report = Report(target.description, clients, scenarios, outcomes, started, time.monotonic() - began)
    paths = write(report, args.out)
    console.print(report.summary, markup=False, highlight=False, soft_wrap=True)
    console.print("reports: " + ", ".join(str(p) for p in paths), markup=False, highlight=False, soft_wrap=True)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
