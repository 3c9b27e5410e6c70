"""Runs one scenario with one client, in a process of its own, and reports the outcome.

    python -m kafkapy.compat.worker SCENARIO CLIENT BOOTSTRAP [--broker-control] [--security FILE]

The runner reads JSON lines from the worker's stdout: requests to act on the broker,
{"control": "restart"}, each answered by a line on the worker's stdin (only with
--broker-control), then the outcome, {"status": ..., "reason": ..., "detail": ...}.
Before anything runs, the worker points its file descriptor 1 at stderr, so that nothing a
client library prints can garble that channel.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import IO, Any

from .adapters import ADAPTERS, Client, Unsupported
from .adapters.base import BrokerError
from .outcome import Status
from .registry import Context, NotApplicable, Scenario
from .scenarios import AREAS, load
from .security import PLAINTEXT, ClientSecurity


class ParentControl:
    """Broker control through the runner, which started the broker."""

    def __init__(self, channel: IO[str]) -> None:
        self.channel = channel

    def restart(self) -> None:
        _send(self.channel, {"control": "restart"})
        answer = json.loads(sys.stdin.readline() or '{"error": "the runner closed the channel"}')
        if answer.get("error"):
            raise RuntimeError(f"the runner could not restart the broker: {answer['error']}")


def _send(channel: IO[str], message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def _failure_reason(error: BaseException) -> str:
    # An assertion's message says what differed; a BrokerError's starts with Kafka's error name.
    if isinstance(error, (AssertionError, BrokerError)) and str(error):
        return str(error)
    if str(error):
        return f"{type(error).__name__}: {error}"
    where = traceback.extract_tb(error.__traceback__)[-1]
    return f"{type(error).__name__} at {where.filename}:{where.lineno}"


def outcome_of(ctx: Context, scenario: Scenario) -> dict[str, Any]:
    try:
        scenario.run(ctx)
        return {"status": Status.PASS.value}
    except Unsupported as e:
        return {"status": Status.UNSUPPORTED.value, "reason": str(e)}
    except NotApplicable as e:
        return {"status": Status.SKIPPED.value, "reason": str(e)}
    except Exception as e:  # every error a scenario meets is its outcome
        return {"status": Status.FAIL.value, "reason": _failure_reason(e), "detail": traceback.format_exc()}


def run(scenario: Scenario, client_name: str, bootstrap: str, control: ParentControl | None,
        report: Callable[[dict[str, Any]], None], security: ClientSecurity = PLAINTEXT) -> None:
    """Reports the outcome before closing the clients, whose closing cannot change it."""
    clients: list[Client] = [ADAPTERS[client_name].connect(bootstrap, security)]

    def make_others() -> list[Client]:
        others = [a for name, a in ADAPTERS.items()
                  if name != client_name and not a.pinned and a.reads_everything and a.unavailable(security) is None]
        clients.extend(a.connect(bootstrap, security) for a in others)
        return clients[1:]

    try:
        report(outcome_of(Context(scenario.name, clients[0], control, make_others), scenario))
    finally:
        for client in clients:
            try:
                client.close()
            except Exception:
                traceback.print_exc()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kafkapy.compat.worker")
    parser.add_argument("scenario")
    parser.add_argument("client", choices=sorted(ADAPTERS))
    parser.add_argument("bootstrap")
    parser.add_argument("--broker-control", action="store_true")
    parser.add_argument("--security", metavar="FILE", help="the clients' security settings (see kafkapy.compat.security)")
    args = parser.parse_args(argv)
    area = args.scenario.split(".", 1)[0]
    scenarios = load(area) if area in AREAS else {}
    if args.scenario not in scenarios:
        parser.error(f"no scenario {args.scenario}")
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    control = ParentControl(channel) if args.broker_control else None
    security = ClientSecurity.read(args.security) if args.security else PLAINTEXT
    run(scenarios[args.scenario], args.client, args.bootstrap, control, lambda outcome: _send(channel, outcome), security)
    return 0


if __name__ == "__main__":
    sys.exit(main())
