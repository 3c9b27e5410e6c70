"""The shell around a sans-IO coordinator: creates and loads its internal topic,
appends the records the coordinator asks for, then delivers its replies, and fires
its timers. The group and transaction coordinators both run in one of these."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
from kio.schema.errors import ErrorCode

from ..config import BrokerConfig
from ..metadata.controller import NewTopic
from ..metadata.manager import MetadataManager
from ..wire.records import NO_PRODUCER_ID, Record, decode_records, encode_batch, read_marker
from .controller_channel import ControllerRouter, ControllerUnavailable
from .replica_manager import ReplicaManager

log = logging.getLogger(__name__)


class Pending:
    """A reply the coordinator gives now or later (a parked JoinGroup, an EndTxn)."""

    def __init__(self) -> None:
        self._event = anyio.Event()
        self.value: Any = None

    def set(self, value: Any) -> None:
        self.value = value
        self._event.set()

    async def wait(self) -> Any:
        await self._event.wait()
        return self.value


class CoordinatorResult(Protocol):
    records: list[tuple[int, bytes, bytes | None]]
    replies: list[tuple[Any, dict[str, Any]]]
    transactional: tuple[int, int] | None  # (producer id, producer epoch) of transactional records


class Coordinator(Protocol):
    """A coordinator whose topic holds transactional batches (the group coordinator's)
    also takes `replay(..., producer_id=)` and `replay_end_transaction`."""

    def partition_for(self, key: str) -> int: ...
    def replay(self, partition: int, key: bytes, value: bytes | None) -> None: ...
    def tick(self) -> Any: ...
    def next_deadline(self) -> int | None: ...


@dataclass(frozen=True)
class InternalTopic:
    """How Kafka creates a coordinator's topic: its name, the broker keys giving its
    partition count and replication factor, and its topic configs."""

    name: str
    partitions_key: str
    replication_key: str
    configs: Callable[[BrokerConfig, int], dict[str, str]]  # (broker config, replication factor) -> topic configs


class CoordinatorRuntime:
    def __init__(
        self, topic: InternalTopic, config: BrokerConfig, coordinator: Any, metadata: MetadataManager,
        controller: ControllerRouter, replicas: ReplicaManager,
    ) -> None:
        self.topic = topic
        self.config = config
        self.coordinator = coordinator
        self.metadata = metadata
        self.controller = controller
        self.replicas = replicas
        self._timers_changed = anyio.Event()

    def topic_ready(self) -> bool:
        return self.topic.name in self.metadata.image.topics

    async def ensure_topic(self) -> None:
        """Creates the internal topic on first use, as Kafka does when a coordinator is looked for."""
        if self.topic_ready():
            return

        factor = self.config.int(self.topic.replication_key)
        if len(self.config.quorum_voters) <= 1:
            # A quorum of one voter (a single node above all) serves out of the box with
            # Kafka's default of 3: the factor is capped by the brokers registered. A cluster
            # of several voters waits for enough live brokers, as Kafka does.
            factor = min(factor, max(len(self.metadata.image.brokers), 1))
        configs = self.topic.configs(self.config, factor)
        new = NewTopic(self.topic.name, self.config.int(self.topic.partitions_key), factor, configs=configs)
        try:
            results = await self.controller.create_topics([new])
        except ControllerUnavailable as e:
            log.warning("Cannot create %s yet: %s", self.topic.name, e)
            return
        if results[0].error == ErrorCode.invalid_replication_factor:
            log.info("Cannot create %s yet: %s", self.topic.name, results[0].message)
        elif results[0].error not in (ErrorCode.none, ErrorCode.topic_already_exists):
            log.error("Cannot create %s: %s", self.topic.name, results[0].message)

    async def coordinator_of(self, key: str) -> int | None:
        """The broker that coordinates `key`: the leader of its partition of the internal
        topic (created on first use), or None while it has none."""
        await self.ensure_topic()
        topic = self.metadata.image.topics.get(self.topic.name)
        partition = topic.partitions.get(self.coordinator.partition_for(key)) if topic else None
        return partition.leader if partition is not None and partition.leader >= 0 else None

    async def coordinator_error(self, key: str) -> ErrorCode | None:
        """Why this broker cannot coordinate `key` now, as Kafka would say it. The internal
        topic is created on first use."""
        await self.ensure_topic()
        if not self.topic_ready():
            return ErrorCode.coordinator_not_available
        partition = self.metadata.image.topics[self.topic.name].partitions.get(self.coordinator.partition_for(key))
        if partition is None or partition.leader != self.replicas.node_id:
            return ErrorCode.not_coordinator
        return None

    def load(self) -> None:
        """Replays the internal topic into the coordinator (at startup, before serving)."""
        topic = self.metadata.image.topics.get(self.topic.name)
        if topic is None:
            return
        count = 0
        for partition in topic.partitions:
            partition_log = self.replicas.get(self.topic.name, partition)
            if partition_log is None:
                continue
            for header, batch in partition_log.iter_batches(partition_log.log_start_offset):
                if header.is_control:
                    marker = read_marker(batch, header)
                    if marker is not None:
                        aborted, _ = marker
                        self.coordinator.replay_end_transaction(partition, header.producer_id, not aborted)
                    continue
                for record in decode_records(batch, header):
                    if record.key is None:
                        continue
                    if header.is_transactional:
                        self.coordinator.replay(partition, record.key, record.value, producer_id=header.producer_id)
                    else:
                        self.coordinator.replay(partition, record.key, record.value)
                    count += 1
        log.info("Loaded %d records of %s", count, self.topic.name)

    async def call(self, operation: Callable[[Pending], Any]) -> Any:
        """Runs one coordinator operation and waits for its reply."""
        token = Pending()
        await self.apply(operation(token))
        return await token.wait()

    async def apply(self, result: CoordinatorResult) -> None:
        """Makes the result's records durable, then delivers its replies. Transactional
        records are replayed into the coordinator once appended; if the log refuses them
        (a fenced producer), the LogError is raised and nothing is replied."""
        await self.append(result.records, result.transactional)
        self.deliver(result.replies)

    async def append(
        self, records: list[tuple[int, bytes, bytes | None]], transactional: tuple[int, int] | None = None,
    ) -> None:
        """Appends records, one batch per partition; `transactional`: (producer id, epoch)."""
        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = defaultdict(list)
        for partition, key, value in records:
            by_partition[partition].append((key, value))
        producer_id, producer_epoch = transactional or (NO_PRODUCER_ID, -1)
        now = self.replicas.clock.wall_ms()
        for partition, partition_records in by_partition.items():
            partition_log = self.replicas.get(self.topic.name, partition)
            if partition_log is None:
                raise RuntimeError(f"{self.topic.name}-{partition} is not hosted here")
            base = partition_log.next_offset
            batch = encode_batch(
                [Record(base + i, now, k, v) for i, (k, v) in enumerate(partition_records)],
                producer_id=producer_id, producer_epoch=producer_epoch, transactional=transactional is not None,
            )
            await self.replicas.append(self.topic.name, partition, partition_log, batch, from_client=False)
            if transactional is not None:
                for key, value in partition_records:
                    self.coordinator.replay(partition, key, value, producer_id=producer_id)

    def deliver(self, replies: list[tuple[Any, dict[str, Any]]]) -> None:
        """Answers the requests; the coordinator's timers may have changed with them."""
        for token, response in replies:
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
            await self.apply(self.coordinator.tick())
            # Only now: what the tick itself changed is in the deadline read next, and a
            # wake-up it signalled must not end the next wait at once.
            self._timers_changed = anyio.Event()
