"""The brokers under test: how each is named on the command line, started, probed,
measured (RSS and CPU from /proc) and stopped.

    kafkapy                  kafkapy in its own process (durable log, default flush policy)
    NAME=HOST:PORT           a broker someone else runs: no start, RSS or CPU figures
    NAME=COMMAND TEMPLATE    a broker binary the harness starts; {port}, {controller_port}
                             and {data_dir} in the template are filled in per start, and
                             {plain_port}, a plaintext listener that readiness is probed on
                             where {port} speaks TLS
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import wire

KAFKAPY_TEMPLATE = (
    f"{shlex.quote(sys.executable)} -m kafkapy --override listeners=PLAINTEXT://127.0.0.1:{{port}} "
    "--override log.dirs={data_dir}"
)
_HOST_PORT = re.compile(r"^[\w.-]+:\d+$")
_READY_POLL_S = 0.002
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class BrokerSpec:
    name: str
    template: str | None = None  # None: an external broker at `address`
    address: str | None = None

    @property
    def spawned(self) -> bool:
        return self.template is not None


def parse_broker(value: str) -> BrokerSpec:
    if value == "kafkapy":
        return BrokerSpec("kafkapy", template=KAFKAPY_TEMPLATE)
    name, sep, rest = value.partition("=")
    if not sep or not name or not rest:
        raise ValueError(f"--broker {value!r}: expected kafkapy, NAME=HOST:PORT or NAME=COMMAND")
    if _HOST_PORT.match(rest.strip()):
        return BrokerSpec(name, address=rest.strip())
    if "{port}" not in rest:
        raise ValueError(f"--broker {value!r}: the command needs a {{port}} placeholder to listen on")
    return BrokerSpec(name, template=rest)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BrokerError(RuntimeError):
    pass


class RunningBroker:
    """One broker for the length of a `with` block. A spawned one runs in a session of
    its own, so that stopping it also stops whatever its command started."""

    def __init__(self, spec: BrokerSpec, data_dir: Path, ready_timeout: float = 60.0) -> None:
        self.spec = spec
        self.data_dir = data_dir
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.start_to_ready_ms: float | None = None
        self.log_path = data_dir.with_suffix(".log")
        if spec.address:
            self.host, port = spec.address.rsplit(":", 1)
            self.port = int(port)
        else:
            self.host, self.port = "127.0.0.1", 0

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> Self:
        if not self.spec.spawned:
            if not wire.metadata_answers(self.host, self.port, 5.0):
                raise BrokerError(f"{self.spec.name}: nothing answers Metadata at {self.bootstrap}")
            return self
        # Another process may take the free port before the broker binds it: try again.
        for _ in range(3):
            try:
                return self._spawn()
            except BrokerError as e:
                error = e
        raise error

    def _spawn(self) -> Self:
        assert self.spec.template is not None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        probe_port = free_port() if "{plain_port}" in self.spec.template else self.port
        command = (self.spec.template.replace("{port}", str(self.port))
                   .replace("{plain_port}", str(probe_port))
                   .replace("{controller_port}", str(free_port()))
                   .replace("{data_dir}", str(self.data_dir)))
        with open(self.log_path, "wb") as log:
            spawned_at = time.perf_counter()
            self.process = subprocess.Popen(shlex.split(command), stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = spawned_at + self.ready_timeout
        while not wire.metadata_answers(self.host, probe_port, 1.0):
            if self.process.poll() is not None or time.perf_counter() > deadline:
                self.stop()
                raise BrokerError(f"{self.spec.name} did not become ready:\n{self.log_tail()}")
            time.sleep(_READY_POLL_S)
        if self.process.poll() is not None:  # what answered is another process on the same port
            self.stop()
            raise BrokerError(f"{self.spec.name} exited at start:\n{self.log_tail()}")
        self.start_to_ready_ms = (time.perf_counter() - spawned_at) * 1000
        return self

    def alive(self) -> bool:
        if self.process is None:
            return wire.metadata_answers(self.host, self.port, 5.0)
        return self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to the broker's own session (also when the command's first process has
        exited: what it started may still run), SIGKILL if it has not stopped in time."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def memory(self) -> dict[str, float] | None:
        """RSS and peak RSS (VmHWM) in MB, summed over the broker's process tree."""
        if self.pid is None:
            return None
        rss = peak = 0
        for pid in _process_tree(self.pid):
            status = _read(f"/proc/{pid}/status")
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            rss += int(fields.get("VmRSS", "0 kB").split()[0])
            peak += int(fields.get("VmHWM", "0 kB").split()[0])
        return {"rss_mb": rss * 1024 / 1e6, "peak_rss_mb": peak * 1024 / 1e6}

    def open_files(self) -> int | None:
        """File descriptors open in the broker's process tree (sockets included)."""
        if self.pid is None:
            return None
        total = 0
        for pid in _process_tree(self.pid):
            try:
                total += len(os.listdir(f"/proc/{pid}/fd"))
            except OSError:  # the process has just exited
                pass
        return total

    def cpu_seconds(self) -> float | None:
        """User plus system CPU time of the broker's process tree so far."""
        if self.pid is None:
            return None
        ticks = 0
        for pid in _process_tree(self.pid):
            fields = _read(f"/proc/{pid}/stat").rsplit(")", 1)[-1].split()
            if not fields:
                continue
            ticks += int(fields[11]) + int(fields[12])  # utime and stime, fields 14 and 15 of stat
        return ticks / _TICKS

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:  # the process has just exited
        return ""


def _process_tree(pid: int) -> list[int]:
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            pending += [int(child) for child in _read(str(task)).split()]
    return tree
