"""The partitions this node hosts: opens and deletes their logs as the metadata image
changes, appends and moves the high watermark, wakes waiting fetches, and runs fsyncs
in a worker thread so that one partition's flush never stalls the event loop."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import anyio
import anyio.to_thread

from ..clock import Clock
from ..config import BrokerConfig, effective_topic_configs
from ..log.config import LogConfig
from ..log.manager import LogManager, TopicPartition
from ..log.partition import AppendResult, PartitionLog
from ..metadata.image import MetadataImage


class ReplicaManager:
    def __init__(self, logs: LogManager, config: BrokerConfig, clock: Clock, node_id: int) -> None:
        self.logs = logs
        self.config = config
        self.clock = clock
        self.node_id = node_id
        self._waiters: dict[TopicPartition, set[anyio.Event]] = defaultdict(set)
        self._flush_locks: dict[TopicPartition, anyio.Lock] = defaultdict(anyio.Lock)

    def broker_config(self, image: MetadataImage) -> BrokerConfig:
        """The static configuration under the image's dynamic broker configs."""
        return self.config.with_dynamic(*image.dynamic_broker_configs(self.node_id))

    def log_config(self, image: MetadataImage, topic: str) -> LogConfig:
        return LogConfig.from_topic_configs(effective_topic_configs(image.topic_configs(topic), self.broker_config(image)))

    # Following the metadata image

    def load(self, image: MetadataImage) -> None:
        """Opens (recovering as needed) every hosted partition; deletes what no topic owns."""
        wanted = set(self._hosted(image))
        now = self.clock.wall_ms()
        for tp in self.logs.existing() - wanted:
            self.logs.delete(tp, now, 0)
        self.logs.remove_deleted(now)
        self.on_metadata(MetadataImage(), image)

    def _hosted(self, image: MetadataImage) -> Iterable[TopicPartition]:
        for topic in image.topics.values():
            for p in topic.partitions.values():
                if self.node_id in p.replicas:
                    yield TopicPartition(topic.name, p.partition_id)

    def on_metadata(self, old: MetadataImage, new: MetadataImage) -> None:
        now = self.clock.wall_ms()
        for topic_id, name in old.topic_names.items():
            if topic_id not in new.topic_names:
                delay = self.log_config(old, name).file_delete_delay_ms
                for partition in old.topics[name].partitions:
                    tp = TopicPartition(name, partition)
                    self.logs.delete(tp, now, delay)
                    self.notify(tp)
        brokers_changed = old.dynamic_broker_configs(self.node_id) != new.dynamic_broker_configs(self.node_id)
        for topic in new.topics.values():
            config = self.log_config(new, topic.name)
            config_changed = brokers_changed or old.topic_configs(topic.name) != new.topic_configs(topic.name)
            for p in topic.partitions.values():
                if self.node_id not in p.replicas:
                    continue
                tp = TopicPartition(topic.name, p.partition_id)
                log = self.logs.get(tp)
                if log is None:
                    log = self.logs.open(tp, config, now, topic.topic_id)
                elif config_changed:
                    log.config = config
                log.leader_epoch = p.leader_epoch
                log.high_watermark = log.next_offset

    # Serving

    def get(self, topic: str, partition: int) -> PartitionLog | None:
        return self.logs.get(TopicPartition(topic, partition))

    async def append(self, topic: str, partition: int, log: PartitionLog, records: bytes, from_client: bool = True) -> AppendResult:
        now = self.clock.wall_ms()
        result = log.append(records, now, from_client=from_client)
        # The only replica is in sync at once: everything appended is committed.
        log.high_watermark = log.next_offset
        tp = TopicPartition(topic, partition)
        self.notify(tp)
        if log.needs_flush(now):
            await self.flush(tp, log, result.last_offset + 1)
        return result

    async def flush(self, tp: TopicPartition, log: PartitionLog, through: int) -> None:
        """fsyncs the log at least up to offset `through`; concurrent callers share fsyncs."""
        async with self._flush_locks[tp]:
            if log.recovery_point < through:
                await anyio.to_thread.run_sync(log.flush, self.clock.wall_ms())

    async def flush_due(self) -> None:
        """Time-based flushes (flush.ms), off the event loop as the append path's are;
        called periodically by the server."""
        now = self.clock.wall_ms()
        for tp, log in list(self.logs.logs.items()):
            if log.needs_flush(now):
                await self.flush(tp, log, log.next_offset)

    def notify(self, tp: TopicPartition) -> None:
        waiters = self._waiters.pop(tp, None)
        if waiters:
            for event in waiters:
                event.set()

    def wake_all(self) -> None:
        """Ends every wait at once (the broker is stopping)."""
        for tp in list(self._waiters):
            self.notify(tp)

    async def wait_for_append(self, tps: Iterable[TopicPartition], timeout_s: float) -> None:
        """Returns when any of the partitions gets new data (or is deleted), or at the timeout."""
        event = anyio.Event()
        tps = list(tps)
        for tp in tps:
            self._waiters[tp].add(event)
        try:
            with anyio.move_on_after(timeout_s):
                await event.wait()
        finally:
            for tp in tps:
                waiters = self._waiters.get(tp)
                if waiters is not None:
                    waiters.discard(event)
                    if not waiters:
                        del self._waiters[tp]
