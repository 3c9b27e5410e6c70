"""The broker's side of its lifecycle, as Kafka's BrokerLifecycleManager runs it: register
with the active controller under a new incarnation id, heartbeat every
`broker.heartbeat.interval.ms` with how far it has replayed the metadata log until the
controller unfences it, keep heartbeating, and on a graceful stop ask for a controlled
shutdown so that its leaderships move before it goes."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Protocol

import anyio
from kio.schema.errors import ErrorCode

from ..metadata.brokers import Endpoint, HeartbeatAnswer, Registered
from .controller_channel import ControllerUnavailable

log = logging.getLogger(__name__)

_RETRY_S = 0.05


class ControllerClient(Protocol):
    """What a broker asks of the active controller: the local one, or one over the network."""

    async def register_broker(
        self, broker_id: int, incarnation_id: uuid.UUID, endpoints: tuple[Endpoint, ...], rack: str | None,
    ) -> Registered: ...

    async def broker_heartbeat(
        self, broker_id: int, broker_epoch: int, metadata_offset: int, want_fence: bool, want_shut_down: bool,
    ) -> HeartbeatAnswer: ...


class BrokerLifecycleManager:
    def __init__(
        self, broker_id: int, endpoints: tuple[Endpoint, ...], rack: str | None, controller: ControllerClient,
        metadata_offset: Callable[[], int], heartbeat_interval_ms: int,
    ) -> None:
        self.broker_id = broker_id
        self.endpoints = endpoints
        self.rack = rack
        self.controller = controller
        self.metadata_offset = metadata_offset
        self.heartbeat_interval_s = heartbeat_interval_ms / 1000
        self.incarnation_id = uuid.uuid4()
        self.broker_epoch = -1
        self.fenced = True

    async def start(self) -> None:
        """Registers, then heartbeats until the controller unfences this broker."""
        await self._register()
        while self.fenced:
            await self._heartbeat()
            if self.fenced:
                await anyio.sleep(_RETRY_S)  # catching up with the metadata log

    async def run(self) -> None:
        """Heartbeats for as long as the broker runs."""
        while True:
            await anyio.sleep(self.heartbeat_interval_s)
            await self._heartbeat()

    async def controlled_shutdown(self) -> None:
        """Asks to be shut down; returns once the controller has moved this broker's
        leaderships, or when no controller answers within a request timeout (the last
        nodes of a cluster stopping, say): then the broker stops all the same."""
        while True:
            answer = await self._heartbeat(want_shut_down=True)
            if answer.should_shut_down:
                return
            if answer.error == ErrorCode.request_timed_out:
                log.warning("Broker %d stops without a controlled shutdown: no active controller answered", self.broker_id)
                return
            await anyio.sleep(_RETRY_S)

    async def _register(self) -> None:
        while True:
            try:
                registered = await self.controller.register_broker(self.broker_id, self.incarnation_id, self.endpoints, self.rack)
            except ControllerUnavailable as e:
                log.warning("Cannot register broker %d yet: %s", self.broker_id, e)
                continue
            if registered.error == ErrorCode.none:
                self.broker_epoch = registered.broker_epoch
                log.info("Registered broker %d with epoch %d", self.broker_id, self.broker_epoch)
                return
            # Another incarnation still has a session (a duplicate id, or our own before a crash): wait it out.
            log.warning("Registration of broker %d refused (%s); retrying", self.broker_id, registered.error.name)
            await anyio.sleep(self.heartbeat_interval_s)

    async def _heartbeat(self, want_shut_down: bool = False) -> HeartbeatAnswer:
        try:
            answer = await self.controller.broker_heartbeat(
                self.broker_id, self.broker_epoch, self.metadata_offset(), False, want_shut_down)
        except ControllerUnavailable as e:
            log.warning("Heartbeat of broker %d not answered: %s", self.broker_id, e)
            return HeartbeatAnswer(ErrorCode.request_timed_out, is_fenced=self.fenced)
        if answer.error == ErrorCode.stale_broker_epoch:
            # The controller no longer knows this registration (it was replaced): register again.
            await self._register()
            return answer
        if answer.error == ErrorCode.none:
            if self.fenced and not answer.is_fenced:
                log.info("Broker %d unfenced", self.broker_id)
            self.fenced = answer.is_fenced
        return answer
