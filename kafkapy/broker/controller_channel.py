"""How a broker reaches the active controller, as Kafka's NodeToControllerChannelManager
does: the controller in this process when it is the active one, otherwise the
controller listener of whichever voter the quorum names as leader. A request that
meets no controller, or one that is no longer active (NOT_CONTROLLER), is sent again
to the one the quorum names next, for as long as one election can take (the fetch
timeout that notices the controller gone, two election timeouts, a request timeout),
each attempt bounded by `controller.quorum.request.timeout.ms`.

A client's request that only the controller may carry out is forwarded whole, in an
Envelope, and its answer handed back; the broker's own requests (registration,
heartbeats, producer id blocks, the creation of a topic on first use) are typed.
"""

from __future__ import annotations

import logging
import ssl
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio
from kio.schema.errors import ErrorCode

from ..clock import Clock
from ..metadata.brokers import Endpoint, HeartbeatAnswer, Registered
from ..metadata.controller import NewTopic, TopicResult
from ..metadata.partitions import IsrChange, IsrChangeResult
from ..security.envelope_principal import encode_principal
from ..wire.build import build
from ..wire.protocol import decode_response, request_type
from .controller_service import ControllerService, NotController
from .node_connection import UNREACHABLE, NodeConnection

log = logging.getLogger(__name__)

T = TypeVar("T")

ENVELOPE = 58
_REGISTRATION, _HEARTBEAT, _PRODUCER_IDS, _CREATE_TOPICS = (62, 4), (63, 1), (67, 0), (19, 7)
_ALTER_PARTITION = (56, 3)
_RETRY_S = 0.05


class ControllerUnavailable(Exception):
    """No active controller answered within the request timeout."""


class ControllerRouter:
    def __init__(
        self, node_id: int, local: ControllerService, controllers: Mapping[int, tuple[str, int]],
        leader_id: Callable[[], int], clock: Clock, request_timeout_ms: int, cluster_id: str,
        retry_window_ms: int, tls: ssl.SSLContext | None = None,
    ) -> None:
        self.tls = tls  # the controller listener's client context, when it speaks TLS
        self.node_id = node_id
        self.local = local
        self.controllers = controllers
        self.leader_id = leader_id
        self.clock = clock
        self.timeout_s = request_timeout_ms / 1000
        self.retry_window_s = retry_window_ms / 1000
        self.cluster_id = cluster_id
        self._connections: dict[int, NodeConnection] = {}

    # -- the broker's own requests -------------------------------------------------

    async def register_broker(
        self, broker_id: int, incarnation_id: uuid.UUID, endpoints: tuple[Endpoint, ...], rack: str | None,
    ) -> Registered:
        request = Request(_REGISTRATION, {
            "broker_id": broker_id, "cluster_id": self.cluster_id, "incarnation_id": incarnation_id,
            "listeners": [{"name": e.listener, "host": e.host, "port": e.port, "security_protocol": e.security_protocol}
                          for e in endpoints],
            "features": [{"name": "metadata.version", "min_supported_version": 1, "max_supported_version": 21}],
            "rack": rack, "is_migrating_zk_broker": False, "log_dirs": [], "previous_broker_epoch": -1,
        })
        return await self._call(
            lambda: self.local.register_broker(broker_id, incarnation_id, endpoints, rack), request,
            lambda r: Registered(r.error_code, r.broker_epoch))

    async def broker_heartbeat(
        self, broker_id: int, broker_epoch: int, metadata_offset: int, want_fence: bool, want_shut_down: bool,
    ) -> HeartbeatAnswer:
        request = Request(_HEARTBEAT, {
            "broker_id": broker_id, "broker_epoch": broker_epoch, "current_metadata_offset": metadata_offset,
            "want_fence": want_fence, "want_shut_down": want_shut_down, "offline_log_dirs": [],
        })
        return await self._call(
            lambda: self.local.broker_heartbeat(broker_id, broker_epoch, metadata_offset, want_fence, want_shut_down),
            request, lambda r: HeartbeatAnswer(r.error_code, r.is_caught_up, r.is_fenced, r.should_shut_down))

    async def reserve_producer_ids(self, broker_id: int, broker_epoch: int, size: int) -> int:
        request = Request(_PRODUCER_IDS, {"broker_id": broker_id, "broker_epoch": broker_epoch})
        return await self._call(lambda: self.local.reserve_producer_ids(broker_id, broker_epoch, size), request,
                                lambda r: int(r.producer_id_start))

    async def create_topics(self, topics: list[NewTopic]) -> list[TopicResult]:
        request = Request(_CREATE_TOPICS, {"timeout": int(self.timeout_s * 1000), "validate_only": False, "topics": [
            {"name": t.name, "num_partitions": t.num_partitions, "replication_factor": t.replication_factor,
             "assignments": [], "configs": [{"name": k, "value": v} for k, v in t.configs.items()]}
            for t in topics
        ]})
        return await self._call(lambda: self.local.create_topics(topics), request, lambda r: [
            TopicResult(t.name, t.error_code, t.error_message, t.topic_id, t.num_partitions, t.replication_factor)
            for t in r.topics
        ])

    async def alter_partition(
        self, broker_id: int, broker_epoch: int, proposals: Sequence[tuple[IsrChange, Sequence[int]]],
    ) -> tuple[ErrorCode, list[IsrChangeResult]]:
        """AlterPartition v3: each proposal with its new ISR members' broker epochs; the
        top-level error and a result per proposal, in the proposals' order."""
        by_topic: dict[uuid.UUID, list[tuple[IsrChange, Sequence[int]]]] = {}
        for change, epochs in proposals:
            by_topic.setdefault(change.topic_id, []).append((change, epochs))
        request = Request(_ALTER_PARTITION, {"broker_id": broker_id, "broker_epoch": broker_epoch, "topics": [
            {"topic_id": topic_id, "partitions": [
                {"partition_index": c.partition, "leader_epoch": c.leader_epoch, "partition_epoch": c.partition_epoch,
                 "leader_recovery_state": 0,
                 "new_isr_with_epochs": [{"broker_id": b, "broker_epoch": e} for b, e in zip(c.new_isr, epochs, strict=True)]}
                for c, epochs in changes]}
            for topic_id, changes in by_topic.items()]})

        def parse(response: Any) -> tuple[ErrorCode, list[IsrChangeResult]]:
            if response.error_code != ErrorCode.none:
                return response.error_code, []
            answered = {
                (t.topic_id, p.partition_index): IsrChangeResult(
                    p.error_code, p.leader_id, p.leader_epoch, p.partition_epoch, tuple(p.isr))
                for t in response.topics for p in t.partitions
            }
            missing = IsrChangeResult(ErrorCode.unknown_server_error)
            return ErrorCode.none, [answered.get((c.topic_id, c.partition), missing) for c, _ in proposals]

        return await self._call(lambda: self.local.alter_partition(broker_id, broker_epoch, proposals), request, parse)

    # -- a client's request, forwarded whole ---------------------------------------------

    async def forward(self, frame: bytes | bytearray, client_host: str, principal: str, api_key: int, version: int,
                      here: Callable[[], Awaitable[Any]]) -> Any:
        """The active controller's answer to a request frame this node received from
        `principal`: `here()` should this node become the active controller while it waits."""
        envelope = Request((ENVELOPE, 0), {
            "request_data": bytes(frame), "request_principal": encode_principal(principal),
            "client_host_address": client_host.encode(),
        })

        def unwrap(response: Any) -> Any:
            return decode_response(response.response_data, api_key, version)[1]

        return await self._remote(envelope, unwrap, here)

    # -- routing -------------------------------------------------------------------------

    async def _call(self, here: Callable[[], Awaitable[T]], request: Request, parse: Callable[[Any], T]) -> T:
        if self.local.is_active:
            try:
                return await here()
            except NotController:
                pass
        return await self._remote(request, parse, here)

    async def _remote(self, request: Request, parse: Callable[[Any], T], here: Callable[[], Awaitable[T]]) -> T:
        deadline = self.clock.monotonic_ms() + self.retry_window_s * 1000
        unreachable_logged = False
        while True:
            leader = self.leader_id()
            if leader == self.node_id and self.local.is_active:
                try:
                    return await here()
                except NotController:
                    pass
            elif leader in self.controllers and leader != self.node_id:
                connection = self._connections.setdefault(leader, NodeConnection(self.controllers[leader], self.tls))
                try:
                    response = await connection.request(request.typed(), self.timeout_s)
                except UNREACHABLE as e:
                    # Once per request: the retries that follow say nothing new.
                    if not unreachable_logged:
                        log.info("Controller %d unreachable (%s); retrying for up to %.1f s", leader, e, self.retry_window_s)
                        unreachable_logged = True
                else:
                    if not _not_controller(response):
                        return parse(response)
            if self.clock.monotonic_ms() >= deadline:
                raise ControllerUnavailable(f"no active controller answered within {self.retry_window_s} s")
            await anyio.sleep(_RETRY_S)

    async def close(self) -> None:
        for connection in self._connections.values():
            await connection.close()


def _not_controller(response: Any) -> bool:
    """NOT_CONTROLLER, at the top (most controller APIs, an Envelope) or for every topic (CreateTopics)."""
    if hasattr(response, "error_code"):
        return bool(response.error_code == ErrorCode.not_controller)
    topics = getattr(response, "topics", ())
    return bool(topics) and all(t.error_code == ErrorCode.not_controller for t in topics)


class Request:
    """A request to the active controller, typed (its kio module imported) only when it
    goes over the network: a single node's own controller is called directly."""

    def __init__(self, api: tuple[int, int], data: dict[str, Any]) -> None:
        self.api = api
        self.data = data
        self._typed: Any = None

    def typed(self) -> Any:
        if self._typed is None:
            self._typed = build(request_type(*self.api), self.data)
        return self._typed
