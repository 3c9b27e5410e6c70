"""Client sessions in child processes of their own, which a scenario can kill with SIGKILL
as a crash would: group members and consume-transform-produce workers.

    python -m kafkapy.compat.child MODULE:PROGRAM CLIENT BOOTSTRAP SPEC_JSON [SECURITY_FILE]

runs PROGRAM(client, spec, channel) with CLIENT's adapter. Over the child's stdout it
sends JSON lines: events ({"records": ...}, {"rebalances": ...}, ...), answers to the
parent's commands ({"reply": ...}), and {"error": ...} if the program fails; commands come
as JSON lines on its stdin. As in the worker, file descriptor 1 is pointed at stderr first,
so that nothing a client library prints garbles the channel.
"""

from __future__ import annotations

import importlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import IO, Any, Self

from .adapters import ADAPTERS, Client, Unsupported
from .adapters.base import TIMEOUT_S, BrokerError, Record
from .security import PLAINTEXT, ClientSecurity


def _error_message(error: BaseException) -> dict[str, Any]:
    if isinstance(error, BrokerError):
        return {"code": error.code, "message": str(error)}
    if isinstance(error, Unsupported):
        return {"unsupported": str(error)}
    return {"message": f"{type(error).__name__}: {error}"}


def _error_from(message: dict[str, Any], who: str) -> Exception:
    if "code" in message:
        return BrokerError(message["code"], f"in {who}: {message['message']}")
    if "unsupported" in message:
        return Unsupported(message["unsupported"])
    return AssertionError(f"{who} failed: {message['message']}")


def record_message(r: Record) -> list[Any]:
    return [r.partition, r.offset, None if r.key is None else r.key.hex(), None if r.value is None else r.value.hex()]


def record_from(message: list[Any]) -> Record:
    partition, offset, key, value = message
    return Record(None if key is None else bytes.fromhex(key), None if value is None else bytes.fromhex(value),
                  partition=partition, offset=offset)


class Child:
    """The parent's side: the child's events as they come, commands with their replies, kill."""

    def __init__(self, program: str, client: str, bootstrap: str, spec: dict[str, Any], name: str,
                 security: ClientSecurity = PLAINTEXT) -> None:
        self.name = name
        self.events: list[dict[str, Any]] = []
        self.failure: Exception | None = None
        self._changed = threading.Condition()
        self._replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__, program, client, bootstrap, json.dumps(spec),
             *([security.source] if security.source else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            if "reply" in message:
                self._replies.put(message)
                continue
            with self._changed:
                if "error" in message:
                    self.failure = _error_from(message["error"], self.name)
                else:
                    self.events.append(message)
                self._changed.notify_all()
        with self._changed:
            self.failure = self.failure or AssertionError(f"{self.name} exited with status {self.process.wait()}")
            self._changed.notify_all()

    def check(self) -> None:
        """Raises what made the child fail or exit, if it did."""
        if self.failure is not None:
            raise self.failure

    def wait_until(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        """predicate's first truthy value, evaluated as events come; fails if the child
        fails or exits first, or after timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (value := predicate()):
                self.check()
                left = deadline - time.monotonic()
                assert left > 0, f"{self.name}: no {what} within {timeout:g}s"
                self._changed.wait(min(left, 0.5))
            return value

    def request(self, command: str, argument: Any = None) -> Any:
        """The program's answer to the command; what it raised, raised here."""
        self.check()
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"command": command, "argument": argument}) + "\n")
        self.process.stdin.flush()
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            try:
                answer = self._replies.get(timeout=0.1)
                break
            except queue.Empty:
                self.check()
                assert time.monotonic() < deadline, f"{self.name} did not answer {command} within {TIMEOUT_S:g}s"
        if "error" in answer:
            raise _error_from(answer["error"], self.name)
        return answer["reply"]

    def close(self) -> None:
        """Asks the program to close its clients and exit, and waits for it."""
        self.request("close")
        self.process.wait(TIMEOUT_S)

    def kill(self) -> None:
        """SIGKILL: the client gets no chance to say goodbye."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.kill()


class Channel:
    """The child's side: events and replies out, commands in."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self._commands: queue.Queue[tuple[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in sys.stdin:
            message = json.loads(line)
            self._commands.put((message["command"], message["argument"]))
        # The parent is gone: so is the reason to go on.
        os._exit(0)

    def emit(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message) + "\n")
        self.out.flush()

    def commands(self) -> Iterator[tuple[str, Any]]:
        """The commands received since the last call, without waiting."""
        while True:
            try:
                yield self._commands.get_nowait()
            except queue.Empty:
                return

    def answer(self, call: Callable[[], Any]) -> None:
        """Replies with call's result, or with the error it raised."""
        try:
            self.emit({"reply": call()})
        except Exception as e:  # the parent raises it in the scenario
            self.emit({"reply": None, "error": _error_message(e)})


def main(argv: list[str]) -> int:
    program, client_name, bootstrap, spec, *security_file = argv
    module, function = program.split(":")
    channel = Channel(os.fdopen(os.dup(1), "w"))
    os.dup2(2, 1)
    security = ClientSecurity.read(security_file[0]) if security_file else PLAINTEXT
    client: Client = ADAPTERS[client_name].connect(bootstrap, security)
    run = getattr(importlib.import_module(module), function)
    try:
        run(client, json.loads(spec), channel)
    except Exception as e:  # the parent's scenario reports it
        traceback.print_exc()
        channel.emit({"error": _error_message(e)})
        return 1
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
