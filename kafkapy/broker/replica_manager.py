"""The partitions this node hosts, as Kafka's ReplicaManager runs them: opens and deletes
their logs as the metadata image changes, makes this node leader or follower of each
(a sans-IO Partition per partition), appends as leader or as follower, moves the high
watermark as followers fetch, holds acks=all produces until the high watermark passes
them (the produce purgatory), wakes waiting fetches, proposes ISR changes, and runs
fsyncs in a worker thread so that one partition's flush never stalls the event loop."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import anyio
import anyio.to_thread
from kio.schema.errors import ErrorCode

from ..clock import Clock
from ..config import BrokerConfig, effective_topic_configs
from ..log.config import LogConfig
from ..log.manager import LogManager, TopicPartition, kafka_uuid
from ..log.partition import AppendResult, LogError, PartitionLog
from ..metadata.image import MetadataImage, PartitionImage
from ..replication.partition import IsrProposal, Partition, Registration, RoleChange
from .alter_partition import AlterPartitionSubmitter, IsrChange

log = logging.getLogger(__name__)


class ReplicaManager:
    def __init__(
        self, logs: LogManager, config: BrokerConfig, clock: Clock, node_id: int,
        alter_partition: AlterPartitionSubmitter | None = None,
    ) -> None:
        self.logs = logs
        self.config = config
        self.clock = clock
        self.node_id = node_id
        self.alter_partition = alter_partition
        self.lag_time_max_ms = config.int("replica.lag.time.max.ms")
        self.partitions: dict[TopicPartition, Partition] = {}
        # The partitions this node follows, with their leaders: what the replica fetchers fetch.
        self.followed: dict[TopicPartition, int] = {}
        self.followed_changed = anyio.Event()
        self._image = MetadataImage()
        # Fetches waiting for data: consumers for the high watermark, followers for the log end.
        self._waiters: dict[TopicPartition, set[anyio.Event]] = defaultdict(set)
        self._end_waiters: dict[TopicPartition, set[anyio.Event]] = defaultdict(set)
        # The produce purgatory: acks=all produces waiting for the high watermark to reach an offset.
        self._produce_waiters: dict[TopicPartition, list[tuple[int, anyio.Event]]] = defaultdict(list)
        self._proposals: list[tuple[TopicPartition, IsrProposal]] = []
        self._proposed = anyio.Event()
        self._flush_locks: dict[TopicPartition, anyio.Lock] = defaultdict(anyio.Lock)
        logs.dir_failure_listeners.append(self._on_log_dir_failure)

    def broker_config(self, image: MetadataImage) -> BrokerConfig:
        """The static configuration under the image's dynamic broker configs."""
        return self.config.with_dynamic(*image.dynamic_broker_configs(self.node_id))

    def log_config(self, image: MetadataImage, topic: str) -> LogConfig:
        return LogConfig.from_topic_configs(effective_topic_configs(image.topic_configs(topic), self.broker_config(image)))

    # Following the metadata image

    def load(self, image: MetadataImage) -> None:
        """Opens (recovering as needed) every hosted partition. As Kafka, a partition
        directory the image does not assign here, or one of an older topic of the same
        name, is stray: renamed aside and kept, never deleted, for the image may be what
        is wrong (a lost or damaged metadata log must not wipe topics)."""
        wanted = set(self._hosted(image))
        for tp in sorted(self.logs.existing()):
            on_disk = self.logs.topic_id_on_disk(tp)
            if tp in wanted and on_disk in (None, kafka_uuid(image.topics[tp.topic].topic_id)):
                continue
            directory, stray = self.logs.set_aside_stray(tp)
            why = "assigns it to no partition of this node" if tp not in wanted else f"names another topic id than {on_disk}"
            log.warning("Stray partition directory %s: the metadata %s; renamed to %s and kept, not deleted",
                        directory, why, stray)
        self.on_metadata(MetadataImage(), image)

    def _hosted(self, image: MetadataImage) -> Iterable[TopicPartition]:
        for topic in image.topics.values():
            for p in topic.partitions.values():
                if self.node_id in p.replicas:
                    yield TopicPartition(topic.name, p.partition_id)

    def on_metadata(self, old: MetadataImage, new: MetadataImage) -> None:
        self._image = new
        now = self.clock.wall_ms()
        followed_before = dict(self.followed)
        for topic_id, name in old.topic_names.items():
            if topic_id not in new.topic_names:
                delay = self.log_config(old, name).file_delete_delay_ms
                for partition in old.topics[name].partitions:
                    self._stop_hosting(TopicPartition(name, partition), now, delay)
        brokers_changed = old.dynamic_broker_configs(self.node_id) != new.dynamic_broker_configs(self.node_id)
        for topic in new.topics.values():
            config = self.log_config(new, topic.name)
            config_changed = brokers_changed or old.topic_configs(topic.name) != new.topic_configs(topic.name)
            for p in topic.partitions.values():
                tp = TopicPartition(topic.name, p.partition_id)
                if self.node_id not in p.replicas:
                    if tp in self.partitions:  # reassigned away
                        self._stop_hosting(tp, now, config.file_delete_delay_ms)
                    continue
                if tp in self.logs.offline_partitions:
                    continue  # until a restart: never recreated empty in another directory
                partition_log = self.logs.get(tp)
                if partition_log is None:
                    try:
                        partition_log = self.logs.open(tp, config, now, topic.topic_id)
                    except OSError:
                        continue  # its directory is offline now
                elif config_changed:
                    partition_log.config = config
                old_topic = old.topics.get(topic.name)
                unchanged = old_topic is not None and old_topic.partitions.get(p.partition_id) == p
                if not (unchanged and tp in self.partitions and old.brokers == new.brokers):
                    self._apply_registration(tp, partition_log, p)
        if self.followed != followed_before:
            self.followed_changed.set()
            self.followed_changed = anyio.Event()

    def _apply_registration(self, tp: TopicPartition, partition_log: PartitionLog, p: PartitionImage) -> None:
        partition = self.partitions.get(tp)
        if partition is None:
            partition = self.partitions[tp] = Partition(self.node_id, self.lag_time_max_ms, partition_log.high_watermark)
        now = self.clock.monotonic_ms()
        change = partition.apply(Registration(p.replicas, p.isr, p.leader, p.leader_epoch, p.partition_epoch),
                                 partition_log.next_offset, now)
        if change is RoleChange.BECAME_LEADER:
            partition_log.leader_epoch = p.leader_epoch
            # As Kafka's makeLeader: the new epoch begins at the log end, whether or not it writes.
            partition_log.epochs.assign(p.leader_epoch, partition_log.next_offset)
            self.followed.pop(tp, None)
        elif change is RoleChange.BECAME_FOLLOWER:
            partition_log.leader_epoch = p.leader_epoch
            if p.leader >= 0:
                self.followed[tp] = p.leader
            else:
                self.followed.pop(tp, None)
        if partition.is_leader:
            self._advance_high_watermark(tp, partition, partition_log)
        # Becoming leader may itself have moved the high watermark (an ISR of the leader alone).
        partition_log.high_watermark = partition.high_watermark
        self._wake_produces(tp, everyone=change is not RoleChange.NONE)
        self.notify(tp)

    def _stop_hosting(self, tp: TopicPartition, now: int, delay_ms: int) -> None:
        self.partitions.pop(tp, None)
        self.followed.pop(tp, None)
        self.logs.delete(tp, now, delay_ms)
        self._wake_produces(tp, everyone=True)
        self.notify(tp)

    # Serving

    def get(self, topic: str, partition: int) -> PartitionLog | None:
        return self.logs.get(TopicPartition(topic, partition))

    def partition(self, tp: TopicPartition) -> Partition | None:
        return self.partitions.get(tp)

    async def append(self, topic: str, partition: int, log: PartitionLog, records: bytes, from_client: bool = True) -> AppendResult:
        """Appends as leader; with the leader alone in the ISR what it appends is committed at once."""
        now = self.clock.wall_ms()
        tp = TopicPartition(topic, partition)
        self.check_online(tp)
        try:
            result = log.append(records, now, from_client=from_client)
        except OSError as e:
            raise self.storage_failed(tp, log, e, "appending to") from e
        # As Kafka, the flush a policy asks for comes before the high watermark moves: a
        # write whose fsync failed is never committed, acknowledged or read.
        if log.needs_flush(now):
            await self.flush(tp, log, result.last_offset + 1)
        state = self.partitions.get(tp)
        if state is None:
            log.high_watermark = log.next_offset  # a log no Partition runs (not from the image)
            self.notify(tp)
        else:
            self._advance_high_watermark(tp, state, log)
        self._notify_end(tp)
        return result

    async def append_as_follower(self, tp: TopicPartition, records: bytes, leader_high_watermark: int,
                                 leader_log_start_offset: int = -1) -> AppendResult | None:
        """Appends batches fetched from the leader, then takes its high watermark and its
        log start offset (records deleted there, by DeleteRecords or retention, go here too,
        or a failover would bring them back)."""
        partition_log, partition = self.logs.get(tp), self.partitions.get(tp)
        if partition_log is None or partition is None or partition.is_leader:
            return None
        now = self.clock.wall_ms()
        try:
            result = partition_log.append_as_follower(records, now) if records else None
        except OSError as e:
            raise self.storage_failed(tp, partition_log, e, "appending as follower to") from e
        if result is not None and partition_log.needs_flush(now):
            await self.flush(tp, partition_log, result.last_offset + 1)
        self.follower_high_watermark(tp, leader_high_watermark)
        # As Kafka's follower: never past its own high watermark; it moves on as that does.
        log_start = min(leader_log_start_offset, partition_log.high_watermark)
        if log_start > partition_log.log_start_offset:
            partition_log.delete_records_before(log_start)
        return result

    def follower_high_watermark(self, tp: TopicPartition, leader_high_watermark: int) -> None:
        partition_log, partition = self.logs.get(tp), self.partitions.get(tp)
        if partition_log is not None and partition is not None and partition.leader_high_watermark(
                leader_high_watermark, partition_log.next_offset):
            partition_log.high_watermark = partition.high_watermark
            self.notify(tp)

    def truncate(self, tp: TopicPartition, offset: int) -> None:
        """Cuts a follower's log where it diverged from its leader's."""
        partition_log, partition = self.logs.get(tp), self.partitions.get(tp)
        if partition_log is None or partition is None or partition.is_leader:
            return
        if offset < partition_log.next_offset:
            log.info("Truncating %s from %d to %d", tp, partition_log.next_offset, offset)
            try:
                partition_log.truncate_to(offset)
            except OSError as e:
                self.storage_failed(tp, partition_log, e, "truncating")
                return
        partition.truncated(partition_log.next_offset)

    def restart_at(self, tp: TopicPartition, offset: int) -> None:
        """Empties a follower's log to start it at the leader's log start offset."""
        partition_log, partition = self.logs.get(tp), self.partitions.get(tp)
        if partition_log is None or partition is None or partition.is_leader:
            return
        log.info("Restarting %s at the leader's log start offset %d", tp, offset)
        try:
            partition_log.truncate_fully_and_start_at(offset, self.clock.wall_ms())
        except OSError as e:
            self.storage_failed(tp, partition_log, e, "restarting")
            return
        partition.truncated(offset)

    # The leader's side of replication

    def follower_fetched(self, tp: TopicPartition, replica_id: int, fetch_offset: int, broker_epoch: int) -> bool:
        """Records a follower's fetch position; may move the high watermark and propose an
        ISR expansion. False when this node does not lead the partition for that replica."""
        partition_log, partition = self.logs.get(tp), self.partitions.get(tp)
        if partition_log is None or partition is None:
            return False
        now = self.clock.monotonic_ms()
        follower = partition.followers.get(replica_id)
        previous_end = follower.log_end_offset if follower is not None else None
        if not partition.follower_fetched(replica_id, fetch_offset, partition_log.next_offset, now, broker_epoch):
            return False
        # As Kafka: only a follower whose log end moved can move the high watermark, and
        # only one outside the ISR can join it (its fetches of idle partitions stay cheap).
        if fetch_offset != previous_end:
            self._advance_high_watermark(tp, partition, partition_log)
        if self.alter_partition is not None and replica_id not in partition.isr:
            proposal = partition.isr_expansion(self._ineligible(partition))
            if proposal is not None:
                self._propose(tp, proposal)
        return True

    def _ineligible(self, partition: Partition) -> frozenset[int]:
        """Followers that may not join the ISR (KIP-903): unknown, fenced or shutting down
        brokers, and a follower whose fetches come from another broker epoch."""
        brokers = self._image.brokers
        out = set()
        for replica, state in partition.followers.items():
            if replica in partition.isr:
                continue  # eligibility is asked of followers joining the ISR only
            broker = brokers.get(replica)
            if (broker is None or broker.fenced or broker.in_controlled_shutdown
                    or (state.broker_epoch >= 0 and state.broker_epoch != broker.epoch)):
                out.add(replica)
        return frozenset(out)

    def _advance_high_watermark(self, tp: TopicPartition, partition: Partition, partition_log: PartitionLog) -> None:
        # A partition without followers (replication factor 1, every produce on a single
        # node) needs neither the clock nor the brokers' eligibility.
        if partition.followers:
            now, ineligible = self.clock.monotonic_ms(), self._ineligible(partition)
        else:
            now, ineligible = 0, frozenset()
        if partition.maybe_advance_high_watermark(partition_log.next_offset, now, ineligible):
            partition_log.high_watermark = partition.high_watermark
            self._wake_produces(tp)
            # Consumers only: a follower's fetch waits for data past the log end, which this is not.
            _wake(self._waiters, tp)

    def check_isr(self) -> None:
        """Proposes to take out of each led partition's ISR the followers that have not
        caught up for replica.lag.time.max.ms (Kafka's isr-expiration task)."""
        if self.alter_partition is None:
            return
        now = self.clock.monotonic_ms()
        for tp, partition in self.partitions.items():
            partition_log = self.logs.get(tp)
            if partition_log is not None and (proposal := partition.isr_shrink(partition_log.next_offset, now)):
                self._propose(tp, proposal)

    def _propose(self, tp: TopicPartition, proposal: IsrProposal) -> None:
        log.info("Proposing ISR %s for %s (leader epoch %d, partition epoch %d)", list(proposal.new_isr), tp,
                 proposal.leader_epoch, proposal.partition_epoch)
        self._proposals.append((tp, proposal))
        self._proposed.set()

    async def send_isr_changes(self) -> None:
        """Sends ISR proposals to the controller as they come, each on its own so that the
        AlterPartitionManager can batch those pending together. Runs for the broker's life."""
        if self.alter_partition is None:
            return
        async with anyio.create_task_group() as tg:
            while True:
                await self._proposed.wait()
                self._proposed = anyio.Event()
                proposals, self._proposals = self._proposals, []
                for tp, proposal in proposals:
                    tg.start_soon(self._submit, tp, proposal)

    async def _submit(self, tp: TopicPartition, proposal: IsrProposal) -> None:
        assert self.alter_partition is not None
        topic = self._image.topics.get(tp.topic)
        error = ErrorCode.unknown_topic_or_partition
        if topic is not None:
            try:
                result = await self.alter_partition.submit(IsrChange(
                    topic.topic_id, tp.partition, proposal.leader_epoch, proposal.partition_epoch, proposal.new_isr))
                error = result.error
            except Exception as e:  # the controller unreachable: a later check proposes again
                log.warning("ISR change of %s not sent: %s", tp, e)
                error = ErrorCode.request_timed_out
        # Accepted, the change arrives with the image (which clears the proposal); refused, it may be proposed again.
        partition = self.partitions.get(tp)
        if error != ErrorCode.none and partition is not None:
            log.info("ISR change of %s refused: %s", tp, error.name)
            partition.proposal_failed(proposal)

    # The produce purgatory

    async def wait_for_replication(self, tp: TopicPartition, required_offset: int, timeout_s: float, min_insync_replicas: int) -> ErrorCode:
        """Waits until the high watermark reaches required_offset (acks=all), as Kafka's
        DelayedProduce: NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrank below
        min.insync.replicas meanwhile, REQUEST_TIMED_OUT at the timeout. An append already
        committed (always, on one node) is answered without a timer or a wait: acks=all
        then costs what acks=1 does."""
        outcome = self._replication_outcome(tp, required_offset, min_insync_replicas)
        if outcome is not None:
            return outcome
        with anyio.move_on_after(timeout_s):
            while outcome is None:
                event = anyio.Event()
                self._produce_waiters[tp].append((required_offset, event))
                await event.wait()
                outcome = self._replication_outcome(tp, required_offset, min_insync_replicas)
            return outcome
        return ErrorCode.request_timed_out

    def _replication_outcome(self, tp: TopicPartition, required_offset: int, min_insync_replicas: int) -> ErrorCode | None:
        """An acks=all append's answer as things stand, or None while it must wait."""
        if tp in self.logs.offline_partitions:
            return ErrorCode.kafka_storage_error
        partition = self.partitions.get(tp)
        if partition is None or not partition.is_leader:
            return ErrorCode.not_leader_or_follower
        if partition.high_watermark < required_offset:
            return None
        if partition.under_min_isr(min_insync_replicas):
            return ErrorCode.not_enough_replicas_after_append
        return ErrorCode.none

    def _wake_produces(self, tp: TopicPartition, everyone: bool = False) -> None:
        waiters = self._produce_waiters.get(tp)
        if not waiters:
            return
        partition = self.partitions.get(tp)
        high_watermark = partition.high_watermark if partition is not None and not everyone else None
        keep = []
        for offset, event in waiters:
            if high_watermark is None or offset <= high_watermark:
                event.set()
            else:
                keep.append((offset, event))
        if keep:
            self._produce_waiters[tp] = keep
        else:
            del self._produce_waiters[tp]

    # Durability

    async def flush(self, tp: TopicPartition, log: PartitionLog, through: int) -> None:
        """fsyncs the log at least up to offset `through`; concurrent callers share fsyncs.
        A failed fsync takes the log directory offline and raises KAFKA_STORAGE_ERROR: it is
        never retried (the pages it covered may be gone while a retry succeeds), and the
        recovery point stays where the last successful fsync left it."""
        async with self._flush_locks[tp]:
            self.check_online(tp)
            if log.recovery_point < through:
                try:
                    await anyio.to_thread.run_sync(log.flush, self.clock.wall_ms())
                except OSError as e:
                    raise self.storage_failed(tp, log, e, "flushing") from e
                self.check_online(tp)  # its files closed under the fsync: nothing says it covered them

    async def flush_due(self) -> None:
        """Time-based flushes (flush.ms), off the event loop as the append path's are;
        called periodically by the server."""
        await self.write_leader_epochs()
        now = self.clock.wall_ms()
        for tp, log in list(self.logs.logs.items()):
            if log.needs_flush(now) and self.logs.get(tp) is log:
                try:
                    await self.flush(tp, log, log.next_offset)
                except LogError:
                    pass  # its directory went offline, which the log manager reported

    async def write_leader_epochs(self) -> None:
        """Writes the leader epoch checkpoints changed since the last call (a start makes a
        new epoch in every partition it leads) in one worker-thread job, as Kafka's
        scheduler writes its truncated caches: soon, and never on the event loop."""
        pending = [(tp, log) for tp, log in self.logs.logs.items() if log.epochs.pending]
        if not pending:
            return
        failed = await anyio.to_thread.run_sync(_write_leader_epochs, pending)
        for tp, partition_log, error in failed:
            if self.logs.get(tp) is partition_log:  # not a log deleted meanwhile
                self.storage_failed(tp, partition_log, error, "writing the leader epoch checkpoint of")

    # Log directory failures

    def offline(self, tp: TopicPartition) -> bool:
        return tp in self.logs.offline_partitions

    def check_online(self, tp: TopicPartition) -> None:
        """Raises KAFKA_STORAGE_ERROR for a partition whose log directory is offline."""
        directory = self.logs.offline_partitions.get(tp)
        if directory is not None:
            raise LogError(ErrorCode.kafka_storage_error, f"{tp} is in the offline log directory {directory}")

    def storage_failed(self, tp: TopicPartition, partition_log: PartitionLog, error: OSError, during: str) -> LogError:
        """Takes the partition's log directory offline after an I/O error in it; returns
        the KAFKA_STORAGE_ERROR to answer with."""
        directory = partition_log.directory.parent
        self.logs.fail_dir(directory, error, f"{during} {tp}")
        return LogError(ErrorCode.kafka_storage_error, f"{tp} is in the offline log directory {directory}")

    def _on_log_dir_failure(self, directory: Path, lost: list[TopicPartition]) -> None:
        """As Kafka's handleLogDirFailure: the partitions of the failed directory are no
        longer led or followed here; waiting produces and fetches are answered."""
        followed_before = dict(self.followed)
        for tp in lost:
            self.partitions.pop(tp, None)
            self.followed.pop(tp, None)
            self._wake_produces(tp, everyone=True)
            self.notify(tp)
        if self.followed != followed_before:
            self.followed_changed.set()
            self.followed_changed = anyio.Event()

    # Waiting fetches

    def notify(self, tp: TopicPartition) -> None:
        """The high watermark moved (or the partition changed): consumer fetches look again."""
        _wake(self._waiters, tp)
        _wake(self._end_waiters, tp)

    def _notify_end(self, tp: TopicPartition) -> None:
        _wake(self._end_waiters, tp)

    def wake_all(self) -> None:
        """Ends every wait at once (the broker is stopping)."""
        for tp in list(self._waiters) + list(self._end_waiters):
            self.notify(tp)
        for tp in list(self._produce_waiters):
            self._wake_produces(tp, everyone=True)

    async def wait_for_append(self, tps: Iterable[TopicPartition], timeout_s: float, *, log_end: bool = False) -> None:
        """Returns when any of the partitions gets new data (or changes), or at the timeout:
        committed data (the high watermark moving) for a consumer, any appended data for a
        follower (`log_end`)."""
        registry = self._end_waiters if log_end else self._waiters
        event = anyio.Event()
        tps = list(tps)
        for tp in tps:
            registry[tp].add(event)
        try:
            with anyio.move_on_after(timeout_s):
                await event.wait()
        finally:
            for tp in tps:
                waiters = registry.get(tp)
                if waiters is not None:
                    waiters.discard(event)
                    if not waiters:
                        del registry[tp]


def _wake(registry: dict[TopicPartition, set[anyio.Event]], tp: TopicPartition) -> None:
    waiters = registry.pop(tp, None)
    if waiters:
        for event in waiters:
            event.set()


def _write_leader_epochs(logs: list[tuple[TopicPartition, PartitionLog]]) -> list[tuple[TopicPartition, PartitionLog, OSError]]:
    failed = []
    for tp, partition_log in logs:
        try:
            partition_log.epochs.write_pending()
        except OSError as e:
            failed.append((tp, partition_log, e))
    return failed

