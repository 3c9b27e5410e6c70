"""The shell around the sans-IO group coordinator: creates and loads
`__consumer_offsets`, appends the records the coordinator asks for, then delivers its
replies, fires its timers, and tells it the cluster's topics as they change."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import anyio
from kio.schema.errors import ErrorCode

from ..config import BrokerConfig
from ..coordinator.group_coordinator import GroupCoordinator, Result
from ..metadata.controller import Controller, NewTopic
from ..metadata.image import MetadataImage
from ..metadata.manager import MetadataManager
from ..wire.records import Record, decode_records, encode_batch
from .replicas import ReplicaManager

log = logging.getLogger(__name__)

OFFSETS_TOPIC = "__consumer_offsets"


class Pending:
    """A reply the coordinator will give later (a parked JoinGroup, a follower's SyncGroup)."""

    def __init__(self) -> None:
        self._event = anyio.Event()
        self.value: Any = None

    def set(self, value: Any) -> None:
        self.value = value
        self._event.set()

    async def wait(self) -> Any:
        await self._event.wait()
        return self.value


class GroupRuntime:
    def __init__(
        self, config: BrokerConfig, coordinator: GroupCoordinator, metadata: MetadataManager,
        controller: Controller, replicas: ReplicaManager,
    ) -> None:
        self.config = config
        self.coordinator = coordinator
        self.controller = controller
        self.metadata = metadata
        self.replicas = replicas
        self._timers_changed = anyio.Event()
        self._tell_topics(metadata.image)
        metadata.listeners.append(lambda _old, new: self._tell_topics(new))

    def _tell_topics(self, image: MetadataImage) -> None:
        """Consumer groups resolve their subscriptions against the cluster's topics."""
        self.coordinator.on_topics_changed({name: (t.topic_id, len(t.partitions)) for name, t in image.topics.items()})

    # The offsets topic

    def offsets_topic_ready(self) -> bool:
        """Creates __consumer_offsets on first use, as Kafka does; False if it cannot be."""
        if OFFSETS_TOPIC in self.metadata.image.topics:
            return True
        image = self.metadata.image
        factor = min(self.config.int("offsets.topic.replication.factor"), max(len(image.brokers), 1))
        topic = NewTopic(
            OFFSETS_TOPIC,
            num_partitions=self.config.int("offsets.topic.num.partitions"),
            replication_factor=factor,
            configs={
                "cleanup.policy": "compact",
                "compression.type": "producer",
                "segment.bytes": str(self.config.int("offsets.topic.segment.bytes")),
            },
        )
        results, records = self.controller.create_topics(image, [topic])
        if results[0].error:
            log.error("Cannot create %s: %s", OFFSETS_TOPIC, results[0].message)
            return False
        self.metadata.commit(records)
        return True

    def coordinator_error(self, group_id: str) -> ErrorCode | None:
        """Why this broker cannot coordinate the group now, as Kafka would say it."""
        if not self.offsets_topic_ready():
            return ErrorCode.coordinator_not_available
        topic = self.metadata.image.topics[OFFSETS_TOPIC]
        partition = topic.partitions.get(self.coordinator.partition_for(group_id))
        if partition is None or partition.leader != self.replicas.node_id:
            return ErrorCode.not_coordinator
        return None

    def load(self) -> None:
        """Replays __consumer_offsets into the coordinator (at startup, before serving)."""
        topic = self.metadata.image.topics.get(OFFSETS_TOPIC)
        if topic is None:
            return
        count = 0
        for partition in topic.partitions:
            log_ = self.replicas.get(OFFSETS_TOPIC, partition)
            if log_ is None:
                continue
            for header, batch in log_.iter_batches(log_.log_start_offset):
                if header.is_control:
                    continue
                for record in decode_records(batch, header):
                    if record.key is not None:
                        self.coordinator.replay(partition, record.key, record.value)
                        count += 1
        log.info("Loaded %d records of %s", count, OFFSETS_TOPIC)

    # Running coordinator operations

    async def call(self, operation: Callable[[Pending], Result]) -> Any:
        """Runs one coordinator operation and waits for its reply."""
        token = Pending()
        await self.apply(operation(token))
        return await token.wait()

    async def apply(self, result: Result) -> None:
        """Makes the result's records durable, then delivers its replies."""
        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = defaultdict(list)
        for partition, key, value in result.records:
            by_partition[partition].append((key, value))
        now = self.replicas.clock.wall_ms()
        for partition, records in by_partition.items():
            log_ = self.replicas.get(OFFSETS_TOPIC, partition)
            if log_ is None:
                raise RuntimeError(f"{OFFSETS_TOPIC}-{partition} is not hosted here")
            base = log_.next_offset
            batch = encode_batch([Record(base + i, now, k, v) for i, (k, v) in enumerate(records)])
            await self.replicas.append(OFFSETS_TOPIC, partition, log_, batch, from_client=False)
        for token, response in result.replies:
            token.set(response)
        self._timers_changed.set()

    def wake(self) -> None:
        """Makes the timer loop look at the coordinator's deadlines again (the clock moved)."""
        self._timers_changed.set()

    async def run_timers(self) -> None:
        """Fires the coordinator's timers when they are due, for as long as the broker runs."""
        clock = self.replicas.clock
        while True:
            deadline = self.coordinator.next_deadline()
            delay = math.inf if deadline is None else max(0, deadline - clock.monotonic_ms()) / 1000
            with anyio.move_on_after(delay):
                await self._timers_changed.wait()
            self._timers_changed = anyio.Event()
            await self.apply(self.coordinator.tick())
