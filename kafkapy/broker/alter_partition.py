"""A partition leader's way to change its ISR, as Kafka's AlterPartitionManager: each
proposal goes to the active controller in an AlterPartition (v3, with the broker epoch
of every member of the new ISR), the proposals pending at the same time in one request,
at most one per partition at a time; a controller change or a top-level error is
ridden out by sending again.

The answer says what the controller decided; the leader still applies the ISR from the
metadata image once the PartitionChangeRecord commits (the two agree; the image is the
truth). Whoever waits first sends: no background task, and a waiter that gives up
leaves the others' proposals to the next one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import anyio
from kio.schema.errors import ErrorCode

from ..metadata.partitions import IsrChange, IsrChangeResult
from .controller_channel import ControllerUnavailable

__all__ = ["AlterPartitionManager", "AlterPartitionSubmitter", "IsrChange", "IsrChangeResult"]

log = logging.getLogger(__name__)

RETRY_BACKOFF_S = 0.1


class AlterPartitionSubmitter(Protocol):
    """What a partition leader needs of the manager (a fake in the replica manager's tests)."""

    async def submit(self, change: IsrChange) -> IsrChangeResult: ...


class AlterPartitionClient(Protocol):
    async def alter_partition(
        self, broker_id: int, broker_epoch: int, proposals: Sequence[tuple[IsrChange, Sequence[int]]],
    ) -> tuple[ErrorCode, list[IsrChangeResult]]: ...


@dataclass(eq=False)
class _Pending:
    change: IsrChange
    result: IsrChangeResult | None = None

    @property
    def key(self) -> tuple[uuid.UUID, int]:
        return self.change.topic_id, self.change.partition


class AlterPartitionManager:
    def __init__(
        self, controller: AlterPartitionClient, broker_id: int, broker_epoch: Callable[[], int],
        member_epoch: Callable[[int], int],
    ) -> None:
        """`broker_epoch()` is this broker's current epoch; `member_epoch(id)` that of an
        ISR member as this broker knows it (its registration in the metadata image)."""
        self.controller = controller
        self.broker_id = broker_id
        self.broker_epoch = broker_epoch
        self.member_epoch = member_epoch
        self._in_flight: dict[tuple[uuid.UUID, int], _Pending] = {}
        self._unsent: list[_Pending] = []
        self._sending = False
        self._batch_done = anyio.Event()

    async def submit(self, change: IsrChange) -> IsrChangeResult:
        pending = _Pending(change)
        if pending.key in self._in_flight:
            # As Kafka: the partition's earlier proposal must be answered first.
            return IsrChangeResult(ErrorCode.operation_not_attempted)
        self._in_flight[pending.key] = pending
        self._unsent.append(pending)
        try:
            while pending.result is None:
                if self._sending:
                    await self._batch_done.wait()
                else:
                    await self._send_unsent()
            return pending.result
        finally:
            del self._in_flight[pending.key]
            if pending in self._unsent:
                self._unsent.remove(pending)

    async def _send_unsent(self) -> None:
        batch, self._unsent = self._unsent, []
        self._sending = True
        try:
            proposals = [(p.change, tuple(self.member_epoch(b) for b in p.change.new_isr)) for p in batch]
            try:
                error, results = await self.controller.alter_partition(self.broker_id, self.broker_epoch(), proposals)
            except ControllerUnavailable as e:
                error, results = ErrorCode.not_controller, []
                log.info("AlterPartition: %s; retrying", e)
            if error == ErrorCode.none:
                for pending, result in zip(batch, results, strict=True):
                    pending.result = result
            else:
                log.info("AlterPartition answered %s; retrying %d proposal(s)", error.name, len(batch))
                await anyio.sleep(RETRY_BACKOFF_S)
        finally:
            # Whatever was not answered (a top-level error, a cancelled sender) goes again.
            self._unsent[:0] = [p for p in batch if p.result is None and self._in_flight.get(p.key) is p]
            self._sending = False
            self._batch_done.set()
            self._batch_done = anyio.Event()
