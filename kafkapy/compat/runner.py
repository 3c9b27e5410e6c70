"""Runs (scenario, client) pairs, each in a worker process with a deadline, against an
external broker or kafkapy brokers the runner starts itself.

A worker that does not report within its deadline is killed and its run is a FAIL, so a
hung client fails its cell instead of hanging the suite.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from ..security.scram_client import ScramClientError
from ..testing.process import BrokerProcess
from .adapters import ADAPTERS
from .adapters.base import BrokerError
from .outcome import Outcome, Status
from .raw import RawConnection
from .registry import Scenario
from .security import PLAINTEXT, ClientSecurity

# A worker gets this long to exit once it has reported (it closes its clients meanwhile).
EXIT_GRACE_S = 10.0
STDERR_TAIL_CHARS = 4000


class BrokerUnavailable(Exception):
    """The broker to test cannot be reached or started."""


class NotRun(Exception):
    """A run that cannot start; its outcome is status and the exception's message."""

    def __init__(self, status: Status, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class ExternalBroker:
    """A broker the suite did not start: no scenario may act on it. The clients connect
with the security settings given."""

    def __init__(self, bootstrap: str, security: ClientSecurity = PLAINTEXT) -> None:
        self.bootstrap = bootstrap
        self.security = security
        self.description = f"external broker at {bootstrap}" + (f" over {security.protocol}" if security is not PLAINTEXT else "")

    def __enter__(self) -> ExternalBroker:
        """Fails at once if nothing listens there, or if the security settings do not get
        a connection through its TLS handshake and SASL authentication, rather than in
        every run (where clients retry until their deadline)."""
        host, _, port = self.bootstrap.rpartition(":")
        try:
            RawConnection(int(port), host, self.security).sock.close()
        except (OSError, ValueError) as e:
            raise BrokerUnavailable(f"cannot connect to {self.bootstrap}: {e}") from e
        except (BrokerError, ScramClientError) as e:
            raise BrokerUnavailable(f"cannot authenticate to {self.bootstrap} as {self.security.user}: {e}") from e
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    @contextmanager
    def broker_for(self, scenario: Scenario) -> Iterator[tuple[str, BrokerProcess | None]]:
        if scenario.needs_broker_control:
            raise NotRun(Status.SKIPPED, "acts on the broker, which only a broker the suite started allows")
        if scenario.as_super_user:
            raise NotRun(Status.SKIPPED, "needs the client's principal among the broker's super.users, "
                                         "which only a broker the suite started is configured with")
        yield self.bootstrap, None


# Broker configs of the suite's own kafkapy, so that what scenarios wait for comes as soon
# as Kafka's semantics allow: a group's first rebalance without waiting for more members, a
# cleaner that looks for dirty logs every 0.2s, timed-out transactions looked for every
# second. The scenarios are written to work with Apache Kafka's defaults too, only more slowly.
SUITE_OVERRIDES: Mapping[str, object] = {
    "group.initial.rebalance.delay.ms": 0,
    "log.cleaner.backoff.ms": 200,
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": 1000,
}


# The suite's brokers for the scenarios of authorization: Kafka's authorizer, which leaves a
# resource without ACLs open (each scenario's ACLs name its own resources only), and for
# those run as a super user, the principal of its unauthenticated clients among super.users.
AUTHORIZER_OVERRIDES: Mapping[str, object] = {
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "allow.everyone.if.no.acl.found": "true",
}
SUPER_USER_OVERRIDES: Mapping[str, object] = {**AUTHORIZER_OVERRIDES, "super.users": "User:ANONYMOUS"}


class EmbeddedBroker:
    """kafkapy brokers of the suite's own on 127.0.0.1: one shared by the scenarios that only
    talk to it, one with an authorizer shared by those of authorization (another for those
    run as a super user), each started when first needed, and a fresh one for each run of a
    scenario that acts on its broker. They run with SUITE_OVERRIDES, then the overrides
    given (which the description names)."""

    security = PLAINTEXT

    def __init__(self, overrides: Mapping[str, object] | None = None) -> None:
        self.overrides = {**SUITE_OVERRIDES, **(overrides or {})}
        self.description = "embedded kafkapy" + "".join(f" {k}={v}" for k, v in (overrides or {}).items())
        self._own_brokers = 0
        self._lock = threading.Lock()
        self._secured: dict[str, BrokerProcess] = {}

    def __enter__(self) -> EmbeddedBroker:
        self._root = Path(tempfile.mkdtemp(prefix="kafkapy-compat-"))
        self.shared = BrokerProcess(self._root / "shared", self.overrides)
        try:
            self.shared.start()
        except RuntimeError as e:
            shutil.rmtree(self._root, ignore_errors=True)
            raise BrokerUnavailable(str(e)) from e
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            for broker in [self.shared, *self._secured.values()]:
                broker.stop()
        finally:
            shutil.rmtree(self._root, ignore_errors=True)

    def _secured_broker(self, kind: str, overrides: Mapping[str, object]) -> BrokerProcess:
        """The shared broker of this kind, started on first use (by one run; the others wait)."""
        with self._lock:
            broker = self._secured.get(kind)
            if broker is None:
                broker = BrokerProcess(self._root / kind, {**overrides, **self.overrides})
                try:
                    broker.start()
                except RuntimeError as e:
                    raise NotRun(Status.FAIL, f"could not start a kafkapy with an authorizer: {e}") from e
                self._secured[kind] = broker
            return broker

    @contextmanager
    def broker_for(self, scenario: Scenario) -> Iterator[tuple[str, BrokerProcess | None]]:
        if scenario.as_super_user:
            yield self._secured_broker("super-user", SUPER_USER_OVERRIDES).bootstrap, None
            return
        if scenario.needs_authorizer:
            yield self._secured_broker("authorizer", AUTHORIZER_OVERRIDES).bootstrap, None
            return
        if not scenario.needs_broker_control:
            yield self.shared.bootstrap, None
            return
        with self._lock:
            self._own_brokers += 1
            data_dir = self._root / f"own-{self._own_brokers}"
        own = BrokerProcess(data_dir, self.overrides)
        try:
            own.start()
        except RuntimeError as e:
            raise NotRun(Status.FAIL, f"could not start a kafkapy of its own: {e}") from e
        try:
            yield own.bootstrap, own
        finally:
            own.kill()
            shutil.rmtree(data_dir, ignore_errors=True)


Target = ExternalBroker | EmbeddedBroker


def run_one(target: Target, scenario: Scenario, client: str, deadline: float | None = None) -> Outcome:
    unavailable = ADAPTERS[client].unavailable(target.security)
    if unavailable is not None:
        return Outcome(scenario.name, client, Status.SKIPPED, unavailable)
    started = time.monotonic()
    try:
        with target.broker_for(scenario) as (bootstrap, control):
            outcome = _run_worker(scenario, client, bootstrap, control, deadline or scenario.deadline, target.security)
    except NotRun as e:
        return Outcome(scenario.name, client, e.status, str(e))
    return replace(outcome, seconds=round(time.monotonic() - started, 2))


def _run_worker(scenario: Scenario, client: str, bootstrap: str, control: BrokerProcess | None, deadline: float,
                security: ClientSecurity) -> Outcome:
    args = [sys.executable, "-m", "kafkapy.compat.worker", scenario.name, client, bootstrap]
    if control is not None:
        args.append("--broker-control")
    if security.source is not None:
        args += ["--security", security.source]
    with tempfile.TemporaryFile("w+") as stderr, \
            subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True) as worker:
        try:
            report = _conversation(worker, control, deadline)
            if report is None:
                return Outcome(scenario.name, client, Status.FAIL,
                               f"no outcome within the {deadline:g}s deadline: the client hung", _tail(stderr))
            if "status" not in report:
                return Outcome(scenario.name, client, Status.FAIL,
                               f"the worker exited with status {worker.wait()} without an outcome", _tail(stderr))
            try:
                worker.wait(EXIT_GRACE_S)
            except subprocess.TimeoutExpired:
                pass  # the outcome stands; the worker only hung closing its clients
            detail = report.get("detail", "")
            if report["status"] == Status.FAIL.value:
                detail += _tail(stderr)
            return Outcome(scenario.name, client, Status(report["status"]), report.get("reason", ""), detail)
        finally:
            if worker.poll() is None:
                worker.kill()


def _conversation(worker: subprocess.Popen[str], control: BrokerProcess | None, deadline: float) -> dict[str, Any] | None:
    """The worker's outcome; {} if it exited without one, None if the deadline passed first.
    Answers its requests to act on the broker meanwhile."""
    assert worker.stdout is not None and worker.stdin is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_lines, args=(worker.stdout, lines), daemon=True).start()
    end = time.monotonic() + deadline
    while True:
        try:
            line = lines.get(timeout=max(0.0, end - time.monotonic()))
        except queue.Empty:
            return None
        if not line:
            return {}
        message = json.loads(line)
        if "control" not in message:
            return message
        worker.stdin.write(json.dumps(_act(control, message["control"])) + "\n")
        worker.stdin.flush()


def _read_lines(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)
    lines.put("")


def _act(control: BrokerProcess | None, action: str) -> dict[str, str]:
    if control is None:
        return {"error": "this run has no control of the broker"}
    if action != "restart":
        return {"error": f"unknown action {action!r}"}
    try:
        control.restart()
    except RuntimeError as e:
        return {"error": str(e)}
    return {}


def _tail(stderr: IO[str]) -> str:
    stderr.seek(0)
    text = stderr.read()
    if not text:
        return ""
    return "\n--- worker stderr (end) ---\n" + text[-STDERR_TAIL_CHARS:]


def run_matrix(target: Target, pairs: Sequence[tuple[Scenario, str]], jobs: int,
               on_change: Callable[[str, str, Outcome | None], None] = lambda *_: None,
               deadline: float | None = None) -> list[Outcome]:
    """Runs (scenario, client) pairs, `jobs` at a time; on_change(scenario, client, None)
    when a run starts and on_change(scenario, client, outcome) when it ends. The outcomes
    come back in the order of pairs."""

    def run(pair: tuple[Scenario, str]) -> Outcome:
        scenario, client = pair
        on_change(scenario.name, client, None)
        outcome = run_one(target, scenario, client, deadline)
        on_change(scenario.name, client, outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(run, pairs))
