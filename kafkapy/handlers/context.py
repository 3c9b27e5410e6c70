"""What a handler sees: the node's services (a broker's, or a controller-only node's) and
the request's own context."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import anyio

from ..broker.alter_partition import AlterPartitionManager
from ..broker.controller_channel import ControllerRouter
from ..broker.controller_service import ControllerService
from ..broker.group_runtime import GroupRuntime
from ..broker.replica_manager import ReplicaManager
from ..broker.txn_runtime import TransactionRuntime
from ..clock import Clock
from ..config import BrokerConfig
from ..coordinator.producer_ids import ProducerIdManager
from ..metadata.acls import CLUSTER_NAME, AclOperation, ResourceType
from ..metadata.controller import Controller
from ..metadata.image import MetadataImage
from ..metadata.manager import MetadataManager
from ..replication.fetch_session import FetchSessionCache
from ..security.authorizer import Authorizer
from ..security.principal import ANONYMOUS
from .faults import Faults


class CloseConnection(Exception):
    """Raised by a handler when Kafka would close the client's connection instead of answering."""


@dataclass
class Node:
    """What every node serves with: the metadata image it follows, and the controller it
    runs when it is the quorum's leader. A controller-only node (process.roles=controller)
    has this alone, for the APIs of its controller listener."""

    config: BrokerConfig
    clock: Clock
    node_id: int
    cluster_id: str
    metadata: MetadataManager
    controller: Controller
    controller_service: ControllerService
    faults: Faults
    authorizer: Authorizer | None
    """None when authorizer.class.name is empty: every request is allowed, at the cost of
    this one attribute check."""

    @property
    def image(self) -> MetadataImage:
        return self.metadata.image

    def authorized(self, ctx: RequestContext, operation: AclOperation, resource_type: ResourceType, name: str) -> bool:
        authorizer = self.authorizer
        return authorizer is None or authorizer.authorize(
            self.image.acls, ctx.principal, ctx.client_host, operation, resource_type, name)

    def authorized_on_cluster(self, ctx: RequestContext, operation: AclOperation) -> bool:
        return self.authorized(ctx, operation, ResourceType.CLUSTER, CLUSTER_NAME)

    def authorized_names(self, ctx: RequestContext, operation: AclOperation, resource_type: ResourceType,
                         names: Iterable[str]) -> set[str]:
        """Those of the names the request's principal may operate on."""
        authorizer = self.authorizer
        if authorizer is None:
            return set(names)
        acls = self.image.acls
        return {n for n in set(names)
                if authorizer.authorize(acls, ctx.principal, ctx.client_host, operation, resource_type, n)}

    def effective_config(self) -> BrokerConfig:
        """The static configuration under the image's dynamic configs for this node."""
        return self.config.with_dynamic(*self.image.dynamic_broker_configs(self.node_id))


@dataclass
class Broker(Node):
    """A node with the broker role: it hosts partitions, runs the group and transaction
    coordinators, and reaches the active controller through its router."""

    controller_router: ControllerRouter
    replicas: ReplicaManager
    producer_ids: ProducerIdManager
    groups: GroupRuntime
    transactions: TransactionRuntime
    alter_partition: AlterPartitionManager
    """How a partition leader proposes ISR changes to the active controller."""
    fetch_sessions: FetchSessionCache
    """The followers' incremental fetch sessions (KIP-227)."""
    stopping: anyio.Event = field(default_factory=anyio.Event)


@dataclass(frozen=True)
class RequestContext:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    client_host: str
    frame: bytes | bytearray = b""
    """The whole request, as received: what a broker forwards to the active controller."""
    via_controller_listener: bool = False
    principal: str = ANONYMOUS
    """Who sent the request, as Kafka's KafkaPrincipal in its Type:name form."""
    listener: str = "PLAINTEXT"
    """The name of the listener the request came on: the brokers' endpoints a response gives are that listener's."""
