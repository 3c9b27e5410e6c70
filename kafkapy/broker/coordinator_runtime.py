"""The shell around a sans-IO coordinator, as Kafka's CoordinatorRuntime: creates its
internal topic, follows the leadership of that topic's partitions (loading a
partition's state from its log, in the background, when this broker becomes its
leader, and unloading it when the broker stops being it), appends the records the
coordinator asks for, delivers its replies once those records are committed, and fires
its timers. The group and transaction coordinators both run in one of these.

A write is answered once its records are committed: the partition's high watermark
passes them, as an acks=all produce. If the records cannot be appended, the
coordinator's state of the partition, which the operation already changed, is thrown
away and loaded again from the log: no state survives whose records were not written,
and no reply is given for state that is not durable."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import anyio.abc
import anyio.to_thread
from kio.schema.errors import ErrorCode

from ..config import BrokerConfig
from ..log.manager import TopicPartition
from ..log.partition import LogError, PartitionLog
from ..metadata.controller import NewTopic
from ..metadata.image import MetadataImage
from ..metadata.manager import MetadataManager
from ..wire.records import NO_PRODUCER_ID, Record, decode_records, encode_batch, read_marker
from .controller_channel import ControllerRouter, ControllerUnavailable
from .replica_manager import ReplicaManager

log = logging.getLogger(__name__)
# After the coordinator's timers failed, before their next round.
_TIMER_FAILURE_BACKOFF_S = 1.0

# How much of a partition's log one read of a load takes (Kafka's offsets.load.buffer.size default).
LOAD_CHUNK_BYTES = 5 * 1024 * 1024

# How Kafka's coordinators report a failed write of their records (GroupCoordinatorService
# and TransactionStateManager map them alike): the client retries, or finds the
# coordinator again.
_WRITE_ERRORS = {
    ErrorCode.unknown_topic_or_partition: ErrorCode.coordinator_not_available,
    ErrorCode.not_enough_replicas: ErrorCode.coordinator_not_available,
    ErrorCode.not_enough_replicas_after_append: ErrorCode.coordinator_not_available,
    ErrorCode.request_timed_out: ErrorCode.coordinator_not_available,
    ErrorCode.not_leader_or_follower: ErrorCode.not_coordinator,
    ErrorCode.kafka_storage_error: ErrorCode.not_coordinator,
    ErrorCode.message_too_large: ErrorCode.unknown_server_error,
    ErrorCode.record_list_too_large: ErrorCode.unknown_server_error,
    ErrorCode.invalid_fetch_size: ErrorCode.unknown_server_error,
}


def coordinator_write_error(error: ErrorCode) -> ErrorCode:
    return _WRITE_ERRORS.get(error, error)


class CoordinatorFailure(Exception):
    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code.name)
        self.code = code


class Pending:
    """A reply the coordinator gives now or later (a parked JoinGroup, an EndTxn), or the
    error that ends the wait for it (its write failed, the coordinator moved)."""

    def __init__(self) -> None:
        self._event = anyio.Event()
        self.value: Any = None
        self.error: ErrorCode | None = None

    def set(self, value: Any) -> None:
        if not self._event.is_set():
            self.value = value
            self._event.set()

    def fail(self, error: ErrorCode) -> None:
        if not self._event.is_set():
            self.error = error
            self._event.set()

    async def wait(self) -> Any:
        await self._event.wait()
        if self.error is not None:
            raise CoordinatorFailure(self.error)
        return self.value


class CoordinatorResult(Protocol):
    records: list[tuple[int, bytes, bytes | None]]
    replies: list[tuple[Any, dict[str, Any]]]


class Coordinator(Protocol):
    """A coordinator whose topic holds transactional batches (the group coordinator's)
    also takes `replay(..., producer_id=)` and `replay_end_transaction`."""

    def partition_for(self, key: str) -> int: ...
    def replay(self, partition: int, key: bytes, value: bytes | None) -> None: ...
    def loaded(self, partition: int) -> Any: ...
    def unload(self, partition: int) -> list[Any]: ...
    def tick(self) -> Any: ...
    def next_deadline(self) -> int | None: ...


@dataclass(frozen=True)
class InternalTopic:
    """How Kafka creates a coordinator's topic: its name, the broker keys giving its
    partition count and replication factor, and its topic configs; and the key of how
    long a write waits to be committed."""

    name: str
    partitions_key: str
    replication_key: str
    configs: Callable[[BrokerConfig, int], dict[str, str]]  # (broker config, replication factor) -> topic configs
    write_timeout_key: str


@dataclass
class _Leadership:
    """A partition this broker leads: loading its state, or active."""

    leader_epoch: int
    active: bool = False


# What a load reads from the log: a record (key, value, producer id of a transactional
# batch or NO_PRODUCER_ID) or a transaction marker (producer id, committed).
_LoadEntry = tuple[bytes, bytes | None, int] | tuple[int, bool]


def _read_for_load(partition_log: PartitionLog, start: int, end: int) -> tuple[list[_LoadEntry], int]:
    """Reads and decodes records from `start` (off the event loop): the entries and the
    offset to read from next, below `end`, at most about LOAD_CHUNK_BYTES."""
    entries: list[_LoadEntry] = []
    size = 0
    next_offset = start
    for header, batch in partition_log.iter_batches(start, end):
        next_offset = header.last_offset + 1
        size += len(batch)
        if header.is_control:
            marker = read_marker(batch, header)
            if marker is not None:
                aborted, _ = marker
                entries.append((header.producer_id, not aborted))
        else:
            producer_id = header.producer_id if header.is_transactional else NO_PRODUCER_ID
            entries.extend((r.key, r.value, producer_id) for r in decode_records(batch, header) if r.key is not None)
        if size >= LOAD_CHUNK_BYTES:
            break
    return entries, max(next_offset, end) if size < LOAD_CHUNK_BYTES else next_offset


class CoordinatorRuntime:
    def __init__(
        self, topic: InternalTopic, config: BrokerConfig, new_coordinator: Callable[[], Any], metadata: MetadataManager,
        controller: ControllerRouter, replicas: ReplicaManager,
    ) -> None:
        self.topic = topic
        self.config = config
        # Made on first use: a broker whose clients never need this coordinator (no group,
        # no transaction, so no internal topic) neither builds nor imports it.
        self._new_coordinator = new_coordinator
        self._coordinator: Any = None
        self.metadata = metadata
        self.controller = controller
        self.replicas = replicas
        self._timers_changed = anyio.Event()
        self._led: dict[int, _Leadership] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        metadata.listeners.append(lambda _old, new: self.follow_leadership(new))

    @property
    def coordinator(self) -> Any:
        coordinator = self._coordinator
        if coordinator is None:
            coordinator = self._coordinator = self._new_coordinator()
            self._coordinator_made()
            self._timers_changed.set()  # its timers now count
        return coordinator

    def _coordinator_made(self) -> None:
        """What the coordinator learns of the broker once it exists."""

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
        return self.partition_error(self.coordinator.partition_for(key))

    def partition_error(self, partition: int) -> ErrorCode | None:
        """NOT_COORDINATOR unless this broker leads the partition, COORDINATOR_LOAD_IN_PROGRESS
        until its state is loaded."""
        leadership = self._led.get(partition)
        if leadership is None:
            return ErrorCode.not_coordinator
        return None if leadership.active else ErrorCode.coordinator_load_in_progress

    def is_active(self, partition: int) -> bool:
        return self.partition_error(partition) is None

    # Loading and unloading

    def follow_leadership(self, image: MetadataImage) -> None:
        """Loads the partitions this broker now leads, unloads those it no longer leads
        (or leads in another leader epoch: its log may have been truncated meanwhile)."""
        topic = image.topics.get(self.topic.name)
        led = {} if topic is None else {
            p.partition_id: p.leader_epoch for p in topic.partitions.values() if p.leader == self.replicas.node_id
        }
        for partition, leadership in list(self._led.items()):
            if led.get(partition) != leadership.leader_epoch:
                self._unload(partition, ErrorCode.not_coordinator)
        for partition, leader_epoch in led.items():
            if partition not in self._led:
                self._start_load(partition, leader_epoch)

    def _start_load(self, partition: int, leader_epoch: int) -> None:
        leadership = self._led[partition] = _Leadership(leader_epoch)
        self._becoming_leader(partition, leader_epoch)
        partition_log = self.replicas.get(self.topic.name, partition)
        if partition_log is not None and partition_log.next_offset <= partition_log.log_start_offset:
            leadership.active = True  # nothing to read, nothing to resume
            log.info("Loaded %s-%d (empty) at leader epoch %d", self.topic.name, partition, leader_epoch)
        elif self._tg is not None:
            self._tg.start_soon(self._load, partition, leadership)

    def _becoming_leader(self, partition: int, leader_epoch: int) -> None:
        """What the coordinator learns of a leadership before its load."""

    async def _load(self, partition: int, leadership: _Leadership) -> None:
        partition_log = self.replicas.get(self.topic.name, partition)
        if partition_log is None:
            log.error("Cannot load %s-%d: its log is not here", self.topic.name, partition)
            return
        offset, count = partition_log.log_start_offset, 0
        while True:
            # Until the log end as it is now; what is appended meanwhile (transaction
            # markers written here) is read by the next round.
            end = partition_log.next_offset
            if offset >= end:
                break
            entries, offset = await anyio.to_thread.run_sync(_read_for_load, partition_log, offset, end)
            if self._led.get(partition) is not leadership:
                return  # unloaded meanwhile
            for entry in entries:
                self._replay(partition, entry)
            count += len(entries)
        leadership.active = True
        log.info("Loaded %d records of %s-%d at leader epoch %d", count, self.topic.name, partition,
                 leadership.leader_epoch)
        await self.apply(self.coordinator.loaded(partition))

    def _replay(self, partition: int, entry: _LoadEntry) -> None:
        if len(entry) == 2:
            self.coordinator.replay_end_transaction(partition, *entry)
            return
        key, value, producer_id = entry
        if producer_id == NO_PRODUCER_ID:
            self.coordinator.replay(partition, key, value)
        else:
            self.coordinator.replay(partition, key, value, producer_id=producer_id)

    def _unload(self, partition: int, error: ErrorCode) -> None:
        if self._led.pop(partition, None) is None:
            return
        log.info("Unloading %s-%d", self.topic.name, partition)
        self._forget(partition, error)
        self._timers_changed.set()

    def _forget(self, partition: int, error: ErrorCode) -> None:
        """Drops the coordinator's state of the partition; its parked requests get `error`."""
        for token in self.coordinator.unload(partition):
            token.fail(error)

    def _reload(self, partition: int, error: ErrorCode) -> None:
        """Throws away the partition's state, which records that were not written changed,
        and loads it again from the log."""
        leadership = self._led.get(partition)
        if leadership is None:
            return
        self._unload(partition, error)
        self._start_load(partition, leadership.leader_epoch)

    # Operations

    async def call(
        self, key: str | None, operation: Callable[[Pending], Any], failed: Callable[[ErrorCode], dict[str, Any]],
    ) -> dict[str, Any]:
        """Runs one coordinator operation for `key` and waits for its reply; `failed`
        builds the response of an error (not coordinator, load in progress, the write
        failed). Without a key the caller has just checked each of the operation's keys."""
        error = None if key is None else self.partition_error(self.coordinator.partition_for(key))
        if error is not None:
            return failed(error)
        token = Pending()
        await self.apply(operation(token))
        try:
            result: dict[str, Any] = await token.wait()
        except CoordinatorFailure as e:
            return failed(e.code)
        return result

    async def apply(self, result: CoordinatorResult) -> bool:
        """Appends the result's records, then delivers its replies once they are
        committed (or fails them): True if they were."""
        written = await self.append(result)
        committed = await self.commit(result, written)
        self._timers_changed.set()  # the operation may have moved the coordinator's deadlines
        return committed

    async def apply_in_background(self, result: CoordinatorResult) -> None:
        """As apply, without waiting for the commit (timers, completions of markers)."""
        written = await self.append(result)
        if self._tg is None:
            await self.commit(result, written)
        else:
            self._tg.start_soon(self.commit, result, written)

    async def append(self, result: CoordinatorResult) -> list[tuple[TopicPartition, int, int]] | ErrorCode:
        """Appends the records, one batch per partition: (partition, offset to commit,
        min.insync.replicas) for each, or the error that failed the write. Called right
        after the operation that wrote them, so that the log keeps their order."""
        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = defaultdict(list)
        for partition, key, value in result.records:
            by_partition[partition].append((key, value))
        transactional: tuple[int, int] | None = getattr(result, "transactional", None)
        producer_id, producer_epoch = transactional or (NO_PRODUCER_ID, -1)
        written: list[tuple[TopicPartition, int, int]] = []
        partitions = list(by_partition)
        for index, partition in enumerate(partitions):
            tp = TopicPartition(self.topic.name, partition)
            partition_log, state = self.replicas.get(tp.topic, partition), self.replicas.partition(tp)
            error = ErrorCode.none
            if partition_log is None or (state is not None and not state.is_leader):
                error = ErrorCode.not_leader_or_follower
            elif state is not None and state.under_min_isr(partition_log.config.min_insync_replicas):
                error = ErrorCode.not_enough_replicas
            else:
                now = self.replicas.clock.wall_ms()
                base = partition_log.next_offset
                batch = encode_batch(
                    [Record(base + i, now, k, v) for i, (k, v) in enumerate(by_partition[partition])],
                    producer_id=producer_id, producer_epoch=producer_epoch, transactional=transactional is not None,
                )
                try:
                    await self.replicas.append(tp.topic, partition, partition_log, batch, from_client=False)
                except LogError as e:
                    if transactional is not None:
                        return e.code  # a fenced producer: its records change nothing before appended
                    error = e.code
            if error is not ErrorCode.none:
                log.info("Write of %d records to %s failed: %s", len(by_partition[partition]), tp, error.name)
                if transactional is None:
                    for unwritten in partitions[index:]:
                        self._reload(unwritten, coordinator_write_error(error))
                return coordinator_write_error(error)
            assert partition_log is not None
            if transactional is not None:
                for key, value in by_partition[partition]:
                    self.coordinator.replay(partition, key, value, producer_id=producer_id)
            written.append((tp, partition_log.next_offset, partition_log.config.min_insync_replicas))
        return written

    async def commit(self, result: CoordinatorResult, written: list[tuple[TopicPartition, int, int]] | ErrorCode) -> bool:
        """Waits until the appended records are committed, then delivers the replies; or
        fails them with the write's error."""
        error = written if isinstance(written, ErrorCode) else await self._wait_committed(written)
        if error is not ErrorCode.none:
            for token, _ in result.replies:
                token.fail(error)
            self._timers_changed.set()
            return False
        self.deliver(result.replies)
        return True

    async def _wait_committed(self, written: list[tuple[TopicPartition, int, int]]) -> ErrorCode:
        deadline = anyio.current_time() + self.config.int(self.topic.write_timeout_key) / 1000
        for tp, offset, min_insync_replicas in written:
            if self.replicas.partition(tp) is None:
                continue  # a log no Partition runs: committed as appended
            remaining = max(0.0, deadline - anyio.current_time())
            error = await self.replicas.wait_for_replication(tp, offset, remaining, min_insync_replicas)
            if error is not ErrorCode.none:
                log.info("Write to %s not committed: %s", tp, error.name)
                return coordinator_write_error(error)
        return ErrorCode.none

    def deliver(self, replies: list[tuple[Any, dict[str, Any]]]) -> None:
        """Answers the requests; the coordinator's timers may have changed with them. A
        result that answers nothing (a tick of the timers' own) does not wake the timer
        loop again: it would tick, and wake itself, without end."""
        if not replies:
            return
        for token, response in replies:
            token.set(response)
        self._timers_changed.set()

    def wake(self) -> None:
        """Makes the timer loop look at the coordinator's deadlines again (the clock moved)."""
        self._timers_changed.set()

    # Running

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Loads the partitions led here at start (started once they are loaded), then
        loads and unloads as leadership moves and fires the coordinator's timers, for as
        long as the broker runs."""
        async with anyio.create_task_group() as tg:
            self.follow_leadership(self.metadata.image)
            async with anyio.create_task_group() as first_loads:
                for partition, leadership in list(self._led.items()):
                    if not leadership.active:
                        first_loads.start_soon(self._load, partition, leadership)
            self._tg = tg
            # Partitions that came to be led here during the first loads.
            for partition, leadership in list(self._led.items()):
                if not leadership.active:
                    tg.start_soon(self._load, partition, leadership)
            task_status.started()
            try:
                await self._run_timers()
            finally:
                self._tg = None

    async def _run_timers(self) -> None:
        clock = self.replicas.clock
        while True:
            coordinator = self._coordinator
            deadline = None if coordinator is None else coordinator.next_deadline()
            delay = math.inf if deadline is None else max(0, deadline - clock.monotonic_ms()) / 1000
            with anyio.move_on_after(delay):
                await self._timers_changed.wait()
            try:
                if self._coordinator is not None:
                    await self.apply_in_background(self._coordinator.tick())
            except Exception:
                # A timer that fails must not stop the others (nor the broker): logged, and
                # the next round comes after a backoff.
                log.exception("Coordinator timers of %s failed; trying again in %.0f s", self.topic.name, _TIMER_FAILURE_BACKOFF_S)
                await anyio.sleep(_TIMER_FAILURE_BACKOFF_S)
            # Only now: what the tick itself changed is in the deadline read next, and a
            # wake-up it signalled must not end the next wait at once.
            self._timers_changed = anyio.Event()
