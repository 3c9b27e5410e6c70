"""Assembles a broker from its parts and runs it: listeners, connections, background
work, and a graceful stop (stop accepting, finish requests in flight, flush, close)."""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from ..broker.alter_partition import AlterPartitionManager
from ..broker.broker_peers import BrokerPeers, PeerRoutes
from ..broker.controller_channel import ControllerRouter
from ..broker.controller_service import ControllerService
from ..broker.group_runtime import GroupRuntime, new_group_coordinator
from ..broker.lifecycle import BrokerLifecycleManager
from ..broker.replica_fetcher import ReplicaFetcherManager
from ..broker.replica_manager import ReplicaManager
from ..broker.txn_marker_channel import TxnMarkerChannel
from ..broker.txn_runtime import TRANSACTION_STATE, TransactionRuntime, new_transaction_coordinator
from ..clock import Clock, SystemClock
from ..config import BrokerConfig, ConfigError
from ..coordinator.producer_ids import ProducerIdManager
from ..handlers import Broker, Node
from ..handlers.faults import Faults
from ..handlers.write_txn_markers import write_markers
from ..kraft_config import Listener, parse_listeners
from ..listener_config import (
    inter_broker_listener_name,
    inter_broker_login,
    sasl_listener_names,
    security_protocol_id,
    ssl_listener_names,
)
from ..log.files import StorageError
from ..log.manager import METADATA_PARTITION, LogManager, TopicPartition, write_checkpoint
from ..metadata.brokers import Endpoint
from ..metadata.manager import MetadataManager
from ..metadata.partitions import UNKNOWN_BROKER_EPOCH
from ..raft.local import LocalQuorum
from ..replication.fetch_session import FetchSessionCache
from ..security.authorizer import Authorizer
from ..security.sasl import SaslListener
from ..security.scram import ScramCredential, image_credential
from ..wire.records import compiled_scan
from .connection import Connection, MemoryPool
from .connection_quotas import ConnectionQuotas, RequestMemory
from .meta_properties import load_meta_properties, refuse_partitions_without_metadata_log
from .metadata_log import metadata_log_settings, take_metadata_snapshots

if TYPE_CHECKING:
    from ..log.cleaner import LogCleaner
    from .jwks import JwksSource
    from .quorum import QuorumServer
    from .tls import ListenerTls

log = logging.getLogger(__name__)

_BACKGROUND_TICK_S = 0.5
_STOP_GRACE_S = 10.0
_UNFENCED_POLL_S = 0.01
# How long an accept loop waits before it tries again after accept() failed (out of file
# descriptors, most often: the pending connection stays queued, so the loop must not spin).
_ACCEPT_BACKOFF_S = 0.1
# Before a background task that failed starts again: errors that repeat are logged at
# this pace rather than in a tight loop.
_TASK_RESTART_BACKOFF_S = 1.0


class BrokerServer:
    def __init__(self, config: BrokerConfig, clock: Clock | None = None, faults: Faults | None = None,
                 peer_routes: PeerRoutes | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.faults = faults or Faults(self.clock.monotonic_ms)
        self.peer_routes = peer_routes or {}
        self.listeners = parse_listeners(config.strings("listeners"))
        self.advertised = parse_listeners(config.strings("advertised.listeners"))
        self.bound: list[Listener] = []
        self.broker: Broker | None = None
        self._sockets: list[socket.socket] = []
        self._listener_tls: dict[str, ListenerTls] = {}  # SSL listeners' TLS, by listener name, read at start
        self._inter_broker_tls: ssl.SSLContext | None = None  # as the client of the other brokers, read at start
        self._inter_broker_login = inter_broker_login(config)  # this broker's SASL login to the others, if it needs one
        inter_broker_listener = inter_broker_listener_name(config)
        assert inter_broker_listener is not None, "the configuration refuses a broker without a broker listener"
        self._inter_broker_listener = inter_broker_listener
        self._tls: dict[socket.socket, ListenerTls] = {}  # the same, by listening socket
        self._sasl: dict[socket.socket, SaslListener] = {}  # SASL listeners' settings, by listening socket
        self._sasl_listeners: dict[str, SaslListener] = {}  # by listener name
        self._jwks: list[JwksSource] = []  # the key sets OAUTHBEARER listeners check signed tokens against
        self._connections: set[Connection] = set()
        self._quotas = ConnectionQuotas(config.int("max.connections"), config.int("max.connections.per.ip"), {})
        self._slot_freed = anyio.Event()
        queued = config.int("queued.max.request.bytes")
        self._request_memory = MemoryPool(RequestMemory(queued)) if queued > 0 else None
        self._stop = anyio.Event()
        self._killed = False
        self._halted: StorageError | None = None
        self._logs: LogManager | None = None
        self._lifecycle: BrokerLifecycleManager | None = None
        self._quorum_server: QuorumServer | None = None
        # A quorum of several voters runs Raft between processes, and a broker-only node follows
        # the quorum as an observer; a combined node that is the only voter keeps its own log.
        self._raft_quorum_wanted = len(config.quorum_voters) > 1 or "controller" not in config.strings("process.roles")

    @property
    def port(self) -> int:
        return self.bound[0].port

    def _open_storage(self) -> tuple[str, LogManager, MetadataManager]:
        """The log directories and the metadata quorum; a single node's image is loaded here,
        a cluster member's arrives as its quorum catches up."""
        config, clock = self.config, self.clock
        node_id = config.node_id
        # Before anything is written: a cluster member's storage must have been formatted.
        cluster_id = load_meta_properties(config.log_dirs, node_id, generate=not self._raft_quorum_wanted)
        logs = LogManager(config.log_dirs, config.int("kafkapy.log.max.open.segment.files"))
        logs.dir_failure_listeners.append(self._on_log_dir_failure)
        logs.startup()
        self._logs = logs
        if self._raft_quorum_wanted:
            # Imported here: a single node never loads the Raft shell and its wire messages.
            from .metadata_quorum import raft_metadata

            self._quorum_server, _, metadata = raft_metadata(config, clock, cluster_id)
            return cluster_id, logs, metadata
        refuse_partitions_without_metadata_log(logs)
        settings = metadata_log_settings(config)
        metadata_log = logs.open(TopicPartition(*METADATA_PARTITION), settings.log_config, clock.wall_ms())
        quorum = LocalQuorum(metadata_log, clock, node_id=node_id, retention=settings.retention)
        # The metadata log's directory fails as a whole, which halts the node (see _on_log_dir_failure).
        quorum.on_failure = lambda failure: logs.fail_dir(metadata_log.directory.parent, failure.error, failure.during)
        metadata = MetadataManager(quorum, settings.policy)
        metadata.load()
        return cluster_id, logs, metadata

    def _open_services(self, cluster_id: str, logs: LogManager, metadata: MetadataManager) -> Broker:
        """Everything that serves, on a complete metadata image."""
        config, clock = self.config, self.clock
        node_id = config.node_id
        replicas = ReplicaManager(logs, config, clock, node_id)
        replicas.load(metadata.image)
        metadata.listeners.append(replicas.on_metadata)
        controller_service = ControllerService.from_config(config, metadata, clock)
        controller = controller_service.controller
        controllers = {v.node_id: (v.host, v.port) for v in config.quorum_voters}
        request_timeout_ms = config.int("controller.quorum.request.timeout.ms")
        # Long enough to ride out one election: the fetch timeout that notices the controller
        # gone, two election timeouts (randomised up to twice the setting), a request timeout.
        retry_window_ms = (config.int("controller.quorum.fetch.timeout.ms") + 2 * config.int("controller.quorum.election.timeout.ms")
                           + request_timeout_ms)
        # The quorum server has read the controller listener's TLS as it started.
        quorum_tls = self._quorum_server.tls if self._quorum_server is not None else None
        router = ControllerRouter(node_id, controller_service, controllers, lambda: metadata.quorum.leader_id, clock,
                                  request_timeout_ms, cluster_id, retry_window_ms, quorum_tls.client if quorum_tls else None)
        self._lifecycle = BrokerLifecycleManager(
            node_id, self._advertised_endpoints(), config.string_or_none("broker.rack"), router,
            lambda: metadata.image.offset, config.int("broker.heartbeat.interval.ms"),
        )

        async def reserve_producer_ids(size: int) -> int:
            assert self._lifecycle is not None
            return await router.reserve_producer_ids(node_id, self._lifecycle.broker_epoch, size)

        groups = GroupRuntime(config, lambda: new_group_coordinator(config, clock, metadata.image), metadata, router, replicas)
        producer_ids = ProducerIdManager(reserve_producer_ids)
        peers = BrokerPeers(metadata, config.int("request.timeout.ms"), self._inter_broker_listener, self.peer_routes,
                            self._inter_broker_tls,
                            self._inter_broker_login)
        markers = TxnMarkerChannel(node_id, metadata, peers, lambda entries: write_markers(replicas, metadata, groups, entries))
        transactions = TransactionRuntime(
            TRANSACTION_STATE, config, lambda: new_transaction_coordinator(config, clock, metadata.image, producer_ids),
            metadata, router, replicas, markers=markers,
        )
        lifecycle = self._lifecycle

        def member_epoch(broker_id: int) -> int:
            member = metadata.image.brokers.get(broker_id)
            return member.epoch if member is not None else UNKNOWN_BROKER_EPOCH

        alter_partition = AlterPartitionManager(router, node_id, lambda: lifecycle.broker_epoch, member_epoch)
        # Partition leaders propose ISR changes once the controller channel exists.
        replicas.alter_partition = alter_partition
        return Broker(
            config=config, clock=clock, node_id=node_id, cluster_id=cluster_id,
            metadata=metadata, controller=controller, controller_service=controller_service, controller_router=router,
            replicas=replicas,
            producer_ids=producer_ids, groups=groups, transactions=transactions, faults=self.faults,
            alter_partition=alter_partition,
            fetch_sessions=FetchSessionCache(config.int("max.incremental.fetch.session.cache.slots")),
            authorizer=Authorizer.from_config(config),
        )

    def _bind(self) -> None:
        sasl = self._sasl_listeners
        for listener in self.listeners:
            if listener.name in self.config.strings("controller.listener.names"):
                continue
            sock = socket.create_server((listener.host or "0.0.0.0", listener.port), backlog=1024)
            sock.setblocking(False)
            self._sockets.append(sock)
            if listener.name in self._listener_tls:
                self._tls[sock] = self._listener_tls[listener.name]
            if listener.name in sasl:
                self._sasl[sock] = sasl[listener.name]
            self.bound.append(Listener(listener.name, listener.host, sock.getsockname()[1]))

    def _scram_credential(self, user: str, mechanism: str) -> ScramCredential | None:
        assert self.broker is not None, "clients authenticate once the broker serves"
        return image_credential(self.broker.image.scram_credentials, user, mechanism)

    def _advertised_endpoints(self) -> tuple[Endpoint, ...]:
        """What the broker registers, as Kafka: each advertised broker listener, at the port
        it is bound to when it advertises none."""
        bound = {b.name: b for b in self.bound}
        endpoints = []
        for a in self.advertised:
            if a.name not in bound:
                continue  # a controller listener
            host = a.host if a.host not in ("", "0.0.0.0", "::") else socket.gethostname()
            endpoints.append(Endpoint(a.name, host, a.port or bound[a.name].port, security_protocol_id(self.config, a)))
        return tuple(endpoints)

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serves until `stop()` is called (or the task is cancelled), then stops gracefully."""
        if ssl_listener_names(self.config):
            # Imported only for a TLS listener (an SSL inter-broker listener is one): a
            # plaintext broker's start does without SSL contexts, certificate checks and
            # X.500 names.
            from .tls import inter_broker_client_tls, listener_tls

            self._listener_tls = await anyio.to_thread.run_sync(listener_tls, self.config)
            self._inter_broker_tls = await anyio.to_thread.run_sync(inter_broker_client_tls, self.config)
        self._quotas.per_ip_overrides = await anyio.to_thread.run_sync(_resolve_overrides, self.config.connections_per_ip_overrides)
        if sasl_listener_names(self.config):
            # Imported only for a SASL listener: a plaintext broker's start does without
            # the JAAS parser, the mechanisms' servers and the key sets' HTTP client.
            from .jwks import load_at_start
            from .sasl import listener_sasl

            self._sasl_listeners, self._jwks = listener_sasl(self.config, self._scram_credential)
            await anyio.to_thread.run_sync(load_at_start, self._jwks)
        self._bind()
        try:
            cluster_id, logs, metadata = self._open_storage()
        except BaseException:
            for sock in self._sockets:
                sock.close()
            raise
        try:
            async with anyio.create_task_group() as tg:
                if self._quorum_server is not None:
                    await tg.start(self._quorum_server.run)
                    await self._catch_up_with_quorum(metadata)
                self.broker = self._open_services(cluster_id, logs, metadata)
                if self._quorum_server is not None:
                    from .metadata_quorum import controller_apis

                    self._quorum_server.other_apis = controller_apis(self.broker)
                log.info("kafkapy broker %s started, listening on %s", self.broker.node_id,
                         ", ".join(f"{b.name}://{b.host}:{b.port}" for b in self.bound))
                if compiled_scan is None:
                    log.warning("Produce validation walks records in Python (kafkapy/wire/_records_scan.c was not built, "
                                "which `pip install` does where a C compiler is): about half a microsecond more CPU per record produced")
                lifecycle = self._lifecycle
                assert lifecycle is not None
                # Serve once the controller has unfenced this broker: its partitions have leaders again.
                tg.start_soon(self.broker.controller_service.run_duties, self.config)
                await lifecycle.start()
                await self._until_unfenced_in_image(metadata)
                tg.start_soon(lifecycle.run)
                accepting = anyio.CancelScope()
                accept_stopped = anyio.Event()
                tg.start_soon(self._accept_all, tg, accepting, accept_stopped)
                broker = self.broker
                tg.start_soon(self._supervised, "log flushes, retention and checkpoints", self._background)
                tg.start_soon(self._supervised, "idle connection expiry", self._expire_idle_connections)
                if self._jwks:
                    from .jwks import refresh_forever

                    for source in self._jwks:
                        tg.start_soon(self._supervised, f"JWKS refresh from {source.url}", partial(refresh_forever, source))
                tg.start_soon(self._replicate)
                tg.start_soon(self._supervised, "metadata snapshots",
                              lambda: take_metadata_snapshots(broker.metadata, self.clock))
                if self.config.bool("log.cleaner.enable"):
                    tg.start_soon(self._supervised, "log cleaner", self._clean_logs)
                await tg.start(self.broker.transactions.markers.run)
                for runtime in (self.broker.groups, self.broker.transactions):
                    await tg.start(runtime.run)
                task_status.started()
                await self._stop.wait()
                if self._killed:
                    tg.cancel_scope.cancel()
                else:
                    await self._shutdown(tg, accepting, accept_stopped)
        finally:
            for sock in self._sockets:
                sock.close()
            self._close_files()
        if self._halted is not None:
            raise self._halted

    @property
    def quorum_server(self) -> QuorumServer | None:
        """The Raft voter of a cluster member (None on a single node)."""
        return self._quorum_server

    @property
    def node(self) -> Node | None:
        """What every node serves with (a broker's services, here); None until started."""
        return self.broker

    @property
    def is_serving(self) -> bool:
        """Started, and unfenced by the active controller."""
        return self.broker is not None and self._lifecycle is not None and not self._lifecycle.fenced

    def principals(self) -> list[str]:
        """The principal of each client connection open now."""
        return [connection.principal for connection in self._connections]

    def connection_listeners(self) -> list[str]:
        """The listener of each connection open now, from clients and other brokers alike."""
        return [connection.listener for connection in self._connections]

    def reauthentications(self) -> int:
        """The SASL re-authentications completed on the client connections open now."""
        return sum(c.authenticator.reauthentications for c in self._connections if c.authenticator is not None)

    def stop(self) -> None:
        self._stop.set()

    def kill(self) -> None:
        """Stops as abruptly as kill -9 would within a process: no controlled shutdown, no
        answers to requests in flight, connections dropped, nothing flushed, no
        clean-shutdown marker (the next start recovers the logs). For tests."""
        self._killed = True
        self._stop.set()

    def _on_log_dir_failure(self, directory: Path, lost: list[TopicPartition]) -> None:
        """As Kafka: a broker goes on without a failed log directory, unless it holds the
        metadata log (the first of log.dirs, Kafka's default metadata.log.dir; so never the
        last one online); then it halts at once, as a kill would leave it, for the next
        start to recover."""
        assert self._logs is not None
        if directory != self._logs.dirs[0]:
            return
        failure = self._logs.offline_dirs[directory]
        log.critical("Halting: log directory %s holds the metadata log and is offline (%s)", directory, failure)
        self._halted = StorageError(f"log directory {directory} holds the metadata log and went offline ({failure}); "
                                    "fix or replace the disk and start again")
        self.kill()

    async def _supervised(self, name: str, task: Callable[[], Awaitable[None]]) -> None:
        """Runs a background task for the broker's life: an error in it is logged with the
        task's name and the task starts again after a backoff, never ending the broker.
        (I/O errors of a log directory are handled where they happen: it goes offline.)"""
        while True:
            try:
                await task()
                return
            except Exception:
                log.exception("Background task %s failed; it starts again in %.0f s", name, _TASK_RESTART_BACKOFF_S)
            await anyio.sleep(_TASK_RESTART_BACKOFF_S)

    async def _catch_up_with_quorum(self, metadata: MetadataManager) -> None:
        """Waits until this node knows what the quorum has committed, and has applied it."""
        from .metadata_quorum import RaftMetadataQuorum

        quorum = metadata.quorum
        assert isinstance(quorum, RaftMetadataQuorum)
        log.info("Waiting for the metadata quorum to elect a leader and tell this node what is committed")
        await quorum.wait_until_caught_up()

    async def _until_unfenced_in_image(self, metadata: MetadataManager) -> None:
        """The controller answers the heartbeat that unfences this broker once the record
        is committed, which this node may not have applied yet; clients learn the brokers
        from its image (a Metadata naming no broker leaves librdkafka waiting), so it
        serves once its image shows it unfenced too."""
        def unfenced() -> bool:
            registration = metadata.image.brokers.get(self.config.node_id)
            return registration is not None and not registration.fenced

        while not unfenced():
            await anyio.sleep(_UNFENCED_POLL_S)

    async def _accept_all(self, tg: anyio.abc.TaskGroup, scope: anyio.CancelScope, stopped: anyio.Event) -> None:
        """The accept loops, in a scope of their own: a stop cancels them before it closes the
        listening sockets, so that no loop still waits on a descriptor the system may have
        given to a new connection meanwhile."""
        try:
            with scope:
                async with anyio.create_task_group() as accepting:
                    for sock, bound in zip(self._sockets, self.bound, strict=True):
                        # As Kafka, the inter-broker listener is exempt from max.connections
                        # when clients have listeners of their own.
                        protected = bound.name == self._inter_broker_listener and len(self._sockets) > 1
                        accepting.start_soon(self._accept, sock, bound.name, tg, protected)
        finally:
            stopped.set()

    async def _accept(self, listener: socket.socket, listener_name: str, tg: anyio.abc.TaskGroup, protected: bool) -> None:
        max_request = self.config.int("socket.request.max.bytes")
        failing = False
        while True:
            # Over max.connections, connections wait in the listen backlog until one closes.
            while not self._quotas.slot_available(protected):
                await self._slot_freed.wait()
            await anyio.wait_readable(listener)
            try:
                sock, address = listener.accept()
            except (BlockingIOError, ConnectionAbortedError):
                continue
            except OSError as e:
                if listener.fileno() < 0:
                    return  # the listener was closed
                if not failing:
                    log.warning("Accepting connections failed (%s); retrying every %s s", errno.errorcode.get(e.errno or 0, e), _ACCEPT_BACKOFF_S)
                failing = True
                await anyio.sleep(_ACCEPT_BACKOFF_S)
                continue
            if failing:
                log.info("Accepting connections again")
                failing = False
            peer = str(address[0])
            if not self._quotas.admit(peer):
                log.info("Rejected connection from %s, address already has the configured maximum of %d connections",
                         peer, self._quotas.limit_for(peer))
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for key, option in (("socket.send.buffer.bytes", socket.SO_SNDBUF), ("socket.receive.buffer.bytes", socket.SO_RCVBUF)):
                if key in self.config.explicit and self.config.int(key) > 0:
                    sock.setsockopt(socket.SOL_SOCKET, option, self.config.int(key))
            assert self.broker is not None
            tls = self._tls.get(listener)
            connection = Connection(self.broker, sock, max_request, self._request_memory, peer, tls.session(sock, peer) if tls else None,
                                    self._sasl.get(listener), listener_name)
            self._connections.add(connection)
            tg.start_soon(self._serve, connection)

    async def _serve(self, connection: Connection) -> None:
        try:
            await connection.serve()
        finally:
            self._connections.discard(connection)
            self._quotas.released(connection.peer)
            self._slot_freed.set()
            self._slot_freed = anyio.Event()

    async def _expire_idle_connections(self) -> None:
        """connections.max.idle.ms: closes connections that neither received nor sent a
        byte for that long, a partly received request included; a request the broker is
        working on does not count as idle. A negative value turns this off, as in Kafka."""
        idle_s = self.config.int("connections.max.idle.ms") / 1000
        if idle_s < 0:
            return
        check_every_s = max(0.01, min(1.0, idle_s / 4))
        while True:
            await anyio.sleep(check_every_s)
            idle_since = time.monotonic() - idle_s
            for connection in list(self._connections):
                if not connection.busy and connection.last_active < idle_since:
                    connection.expire()

    async def _background(self) -> None:
        assert self.broker is not None and self._logs is not None
        checkpoint_every = self.config.int("log.flush.offset.checkpoint.interval.ms")
        retention_every = self.config.int("log.retention.check.interval.ms")
        high_watermarks_every = self.config.int("replica.high.watermark.checkpoint.interval.ms")
        last_checkpoint = last_retention = last_high_watermarks = self.clock.monotonic_ms()
        while True:
            await anyio.sleep(min(_BACKGROUND_TICK_S, retention_every / 1000))
            now = self.clock.monotonic_ms()
            await self.broker.replicas.flush_due()
            if now - last_retention >= retention_every:
                await self.broker.metadata.clean_log(self.clock.wall_ms())
                deleted = self._logs.enforce_retention(self.clock.wall_ms())
                if deleted:
                    log.info("Retention deleted %d segment(s)", deleted)
                self._logs.expire_producers(self.clock.wall_ms(), self.config.int("producer.id.expiration.ms"))
                last_retention = now
            self._logs.remove_deleted(self.clock.wall_ms())
            if now - last_checkpoint >= checkpoint_every:
                self._logs.checkpoint()
                last_checkpoint = now
            if now - last_high_watermarks >= high_watermarks_every:
                for path, entries in self._logs.high_watermark_checkpoints():
                    try:
                        await anyio.to_thread.run_sync(write_checkpoint, path, entries)
                    except OSError as e:
                        self._logs.fail_dir(path.parent, e, "writing the high watermark checkpoint")
                last_high_watermarks = now

    async def _replicate(self) -> None:
        """The replica fetchers, the ISR proposals, and the leader's periodic check for
        followers that fell out of sync (every half replica.lag.time.max.ms, as Kafka)."""
        assert self.broker is not None and self._lifecycle is not None
        replicas, lifecycle, metadata = self.broker.replicas, self._lifecycle, self.broker.metadata
        fetchers = ReplicaFetcherManager(replicas, self.config, lambda: metadata.image, lambda: lifecycle.broker_epoch,
                                         self._inter_broker_listener, self.peer_routes, self._inter_broker_tls,
                                         self._inter_broker_login)
        async def check_isr() -> None:
            while True:
                await anyio.sleep(replicas.lag_time_max_ms / 2 / 1000)
                replicas.check_isr()

        async with anyio.create_task_group() as tg:
            tg.start_soon(self._supervised, "replica fetchers", fetchers.run)
            tg.start_soon(self._supervised, "ISR change proposals", replicas.send_isr_changes)
            tg.start_soon(self._supervised, "ISR expiration", check_isr)

    async def _clean_logs(self) -> None:
        """Compacts the dirtiest compacted log, again and again, as Kafka's cleaner thread does.
        The heavy part runs in a worker thread; the swap happens on the event loop."""
        assert self._logs is not None
        logs, clock = self._logs, self.clock
        cleaner: LogCleaner | None = None
        backoff_s = self.config.int("log.cleaner.backoff.ms") / 1000
        while True:
            picked = logs.grab_filthiest_compacted_log(clock.wall_ms())
            if picked is None:
                await anyio.sleep(backoff_s)
                continue
            tp, target = picked
            if cleaner is None:
                # Imported at the first log to clean (the log manager's pick imports it then too).
                from ..log.cleaner import LogCleaner

                cleaner = LogCleaner(producer_id_expiration_ms=self.config.int("producer.id.expiration.ms"))
            end: int | None = None
            try:
                # Shielded: a stop waits for the files being written rather than leaking them.
                with anyio.CancelScope(shield=True):
                    plan = await anyio.to_thread.run_sync(cleaner.prepare, target, clock.wall_ms())
                if self._stop.is_set():
                    cleaner.abort(plan)
                else:
                    end = cleaner.commit(plan, clock.wall_ms())
            except OSError as e:
                logs.fail_dir(target.log.directory.parent, e, f"cleaning {tp}")
            except Exception:
                log.exception("Cleaning %s failed; it will not be cleaned again until a restart", tp)
            logs.done_cleaning(tp, target.log, end)

    async def _shutdown(self, tg: anyio.abc.TaskGroup, accepting: anyio.CancelScope, accept_stopped: anyio.Event) -> None:
        assert self.broker is not None and self._lifecycle is not None
        log.info("Stopping: controlled shutdown, then no new connections; finishing requests in flight")
        with anyio.move_on_after(_STOP_GRACE_S):
            await self._lifecycle.controlled_shutdown()
        accepting.cancel()
        await accept_stopped.wait()
        for sock in self._sockets:
            sock.close()
        self.broker.stopping.set()
        self.broker.replicas.wake_all()
        with anyio.move_on_after(_STOP_GRACE_S):
            while self._connections:
                for connection in list(self._connections):
                    connection.stop_if_idle()
                await anyio.sleep(0.01)
        if self._quorum_server is not None:
            await self._quorum_server.resign()
        tg.cancel_scope.cancel()

    def _close_files(self) -> None:
        if self._logs is not None:
            if self._killed:
                self._logs.abandon()
                log.info("Killed: logs left as they were")
            else:
                self._logs.shutdown()
                log.info("Stopped: logs flushed and closed")
            self._logs = None


def _resolve_overrides(overrides: dict[str, int]) -> dict[str, int]:
    """max.connections.per.ip.overrides by address: a host name counts for the address it
    resolves to, as Kafka's InetAddress.getByName gives it."""
    resolved: dict[str, int] = {}
    for host, count in overrides.items():
        try:
            address = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][4][0]
        except OSError as e:
            raise ConfigError(f"max.connections.per.ip.overrides names {host}, which does not resolve: {e}") from None
        resolved[str(address)] = count
    return resolved
