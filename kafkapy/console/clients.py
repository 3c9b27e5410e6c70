"""The console's clients to the cluster. kafkapy.client is blocking and serves one caller
at a time, so each piece of work borrows a client from a small pool and runs in a worker
thread: nothing blocks the event loop, and connections are reused between pages."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread

from ..client import BrokerUnreachable, Client, ClientSecurity

T = TypeVar("T")
# Idle clients kept for the next page; more run at once when pages are asked at once.
IDLE_CLIENTS = 4


class ClientPool:
    def __init__(self, bootstrap: str, security: ClientSecurity | None = None, timeout: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.security = security
        self.timeout = timeout
        self._idle: list[Client] = []
        self._lock = threading.Lock()

    def new_client(self) -> Client:
        return Client(self.bootstrap, client_id="kafkapy-console", timeout=self.timeout, security=self.security)

    async def run(self, work: Callable[[Client], T]) -> T:
        """work(client) in a worker thread, with a client of the pool."""
        return await anyio.to_thread.run_sync(self._run, work)

    def _run(self, work: Callable[[Client], T]) -> T:
        with self._lock:
            client = self._idle.pop() if self._idle else self.new_client()
        try:
            result = work(client)
        except BrokerUnreachable:
            client.close()  # its connections may be broken: the next page starts afresh
            raise
        except BaseException:
            self._give_back(client)
            raise
        self._give_back(client)
        return result

    def _give_back(self, client: Client) -> None:
        with self._lock:
            if len(self._idle) < IDLE_CLIENTS:
                self._idle.append(client)
                return
        client.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for client in idle:
            client.close()
