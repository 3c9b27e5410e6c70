"""The seam between a partition leader and the controller: the ISR changes a leader
proposes (Kafka's AlterPartition PartitionData) and what the controller answers. The
AlterPartitionManager that sends them is built on the controller's side of replication;
until then a broker runs without one and proposes nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from kio.schema.errors import ErrorCode


@dataclass(frozen=True)
class IsrChange:
    topic_id: uuid.UUID
    partition: int
    leader_epoch: int
    partition_epoch: int
    new_isr: tuple[int, ...]


@dataclass(frozen=True)
class IsrChangeResult:
    error: ErrorCode
    leader: int
    leader_epoch: int
    partition_epoch: int
    isr: tuple[int, ...]


class AlterPartitionSubmitter(Protocol):
    async def submit(self, change: IsrChange) -> IsrChangeResult: ...
