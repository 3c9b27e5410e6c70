"""The active controller's write path, as Kafka's QuorumController runs it: one decision
at a time, each against the image of everything committed before it, and the answer
given only once its records are committed. Two concurrent CreateTopics of one name
therefore cannot both succeed, and a client never hears of a change that a controller
failover could still lose."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import anyio

from ..clock import Clock
from ..metadata.brokers import BrokerLifecycle, Endpoint, HeartbeatAnswer, Registered
from ..metadata.controller import Controller
from ..metadata.image import MetadataImage
from ..metadata.manager import MetadataManager
from ..metadata.records import BrokerRegistrationChangeRecord

log = logging.getLogger(__name__)

T = TypeVar("T")
Decision = Callable[[MetadataImage], tuple[T, list[Any]]]


class ControllerService:
    def __init__(self, metadata: MetadataManager, controller: Controller, lifecycle: BrokerLifecycle, clock: Clock) -> None:
        self.metadata = metadata
        self.controller = controller
        self.lifecycle = lifecycle
        self.clock = clock
        self._lock = anyio.Lock()
        self._deadline_changed = anyio.Event()
        lifecycle.activate(clock.monotonic_ms())

    async def write(self, decide: Decision[T]) -> T:
        """Runs `decide` on the committed image and commits the records it returns."""
        async with self._lock:
            result, records = decide(self.metadata.image)
            await self.metadata.commit(records)
            return result

    async def register_broker(self, broker_id: int, incarnation_id: uuid.UUID, endpoint: Endpoint, rack: str | None) -> Registered:
        now = self.clock.monotonic_ms()
        # The broker epoch is the offset of its registration record: where the next write starts.
        registered = await self.write(lambda image: self.lifecycle.register(
            image, now, self.metadata.quorum.end_offset, broker_id, incarnation_id, endpoint, rack))
        self._deadline_changed.set()
        return registered

    async def broker_heartbeat(
        self, broker_id: int, broker_epoch: int, metadata_offset: int, want_fence: bool, want_shut_down: bool,
    ) -> HeartbeatAnswer:
        now = self.clock.monotonic_ms()
        answer = await self.write(lambda image: self.lifecycle.heartbeat(
            image, now, broker_id, broker_epoch, metadata_offset, want_fence, want_shut_down))
        self._deadline_changed.set()
        return answer

    async def reserve_producer_ids(self, broker_id: int, broker_epoch: int, size: int) -> int:
        """The first id of a block of `size` producer ids reserved for the broker (AllocateProducerIds)."""
        return await self.write(lambda image: self.controller.reserve_producer_ids(image, broker_id, broker_epoch, size))

    async def fence_silent_brokers(self) -> None:
        """Fences each broker whose session runs out, for as long as this controller runs."""
        while True:
            self._deadline_changed = anyio.Event()
            deadline = self.lifecycle.next_deadline(self.metadata.image)
            delay = None if deadline is None else max(0, deadline - self.clock.monotonic_ms()) / 1000
            with anyio.move_on_after(delay):
                await self._deadline_changed.wait()
            now = self.clock.monotonic_ms()
            fenced = await self.write(functools.partial(self._expire, now=now))
            if fenced:
                log.warning("Fenced broker(s) %s: no heartbeat for %d ms", fenced, self.lifecycle.session_timeout_ms)

    def _expire(self, image: MetadataImage, now: int) -> tuple[list[int], list[Any]]:
        records = self.lifecycle.expire(image, now)
        return [r.broker_id for r in records if isinstance(r, BrokerRegistrationChangeRecord)], records
