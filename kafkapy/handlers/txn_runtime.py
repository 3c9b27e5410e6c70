"""The transaction coordinator's shell: a coordinator runtime over `__transaction_state`
that also writes the transaction markers the coordinator asks for, into every
partition of the transaction, then tells the coordinator they are written."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ..config import BrokerConfig
from ..coordinator.transaction_coordinator import CONSUMER_OFFSETS_TOPIC, MarkerRequest, TxnResult
from ..log.partition import LogError
from ..wire.records import CONTROL_ABORT, CONTROL_COMMIT, encode_control_batch
from .coordinator_runtime import CoordinatorRuntime, InternalTopic

log = logging.getLogger(__name__)


def _transaction_state_configs(config: BrokerConfig, factor: int) -> dict[str, str]:
    return {
        "cleanup.policy": "compact",
        "compression.type": "uncompressed",
        "min.insync.replicas": str(min(config.int("transaction.state.log.min.isr"), factor)),
        "segment.bytes": str(config.int("transaction.state.log.segment.bytes")),
        "unclean.leader.election.enable": "false",
    }


TRANSACTION_STATE = InternalTopic(
    "__transaction_state", "transaction.state.log.num.partitions", "transaction.state.log.replication.factor",
    _transaction_state_configs,
)

# Called for each marker written into __consumer_offsets: (partition, producer id, commit).
OffsetsMarkerHook = Callable[[int, int, bool], Awaitable[None]]


class TransactionRuntime(CoordinatorRuntime):
    offsets_marker_written: OffsetsMarkerHook | None = None

    async def apply(self, result: TxnResult) -> None:  # type: ignore[override]
        await self.append(result.records)
        self.deliver(result.replies)
        for marker in result.markers:
            await self.write_markers(marker)
            await self.apply(self.coordinator.markers_written(marker))

    async def write_markers(self, marker: MarkerRequest) -> None:
        now = self.replicas.clock.wall_ms()
        control = CONTROL_COMMIT if marker.commit else CONTROL_ABORT
        for topic, partition in marker.partitions:
            partition_log = self.replicas.get(topic, partition)
            if partition_log is None:
                # The topic went away during the transaction: there is nothing to mark.
                continue
            batch = encode_control_batch(
                control, offset=partition_log.next_offset, timestamp=now, producer_id=marker.producer_id,
                producer_epoch=marker.producer_epoch, coordinator_epoch=marker.coordinator_epoch,
            )
            try:
                await self.replicas.append(topic, partition, partition_log, batch, from_client=False)
            except LogError as e:
                log.warning("Marker for %s of %s-%d refused: %s", marker.transactional_id, topic, partition, e.message)
                continue
            if topic == CONSUMER_OFFSETS_TOPIC and self.offsets_marker_written is not None:
                await self.offsets_marker_written(partition, marker.producer_id, marker.commit)
