"""Runs a node (a broker, or a controller-only node) for as long as wanted, restarting it
on request with the same data, port, faults and clock; and serves the fault-injection
control channel beside it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from ..clock import Clock, FakeClock, SystemClock
from ..config import BrokerConfig
from ..handlers.faults import Faults
from .broker import BrokerServer
from .controller_node import NodeServer, server_for

if TYPE_CHECKING:
    from .control import ControlChannel

log = logging.getLogger(__name__)


class Supervisor:
    def __init__(self, config: BrokerConfig, clock: Clock | None = None) -> None:
        if clock is None:
            clock = FakeClock() if config.get("kafkapy.clock") == "manual" else SystemClock()
        self.config = config
        self.clock = clock
        self.faults = Faults(clock.monotonic_ms)
        self.server: NodeServer | None = None
        self.control: ControlChannel | None = None
        self.console_url: str | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._stopping = False
        self._wake = anyio.Event()  # stop or restart asked for
        self._restarted: list[anyio.Event] = []

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tg:
            control_port = self.config.int("kafkapy.control.port")
            if control_port >= 0:
                # Imported here: only a node started with a control port (in tests) serves it.
                from .control import ControlChannel

                token = self.config.get("kafkapy.control.token")
                self.control = ControlChannel(self, control_port, str(token) if token else None)
                await tg.start(self.control.serve)
            first = True
            while not self._stopping:
                self.server = server_for(self.config, self.clock, self.faults)
                async with anyio.create_task_group() as broker_tg:
                    await broker_tg.start(self.server.run)
                    if first:
                        # Restarts keep the ports that clients already know, and every
                        # other listener (a controller's, not bound) as configured: the
                        # restarted config is checked again, against all of them.
                        ports = {b.name: b.port for b in self.server.bound}
                        listeners = [f"{lst.name}://{lst.host}:{ports.get(lst.name, lst.port)}" for lst in self.server.listeners]
                        self.config = self.config.with_overrides(listeners=",".join(listeners))
                        self._task_group = tg
                        console_port = self.config.int("kafkapy.console.port")
                        if console_port >= 0:
                            await self.open_console(console_port)
                        task_status.started()
                        first = False
                    for done in self._restarted:
                        done.set()
                    self._restarted = []
                    await self._wake.wait()
                    self._wake = anyio.Event()
                    self.server.stop()
                if not self._stopping:
                    log.info("Restarting the broker")
            tg.cancel_scope.cancel()

    async def open_console(self, port: int = 0) -> str:
        """Serves the web console beside the broker (once: later calls give its address)."""
        if self.console_url is None:
            assert self._task_group is not None and isinstance(self.server, BrokerServer), "the broker is not serving"
            # Imported here: only a broker asked for its console loads the web stack.
            from ..console.serving import serve_beside_broker
            from ..listener_config import console_listener

            name = console_listener(self.config).name
            bound = next(b for b in self.server.bound if b.name == name)
            host = bound.host if bound.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
            self.console_url = await self._task_group.start(serve_beside_broker, f"{host}:{bound.port}", port)
        return self.console_url

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def restart(self) -> None:
        """Stops the broker gracefully and starts it again; returns once it serves."""
        done = anyio.Event()
        self._restarted.append(done)
        self._wake.set()
        await done.wait()

    def advance_clock(self, ms: int) -> None:
        """Moves a manual clock forward and lets the coordinators act on it at once."""
        if not isinstance(self.clock, FakeClock):
            raise TypeError("the broker's clock is the system clock; start it with kafkapy.clock=manual")
        self.clock.advance(ms)
        if isinstance(self.server, BrokerServer) and self.server.broker is not None:
            self.server.broker.groups.wake()
            self.server.broker.transactions.wake()
