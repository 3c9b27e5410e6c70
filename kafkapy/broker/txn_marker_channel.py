"""The transaction coordinator's markers on their way to the partitions' leaders, as
Kafka's TransactionMarkerChannelManager sends them: one WriteTxnMarkers per leader at a
time of sending, over the inter-broker channel; written here directly when this broker
leads the partition. What is left to write, and when a transaction is complete, is
the sans-IO TxnMarkerQueue's to say; this shell sends, and retries while anything waits
for a leader or for a broker to answer again."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
from kio.schema.errors import ErrorCode

from ..coordinator.txn_marker_queue import NO_LEADER, MarkerEntry, TxnMarkerQueue
from ..coordinator.txn_markers import MarkerRequest, TopicPartition
from ..metadata.image import MetadataImage
from ..metadata.manager import MetadataManager
from ..wire.build import build
from ..wire.protocol import request_type
from .broker_peers import BrokerPeers, PeerUnavailable

log = logging.getLogger(__name__)

WRITE_TXN_MARKERS = 27
# Version 1, the first flexible one, as Kafka sends it at transaction.version 0 and 1.
WRITE_TXN_MARKERS_VERSION = 1
# How soon markers waiting for a leader, or for a broker that did not answer, go again.
RETRY_BACKOFF_S = 0.1

MarkerErrors = dict[int, dict[TopicPartition, ErrorCode]]
"""Per-partition errors of a WriteTxnMarkers answer, by producer id."""
WriteHere = Callable[[list[MarkerEntry]], Awaitable[MarkerErrors]]


def marker_entries_request(entries: list[MarkerEntry]) -> Any:
    """The WriteTxnMarkers request that carries these markers."""
    markers = []
    for entry in entries:
        topics: dict[str, list[int]] = {}
        for topic, partition in entry.partitions:
            topics.setdefault(topic, []).append(partition)
        marker = entry.marker
        markers.append({
            "producer_id": marker.producer_id, "producer_epoch": marker.producer_epoch,
            "transaction_result": marker.commit, "coordinator_epoch": marker.coordinator_epoch,
            "topics": [{"name": name, "partition_indexes": indexes} for name, indexes in topics.items()],
        })
    return build(request_type(WRITE_TXN_MARKERS, WRITE_TXN_MARKERS_VERSION), {"markers": markers})


def marker_errors(response: Any) -> MarkerErrors:
    return {
        m.producer_id: {(t.name, p.partition_index): p.error_code for t in m.topics for p in t.partitions}
        for m in response.markers
    }


def leader_of(image: MetadataImage, tp: TopicPartition) -> int | None:
    """The partition's leader, NO_LEADER while it has none (or its broker is unknown),
    None once the partition is gone."""
    topic = image.topics.get(tp[0])
    partition = topic.partitions.get(tp[1]) if topic is not None else None
    if partition is None:
        return None
    return partition.leader if partition.leader in image.brokers else NO_LEADER


class TxnMarkerChannel:
    def __init__(self, node_id: int, metadata: MetadataManager, peers: BrokerPeers, write_here: WriteHere) -> None:
        self.node_id = node_id
        self.metadata = metadata
        self.peers = peers
        self.write_here = write_here
        self.queue = TxnMarkerQueue()
        self.completed: Callable[[MarkerRequest], Awaitable[None]] | None = None
        """Told of each transaction whose markers are all written."""
        self._wake = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None
        metadata.listeners.append(lambda _old, _new: self._wake.set())  # leaders may have moved

    async def send(self, marker: MarkerRequest) -> None:
        """Writes the transaction's markers; those of partitions led here are written
        before this returns, unless the channel is not running yet."""
        self.queue.add(marker)
        if self._tg is not None:
            await self._dispatch(self._tg)

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Sends what the queue holds, for as long as the broker runs; then closes the
        connections to the other brokers."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started()
            try:
                while True:
                    self._wake = anyio.Event()
                    await self._dispatch(tg)
                    with anyio.move_on_after(RETRY_BACKOFF_S if self.queue.has_unsent else math.inf):
                        await self._wake.wait()
            finally:
                self._tg = None
                with anyio.CancelScope(shield=True):
                    await self.peers.close()

    async def _dispatch(self, tg: anyio.abc.TaskGroup) -> None:
        image = self.metadata.image
        requests, completed = self.queue.requests(lambda tp: leader_of(image, tp))
        await self._complete(completed)
        for node_id, entries in requests.items():
            if node_id == self.node_id:
                await self._write_here(entries)
            else:
                tg.start_soon(self._send_to, node_id, entries)

    async def _write_here(self, entries: list[MarkerEntry]) -> None:
        try:
            errors = await self.write_here(entries)
        except Exception:
            log.exception("Writing transaction markers here failed; they will be tried again")
            self.queue.unreachable(entries)
            return
        await self._complete(self.queue.answered(entries, errors))

    async def _send_to(self, node_id: int, entries: list[MarkerEntry]) -> None:
        try:
            response = await self.peers.request(node_id, marker_entries_request(entries))
        except PeerUnavailable as e:
            log.info("Transaction markers to broker %d not answered (%s); retrying", node_id, e)
            self.queue.unreachable(entries)
            return
        await self._complete(self.queue.answered(entries, marker_errors(response)))

    async def _complete(self, markers: list[MarkerRequest]) -> None:
        if self.completed is not None:
            for marker in markers:
                await self.completed(marker)

