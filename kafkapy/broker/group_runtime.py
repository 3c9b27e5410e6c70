"""The group coordinator's shell: a coordinator runtime over `__consumer_offsets` that
also tells the coordinator of the cluster's topics, which consumer groups subscribe to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..clock import Clock
from ..config import BrokerConfig
from ..metadata.image import MetadataImage
from .coordinator_runtime import CoordinatorRuntime, InternalTopic

if TYPE_CHECKING:
    from ..coordinator.group_coordinator import GroupCoordinator


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


def new_group_coordinator(config: BrokerConfig, clock: Clock, image: MetadataImage) -> GroupCoordinator:
    """The group coordinator over the partitions of __consumer_offsets (as many as the
    broker config creates it with, until it exists)."""
    # Imported here, on first use: the group coordinator, its protocols and its record
    # schemas are about a fifth of a broker's imports, and a broker that no consumer group
    # uses never needs them.
    from ..coordinator.group_coordinator import GroupCoordinator

    topic = image.topics.get(CONSUMER_OFFSETS.name)
    partitions = len(topic.partitions) if topic else config.int(CONSUMER_OFFSETS.partitions_key)
    return GroupCoordinator(config, clock, partitions)


class GroupRuntime(CoordinatorRuntime):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(CONSUMER_OFFSETS, *args, **kwargs)
        self.metadata.listeners.append(lambda _old, new: self._tell_topics(new))

    def _coordinator_made(self) -> None:
        self._tell_topics(self.metadata.image)

    async def complete_transaction(self, partition: int, producer_id: int, commit: bool) -> None:
        """A transaction's marker was appended to the partition here: its offsets there are
        committed, or dropped. While the partition loads, its load reads the marker."""
        if self.is_active(partition):
            await self.apply(self.coordinator.complete_transaction(partition, producer_id, commit))

    def _tell_topics(self, image: MetadataImage) -> None:
        """Consumer groups resolve their subscriptions against the cluster's topics."""
        if self._coordinator is not None:
            self._coordinator.on_topics_changed({name: (t.topic_id, len(t.partitions)) for name, t in image.topics.items()})
