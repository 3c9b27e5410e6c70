"""The transaction coordinator's shell: a coordinator runtime over `__transaction_state`
that hands the markers the coordinator asks for to the marker channel, which writes
them into every partition of the transaction at its leader, and tells the coordinator
once all are written. The coordinator epoch of each partition it leads here follows
the partition's leader epoch."""

from __future__ import annotations

from typing import Any

from ..config import BrokerConfig
from ..coordinator.transaction_coordinator import MarkerRequest, TxnResult
from ..metadata.image import MetadataImage
from .coordinator_runtime import CoordinatorRuntime, InternalTopic
from .txn_marker_channel import TxnMarkerChannel


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


class TransactionRuntime(CoordinatorRuntime):
    def __init__(self, *args: Any, markers: TxnMarkerChannel, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.markers = markers
        markers.completed = self._markers_written
        self._track_coordinator_epochs(self.metadata.image)
        self.metadata.listeners.append(lambda _old, new: self._track_coordinator_epochs(new))

    def _track_coordinator_epochs(self, image: MetadataImage) -> None:
        topic = image.topics.get(self.topic.name)
        for partition in topic.partitions.values() if topic is not None else ():
            if partition.leader == self.replicas.node_id:
                self.coordinator.set_coordinator_epoch(partition.partition_id, partition.leader_epoch)

    async def apply(self, result: TxnResult) -> None:  # type: ignore[override]
        await self.append(result.records)
        self.deliver(result.replies)
        for marker in result.markers:
            await self.markers.send(marker)

    async def _markers_written(self, marker: MarkerRequest) -> None:
        await self.apply(self.coordinator.markers_written(marker))
