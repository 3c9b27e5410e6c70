"""The network side of a Raft voter: one outbound connection to each other voter, and
the inbound connections of the controller listener. Kafka framing, kio entities,
messages of the core in and out; what to do with them is the QuorumServer's.
"""

from __future__ import annotations

import datetime
import logging
import ssl
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
from kio.schema.errors import ErrorCode
from kio.static.primitive import i16, i32Timedelta

from ..raft.messages import (
    BeginQuorumEpochRequest,
    EndQuorumEpochRequest,
    FetchRequest,
    FetchSnapshotRequest,
    Request,
    Response,
    VoteRequest,
)
from ..raft.wire import API_VERSIONS, api_key_of, request_from_kafka, request_to_kafka, response_from_kafka
from ..security.principal import ANONYMOUS
from ..wire.build import error_response
from ..wire.framing import FrameReader
from ..wire.protocol import (
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    kio_versions,
    peek_header,
    response_type,
)

log = logging.getLogger(__name__)

_MAX_FRAME = 64 * 1024 * 1024
_OUTBOX = 1024
_API_VERSIONS_KEY = 18
_BACKOFF_MIN_S, _BACKOFF_MAX_S = 0.02, 1.0
_OTHER_IN_FLIGHT = 64
_CONNECTION_LOST = (OSError, TimeoutError, anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream)
# Whether a principal at a host may send Raft's requests (Kafka: CLUSTER_ACTION on the cluster).
RaftAuthorization = Callable[[str, str], bool]


class Peer:
    """The connection to one other voter. Requests go out on it in order; a request sent
    while it is down is dropped (the core sends again when its request times out). A
    request unanswered within the request timeout closes it, as Kafka's NetworkClient
    does, since responses come in request order and a lost one would hold up the rest."""

    def __init__(self, node_id: int, peer_id: int, addresses: MutableMapping[int, tuple[str, int]],
                 deliver: Callable[[int, Response], Awaitable[None]], request_timeout_s: float,
                 leaders: MutableMapping[int, int], cluster_id: str | None, tls: ssl.SSLContext | None = None) -> None:
        self.node_id, self.peer_id = node_id, peer_id
        self.tls = tls  # the controller listener's client context, when it speaks TLS
        self.addresses = addresses
        self.deliver = deliver
        self.request_timeout_s = request_timeout_s
        self.leaders = leaders
        self.cluster_id = cluster_id
        self._send, self._outbox = anyio.create_memory_object_stream[Request](_OUTBOX)
        self._pending: dict[int, tuple[Request, float]] = {}
        self.connected = False

    def send(self, request: Request) -> None:
        if not self.connected:
            return
        try:
            self._send.send_nowait(request)
        except anyio.WouldBlock:
            pass  # a stalled peer: the core retries once it times out

    async def run(self) -> None:
        backoff = _BACKOFF_MIN_S
        while True:
            address = self.addresses.get(self.peer_id)
            try:
                if address is None:
                    raise OSError("address not known yet")
                # Kafka's framing says where each message ends: no need to wait for TLS close_notify.
                connecting = anyio.connect_tcp(*address, ssl_context=self.tls, tls_hostname=address[0],
                                               tls_standard_compatible=False) if self.tls else anyio.connect_tcp(*address)
                async with await connecting as stream:
                    backoff = _BACKOFF_MIN_S
                    self.connected = True
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(self._write, stream)
                        await self._read(stream)
                        tg.cancel_scope.cancel()
            except* _CONNECTION_LOST as group:
                log.debug("node %d: connection to %d: %s", self.node_id, self.peer_id, group.exceptions)
            finally:
                self.connected = False
                self._pending.clear()
                while True:  # what was queued for the lost connection is dropped
                    try:
                        self._outbox.receive_nowait()
                    except anyio.WouldBlock:
                        break
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    async def _write(self, stream: anyio.abc.ByteStream) -> None:
        async for request in self._outbox:
            entity = request_to_kafka(request, self.peer_id, cluster_id=self.cluster_id)
            self._pending[request.correlation] = (request, anyio.current_time() + self.request_timeout_s)
            await stream.send(encode_request(entity, request.correlation, f"raft-client-{self.node_id}"))

    async def _read(self, stream: anyio.abc.ByteStream) -> None:
        reader = FrameReader(_MAX_FRAME)
        while True:
            oldest = min((deadline for _, deadline in self._pending.values()), default=None)
            with anyio.fail_after(None if oldest is None else max(0.0, oldest - anyio.current_time())):
                data = await stream.receive()
            for frame in reader.feed(data):
                correlation = int.from_bytes(frame[:4], "big", signed=True)
                pending = self._pending.pop(correlation, None)
                if pending is None:
                    raise OSError(f"response to unknown correlation id {correlation}")
                request = pending[0]
                api_key = api_key_of(request)
                _, entity = decode_response(bytes(frame), api_key, API_VERSIONS[api_key])
                await self.deliver(self.peer_id, response_from_kafka(entity, request, self.leaders))


def source_of(request: Request) -> int:
    """The node a request comes from, as the request names it."""
    match request:
        case VoteRequest():
            return request.candidate_id
        case BeginQuorumEpochRequest() | EndQuorumEpochRequest():
            return request.leader_id
        case FetchRequest() | FetchSnapshotRequest():
            return request.replica_id
    raise TypeError(request)


class Inbound:
    """One connection accepted on the controller listener. Responses are written in the
    order of the requests, as Kafka requires, though the core may answer a parked Fetch
    after requests that came later. A Raft request from a principal `raft_authorized`
    refuses is answered CLUSTER_AUTHORIZATION_FAILED, and its core never sees it."""

    def __init__(self, stream: anyio.abc.ByteStream, other: OtherApis | None = None, principal: str = ANONYMOUS,
                 host: str = "", raft_authorized: RaftAuthorization = lambda principal, host: True) -> None:
        self.stream = stream
        self.other = other
        self.principal, self.host = principal, host
        self.raft_authorized = raft_authorized
        self._order: deque[int] = deque()
        self._ready: dict[int, bytes] = {}
        self._wake = anyio.Event()
        # Answers to the other APIs (a CreateTopics waits for its records to commit) are
        # worked on concurrently, but no more than this many at once per connection.
        self._in_flight = anyio.Semaphore(_OTHER_IN_FLIGHT)

    def answer(self, correlation: int, entity: Any) -> None:
        chunks, _ = encode_response(correlation, entity)
        self._ready[correlation] = b"".join(bytes(c) for c in chunks)
        self._wake.set()

    async def serve(self, receive: Callable[[int, Request, Inbound], Awaitable[None]]) -> None:
        try:
            async with self.stream, anyio.create_task_group() as tg:
                tg.start_soon(self._write)
                await self._read(receive, tg)
                tg.cancel_scope.cancel()
        except* (*_CONNECTION_LOST, ValueError) as group:
            log.info("closing controller connection: %s", group.exceptions)

    async def _read(self, receive: Callable[[int, Request, Inbound], Awaitable[None]], tg: anyio.abc.TaskGroup) -> None:
        reader = FrameReader(_MAX_FRAME)
        async for data in self.stream:
            for frame in reader.feed(data):
                api_key, version, correlation = peek_header(frame)
                self._order.append(correlation)
                if api_key == _API_VERSIONS_KEY and response_type(api_key, version) is not None:
                    self.answer(correlation, _api_versions(version, self.other))
                elif API_VERSIONS.get(api_key) == version and not self.raft_authorized(self.principal, self.host):
                    log.info("refusing %s's Raft request (api key %d) from %s: not authorized", self.principal, api_key, self.host)
                    self.answer(correlation, error_response(response_type(api_key, version), ErrorCode.cluster_authorization_failed))
                elif API_VERSIONS.get(api_key) == version:
                    _, body = decode_request(frame, api_key, version)
                    request = request_from_kafka(body, correlation)
                    await receive(source_of(request), request, self)
                elif self.other is not None and api_key in self.other.versions:
                    await self._in_flight.acquire()
                    tg.start_soon(self._answer_other, self.other, frame, self.principal, self.host)
                else:
                    raise OSError(f"unsupported request: api key {api_key} version {version}")

    async def _answer_other(self, other: OtherApis, frame: bytes | bytearray, principal: str, host: str) -> None:
        try:
            correlation, response = await other.respond(frame, principal, host)
            self.answer(correlation, response)
        finally:
            self._in_flight.release()

    async def _write(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            while self._order and self._order[0] in self._ready:
                await self.stream.send(self._ready.pop(self._order.popleft()))


@dataclass(frozen=True)
class OtherApis:
    """The controller's APIs besides Raft's (CreateTopics, BrokerRegistration, ...): the
    versions of each, and what answers a request frame, from a principal at a host, with
    (correlation id, response)."""

    versions: Mapping[int, tuple[int, int]]
    respond: Callable[[bytes | bytearray, str, str], Awaitable[tuple[int, Any]]]


def _api_versions(version: int, other: OtherApis | None) -> Any:
    """The APIs a controller listener answers here: each Raft API at the one version spoken,
    and the controller's others."""
    body = response_type(_API_VERSIONS_KEY, version)
    api_version = sys.modules[body.__module__].ApiVersion
    versions = kio_versions(_API_VERSIONS_KEY)
    assert versions is not None
    keys = [(key, v, v) for key, v in sorted(API_VERSIONS.items())] + [(_API_VERSIONS_KEY, *versions)]
    keys += [(key, lo, hi) for key, (lo, hi) in sorted((other.versions if other else {}).items())]
    return body(error_code=ErrorCode.none, throttle_time=i32Timedelta.parse(datetime.timedelta(0)),
                api_keys=tuple(api_version(api_key=i16(k), min_version=i16(lo), max_version=i16(hi)) for k, lo, hi in keys))
