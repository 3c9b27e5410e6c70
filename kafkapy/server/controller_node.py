"""A controller-only node (process.roles=controller), as Kafka's ControllerServer runs one:
a voter of the metadata quorum on its controller listener that applies what the quorum
commits, runs the active controller's write path while it leads (registrations,
heartbeats, fencing, topics, configs, producer id blocks) and answers the controller
APIs. It has no broker listener, hosts no partitions, runs no group or transaction
coordinator and never registers as a broker, so clients never hear of it: the brokers
forward to it what only the active controller may do.

`server_for` picks the server a node's process.roles ask for."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from ..broker.broker_peers import PeerRoutes
from ..broker.controller_service import ControllerService
from ..clock import Clock, SystemClock
from ..config import BrokerConfig
from ..handlers import Node
from ..handlers.faults import Faults
from ..kraft_config import Listener, parse_listeners
from ..security.authorizer import Authorizer
from .broker import BrokerServer
from .meta_properties import load_meta_properties
from .metadata_log import take_metadata_snapshots

if TYPE_CHECKING:
    from .quorum import QuorumServer

log = logging.getLogger(__name__)


class ControllerServer:
    def __init__(self, config: BrokerConfig, clock: Clock | None = None, faults: Faults | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.faults = faults or Faults(self.clock.monotonic_ms)
        self.listeners = parse_listeners(config.strings("listeners"))
        self.bound: list[Listener] = []
        """Broker listeners bound: none, the controller listener is the quorum's."""
        self.node: Node | None = None
        self._quorum_server: QuorumServer | None = None
        self._stop = anyio.Event()
        self._killed = False

    @property
    def port(self) -> int:
        """The controller listener's port."""
        assert self._quorum_server is not None
        return self._quorum_server.port

    @property
    def quorum_server(self) -> QuorumServer | None:
        return self._quorum_server

    @property
    def is_serving(self) -> bool:
        """Started: caught up with the quorum and answering the controller APIs."""
        return self.node is not None

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serves until `stop()` or `kill()` (or the task is cancelled)."""
        # Imported here, as a broker does: a single node never loads the Raft shell.
        from .metadata_quorum import controller_apis, raft_metadata

        config, clock = self.config, self.clock
        cluster_id = load_meta_properties(config.log_dirs, config.node_id, generate=False)
        quorum_server, quorum, metadata = raft_metadata(config, clock, cluster_id)
        self._quorum_server = quorum_server
        async with anyio.create_task_group() as tg:
            await tg.start(quorum_server.run)
            log.info("Waiting for the metadata quorum to elect a leader and tell this node what is committed")
            await quorum.wait_until_caught_up()
            controller_service = ControllerService.from_config(config, metadata, clock)
            node = self.node = Node(
                config=config, clock=clock, node_id=config.node_id, cluster_id=cluster_id, metadata=metadata,
                controller=controller_service.controller, controller_service=controller_service, faults=self.faults,
                authorizer=Authorizer.from_config(config),
            )
            quorum_server.other_apis = controller_apis(node)
            tg.start_soon(controller_service.run_duties, config)
            tg.start_soon(take_metadata_snapshots, metadata, clock)
            listener = next(lst for lst in self.listeners if lst.name in config.strings("controller.listener.names"))
            log.info("kafkapy controller %s started, listening on %s://%s:%d", config.node_id, listener.name, listener.host,
                     quorum_server.port)
            task_status.started()
            await self._stop.wait()
            if not self._killed:
                await quorum_server.resign()
            # Every record is durable before the quorum hears of it: there is nothing to flush.
            tg.cancel_scope.cancel()

    def stop(self) -> None:
        self._stop.set()

    def kill(self) -> None:
        """As kill -9 would stop it within a process: without resigning its leadership (a
        controller has nothing of its own to lose otherwise). For tests."""
        self._killed = True
        self._stop.set()


NodeServer = BrokerServer | ControllerServer


def server_for(config: BrokerConfig, clock: Clock | None = None, faults: Faults | None = None,
               peer_routes: PeerRoutes | None = None) -> NodeServer:
    """A broker (alone, or combined with a controller) or a controller-only node, as process.roles
    says; `peer_routes`: where the broker reaches the others, when not at their registered endpoints."""
    if "broker" in config.strings("process.roles"):
        return BrokerServer(config, clock, faults, peer_routes)
    return ControllerServer(config, clock, faults)
