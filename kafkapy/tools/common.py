"""What the console tools share: the --bootstrap, --command-config and --format options,
output through rich (tables, JSON, progress on stderr), and client errors turned into
one-line messages."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..client import Client, ClientError, ClientSecurity

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def text(value: bytes | None) -> str:
    """Bytes as text for a console: UTF-8, undecodable bytes escaped, null as "null"."""
    if value is None:
        return "null"
    return value.decode("utf-8", errors="backslashreplace")


def add_bootstrap_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap", default=DEFAULT_BOOTSTRAP, metavar="HOST:PORT",
                        help=f"a broker of the cluster, or several separated by commas (default {DEFAULT_BOOTSTRAP})")
    add_command_config_option(parser)


def add_command_config_option(parser: argparse.ArgumentParser, default: object = None) -> None:
    parser.add_argument("--command-config", type=Path, default=default, metavar="FILE",
                        help="Kafka client properties for a secured cluster, as Kafka's tools take them: "
                             "security.protocol, sasl.mechanism, sasl.jaas.config (or sasl.username and sasl.password), "
                             "ssl.truststore.location (PEM), ssl.keystore.location (PEM, for mutual TLS)...")


def client_security(command_config: Path | None) -> ClientSecurity | None:
    """The security settings of --command-config; SecurityConfigError (a ClientError) when unusable."""
    return None if command_config is None else ClientSecurity.read(command_config)


def connect(args: argparse.Namespace) -> Client:
    """A client of the cluster at --bootstrap, secured as --command-config says."""
    return Client(args.bootstrap, security=client_security(args.command_config))


def add_format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text: tables (the default); json: one JSON document, for scripts")


def stdout_console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        # Piped output keeps whole lines: rich would otherwise wrap tables at 80 columns.
        console.width = 100_000
    return console


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def progress(unit: str, enabled: bool = True) -> Progress:
    """A live count on stderr while long work runs; only on a terminal, so that it never
    lands in redirected output."""
    console = stderr_console()
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TextColumn(f"{{task.completed}} {unit}"),
        TimeElapsedColumn(), console=console, transient=True, disable=not (enabled and console.is_terminal),
    )


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    """A table on stdout; numbers are right-aligned, None shows as "-"."""
    if title:
        print_heading(title)
    numeric = [any(isinstance(row[i], int) for row in rows) and all(isinstance(row[i], int) or row[i] is None for row in rows)
               for i in range(len(columns))]
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
    for column, right in zip(columns, numeric, strict=True):
        table.add_column(column, justify="right" if right else "left")
    for row in rows:
        # Text, not str: rich would read "[...]" in a group or config value as markup.
        table.add_row(*(Text("-" if cell is None else str(cell)) for cell in row))
    stdout_console().print(table)


def print_heading(title: str) -> None:
    stdout_console().print(Text(title, style="bold"), soft_wrap=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def say(message: str) -> None:
    """A line for the user on stderr, away from the data on stdout."""
    stderr_console().print(Text(message), soft_wrap=True)


def run_tool(prog: str, action: Callable[[], int]) -> int:
    """Runs a tool: SIGTERM ends it as Ctrl-C does (its cleanup runs), and a client error
    becomes one line on stderr and exit status 1."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return action()
    except ClientError as e:
        error = Text(f"{prog}: error: ", style="bold red") + Text(str(e))
        stderr_console().print(error, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`... | head`): nothing more to say, and nowhere to say it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
