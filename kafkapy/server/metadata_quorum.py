"""The metadata quorum of a cluster: KRaft over the Raft shell, seen as the metadata layer
and the controller see a quorum. The active controller is the Raft leader once its
epoch's first record is committed: by then every record of earlier epochs has been
handed to the state machine, so decisions are made on the whole image."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import anyio

from ..broker.controller_service import NotController
from ..clock import Clock
from ..config import BrokerConfig
from ..handlers import CONTROLLER_APIS, Node, respond
from ..kraft_config import parse_listeners
from ..log.config import LogConfig
from ..log.manager import METADATA_PARTITION
from ..metadata.acls import AclOperation
from ..metadata.manager import MetadataManager
from ..raft.core import Role
from ..raft.describe import QuorumDescription, describe_leader
from ..raft.local import Appended
from ..raft.output import NO_LEADER, CommitListener, NotLeader, RaftConfig, SnapshotId
from ..raft.retention import MetadataRetention
from ..security.authorizer import Authorizer
from .metadata_log import metadata_log_settings
from .quorum import QuorumServer
from .quorum_connections import OtherApis
from .tls import quorum_tls

_CATCH_UP_POLL_S = 0.01


class RaftMetadataQuorum:
    def __init__(self, server: QuorumServer, clock: Clock, retention: MetadataRetention | None = None) -> None:
        self.server = server
        self.clock = clock
        self.retention = retention or MetadataRetention()

    @property
    def on_commit(self) -> CommitListener | None:
        return self.server.on_commit

    @on_commit.setter
    def on_commit(self, listener: CommitListener | None) -> None:
        self.server.on_commit = listener

    @property
    def end_offset(self) -> int:
        core = self.server.core
        return core.log.end_offset if core is not None else 0

    @property
    def leader_id(self) -> int:
        core = self.server.core
        return core.leader_id if core is not None else NO_LEADER

    @property
    def leader_epoch(self) -> int:
        core = self.server.core
        return core.epoch if core is not None else -1

    def is_caught_up_leader(self) -> bool:
        core = self.server.core
        # A leader's high watermark is unknown until its LeaderChange record commits.
        return core is not None and core.role is Role.LEADER and core.high_watermark is not None

    async def wait_until_caught_up(self) -> None:
        """Until this node knows what the quorum has committed, and has applied it: what a
        node waits for before it serves or loads anything from its image. Knowing the high
        watermark is not enough: the core learns it before the records below it are
        persisted and handed on, and a broker that loaded its partitions from an image short
        of it would set aside the logs of every partition created since."""
        while self.server.handed_on_high_watermark is None:
            await anyio.sleep(_CATCH_UP_POLL_S)

    def describe(self) -> QuorumDescription | None:
        core = self.server.core
        # The shell hands the core this clock's monotonic time, so ages convert with it.
        return None if core is None else describe_leader(core, self.clock.monotonic_ms(), self.clock.wall_ms())

    async def append(self, values: list[bytes]) -> Appended:
        try:
            last = await self.server.append(values)
        except NotLeader as e:
            raise NotController(e.leader_id) from e
        return Appended(last, self.clock.wall_ms(), sum(len(v) for v in values))

    def snapshot_id_at(self, end_offset: int) -> SnapshotId | None:
        core = self.server.core
        # A new leader forgets its high watermark until its epoch's first record commits.
        if core is None or core.high_watermark is None or not core.log.start_offset <= end_offset <= core.high_watermark:
            return None
        return core.snapshot_id_at(end_offset)

    async def take_snapshot(self, snapshot_id: SnapshotId, values: Callable[[], Iterable[bytes]],
                            last_contained_log_timestamp: int) -> bool:
        try:
            return await self.server.take_snapshot(snapshot_id.offset, values, last_contained_log_timestamp) is not None
        except NotLeader:
            return False  # the quorum stopped meanwhile: this node is stopping

    async def clean_log(self, now_ms: int) -> bool:
        try:
            return await self.server.clean(self.retention, now_ms)
        except NotLeader:
            return False  # as above


def raft_config(config: BrokerConfig) -> RaftConfig:
    """The core's timeouts from Kafka's controller.quorum.* keys."""
    return RaftConfig(
        election_timeout_ms=config.int("controller.quorum.election.timeout.ms"),
        fetch_timeout_ms=config.int("controller.quorum.fetch.timeout.ms"),
        election_backoff_max_ms=config.int("controller.quorum.election.backoff.max.ms"),
        request_timeout_ms=config.int("controller.quorum.request.timeout.ms"),
        retry_backoff_ms=config.int("controller.quorum.retry.backoff.ms"),
    )


def metadata_log_dir(config: BrokerConfig) -> Path:
    """Where the metadata log lives: in the first log directory (Kafka's default metadata.log.dir)."""
    return config.log_dirs[0] / f"{METADATA_PARTITION[0]}-{METADATA_PARTITION[1]}"


def raft_metadata(config: BrokerConfig, clock: Clock, cluster_id: str) -> tuple[QuorumServer, RaftMetadataQuorum, MetadataManager]:
    """A cluster member's metadata layer over its Raft shell, with its snapshots and retention."""
    settings = metadata_log_settings(config)
    server = raft_quorum_server(config, clock, cluster_id, settings.log_config)
    quorum = RaftMetadataQuorum(server, clock, settings.retention)
    metadata = MetadataManager(quorum, settings.policy)
    # The quorum loads this node's newest snapshot as it starts, or the leader's later.
    server.on_snapshot = metadata.install_snapshot
    authorizer = Authorizer.from_config(config)
    if authorizer is not None:
        # As Kafka's ControllerApis: Raft's requests need CLUSTER_ACTION on the cluster; until
        # the ACLs are loaded, only super users (and, with allow.everyone.if.no.acl.found, anyone) have it.
        server.raft_authorized = lambda principal, host: authorizer.authorize_cluster(
            metadata.image.acls, principal, host, AclOperation.CLUSTER_ACTION)
    return server, quorum, metadata


def raft_quorum_server(config: BrokerConfig, clock: Clock, cluster_id: str, log_config: LogConfig) -> QuorumServer:
    """This node's voter of controller.quorum.voters, on its controller listener (or its
    observer, on a broker-only node)."""
    voters = config.quorum_voters
    controller_names = config.strings("controller.listener.names")
    # A broker-only node has no controller listener: it is an observer, and only fetches.
    listener = next((lst for lst in parse_listeners(config.strings("listeners")) if lst.name in controller_names), None)
    addresses = {v.node_id: (v.host, v.port) for v in voters}
    host, port = (listener.host or "0.0.0.0", listener.port) if listener is not None else ("127.0.0.1", 0)
    return QuorumServer(config.node_id, [v.node_id for v in voters], addresses, metadata_log_dir(config), raft_config(config),
                        host=host, port=port, cluster_id=cluster_id, clock=clock, log_config=log_config,
                        tls=lambda: quorum_tls(config))


def controller_apis(node: Node) -> OtherApis:
    """What the controller listener answers besides Raft: Kafka's ControllerApis."""
    versions = {key: (a.min_version, a.max_version) for key, a in CONTROLLER_APIS.items()}

    async def answer(frame: bytes | bytearray, principal: str, host: str) -> tuple[int, Any]:
        return await respond(node, frame, host, controller_listener=True, principal=principal)

    return OtherApis(versions, answer)
