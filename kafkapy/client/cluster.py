"""The client's view of a cluster: connections to its brokers, found from a bootstrap
address, and its metadata (brokers, topics, partition leaders)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

from kio.schema.errors import ErrorCode

from .connection import BrokerUnreachable, ClientError, Connection, KafkaError, check, parse_address
from .security import ClientSecurity

RETRY_BACKOFF_S = 0.1
# FindCoordinator's key types.
GROUP_COORDINATOR, TRANSACTION_COORDINATOR = 0, 1

T = TypeVar("T")


@dataclass(frozen=True)
class PartitionInfo:
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True)
class TopicInfo:
    name: str
    topic_id: uuid.UUID
    internal: bool
    partitions: Mapping[int, PartitionInfo]


@dataclass(frozen=True)
class ClusterInfo:
    cluster_id: str | None
    controller: int
    brokers: Mapping[int, tuple[str, int]]
    topics: Mapping[str, TopicInfo]
    topic_errors: Mapping[str, int]
    """The error code of each requested topic the metadata does not describe."""
    racks: Mapping[int, str | None] = field(default_factory=dict)
    """Each broker's rack (broker.rack), None where it has none."""


class ClusterClient:
    """Connections to a cluster's brokers, found from a bootstrap address; the admin,
    records and groups clients build on it."""

    def __init__(self, bootstrap: str, client_id: str = "kafkapy", timeout: float = 30.0,
                 security: ClientSecurity | None = None) -> None:
        self.bootstrap = [parse_address(address) for address in bootstrap.split(",")]
        self.client_id = client_id
        self.timeout = timeout
        self.security = security
        self._connections: dict[tuple[str, int], Connection] = {}
        self._brokers: dict[int, tuple[str, int]] = {}
        self._topic_names: dict[uuid.UUID, str] = {}
        self._topic_ids: dict[str, uuid.UUID] = {}

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Connections

    def _connect(self, address: tuple[str, int], description: str) -> Connection:
        connection = self._connections.get(address)
        if connection is None or not connection.usable:
            if connection is not None:
                connection.close()
            connection = Connection(*address, description, self.client_id, self.timeout, self.security)
            self._connections[address] = connection
        return connection

    def any_broker(self) -> Connection:
        """A connection to the first bootstrap broker that accepts one."""
        failures = []
        for address in self.bootstrap:
            try:
                return self._connect(address, "the bootstrap broker")
            except BrokerUnreachable as e:
                failures.append(e)
        if len(failures) == 1:
            raise failures[0]
        raise BrokerUnreachable("; ".join(str(e) for e in failures))

    def broker(self, node_id: int) -> Connection:
        if node_id not in self._brokers:
            self.metadata([])
        address = self._brokers.get(node_id)
        if address is None:
            raise ClientError(f"broker {node_id} is not in the cluster's metadata")
        return self._connect(address, f"broker {node_id} (at the address it advertises)")

    def controller(self) -> Connection:
        """The broker topic changes go to (in a KRaft cluster any broker forwards them)."""
        controller = self.metadata([]).controller
        return self.broker(controller) if controller >= 0 else self.any_broker()

    def coordinator(self, key: str, key_type: int = GROUP_COORDINATOR) -> Connection:
        """A connection to the coordinator of a group, or of a transactional id."""
        what = f"group {key!r}" if key_type == GROUP_COORDINATOR else f"transactional id {key!r}"

        def find() -> Connection:
            response = self.any_broker().request("find_coordinator", {
                "key": key, "key_type": key_type, "coordinator_keys": [key],
            })
            found = response.coordinators[0] if hasattr(response, "coordinators") else response
            check(found.error_code, f"finding the coordinator of {what}", getattr(found, "error_message", None))
            return self._connect((found.host, found.port), f"the coordinator of {what} (broker {found.node_id})")

        return self._retrying(find)

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """attempt() again while it fails with a retriable error, within the client's timeout."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return attempt()
            except KafkaError as e:
                if not e.retriable or time.monotonic() > deadline:
                    raise
            time.sleep(RETRY_BACKOFF_S)

    # Metadata and topics

    def metadata(self, topics: Sequence[str] | None = None) -> ClusterInfo:
        """The brokers and the given topics (None: every topic)."""
        response = self.any_broker().request("metadata", {
            "topics": None if topics is None else [{"name": name, "topic_id": None} for name in topics],
            "allow_auto_topic_creation": False,
            "include_cluster_authorized_operations": False,
            "include_topic_authorized_operations": False,
        })
        self._brokers = {b.node_id: (b.host, b.port) for b in response.brokers}
        found, errors = {}, {}
        for topic in response.topics:
            if topic.error_code != ErrorCode.none:
                errors[topic.name] = topic.error_code
                continue
            topic_id = getattr(topic, "topic_id", None) or uuid.UUID(int=0)
            partitions = {
                p.partition_index: PartitionInfo(p.partition_index, p.leader_id, tuple(p.replica_nodes), tuple(p.isr_nodes))
                for p in topic.partitions
            }
            found[topic.name] = TopicInfo(topic.name, topic_id, topic.is_internal, partitions)
            self._topic_names[topic_id] = topic.name
            self._topic_ids[topic.name] = topic_id
        racks = {b.node_id: getattr(b, "rack", None) for b in response.brokers}
        return ClusterInfo(getattr(response, "cluster_id", None), getattr(response, "controller_id", -1),
                           dict(self._brokers), found, errors, racks)

    def topic(self, name: str) -> TopicInfo:
        """A topic's metadata, once each of its partitions has a leader (a new topic's may not yet)."""

        def lookup() -> TopicInfo:
            cluster = self.metadata([name])
            check(cluster.topic_errors.get(name, ErrorCode.none), f"topic {name!r}")
            info = cluster.topics[name]
            if any(p.leader < 0 for p in info.partitions.values()):
                raise KafkaError(ErrorCode.leader_not_available, f"topic {name!r}")
            return info

        return self._retrying(lookup)

    def _topic_name(self, entry: Any) -> str:
        """The topic a response entry is about: newer versions name it by id only."""
        for attribute in ("name", "topic"):
            name = getattr(entry, attribute, None)
            if name is not None:
                return name
        if entry.topic_id not in self._topic_names:
            self.metadata()
        return self._topic_names.get(entry.topic_id, str(entry.topic_id))

    def _topic_id(self, name: str) -> uuid.UUID:
        if name not in self._topic_ids:
            self.metadata([name])
        return self._topic_ids.get(name, uuid.UUID(int=0))
