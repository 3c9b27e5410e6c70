"""A kafkapy cluster inside your process: several nodes, each on its own event loop
thread with its own ports and data, forming one KRaft quorum over 127.0.0.1. The voters
are combined nodes (broker and controller), or controller-only nodes beside broker-only
ones as Kafka is run in production.

    with kafkapy.Cluster(brokers=3) as cluster:                  # nodes 1..3, each both
        AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
        cluster.kill(cluster.active_controller())

    with kafkapy.Cluster(controllers=3, brokers=2) as cluster:   # controllers 1..3, brokers 4 and 5
        ...

Traffic between nodes goes through a relay per direction of each pair of nodes: to a
voter's controller listener (Raft, the controller channel), which the node finds in its
own controller.quorum.voters, and to a broker's listener (replica fetchers, transaction
markers and verification), which the node finds in its own peer routes rather than at
the endpoint that broker registered. So `partition({1}, {2, 3})` cuts every link between
groups of nodes, open connections included (clients still reach every node, at the
registered endpoints), and `heal()` restores them. `kill(node_id)` stops a node as abruptly as
a process can stop within one: no controlled shutdown, connections dropped, nothing
flushed, no clean-shutdown marker; `restart(node_id)` starts it again on the same
ports and data.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ..broker.broker_peers import PeerRoutes
from ..config import BROKER_CONFIGS, BrokerConfig
from ..server.controller_node import NodeServer, server_for
from ..server.meta_properties import format_storage, random_cluster_id

_READY_TIMEOUT_S = 30.0
_POLL_S = 0.02
# Timeouts a test can wait out: elections and fencing within a few seconds.
FAST_QUORUM = {
    "controller.quorum.election.timeout.ms": 500,
    "controller.quorum.fetch.timeout.ms": 1000,
    "controller.quorum.request.timeout.ms": 1000,
    "broker.heartbeat.interval.ms": 200,
    "broker.session.timeout.ms": 2000,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Relay:
    """Forwards connections to one listener of a node for one other node, until cut."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.cut = False
        self._open: set[anyio.abc.SocketStream] = set()

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=self.port)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        task_status.started()
        await listener.serve(self._relay)

    async def _relay(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            if self.cut:
                return
            try:
                upstream = await anyio.connect_tcp("127.0.0.1", self.target_port)
            except OSError:
                return
            async with upstream, anyio.create_task_group() as tg:
                self._open |= {client, upstream}
                try:
                    tg.start_soon(self._pump, client, upstream, tg)
                    await self._pump(upstream, client, tg)
                finally:
                    self._open -= {client, upstream}

    @staticmethod
    async def _pump(source: anyio.abc.SocketStream, sink: anyio.abc.SocketStream, tg: anyio.abc.TaskGroup) -> None:
        try:
            async for data in source:
                await sink.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        tg.cancel_scope.cancel()

    async def sever(self) -> None:
        self.cut = True
        for stream in list(self._open):
            await stream.aclose()


class ClusterNode:
    def __init__(self, node_id: int, config: BrokerConfig, peer_routes: PeerRoutes) -> None:
        self.node_id = node_id
        self.config = config
        self.peer_routes = peer_routes
        self.server: NodeServer | None = None
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._task: Future[Any] | None = None

    @property
    def port(self) -> int:
        """The first listener's port: a broker's client listener, a controller-only node's controller listener."""
        return int(self.config.strings("listeners")[0].rsplit(":", 1)[1])

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        self._portal_cm = start_blocking_portal(backend="asyncio")
        self._portal = self._portal_cm.__enter__()
        self.server = self._portal.call(server_for, self.config, None, None, self.peer_routes)
        # Not waiting for it to report started: that takes a quorum, the other nodes included.
        self._task = self._portal.start_task_soon(self.server.run)

    def stop(self, *, kill: bool = False) -> None:
        if self._portal is None or self.server is None or self._task is None:
            return
        self._portal.call(self.server.kill if kill else self.server.stop)
        try:
            self._task.result()  # raises what ended the node, as a halt on a failed log directory
        finally:
            assert self._portal_cm is not None
            self._portal_cm.__exit__(None, None, None)
            self._portal = self._portal_cm = self._task = None

    def read(self, what: Any) -> Any:
        """Calls `what(server)` on the node's own event loop, where its state lives."""
        assert self._portal is not None and self.server is not None
        return self._portal.call(lambda: what(self.server))

    def call(self, what: Any) -> Any:
        """Awaits `what(server)` on the node's own event loop: a service's coroutine."""
        assert self._portal is not None and self.server is not None
        server = self.server

        async def run() -> Any:
            return await what(server)

        return self._portal.call(run)


class Cluster:
    def __init__(self, brokers: int = 3, data_dir: str | Path | None = None, *, controllers: int = 0, broker_only: int = 0,
                 broker_listener: str = "PLAINTEXT", internal_listener: str | None = None, **overrides: object) -> None:
        """With `controllers=0` (the default): `brokers` combined nodes, ids 1..brokers, are
        the quorum's voters, and `broker_only` more nodes follow it as observers
        (process.roles=broker). With `controllers=N`: N controller-only nodes
        (process.roles=controller, ids 1..N) are the voters, and `brokers` broker-only
        nodes (ids N+1..N+brokers) register with them and serve the clients; `broker_only`
        must then be 0, every broker being one. Each broker serves clients and the other
        brokers on one listener named `broker_listener` (SSL: give the ssl.* overrides it
        needs). With an `internal_listener` name, each broker serves a second, PLAINTEXT
        listener of that name, which the brokers reach each other on
        (inter.broker.listener.name), the first staying the clients'. `data_dir` holds node-N directories (a
        temporary directory, removed on stop, when None); `overrides` are configs of every
        node, with Kafka's key names (dots, or underscores in a name without dots). Unless overridden,
        `offsets.topic.replication.factor` and `transaction.state.log.replication.factor`
        are the number of brokers, at most 3 (Kafka's default)."""
        if controllers and broker_only:
            raise ValueError("with controllers=N every broker is broker-only: give their number as brokers=")
        self.broker_listener = broker_listener
        self.internal_listener = internal_listener
        self._own_dir = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix="kafkapy-cluster-")) if data_dir is None else Path(data_dir)
        if controllers:
            self.voter_ids = list(range(1, controllers + 1))
            self.broker_ids = list(range(controllers + 1, controllers + brokers + 1))
        else:
            self.voter_ids = list(range(1, brokers + 1))
            self.broker_ids = list(range(1, brokers + broker_only + 1))
        self.node_ids = sorted({*self.voter_ids, *self.broker_ids})
        self.cluster_id = random_cluster_id()
        # As Kafka's own test clusters: the internal topics replicated to every broker, up to
        # Kafka's default of 3, so that a cluster of fewer brokers still has its coordinators.
        internal_topics = {key: min(3, len(self.broker_ids))
                           for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor")}
        inter_broker = {} if internal_listener is None else {
            "inter.broker.listener.name": internal_listener,
            "listener.security.protocol.map": f"{broker_listener}:{broker_listener},{internal_listener}:PLAINTEXT,CONTROLLER:PLAINTEXT",
        }
        self.overrides = {**FAST_QUORUM, **internal_topics, **inter_broker,
                          **{(k if k in BROKER_CONFIGS or "." in k else k.replace("_", ".")): v for k, v in overrides.items()}}
        self.nodes: dict[int, ClusterNode] = {}
        self._relays: list[tuple[tuple[int, int], _Relay]] = []  # ((source, target), relay), several per pair
        self._relay_portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._relay_portal: BlockingPortal | None = None

    @property
    def bootstrap_servers(self) -> str:
        """Every broker's client listener (controller-only nodes have none)."""
        return ",".join(f"127.0.0.1:{self.nodes[n].port}" for n in self.broker_ids)

    def start(self) -> Cluster:
        client_ports = {i: _free_port() for i in self.broker_ids}
        internal_ports = {i: _free_port() for i in self.broker_ids} if self.internal_listener is not None else client_ports
        controller_ports = {i: _free_port() for i in self.voter_ids}
        self._relay_portal_cm = start_blocking_portal(backend="asyncio")
        self._relay_portal = self._relay_portal_cm.__enter__()
        controller_relays = {(s, t): self._relay(controller_ports[t]) for s in self.node_ids for t in self.voter_ids if s != t}
        broker_relays = {(s, t): self._relay(internal_ports[t]) for s in self.broker_ids for t in self.broker_ids if s != t}
        self._relays = [*controller_relays.items(), *broker_relays.items()]
        for node_id in self.node_ids:
            # Each node reaches the others through its own relays, so that links can be cut one by one.
            voters = ",".join(
                f"{v}@127.0.0.1:{controller_ports[v] if v == node_id else controller_relays[(node_id, v)].port}"
                for v in self.voter_ids)
            listeners, roles = [], []
            if node_id in self.broker_ids:
                listeners.append(f"{self.broker_listener}://127.0.0.1:{client_ports[node_id]}")
                if self.internal_listener is not None:
                    listeners.append(f"{self.internal_listener}://127.0.0.1:{internal_ports[node_id]}")
                roles.append("broker")
            if node_id in self.voter_ids:
                listeners.append(f"CONTROLLER://127.0.0.1:{controller_ports[node_id]}")
                roles.append("controller")
            values = {
                "node.id": node_id, "log.dirs": str(self.data_dir / f"node-{node_id}"), "process.roles": ",".join(roles),
                "listeners": ",".join(listeners), "controller.quorum.voters": voters, **self.overrides,
            }
            config = BrokerConfig(values)
            format_storage(config.log_dirs, node_id, self.cluster_id)
            routes = {t: ("127.0.0.1", relay.port) for (s, t), relay in broker_relays.items() if s == node_id}
            self.nodes[node_id] = ClusterNode(node_id, config, routes)
        for node in self.nodes.values():
            node.start()
        self.wait_until_serving(self.node_ids)
        return self

    def _relay(self, target_port: int) -> _Relay:
        assert self._relay_portal is not None
        relay = _Relay(target_port)
        self._relay_portal.start_task(relay.serve)  # returns once the relay listens
        return relay

    def wait_until_serving(self, node_ids: Iterable[int], timeout_s: float = _READY_TIMEOUT_S) -> None:
        """Until each node is unfenced (it serves) and the quorum has an active controller."""
        wanted = list(node_ids)
        deadline = time.monotonic() + timeout_s
        while not (all(self._serving(n) for n in wanted) and self.active_controller() is not None):
            if time.monotonic() > deadline:
                raise TimeoutError(f"nodes {wanted} were not serving within {timeout_s} s")
            time.sleep(_POLL_S)

    def _serving(self, node_id: int) -> bool:
        node = self.nodes[node_id]
        return node.running and bool(node.read(lambda s: s.is_serving))

    def active_controller(self) -> int | None:
        """The node that is the active controller now, if any."""
        for node_id, node in self.nodes.items():
            if node.running and node.read(lambda s: s.node is not None and s.node.controller_service.is_active):
                return node_id
        return None

    def kill(self, node_id: int) -> None:
        self.nodes[node_id].stop(kill=True)

    def restart(self, node_id: int) -> None:
        node = self.nodes[node_id]
        node.stop()
        node.start()

    def partition(self, *groups: set[int]) -> None:
        """Cuts every link between nodes of different groups (both ways)."""
        group_of = {n: i for i, group in enumerate(groups) for n in group}
        assert self._relay_portal is not None
        for (source, target), relay in self._relays:
            if group_of.get(source) != group_of.get(target):
                self._relay_portal.call(relay.sever)

    def heal(self) -> None:
        for _, relay in self._relays:
            relay.cut = False

    def stop(self) -> None:
        # The brokers first, so that each one's controlled shutdown finds a controller.
        for node in sorted(self.nodes.values(), key=lambda n: n.node_id not in self.broker_ids):
            node.stop()
        if self._relay_portal_cm is not None and self._relay_portal is not None:
            self._relay_portal.call(self._relay_portal.stop, True)  # the relays serve until cancelled
            self._relay_portal_cm.__exit__(None, None, None)
            self._relay_portal_cm = self._relay_portal = None
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.stop()  # the relays and the nodes already started would outlive the failure
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
