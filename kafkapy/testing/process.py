"""A kafkapy broker in its own process, for tests that need a real process: restarts,
kill -9, several clients over real sockets. Binds 127.0.0.1 only, on a port the
operating system picks the first time and keeps across restarts."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from ..server.meta_properties import format_storage, random_cluster_id

_READY = re.compile(r"started, listening on \w+://[^:]+:(\d+)")
_CONTROL = re.compile(r"Control channel on (http://127\.0\.0\.1:\d+) token (\S+)")


class BrokerProcess:
    def __init__(self, data_dir: str | Path, overrides: Mapping[str, object] | None = None, start_timeout: float = 30.0,
                 preexec_fn: Callable[[], object] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.overrides = dict(overrides or {})
        self.start_timeout = start_timeout
        self.preexec_fn = preexec_fn  # run in the child before kafkapy starts: resource limits, say
        self.port = 0
        self.control_url = ""
        self.control_token = str(self.overrides.get("kafkapy.control.token", ""))  # printed at start if not set
        self.process: subprocess.Popen[str] | None = None
        self._output: list[str] = []
        self._lock = threading.Lock()
        self._ready = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None

    @property
    def output(self) -> str:
        with self._lock:
            return "".join(self._output)

    def start(self) -> BrokerProcess:
        args = [sys.executable, "-m", "kafkapy", "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "--override", f"log.dirs={self.data_dir}"]
        for key, value in self.overrides.items():
            args += ["--override", f"{key}={value}"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=self.preexec_fn)
        self._ready = False
        ready = threading.Event()
        threading.Thread(target=self._drain, args=(self.process, ready), daemon=True).start()
        # Ready is also set when the output ends: a process that exits may not be reaped yet.
        if not ready.wait(self.start_timeout) or not self._ready or self.process.poll() is not None:
            self.kill()
            raise RuntimeError(f"kafkapy did not start:\n{self.output}")
        return self

    def _drain(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            with self._lock:
                self._output.append(line)
            if control := _CONTROL.search(line):
                self.control_url = control.group(1)
                if not self.control_token:
                    self.control_token = control.group(2)
            match = _READY.search(line)
            if match and not ready.is_set():
                self.port = int(match.group(1))
                self._ready = True
                ready.set()
        ready.set()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the graceful stop; returns the exit status."""
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"kafkapy did not stop within {timeout}s:\n{self.output}") from None
        finally:
            self.process = None

    def kill(self) -> None:
        """kill -9: no flush, no clean-shutdown marker."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def restart(self) -> BrokerProcess:
        self.stop()
        return self.start()

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.stop()


T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, message: str = "condition") -> T:
    """Polls predicate until it returns a truthy value, or fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


__all__ = ["BrokerProcess", "wait_until"]


def cluster_processes(root: Path, nodes: int = 3, overrides: Mapping[str, object] | None = None) -> list[BrokerProcess]:
    """`nodes` combined kafkapy processes forming one cluster on 127.0.0.1, their storage
    formatted with one cluster id, not started (`start_all`)."""
    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    ids = range(1, nodes + 1)
    ports = {i: (free_port(), free_port()) for i in ids}
    voters = ",".join(f"{i}@127.0.0.1:{controller}" for i, (_, controller) in ports.items())
    cluster_id = random_cluster_id()
    processes = []
    for i, (client, controller) in ports.items():
        data = root / f"node-{i}"
        format_storage([data], i, cluster_id)
        process = BrokerProcess(data, {
            "node.id": i, "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{controller}", **(overrides or {}),
        })
        process.port = client
        processes.append(process)
    return processes


def start_all(processes: list[BrokerProcess]) -> None:
    """Starts them together: a cluster member reports ready only once the quorum has formed."""
    errors: list[BaseException] = []

    def start(process: BrokerProcess) -> None:
        try:
            process.start()
        except BaseException as e:  # reported below, after every start has returned
            errors.append(e)

    threads = [threading.Thread(target=start, args=(p,)) for p in processes if p.process is None]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        for process in processes:
            process.kill()
        raise errors[0]
