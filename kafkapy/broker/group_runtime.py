"""The group coordinator's shell: a coordinator runtime over `__consumer_offsets` that
also tells the coordinator of the cluster's topics, which consumer groups subscribe to."""

from __future__ import annotations

from typing import Any

from ..config import BrokerConfig
from ..metadata.image import MetadataImage
from .coordinator_runtime import CoordinatorRuntime, InternalTopic


def _offsets_configs(config: BrokerConfig, _factor: int) -> dict[str, str]:
    return {
        "cleanup.policy": "compact",
        "compression.type": "producer",
        "segment.bytes": str(config.int("offsets.topic.segment.bytes")),
    }


CONSUMER_OFFSETS = InternalTopic(
    "__consumer_offsets", "offsets.topic.num.partitions", "offsets.topic.replication.factor", _offsets_configs,
    "offsets.commit.timeout.ms",
)


class GroupRuntime(CoordinatorRuntime):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(CONSUMER_OFFSETS, *args, **kwargs)
        self._tell_topics(self.metadata.image)
        self.metadata.listeners.append(lambda _old, new: self._tell_topics(new))

    async def complete_transaction(self, partition: int, producer_id: int, commit: bool) -> None:
        """A transaction's marker was appended to the partition here: its offsets there are
        committed, or dropped. While the partition loads, its load reads the marker."""
        if self.is_active(partition):
            await self.apply(self.coordinator.complete_transaction(partition, producer_id, commit))

    def _tell_topics(self, image: MetadataImage) -> None:
        """Consumer groups resolve their subscriptions against the cluster's topics."""
        self.coordinator.on_topics_changed({name: (t.topic_id, len(t.partitions)) for name, t in image.topics.items()})
