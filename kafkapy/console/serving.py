"""Serving the console with uvicorn on 127.0.0.1: as `kafkapy console`, or beside a
kafkapy broker (kafkapy.console.port) on the broker's own event loop, where it still is
a client of the broker's listener like any other."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator

import anyio
import anyio.abc
import uvicorn

from .app import create_app

log = logging.getLogger(__name__)
# Open pages (a live tail) get this long to finish when the console stops.
GRACEFUL_SHUTDOWN_S = 2


def bind_local(port: int) -> tuple[socket.socket, str]:
    """A listening socket on 127.0.0.1 and the console's address there. Bound here, not by
    uvicorn, so that port 0 can be asked for and the port the system chose told."""
    listener = socket.create_server(("127.0.0.1", port))
    return listener, f"http://127.0.0.1:{listener.getsockname()[1]}"


class _ServerInBroker(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The broker stops on SIGTERM and SIGINT by its own handlers; uvicorn's would take them over.
        yield


async def serve_beside_broker(bootstrap: str, port: int, *, task_status: anyio.abc.TaskStatus[str]) -> None:
    """Serves the console of the broker at `bootstrap` until cancelled; starts with its address."""
    listener, url = bind_local(port)
    # No log_config: uvicorn would reconfigure the logging of the process it runs in.
    config = uvicorn.Config(create_app(bootstrap), log_config=None, access_log=False,
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    server = _ServerInBroker(config)

    async def serve(stop_waiting: anyio.CancelScope) -> None:
        # Shielded: when the broker stops, uvicorn closes its connections and the socket itself.
        with anyio.CancelScope(shield=True):
            await server.serve(sockets=[listener])
        stop_waiting.cancel()

    log.info("kafkapy console: serving %s/ for the cluster at %s", url, bootstrap)
    async with anyio.create_task_group() as tg:
        tg.start_soon(serve, tg.cancel_scope)
        task_status.started(url)
        try:
            await anyio.sleep_forever()
        finally:
            server.should_exit = True
