"""The follower's side of partition replication, as Kafka's ReplicaFetcherManager and
ReplicaFetcherThread: for each source broker, `num.replica.fetchers` fetchers, each
copying its share of the partitions that broker leads with the Fetch API as a replica
(replica id and broker epoch in `replica_state`), from this node's log end and its last
epoch. What to do with an answer is decided by the sans-IO helpers of
replication/fetcher.py; appends and truncations go through the replica manager (fsyncs
in a worker thread, per the flush policy, as the leader's)."""

from __future__ import annotations

import logging
import ssl
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import anyio
from kio.schema.errors import ErrorCode

from ..config import BrokerConfig
from ..log.manager import TopicPartition
from ..log.partition import LogError
from ..metadata.image import MetadataImage
from ..replication.fetch_session import FetchSessionHandler, PartitionKey
from ..replication.fetcher import out_of_range, truncation_offset, whole_batches
from ..wire.build import build
from ..wire.protocol import request_type
from .broker_peers import PeerRoutes, peer_address
from .node_connection import UNREACHABLE, Login, NodeConnection
from .replica_manager import ReplicaManager

log = logging.getLogger(__name__)

FETCH_VERSION = 17
LIST_OFFSETS_VERSION = 7
EARLIEST, LATEST = -2, -1

FetcherKey = tuple[int, int]  # (source broker, fetcher index)
SESSION_ERRORS = (ErrorCode.fetch_session_id_not_found, ErrorCode.invalid_fetch_session_epoch)


class ReplicaFetcherManager:
    def __init__(
        self, replicas: ReplicaManager, config: BrokerConfig, image: Callable[[], MetadataImage],
        broker_epoch: Callable[[], int], listener: str, routes: PeerRoutes | None = None, tls: ssl.SSLContext | None = None,
        login: Login | None = None,
    ) -> None:
        self.replicas = replicas
        self.listener = listener  # the inter-broker listener, which followers fetch from the leaders on
        self.routes = routes or {}
        self.tls = tls  # the inter-broker listener's client context, when it speaks TLS
        self.login = login  # this broker's SASL login, when the inter-broker listener wants one
        self.config = config
        self.image = image
        self.broker_epoch = broker_epoch
        self.fetchers_per_broker = config.int("num.replica.fetchers")
        self._running: set[FetcherKey] = set()

    def fetcher_of(self, tp: TopicPartition) -> int:
        """Which of a source broker's fetchers copies the partition (Kafka: by hash, modulo)."""
        return zlib.crc32(f"{tp.topic}-{tp.partition}".encode()) % self.fetchers_per_broker

    def partitions_of(self, key: FetcherKey) -> list[TopicPartition]:
        return [tp for tp, leader in self.replicas.followed.items() if leader == key[0] and self.fetcher_of(tp) == key[1]]

    async def run(self) -> None:
        """Starts a fetcher for every (source broker, index) with partitions to copy, as the
        replica manager's followed partitions change. Runs for the broker's life."""
        async with anyio.create_task_group() as tg:
            while True:
                changed = self.replicas.followed_changed
                for tp, leader in list(self.replicas.followed.items()):
                    key = (leader, self.fetcher_of(tp))
                    if key not in self._running:
                        self._running.add(key)
                        tg.start_soon(ReplicaFetcher(self, key).run)
                await changed.wait()


class ReplicaFetcher:
    def __init__(self, manager: ReplicaFetcherManager, key: FetcherKey) -> None:
        self.manager = manager
        self.key = key
        self.replicas = manager.replicas
        config = manager.config
        self.node_id = self.replicas.node_id
        self.max_wait_ms = config.int("replica.fetch.wait.max.ms")
        self.min_bytes = config.int("replica.fetch.min.bytes")
        self.max_bytes = config.int("replica.fetch.response.max.bytes")
        self.partition_max_bytes = config.int("replica.fetch.max.bytes")
        self.backoff_s = config.int("replica.fetch.backoff.ms") / 1000
        self.timeout_s = config.int("replica.socket.timeout.ms") / 1000
        self._delayed: dict[TopicPartition, float] = {}  # partitions in backoff, until when
        self._connection: NodeConnection | None = None
        self._session = FetchSessionHandler()

    async def run(self) -> None:
        try:
            while True:
                # No await between this check and leaving the running set: the manager never misses a restart.
                partitions = self.manager.partitions_of(self.key)
                if not partitions:
                    return
                if not await self._fetch_once(partitions):
                    await anyio.sleep(self.backoff_s)
        finally:
            self.manager._running.discard(self.key)
            if self._connection is not None:
                await self._connection.close()

    def _connect(self) -> NodeConnection | None:
        address = peer_address(self.manager.image(), self.key[0], self.manager.listener, self.manager.routes)
        if address is None:
            return None
        if self._connection is None or self._connection.address != address:
            self._connection = NodeConnection(address, self.manager.tls, self.manager.login)
            self._session.reset()
        return self._connection

    async def _fetch_once(self, partitions: list[TopicPartition]) -> bool:
        """One fetch of every partition not in backoff; False when the leader could not be reached."""
        now = anyio.current_time()
        image = self.manager.image()
        wanted: dict[PartitionKey, dict[str, Any]] = {}
        names: dict[Any, str] = {}
        for tp in partitions:
            partition_log, state, topic = self.replicas.get(tp.topic, tp.partition), self.replicas.partition(tp), image.topics.get(tp.topic)
            if partition_log is None or state is None or topic is None or self._delayed.get(tp, 0) > now:
                continue
            names[topic.topic_id] = tp.topic
            wanted[(topic.topic_id, tp.partition)] = {
                "partition": tp.partition, "current_leader_epoch": state.leader_epoch, "fetch_offset": partition_log.next_offset,
                "last_fetched_epoch": partition_log.epochs.latest_epoch, "log_start_offset": partition_log.log_start_offset,
                "partition_max_bytes": self.partition_max_bytes, "replica_directory_id": None,
            }
        connection = self._connect()
        if not wanted or connection is None:
            await anyio.sleep(min(self.backoff_s, self.max_wait_ms / 1000))
            return True
        plan = self._session.plan(wanted)
        request = build(request_type(1, FETCH_VERSION), {
            "cluster_id": None, "replica_state": {"replica_id": self.node_id, "replica_epoch": self.manager.broker_epoch()},
            "max_wait": self.max_wait_ms, "min_bytes": self.min_bytes, "max_bytes": self.max_bytes, "isolation_level": 0,
            "session_id": plan.session_id, "session_epoch": plan.epoch, "rack_id": "",
            "topics": [{"topic_id": topic_id, "partitions": ps} for topic_id, ps in _by_topic(plan.partitions.items()).items()],
            "forgotten_topics_data": [{"topic_id": topic_id, "partitions": indexes}
                                      for topic_id, indexes in _by_topic((key, key[1]) for key in plan.forgotten).items()],
        })
        try:
            response = await connection.request(request, self.timeout_s)
        except UNREACHABLE as e:
            self._session.reset()
            log.info("Fetch from broker %d failed (%s); backing off", self.key[0], e)
            return False
        self._session.answered(plan, response.error_code, response.session_id)
        if response.error_code in SESSION_ERRORS:
            log.info("Fetch session with broker %d lost (%s); fetching in full", self.key[0], response.error_code.name)
            return True
        if response.error_code != ErrorCode.none:
            log.info("Fetch from broker %d answered %s", self.key[0], response.error_code.name)
            return False
        for topic in response.responses:
            name = names.get(topic.topic_id)
            if name is not None:
                for p in topic.partitions:
                    await self._handle(TopicPartition(name, p.partition_index), p)
        return True

    async def _handle(self, tp: TopicPartition, p: Any) -> None:
        partition_log = self.replicas.get(tp.topic, tp.partition)
        if partition_log is None or self.replicas.followed.get(tp) != self.key[0]:
            return  # no longer followed from this broker
        if p.error_code == ErrorCode.none:
            if p.diverging_epoch.end_offset >= 0 or p.diverging_epoch.epoch >= 0:
                offset = truncation_offset(p.diverging_epoch.epoch, p.diverging_epoch.end_offset, partition_log.epochs,
                                           partition_log.next_offset, partition_log.high_watermark)
                self.replicas.truncate(tp, offset)
                return
            try:
                await self.replicas.append_as_follower(tp, whole_batches(bytes(p.records or b"")), p.high_watermark,
                                                       p.log_start_offset)
            except LogError as e:
                log.warning("Appending what broker %d sent of %s failed: %s", self.key[0], tp, e)
                self._delayed[tp] = anyio.current_time() + self.backoff_s
            return
        if p.error_code == ErrorCode.offset_out_of_range:
            await self._out_of_range(tp, partition_log.next_offset)
            return
        log.info("Fetch of %s from broker %d answered %s; backing off", tp, self.key[0], p.error_code.name)
        self._delayed[tp] = anyio.current_time() + self.backoff_s

    async def _out_of_range(self, tp: TopicPartition, log_end: int) -> None:
        leader_end = await self._leader_offset(tp, LATEST)
        leader_start = await self._leader_offset(tp, EARLIEST)
        if leader_end is None or leader_start is None:
            self._delayed[tp] = anyio.current_time() + self.backoff_s
            return
        action = out_of_range(log_end, leader_start, leader_end)
        if action.truncate_to is not None:
            self.replicas.truncate(tp, action.truncate_to)
        elif action.restart_at is not None:
            self.replicas.restart_at(tp, action.restart_at)

    async def _leader_offset(self, tp: TopicPartition, timestamp: int) -> int | None:
        """The leader's log start or log end offset, asked as a replica (ListOffsets)."""
        connection, state = self._connect(), self.replicas.partition(tp)
        if connection is None or state is None:
            return None
        request = build(request_type(2, LIST_OFFSETS_VERSION), {
            "replica_id": self.node_id, "isolation_level": 0, "topics": [{"name": tp.topic, "partitions": [
                {"partition_index": tp.partition, "current_leader_epoch": state.leader_epoch, "timestamp": timestamp}]}],
        })
        try:
            response = await connection.request(request, self.timeout_s)
        except UNREACHABLE:
            return None
        answer = response.topics[0].partitions[0]
        return int(answer.offset) if answer.error_code == ErrorCode.none else None


def _by_topic(items: Iterable[tuple[PartitionKey, Any]]) -> dict[Any, list[Any]]:
    """Per-partition values grouped by topic id, as a fetch request lists them."""
    grouped: dict[Any, list[Any]] = {}
    for (topic_id, _), value in items:
        grouped.setdefault(topic_id, []).append(value)
    return grouped
