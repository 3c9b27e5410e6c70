"""The transaction coordinator's shell: a coordinator runtime over `__transaction_state`
that hands the markers the coordinator asks for to the marker channel, which writes
them into every partition of the transaction at its leader, and tells the coordinator
once all are written. The coordinator epoch of each partition it leads here follows
the partition's leader epoch. When this broker stops leading a partition, the markers
of its transactions are given up: the partition's next coordinator writes them again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode

from ..clock import Clock
from ..config import BrokerConfig
from ..coordinator.producer_ids import ProducerIdManager
from ..coordinator.txn_markers import MarkerRequest
from ..metadata.image import MetadataImage
from .coordinator_runtime import CoordinatorRuntime, InternalTopic
from .txn_marker_channel import TxnMarkerChannel

if TYPE_CHECKING:
    from ..coordinator.transaction_coordinator import TransactionCoordinator, TxnResult


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
    _transaction_state_configs, "request.timeout.ms",
)


def new_transaction_coordinator(config: BrokerConfig, clock: Clock, image: MetadataImage,
                                producer_ids: ProducerIdManager) -> TransactionCoordinator:
    """The transaction coordinator over the partitions of __transaction_state (as many as
    the broker config creates it with, until it exists)."""
    # Imported here, on first use: the coordinator, its state machine and its record
    # schemas are no part of a broker that no transactional producer uses.
    from ..coordinator.transaction_coordinator import TransactionCoordinator

    topic = image.topics.get(TRANSACTION_STATE.name)
    partitions = len(topic.partitions) if topic else config.int(TRANSACTION_STATE.partitions_key)
    return TransactionCoordinator(config, clock, partitions, producer_ids)


class TransactionRuntime(CoordinatorRuntime):
    def __init__(self, *args: Any, markers: TxnMarkerChannel, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.markers = markers
        markers.completed = self._markers_written

    def _becoming_leader(self, partition: int, leader_epoch: int) -> None:
        self.coordinator.set_coordinator_epoch(partition, leader_epoch)

    def _forget(self, partition: int, error: ErrorCode) -> None:
        for transactional_id in self.coordinator.unload(partition):
            self.markers.queue.cancel(transactional_id)

    async def commit(self, result: TxnResult, written: Any) -> bool:  # type: ignore[override]
        """Once the records are committed, the replies go, then the markers."""
        if not await super().commit(result, written):
            return False
        for marker in result.markers:
            if self._tg is None:
                await self.markers.send(marker)
            else:
                self._tg.start_soon(self.markers.send, marker)
        return True

    async def _markers_written(self, marker: MarkerRequest) -> None:
        await self.apply_in_background(self.coordinator.markers_written(marker))
