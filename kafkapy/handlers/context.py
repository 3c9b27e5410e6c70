"""What a handler sees: the broker's services and the request's own context."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio

from ..broker.alter_partition import AlterPartitionManager
from ..broker.controller_channel import ControllerRouter
from ..broker.controller_service import ControllerService
from ..clock import Clock
from ..config import BrokerConfig
from ..coordinator.producer_ids import ProducerIdManager
from ..metadata.controller import Controller
from ..metadata.image import MetadataImage
from ..metadata.manager import MetadataManager
from .faults import Faults
from .group_runtime import GroupRuntime
from .replicas import ReplicaManager
from .txn_runtime import TransactionRuntime


class CloseConnection(Exception):
    """Raised by a handler when Kafka would close the client's connection instead of answering."""


@dataclass
class Broker:
    config: BrokerConfig
    clock: Clock
    node_id: int
    cluster_id: str
    metadata: MetadataManager
    controller: Controller
    controller_service: ControllerService
    controller_router: ControllerRouter
    replicas: ReplicaManager
    producer_ids: ProducerIdManager
    groups: GroupRuntime
    transactions: TransactionRuntime
    faults: Faults
    alter_partition: AlterPartitionManager
    """How a partition leader proposes ISR changes to the active controller."""
    stopping: anyio.Event = field(default_factory=anyio.Event)

    @property
    def image(self) -> MetadataImage:
        return self.metadata.image


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
