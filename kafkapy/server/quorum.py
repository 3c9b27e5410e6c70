"""A Raft voter for real: one RaftCore, its durable storage, a timer, and the network.

Every input of the core (a message, a timer tick, an append) runs under one lock, and
its Output is carried out before the next input is taken, in the Output's order: the
quorum state and log operations made durable in a worker thread, then the messages
sent, then the committed records handed on. That order is what makes a granted vote
or a fetched offset a promise, so nothing is sent before it is durable.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
from anyio.streams.tls import TLSAttribute, TLSListener

from ..clock import Clock, SystemClock
from ..log.config import LogConfig
from ..raft.core import RaftCore, Role
from ..raft.local import MetadataLogFailure
from ..raft.messages import (
    BeginQuorumEpochResponse,
    EndQuorumEpochResponse,
    FetchResponse,
    FetchSnapshotResponse,
    Message,
    Request,
    Response,
    VoteResponse,
)
from ..raft.output import NO_LEADER, CommitListener, NotLeader, Output, RaftConfig, SnapshotId
from ..raft.retention import MetadataRetention
from ..raft.snapshot import Snapshot as SnapshotFile
from ..raft.snapshot import decode_snapshot, encode_snapshot
from ..raft.wire import response_to_kafka
from ..security.principal import ANONYMOUS, NoMatchingRule
from ..security.x500 import CertificateError
from .quorum_connections import Inbound, OtherApis, Peer, RaftAuthorization
from .quorum_storage import RaftStorage
from .tls import QuorumTls

log = logging.getLogger(__name__)

_DEFAULT_TIMEOUTS = RaftConfig()
# About what a record adds to its value in a batch: what snapshot thresholds count in bytes.
_RECORD_OVERHEAD = 16

# As long as Kafka's controller gives its Raft client to shut down.
_RESIGN_TIMEOUT_S = 5.0

_RESPONSES = (VoteResponse, BeginQuorumEpochResponse, EndQuorumEpochResponse, FetchResponse, FetchSnapshotResponse)


class QuorumServer:
    """Runs one voter of a static quorum (Kafka's controller.quorum.voters). `addresses`
    maps each voter to its controller listener; it is read at each connection attempt,
    so a voter restarted on another port is found again once its entry is updated."""

    def __init__(self, node_id: int, voters: Sequence[int], addresses: MutableMapping[int, tuple[str, int]], directory: Path,
                 config: RaftConfig = _DEFAULT_TIMEOUTS, *, host: str = "127.0.0.1", port: int = 0,
                 cluster_id: str | None = None, clock: Clock | None = None,
                 on_commit: CommitListener | None = None,
                 on_snapshot: Callable[[SnapshotFile], None] | None = None, log_config: LogConfig | None = None,
                 tls: Callable[[], QuorumTls | None] = lambda: None) -> None:
        self.node_id = node_id
        self.addresses = addresses
        self.voters = sorted(voters)
        self.directory = directory
        self.config = config
        self.host, self.port = host, port
        self.cluster_id = cluster_id
        self.clock = clock or SystemClock()
        self.on_commit = on_commit
        """Told of the records each Output commits, in order, after the snapshot: the state machine's feed."""
        self.other_apis: OtherApis | None = None
        """The controller's other APIs, answered on this listener once the broker is up."""
        self.on_snapshot = on_snapshot
        self.log_config = log_config or LogConfig()
        """The metadata log's segments (metadata.log.segment.bytes, .ms); its retention is the snapshots'."""
        self._load_tls = tls
        self.tls: QuorumTls | None = None
        """The controller listener's TLS and the voters' client context, read at start; None: plaintext."""
        self.raft_authorized: RaftAuthorization = lambda principal, host: True
        """Whether a principal may send Raft's requests; the authorizer's, when there is one."""
        self.snapshot: SnapshotFile | None = None
        """The snapshot the state machine last loaded (on start, or fetched from the leader)."""
        self.core: RaftCore | None = None
        self._storage: RaftStorage | None = None
        self._lock = anyio.Lock()
        self._deadline_changed = anyio.Event()
        self._peers: dict[int, Peer] = {}
        self._waiting: dict[tuple[int, int], Inbound] = {}  # (source, correlation) -> where to answer
        self._appends: list[tuple[int, int, anyio.Event, list[BaseException]]] = []  # (epoch, offset, done, error)
        self._other_leader = anyio.Event()  # set once a voter other than this one is known to lead
        self.handed_on_high_watermark: int | None = None
        """The high watermark as of the last records handed to on_commit: the state machine
        holds everything committed below it."""
        self.failure: MetadataLogFailure | None = None
        """Why this voter halted: what it could not persist. run() raises it."""
        self._failed = anyio.Event()

    # -- what callers use -----------------------------------------------------------

    @property
    def is_voter(self) -> bool:
        return self.node_id in self.voters

    @property
    def is_leader(self) -> bool:
        return self.core is not None and self.core.role is Role.LEADER

    @property
    def high_watermark(self) -> int | None:
        return None if self.core is None else self.core.high_watermark

    async def append(self, values: Sequence[bytes]) -> int:
        """Appends records on the leader; returns the offset of the last one once the
        quorum has committed it. Raises NotLeader if this node is not the leader, or
        stops being it before the records commit (they may still commit later)."""
        done = anyio.Event()
        error: list[BaseException] = []
        async with self._lock:
            core = self._running_core()
            last, output = core.append(self.clock.monotonic_ms(), values)
            self._appends.append((core.epoch, last, done, error))
            await self._carry_out(output)
        await done.wait()
        if error:
            raise error[0]
        return last

    async def resign(self) -> None:
        """Before a graceful stop, as Kafka's controller on shutdown: a leader tells the
        voters it is leaving (EndQuorumEpoch, naming the most caught-up first), so they
        elect a successor at once rather than after their fetch timeout. Returns once
        another leader is known, or after _RESIGN_TIMEOUT_S."""
        async with self._lock:
            core = self.core
            if core is None or core.role is not Role.LEADER or len(self.voters) == 1:
                return
            log.info("Resigning the leadership of the metadata quorum (epoch %d) before stopping", core.epoch)
            # A resigned voter grants no (pre-)votes, as Kafka's: a successor needs a majority
            # of the others reachable. Without one (a cluster stopping node by node) none can
            # come, and waiting would only delay the stop.
            reachable = [voter for voter, peer in self._peers.items() if peer.connected]
            successor_can_win = len(reachable) > len(self.voters) // 2
            self._other_leader = anyio.Event()
            await self._carry_out(core.resign(self.clock.monotonic_ms()))
        if successor_can_win:
            with anyio.move_on_after(_RESIGN_TIMEOUT_S):
                await self._other_leader.wait()

    async def take_snapshot(self, end_offset: int, values: Callable[[], Iterable[bytes]],
                            last_contained_log_timestamp: int) -> SnapshotId | None:
        """Saves the state machine's state up to end_offset (committed, and where a batch
        ends) as a `.checkpoint` file, which followers behind the log start then fetch.
        `values` is called, and the file encoded, in a worker thread, with the core free to
        go on meanwhile. None if it cannot be kept any more (see below)."""
        async with self._lock:
            snapshot_id = self._running_core().snapshot_id_at(end_offset)
        now = self.clock.wall_ms()
        data = await anyio.to_thread.run_sync(lambda: b"".join(encode_snapshot(
            snapshot_id, values(), last_contained_log_timestamp=last_contained_log_timestamp, now_ms=now)))
        async with self._lock:
            core = self._running_core()
            newest = core.snapshot.snapshot_id.offset if core.snapshot is not None else -1
            # Meanwhile a newer snapshot may have come, or this node been elected (its high
            # watermark unknown until its epoch's first record commits).
            if end_offset <= newest or end_offset < core.log.start_offset or core.high_watermark is None:
                return None
            await self._carry_out(core.take_snapshot(end_offset, data))
        return snapshot_id

    async def delete_log_before(self, offset: int) -> None:
        """Lets the log start at offset, the end of a snapshot this node keeps."""
        async with self._lock:
            await self._carry_out(self._running_core().delete_log_before(offset))

    async def clean(self, retention: MetadataRetention, now_ms: int) -> bool:
        """Moves the log start up snapshot by snapshot while retention allows; True if it moved."""
        cleaned = False
        while True:
            async with self._lock:
                core, storage = self._running_core(), self._storage
                assert storage is not None
                target = await anyio.to_thread.run_sync(retention.next_log_start, self.directory, storage.log.size, now_ms)
                newest = core.snapshot.snapshot_id.offset if core.snapshot is not None else -1
                if target is None or not core.log.start_offset < target.offset <= newest:
                    return cleaned
                await self._carry_out(core.delete_log_before(target.offset))
            log.info("Metadata retention: log start moved to snapshot %s", target)
            cleaned = True

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Runs until cancelled. Reports started once the listener is bound (`port`)."""
        now = self.clock.monotonic_ms()
        storage = await anyio.to_thread.run_sync(RaftStorage, self.directory, self.voters, self.clock.wall_ms(), self.log_config)
        self._storage = storage
        try:
            state, raft_log, snapshot = await anyio.to_thread.run_sync(storage.load, self.clock.wall_ms())
            if snapshot is not None:
                self._load_snapshot(await anyio.to_thread.run_sync(decode_snapshot, snapshot.snapshot_id, snapshot.data))
            self.core = RaftCore(self.node_id, self.voters, raft_log, state, self.config, random.Random(), snapshot)
            self.tls = await anyio.to_thread.run_sync(self._load_tls)
            # An observer (a broker-only node) only fetches: nothing connects to it.
            tcp = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port) if self.is_voter else None
            listener: anyio.abc.Listener[Any] | None = tcp
            if tcp is not None:
                self.port = tcp.extra(anyio.abc.SocketAttribute.local_port)
                if self.tls is not None and self.tls.listener is not None:
                    listener = TLSListener(tcp, self.tls.listener.context, standard_compatible=False,
                                           handshake_timeout=self.tls.listener.handshake_timeout_s)
            async with contextlib.AsyncExitStack() as stack, anyio.create_task_group() as tg:
                if listener is not None:
                    await stack.enter_async_context(listener)
                timeout_s = self.config.request_timeout_ms / 1000
                for voter in self.voters:
                    if voter != self.node_id:
                        peer = Peer(self.node_id, voter, self.addresses, self._receive, timeout_s, storage.leaders, self.cluster_id,
                                    self.tls.client if self.tls is not None else None)
                        self._peers[voter] = peer
                        tg.start_soon(peer.run)
                async with self._lock:
                    await self._carry_out(self.core.start(now))
                tg.start_soon(self._timer)
                if listener is not None:
                    tg.start_soon(listener.serve, self._accept, tg)
                tg.start_soon(self._halt_on_failure)
                task_status.started()
        finally:
            self._fail_appends(NotLeader(self.core.epoch if self.core else 0, NO_LEADER))
            self.core = None
            with anyio.CancelScope(shield=True):
                # After a failed write or fsync nothing is flushed again: its pages may be gone.
                await anyio.to_thread.run_sync(storage.close if self.failure is None else storage.abandon)

    async def _halt_on_failure(self) -> None:
        """Ends run() with the failure, whichever task met it."""
        await self._failed.wait()
        assert self.failure is not None
        raise self.failure

    # -- inputs ---------------------------------------------------------------------

    def _running_core(self) -> RaftCore:
        if self.core is None or self.failure is not None:
            raise NotLeader(0, NO_LEADER)
        return self.core

    async def _accept(self, stream: anyio.abc.ByteStream) -> None:
        host = str(stream.extra(anyio.abc.SocketAttribute.remote_address, ("",))[0])
        principal = ANONYMOUS
        if self.tls is not None and self.tls.listener is not None:
            try:
                principal = self.tls.listener.principal_of(stream.extra(TLSAttribute.peer_certificate_binary))
            except (NoMatchingRule, CertificateError) as e:
                log.info("closing controller connection from %s: %s", host, e)
                await stream.aclose()
                return
        inbound = Inbound(stream, self.other_apis, principal, host, self.raft_authorized)
        try:
            await inbound.serve(self._receive_request)
        finally:
            # Requests the core had not answered when the connection went: nowhere to answer them.
            for key in [k for k, v in self._waiting.items() if v is inbound]:
                del self._waiting[key]

    async def _receive_request(self, source: int, request: Request, inbound: Inbound) -> None:
        self._waiting[(source, request.correlation)] = inbound
        await self._receive(source, request)

    async def _receive(self, source: int, message: Message) -> None:
        async with self._lock:
            core = self._running_core()
            await self._carry_out(core.receive(self.clock.monotonic_ms(), source, message))

    async def _timer(self) -> None:
        while True:
            # A fresh event before reading the deadline: an Output carried out meanwhile sets it.
            self._deadline_changed = anyio.Event()
            deadline = self._running_core().next_deadline()
            delay = None if deadline is None else max(0, deadline - self.clock.monotonic_ms()) / 1000
            with anyio.move_on_after(delay):
                await self._deadline_changed.wait()
            now = self.clock.monotonic_ms()
            if deadline is not None and now >= deadline:
                async with self._lock:
                    await self._carry_out(self._running_core().tick(now))

    # -- carrying out an Output ---------------------------------------------------------

    async def _carry_out(self, output: Output) -> None:
        """Does what the core asked, in the order it asked it. Called under the lock."""
        core, storage = self._running_core(), self._storage
        assert storage is not None
        if core.leader_id != NO_LEADER:
            # The LeaderChangeMessage of a new epoch names its leader: the core's Entry does not.
            storage.leaders[core.epoch] = core.leader_id
        if output.state is not None or output.log:
            try:
                installed = await anyio.to_thread.run_sync(storage.persist, output.state, output.log, self.clock.wall_ms())
            except MetadataLogFailure as failure:
                # As Kafka: nothing of this Output is sent or handed on, no vote granted and no
                # offset acknowledged, and nothing more is persisted; the node halts.
                self._halt(failure)
                raise
            for snapshot in installed:
                self._load_snapshot(snapshot)
        for destination, message in output.send:
            if isinstance(message, _RESPONSES):
                self._respond(destination, message)
            else:
                peer = self._peers.get(destination)
                if peer is not None:
                    peer.send(message)
        if output.committed and self.on_commit is not None:
            size = sum(_RECORD_OVERHEAD + len(value) for _, value in output.committed)
            self.on_commit(output.committed, self.clock.wall_ms(), size)
        # Only now is everything below the high watermark handed on: the core learns it
        # before the records are persisted above.
        self.handed_on_high_watermark = core.high_watermark
        self._settle_appends(core)
        if core.leader_id not in (NO_LEADER, self.node_id):
            self._other_leader.set()
        self._deadline_changed.set()

    def _halt(self, failure: MetadataLogFailure) -> None:
        if self.failure is None:
            log.critical("Halting: %s", failure)
            self.failure = failure
            self._failed.set()

    def _load_snapshot(self, snapshot: SnapshotFile) -> None:
        self.snapshot = snapshot
        if self.on_snapshot is not None:
            self.on_snapshot(snapshot)

    def _respond(self, destination: int, response: Response) -> None:
        inbound = self._waiting.pop((destination, response.correlation), None)
        if inbound is None:
            return  # the connection the request came on is gone
        entity = response_to_kafka(response, leaders=self._storage.leaders if self._storage else {},
                                   voters=self.voters, timestamp=self.clock.wall_ms())
        inbound.answer(response.correlation, entity)

    def _settle_appends(self, core: RaftCore) -> None:
        high_watermark = core.high_watermark if core.high_watermark is not None else -1
        waiting = []
        for epoch, offset, done, error in self._appends:
            if offset < high_watermark:
                done.set()
            elif core.role is not Role.LEADER or core.epoch != epoch:
                error.append(NotLeader(core.epoch, core.leader_id))
                done.set()
            else:
                waiting.append((epoch, offset, done, error))
        self._appends = waiting

    def _fail_appends(self, error: NotLeader) -> None:
        for _, _, done, errors in self._appends:
            errors.append(error)
            done.set()
        self._appends = []
