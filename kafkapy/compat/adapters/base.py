"""The interface between scenarios and a client library.

A scenario is written once against `Client`; an adapter subclass implements each call
with its library. A call the library cannot make keeps the default here, which raises
`Unsupported`: the scenario is then reported as not supported by that client rather than
failed. Errors the broker answers with are raised as `BrokerError`, named as Kafka names
them, whichever library reported them.

Every call is bounded by TIMEOUT_S; the runner's deadline bounds the whole scenario.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..security import PLAINTEXT, ClientSecurity

TIMEOUT_S = 30.0
# How long a client is watched for the error it shows when the broker refuses its connection.
REFUSAL_WAIT_S = 20.0
COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")
# Producers are allowed requests this large so that the broker, not the client, decides
# what is too large (Kafka's default socket.request.max.bytes).
CLIENT_MAX_REQUEST_BYTES = 104_857_600

TOPIC = "topic"
BROKER = "broker"
# Operations of IncrementalAlterConfigs, as Kafka names them.
SET, DELETE, APPEND, SUBTRACT = "SET", "DELETE", "APPEND", "SUBTRACT"
# A consumer's isolation.level.
READ_UNCOMMITTED, READ_COMMITTED = "read_uncommitted", "read_committed"
# Group protocols (group.protocol) and the classic protocol's partition assignors.
CLASSIC, CONSUMER = "classic", "consumer"
RANGE, COOPERATIVE_STICKY = "range", "cooperative-sticky"
# Kafka's default group.min.session.timeout.ms: the shortest session a member may ask for.
MIN_SESSION_TIMEOUT_MS = 6000
# Heartbeats this often let the members of a classic group learn of a rebalance quickly.
HEARTBEAT_INTERVAL_MS = 500
# What a rebalance did to a member's partitions, as the rebalance listener calls name it.
ASSIGNED, REVOKED, LOST = "assigned", "revoked", "lost"


class Unsupported(Exception):
    """The client library has no way to do what the scenario asks."""


class BrokerError(Exception):
    """A Kafka error code from the broker; `name` is Kafka's, e.g. MESSAGE_TOO_LARGE."""

    def __init__(self, code: int, message: str | None = None) -> None:
        # Imported here: kio takes a quarter of a second to import, which workers that meet
        # no error are spared.
        from kio.schema.errors import ErrorCode

        try:
            self.name = ErrorCode(code).name.upper()
        except ValueError:
            self.name = f"ERROR_{code}"
        self.code = code
        super().__init__(f"{self.name}: {message}" if message else self.name)


@dataclass(frozen=True)
class Record:
    """A record as produced (partition None: the client's partitioner picks one; timestamp
    None: the client stamps it) or as acknowledged or consumed."""

    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp: int | None = None
    partition: int | None = None
    offset: int | None = None


@dataclass(frozen=True)
class Partition:
    index: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True)
class Cluster:
    cluster_id: str | None
    controller_id: int | None
    brokers: Mapping[int, tuple[str, int]]  # node id -> (host, port)


@dataclass(frozen=True)
class ConfigValue:
    value: str | None
    source: str  # Kafka's ConfigSource name, e.g. DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG
    read_only: bool


@dataclass(frozen=True)
class AclEntry:
    """An ACL, each part named as Kafka's admin clients name it: resource type TOPIC or
    GROUP, pattern type LITERAL or PREFIXED, operation READ, WRITE, DESCRIBE, ALL...,
    permission ALLOW or DENY; principal Type:name (User:* for everyone); host * for all."""

    resource_type: str
    resource_name: str
    pattern_type: str
    principal: str
    host: str
    operation: str
    permission: str


@dataclass(frozen=True)
class Committed:
    """A committed offset: the next offset to consume, and the metadata string committed with it."""

    offset: int
    metadata: str = ""


@dataclass(frozen=True)
class GroupMember:
    member_id: str
    instance_id: str | None
    assignment: frozenset[tuple[str, int]]  # (topic, partition)


@dataclass(frozen=True)
class Group:
    """A group as DescribeGroups tells it; state is Kafka's name for it, e.g. Stable, Empty."""

    state: str
    assignor: str
    members: tuple[GroupMember, ...]


@dataclass(frozen=True)
class Membership:
    """How a group consumer joins its group. The session timeout is Kafka's minimum by
    default, so that a dead member's partitions move as soon as Kafka allows."""

    group: str
    topic: str
    assignor: str = RANGE
    protocol: str = CLASSIC
    instance_id: str | None = None  # group.instance.id: a static member
    session_timeout_ms: int = MIN_SESSION_TIMEOUT_MS
    isolation: str = READ_UNCOMMITTED


@dataclass(frozen=True)
class Rebalance:
    """What one call of the rebalance listener did: ASSIGNED, REVOKED or LOST partitions
    (all of the member's with the eager protocol, only those moving with the cooperative one)."""

    kind: str
    partitions: frozenset[int]


class GroupConsumer:
    """A member of a consumer group, subscribed to one topic. It reads from the earliest
    offset of partitions the group has committed nothing for, commits only when told, and
    records each call of its rebalance listener in `rebalances`."""

    def __init__(self) -> None:
        self.rebalances: list[Rebalance] = []
        # Partition -> the offset after the last record poll returned.
        self.positions: dict[int, int] = {}

    def _consumed(self, records: list[Record]) -> list[Record]:
        for r in records:
            self.positions[r.partition] = r.offset + 1  # type: ignore[index,operator]
        return records

    def _to_commit(self, offsets: Mapping[int, Committed] | None, assigned: Iterable[int]) -> dict[int, Committed]:
        """offsets, or (None) the positions of what poll returned in the assigned partitions."""
        if offsets is not None:
            return dict(offsets)
        held = set(assigned)
        return {p: Committed(offset) for p, offset in self.positions.items() if p in held}

    def poll(self, timeout_s: float) -> list[Record]:
        """The records fetched within timeout_s (none is not an error); also runs the group
        protocol, rebalance listener included."""
        raise NotImplementedError

    def commit(self, offsets: Mapping[int, Committed] | None = None) -> None:
        """Commits synchronously the given offsets of the topic's partitions, or (None) the
        positions of what poll returned in the partitions assigned now."""
        raise NotImplementedError

    def member_id(self) -> str:
        raise NotImplementedError

    def close(self) -> None:
        """Leaves the group (a static member does not) and releases the consumer."""
        raise NotImplementedError


class ProducerSession:
    """An idempotent producer (acks=all, retries, up to 5 requests in flight), transactional
    when made with a transactional id, its transactions initialized."""

    def produce(self, topic: str, records: Sequence[Record]) -> list[Record]:
        """Sends the records and waits for their acknowledgement, as Client.produce does."""
        raise NotImplementedError

    def begin(self) -> None:
        raise NotImplementedError

    def send_offsets(self, consumer: GroupConsumer, offsets: Mapping[int, int]) -> None:
        """Adds the consumer group's offsets of its topic's partitions to the transaction."""
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class Client:
    """One client library. An instance may keep an admin client open between calls (as
    applications do); `close` releases it. The producers and consumers of `produce` and
    `consume` last one call, so that each starts from the broker's current metadata; the
    sessions of `producer` and `group_consumer` last until the scenario closes them."""

    # The library's name; a profile's client is named as the profile (see Adapter.connect).
    name: str

    def __init__(self, bootstrap: str, security: ClientSecurity = PLAINTEXT) -> None:
        self.bootstrap = bootstrap
        self.security = security

    @classmethod
    def unavailable(cls) -> str | None:
        """Why the client cannot run on this machine (its helper program cannot be had),
        or None; a Python library's absence the registry finds by itself."""
        return None

    def close(self) -> None:
        """Releases whatever the adapter keeps open."""

    def _lacks(self, feature: str) -> Unsupported:
        return Unsupported(f"{self.name} has no {feature}")

    # Connecting

    def connection_errors(self, within_s: float = REFUSAL_WAIT_S) -> list[str]:
        """The errors the client shows an application while it fails to connect with its
        settings (TLS handshake, SASL authentication), each once, in the order shown; []
        if it connects, or shows nothing within within_s."""
        raise self._lacks("way to show why it cannot connect")

    # Metadata

    def api_versions(self) -> dict[int, tuple[int, int]]:
        """The broker's ApiVersions answer: api key -> (min version, max version)."""
        raise self._lacks("call that returns the broker's ApiVersions")

    def cluster(self) -> Cluster:
        raise self._lacks("call that describes the cluster")

    def brokers(self) -> Mapping[int, tuple[str, int]]:
        """The brokers' addresses by node id, which every Metadata version carries (unlike the
        cluster id and controller of cluster())."""
        return self.cluster().brokers

    def topic_names(self) -> set[str]:
        raise self._lacks("call that lists topics")

    def partitions(self, topic: str) -> list[Partition]:
        """The topic's partitions from Metadata, in index order; BrokerError if it is unknown."""
        raise self._lacks("call that describes a topic's partitions")

    # Topics

    def create_topic(self, topic: str, partitions: int, configs: Mapping[str, str] | None = None) -> None:
        raise self._lacks("CreateTopics call")

    def delete_topic(self, topic: str) -> None:
        raise self._lacks("DeleteTopics call")

    def create_partitions(self, topic: str, total: int) -> None:
        """Grows the topic to `total` partitions."""
        raise self._lacks("CreatePartitions call")

    # Produce and consume

    def produce(self, topic: str, records: Sequence[Record], compression: str = "none") -> list[Record]:
        """Sends records with acks=all; returns them as acknowledged (with the timestamp,
        partition and offset they were stored with), in the order given. Raises BrokerError
        with the first error a record was refused with."""
        raise self._lacks("producer")

    def consume(self, topic: str, ends: Mapping[int, int], starts: Mapping[int, int] | None = None,
                isolation: str = READ_UNCOMMITTED) -> list[Record]:
        """Every record from starts[partition] (default 0; below the log start the consumer
        resets to the earliest offset) up to ends[partition], in the order fetched. A gap
        (compaction, control records, aborted transactions) may put a partition's last
        record below its end: it is complete once the consumer's position reaches the end."""
        raise self._lacks("consumer")

    # Idempotent and transactional producers

    def producer(self, transactional_id: str | None = None, transaction_timeout_ms: int | None = None) -> ProducerSession:
        """BrokerError if the broker refuses to initialize the transactions."""
        raise self._lacks("idempotent producer")

    # Consumer groups

    def group_consumer(self, membership: Membership) -> GroupConsumer:
        raise self._lacks("group consumer")

    def list_groups(self) -> dict[str, str]:
        """Group id -> state, of every group."""
        raise self._lacks("ListGroups call")

    def describe_group(self, group: str) -> Group:
        raise self._lacks("DescribeGroups call")

    def group_offsets(self, group: str) -> dict[tuple[str, int], Committed]:
        """The group's committed offsets, by (topic, partition)."""
        raise self._lacks("call that lists a group's committed offsets")

    def alter_group_offsets(self, group: str, offsets: Mapping[tuple[str, int], Committed]) -> None:
        """Commits offsets for the group as an administrator (the group must be empty)."""
        raise self._lacks("call that alters a group's committed offsets")

    def delete_group(self, group: str) -> None:
        raise self._lacks("DeleteGroups call")

    # ListOffsets

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        """(earliest, latest) offsets."""
        raise self._lacks("call that lists earliest and latest offsets")

    def offset_for_time(self, topic: str, partition: int, timestamp: int) -> int | None:
        """The first offset whose record's timestamp is at or after timestamp, or None."""
        raise self._lacks("call that looks offsets up by time")

    # Configs: a resource is (TOPIC, topic name) or (BROKER, node id as a string).

    def describe_configs(self, resource: tuple[str, str]) -> dict[str, ConfigValue]:
        """Every config of the resource, defaults included."""
        raise self._lacks("DescribeConfigs call")

    def incremental_alter_configs(self, resource: tuple[str, str], ops: Sequence[tuple[str, str, str | None]]) -> None:
        """Applies (name, SET | DELETE | APPEND | SUBTRACT, value) operations at once."""
        raise self._lacks("IncrementalAlterConfigs call")

    def alter_configs(self, resource: tuple[str, str], configs: Mapping[str, str]) -> None:
        """The legacy AlterConfigs request, which sets the resource's dynamic configs."""
        raise self._lacks("legacy AlterConfigs call")

    # DeleteRecords

    def delete_records(self, topic: str, partition: int, before: int) -> int:
        """Deletes the records before offset `before` (-1: all); returns the new log start."""
        raise self._lacks("DeleteRecords call")

    # ACLs

    def create_acls(self, acls: Sequence[AclEntry]) -> None:
        """Raises BrokerError with the first refusal: SECURITY_DISABLED from a broker without an authorizer."""
        raise self._lacks("CreateAcls call")

    def delete_acls(self, acls: Sequence[AclEntry]) -> None:
        """Deletes exactly these ACLs."""
        raise self._lacks("DeleteAcls call")
