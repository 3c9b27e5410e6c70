"""The active controller's write path, as Kafka's QuorumController runs it: one decision
at a time, each against the image of everything committed before it, and the answer
given only once its records are committed. Two concurrent CreateTopics of one name
therefore cannot both succeed, and a client never hears of a change that a controller
failover could still lose."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import anyio
from kio.schema.errors import ErrorCode

from ..clock import Clock
from ..config import BrokerConfig
from ..metadata.brokers import BrokerLifecycle, Endpoint, HeartbeatAnswer, Registered
from ..metadata.controller import Controller, NewTopic, TopicResult
from ..metadata.image import MetadataImage
from ..metadata.manager import MetadataManager, MetadataQuorum
from ..metadata.partitions import ElectionResult, IsrChange, IsrChangeResult, ReplicationControl
from ..metadata.reassignments import OngoingReassignment, ReassignmentResult, Wanted, alter_reassignments, list_reassignments
from ..metadata.records import BrokerRegistrationChangeRecord

log = logging.getLogger(__name__)

_INACTIVE_RECHECK_S = 1.0

T = TypeVar("T")
Decision = Callable[[MetadataImage], tuple[T, list[Any]]]


class NotController(Exception):
    """This node is not the active controller (Kafka's NOT_CONTROLLER): ask the one named."""

    def __init__(self, controller_id: int) -> None:
        super().__init__(f"not the active controller; the active controller is {controller_id}")
        self.controller_id = controller_id




class ControllerService:
    def __init__(
        self, metadata: MetadataManager, controller: Controller, lifecycle: BrokerLifecycle,
        replication: ReplicationControl, clock: Clock,
    ) -> None:
        self.metadata = metadata
        self.controller = controller
        self.lifecycle = lifecycle
        self.replication = replication
        self.clock = clock
        self.quorum: MetadataQuorum = metadata.quorum
        self._lock = anyio.Lock()
        self._deadline_changed = anyio.Event()
        self._active_epoch: int | None = None

    @classmethod
    def from_config(cls, config: BrokerConfig, metadata: MetadataManager, clock: Clock) -> ControllerService:
        """The controller of a node with the controller role, combined or controller-only."""
        replication = ReplicationControl(config)
        lifecycle = BrokerLifecycle(config.int("broker.session.timeout.ms"), replication)
        return cls(metadata, Controller(config), lifecycle, replication, clock)

    async def run_duties(self, config: BrokerConfig) -> None:
        """What the active controller does of its own accord, for as long as the node runs:
        fencing silent brokers, and the auto leader rebalance if enabled."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.fence_silent_brokers)
            if config.bool("auto.leader.rebalance.enable"):
                tg.start_soon(self.balance_leaders, config.int("leader.imbalance.check.interval.seconds"))

    @property
    def is_active(self) -> bool:
        return self.quorum.is_caught_up_leader()

    async def write(self, decide: Decision[T]) -> T:
        """Runs `decide` on the committed image and commits the records it returns. Raises
        NotController on a node that is not (or stops being) the active controller."""
        async with self._lock:
            self._check_active()
            result, records = decide(self.metadata.image)
            await self.metadata.commit(records)
            return result

    def _check_active(self) -> None:
        if not self.quorum.is_caught_up_leader():
            raise NotController(self.quorum.leader_id)
        if self._active_epoch != self.quorum.leader_epoch:
            # Newly active: no broker has heartbeated to this controller yet.
            self._active_epoch = self.quorum.leader_epoch
            self.lifecycle.activate(self.clock.monotonic_ms())
            self._deadline_changed.set()

    async def create_topics(self, topics: list[NewTopic]) -> list[TopicResult]:
        return await self.write(lambda image: self.controller.create_topics(image, topics))

    async def register_broker(
        self, broker_id: int, incarnation_id: uuid.UUID, endpoints: tuple[Endpoint, ...], rack: str | None,
    ) -> Registered:
        now = self.clock.monotonic_ms()
        # The broker epoch is the offset of its registration record: where the next write starts.
        registered = await self.write(lambda image: self.lifecycle.register(
            image, now, self.metadata.quorum.end_offset, broker_id, incarnation_id, endpoints, rack))
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

    async def alter_partition(
        self, broker_id: int, broker_epoch: int, proposals: Sequence[tuple[IsrChange, Sequence[int]]],
    ) -> tuple[ErrorCode, list[IsrChangeResult]]:
        """A partition leader's AlterPartition: the top-level error, and a result per proposal."""
        return await self.write(lambda image: self.replication.alter_partition(image, broker_id, broker_epoch, proposals))

    async def elect_leaders(
        self, election_type: int, wanted: Sequence[tuple[str, Sequence[int]]] | None,
    ) -> list[ElectionResult]:
        return await self.write(lambda image: self.replication.elect_leaders(image, election_type, wanted))

    async def alter_reassignments(self, wanted: Sequence[Wanted], allow_replication_factor_change: bool) -> list[ReassignmentResult]:
        return await self.write(lambda image: alter_reassignments(
            self.replication, image, wanted, allow_replication_factor_change))

    async def list_reassignments(self, wanted: Sequence[tuple[str, Sequence[int]]] | None) -> list[OngoingReassignment]:
        """The reassignments in progress as of everything committed (Kafka's read event)."""
        async with self._lock:
            self._check_active()
            return list_reassignments(self.metadata.image, wanted)

    async def balance_leaders(self, interval_s: float) -> None:
        """Kafka's auto leader rebalance: every `interval_s`, while this node is the active
        controller, preferred replicas take back the leaderships the imbalance rule gives them."""
        while True:
            await anyio.sleep(interval_s)
            if not self.is_active:
                continue
            try:
                moved = await self.write(self._rebalance)
            except NotController:
                continue
            if moved:
                log.info("Moved %d leadership(s) back to preferred replicas", moved)

    def _rebalance(self, image: MetadataImage) -> tuple[int, list[Any]]:
        records = self.replication.rebalance_leaders(image)
        return len(records), list(records)

    async def fence_silent_brokers(self) -> None:
        """Fences each broker whose session runs out while this node is the active controller."""
        while True:
            self._deadline_changed = anyio.Event()
            if self.is_active:
                deadline = self.lifecycle.next_deadline(self.metadata.image)
                delay = None if deadline is None else max(0, deadline - self.clock.monotonic_ms()) / 1000
            else:
                delay = _INACTIVE_RECHECK_S  # nothing tells a follower it became active but a write
            with anyio.move_on_after(delay):
                await self._deadline_changed.wait()
            now = self.clock.monotonic_ms()
            if not self.is_active:
                continue
            try:
                fenced = await self.write(functools.partial(self._expire, now=now))
            except NotController:
                continue
            if fenced:
                log.warning("Fenced broker(s) %s: no heartbeat for %d ms", fenced, self.lifecycle.session_timeout_ms)

    def _expire(self, image: MetadataImage, now: int) -> tuple[list[int], list[Any]]:
        records = self.lifecycle.expire(image, now)
        return [r.broker_id for r in records if isinstance(r, BrokerRegistrationChangeRecord)], records
