"""What the console's pages show of the cluster and its consumer groups, read with the
blocking client (each function runs in a worker thread, see clients.py)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from kio.schema.errors import ErrorCode

from ..client import (
    BROKER_RESOURCE,
    EARLIEST,
    LATEST,
    RESETTABLE_STATES,
    TOPIC_CONFIG_SOURCE,
    TOPIC_RESOURCE,
    BrokerUnreachable,
    BrokerVersions,
    Client,
    ClientError,
    ConfigEntry,
    GroupInfo,
    GroupListing,
    KafkaError,
    LogDirInfo,
    ProducerInfo,
    QuorumInfo,
    QuorumReplica,
    TopicInfo,
)
from ..metadata.acls import Acl, AclFilter, AclOperation, AclPermission, PatternType, ResourceType
from .metrics import Sample
from .offsets import PartitionPosition, PlannedOffset, ResetStrategy, plan_reset

T = TypeVar("T")


@dataclass(frozen=True)
class BrokerRow:
    node_id: int
    host: str
    port: int
    rack: str | None
    is_controller: bool
    listeners: str | None
    """Its listeners config (what it binds), when the broker describes it."""
    versions: BrokerVersions | None
    """Its answer to ApiVersions (None: it did not answer)."""
    log_dirs: list[LogDirInfo]

    @property
    def log_dir_bytes(self) -> int:
        return sum(d.size for d in self.log_dirs)


@dataclass(frozen=True)
class QuorumRow:
    replica: QuorumReplica
    lag: int
    """How far its log ends behind the leader's."""


@dataclass(frozen=True)
class QuorumView:
    info: QuorumInfo
    voters: list[QuorumRow]
    observers: list[QuorumRow]


def quorum_view(info: QuorumInfo) -> QuorumView:
    leader_end = next((r.log_end_offset for r in info.voters if r.replica_id == info.leader_id), info.high_watermark)

    def rows(replicas: list[QuorumReplica]) -> list[QuorumRow]:
        return [QuorumRow(r, max(leader_end - r.log_end_offset, 0)) for r in replicas]

    return QuorumView(info, rows(info.voters), rows(info.observers))


@dataclass(frozen=True)
class ClusterOverview:
    cluster_id: str | None
    controller: int
    brokers: list[BrokerRow]
    topics: int
    internal_topics: int
    partitions: int
    under_replicated: int
    offline: int
    quorum: QuorumView | None
    quorum_unavailable: ClientError | None
    """Why there is no quorum to show: a cluster without KRaft, an older broker."""

    @property
    def log_dir_bytes(self) -> int:
        return sum(b.log_dir_bytes for b in self.brokers)


def cluster_overview(client: Client) -> ClusterOverview:
    cluster = client.metadata()
    brokers = []
    for node, (host, port) in sorted(cluster.brokers.items()):
        try:
            configs = {c.name: c.value for c in client.describe_configs(BROKER_RESOURCE, str(node))}
        except ClientError:
            configs = {}  # a broker that does not describe itself still is one of the cluster
        versions, _ = _unless_refused(functools.partial(client.broker_versions, node))
        log_dirs, _ = _unless_refused(functools.partial(client.describe_log_dirs, node))
        brokers.append(BrokerRow(node, host, port, cluster.racks.get(node), node == cluster.controller,
                                 configs.get("listeners"), versions, log_dirs or []))
    partitions = [p for topic in cluster.topics.values() for p in topic.partitions.values()]
    quorum, quorum_unavailable = _unless_refused(client.describe_quorum)
    return ClusterOverview(
        cluster.cluster_id, cluster.controller, brokers, len(cluster.topics),
        sum(t.internal for t in cluster.topics.values()), len(partitions),
        sum(len(p.isr) < len(p.replicas) for p in partitions), sum(p.leader < 0 for p in partitions),
        quorum_view(quorum) if quorum is not None else None, quorum_unavailable,
    )


@dataclass(frozen=True)
class PartitionRow:
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    log_start_offset: int | None
    log_end_offset: int | None

    @property
    def messages(self) -> int | None:
        if self.log_start_offset is None or self.log_end_offset is None:
            return None
        return self.log_end_offset - self.log_start_offset


@dataclass(frozen=True)
class TopicSummary:
    name: str
    internal: bool
    partitions: list[PartitionRow]
    size_bytes: int | None = None
    """On disk, every replica of every partition (DescribeLogDirs); None: not asked or not told."""

    @property
    def replication_factor(self) -> int:
        return len(self.partitions[0].replicas) if self.partitions else 0

    @property
    def messages(self) -> int | None:
        """Records between each partition's log start and end offsets (None if a partition's are unknown)."""
        counts = [p.messages for p in self.partitions]
        return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)

    @property
    def under_replicated(self) -> int:
        return sum(len(p.isr) < len(p.replicas) for p in self.partitions)


def _summary(client: Client, info: TopicInfo) -> TopicSummary:
    numbers = sorted(info.partitions)
    # Without a leader a partition has no offsets to tell; ask only where every partition has one.
    if numbers and all(p.leader >= 0 for p in info.partitions.values()):
        starts = client.list_offsets(info.name, numbers, EARLIEST)
        ends = client.list_offsets(info.name, numbers, LATEST)
    else:
        starts = ends = {}
    rows = [PartitionRow(p, info.partitions[p].leader, info.partitions[p].replicas, info.partitions[p].isr,
                         starts.get(p), ends.get(p)) for p in numbers]
    return TopicSummary(info.name, info.internal, rows)


def topic_summaries(client: Client) -> list[TopicSummary]:
    cluster = client.metadata()
    sizes: dict[str, int] = {}
    for node in cluster.brokers:
        log_dirs, _ = _unless_refused(functools.partial(client.describe_log_dirs, node))
        for (topic, _partition), size in ((tp, n) for d in log_dirs or [] for tp, n in d.partition_sizes.items()):
            sizes[topic] = sizes.get(topic, 0) + size
    return [dataclasses.replace(_summary(client, info), size_bytes=sizes.get(info.name))
            for info in sorted(cluster.topics.values(), key=lambda t: t.name)]


@dataclass(frozen=True)
class TopicDetail:
    summary: TopicSummary
    topic_id: str
    configs: list[ConfigEntry]
    producers: list[ProducerInfo]

    @staticmethod
    def is_override(entry: ConfigEntry) -> bool:
        return entry.source == TOPIC_CONFIG_SOURCE


def topic_detail(client: Client, name: str) -> TopicDetail:
    info = client.topic(name)
    configs = sorted(client.describe_configs(TOPIC_RESOURCE, name, synonyms=True), key=lambda c: c.name)
    summary = _summary(client, info)
    led = [p.partition for p in summary.partitions if p.leader >= 0]
    producers = client.describe_producers(name, led) if led else []
    return TopicDetail(summary, str(info.topic_id), configs, producers)


@dataclass(frozen=True)
class GroupRow:
    listing: GroupListing
    info: GroupInfo


def group_rows(client: Client) -> list[GroupRow]:
    return [GroupRow(listing, client.describe_group(listing.group_id)) for listing in client.list_groups()]


@dataclass(frozen=True)
class GroupOffsetRow:
    topic: str
    partition: int
    committed: int | None
    log_end_offset: int | None
    member: str | None
    """The client id and host of the member the partition is assigned to."""

    @property
    def lag(self) -> int | None:
        if self.committed is None or self.log_end_offset is None:
            return None
        return max(self.log_end_offset - self.committed, 0)


@dataclass(frozen=True)
class GroupDetail:
    info: GroupInfo
    offsets: list[GroupOffsetRow]

    @property
    def total_lag(self) -> int:
        return sum(row.lag or 0 for row in self.offsets)

    @property
    def topics(self) -> list[str]:
        return sorted({row.topic for row in self.offsets})

    @property
    def exists(self) -> bool:
        return self.info.state != "Dead" or bool(self.offsets)


def group_detail(client: Client, group: str) -> GroupDetail:
    info = client.describe_group(group)
    committed = client.committed_offsets(group)
    owners = {(topic, p): f"{m.client_id} ({m.client_host})" for m in info.members
              for topic, partitions in m.assignment.items() for p in partitions}
    partitions = sorted(set(committed) | set(owners))
    ends = client.log_end_offsets(partitions)
    rows = [GroupOffsetRow(t, p, committed.get((t, p)), ends.get((t, p)), owners.get((t, p))) for t, p in partitions]
    return GroupDetail(info, rows)


def plan_group_reset(client: Client, group: str, topics: Sequence[str], strategy: ResetStrategy,
                     amount: int = 0) -> list[PlannedOffset]:
    """The new offsets of every partition of `topics` (`amount`: the offset, the shift, or
    the timestamp in milliseconds of the strategy)."""
    committed = client.committed_offsets(group)
    positions = {}
    for topic in topics:
        numbers = sorted(client.topic(topic).partitions)
        starts = client.list_offsets(topic, numbers, EARLIEST)
        ends = client.list_offsets(topic, numbers, LATEST)
        at_time = client.list_offsets(topic, numbers, amount) if strategy is ResetStrategy.TIMESTAMP else {}
        for p in numbers:
            positions[(topic, p)] = PartitionPosition(starts[p], ends[p], committed.get((topic, p)), at_time.get(p))
    return plan_reset(strategy, positions, 0 if strategy is ResetStrategy.TIMESTAMP else amount)


def apply_group_reset(client: Client, group: str, plan: Sequence[PlannedOffset]) -> None:
    info = client.describe_group(group)
    if info.state not in RESETTABLE_STATES:
        raise ClientError(f"cannot reset the offsets of group {group!r}: it is {info.state} with {len(info.members)} "
                          f"member(s), which would overwrite them; stop its consumers first (as Kafka's tool requires)")
    client.commit_offsets(group, {(p.topic, p.partition): p.new for p in plan})


@dataclass(frozen=True)
class SecurityOverview:
    acls: list[Acl] | None
    acls_unavailable: ClientError | None
    """Why there are no ACLs to show: no authorizer (SECURITY_DISABLED), no permission, an older broker."""
    scram_users: dict[str, list[tuple[str, int]]] | None
    scram_unavailable: ClientError | None

    @property
    def no_authorizer(self) -> bool:
        return isinstance(self.acls_unavailable, KafkaError) and self.acls_unavailable.code == ErrorCode.security_disabled


def security_overview(client: Client) -> SecurityOverview:
    every_acl = AclFilter(ResourceType.ANY, None, PatternType.ANY, None, None, AclOperation.ANY, AclPermission.ANY)
    acls, acls_unavailable = _unless_refused(lambda: sorted(client.describe_acls(every_acl), key=lambda a: (
        a.resource_type.name, a.resource_name, a.principal, a.operation.name)))
    users, users_unavailable = _unless_refused(client.describe_scram_users)
    return SecurityOverview(acls, acls_unavailable, users, users_unavailable)


def _unless_refused(read: Callable[[], T]) -> tuple[T | None, ClientError | None]:
    """What `read` gives, or why the cluster would not give it (a lost broker still fails the page)."""
    try:
        return read(), None
    except BrokerUnreachable:
        raise
    except ClientError as e:
        return None, e


def sample_offsets(client: Client, at_ms: int) -> Sample:
    """The offsets the console's charts are drawn from: every topic's log end offsets and
    every group's committed offsets, at once."""
    ends: dict[tuple[str, int], int] = {}
    for info in client.metadata().topics.values():
        led = [p for p, partition in info.partitions.items() if partition.leader >= 0]
        if led:
            ends.update({(info.name, p): o for p, o in client.list_offsets(info.name, led, LATEST).items()})
    topic_ends: dict[str, int] = {}
    for (topic, _), offset in ends.items():
        topic_ends[topic] = topic_ends.get(topic, 0) + offset
    committed: dict[tuple[str, str], int] = {}
    lags = {}
    for listing in client.list_groups():
        group = listing.group_id
        offsets = client.committed_offsets(group)
        for (topic, _), offset in offsets.items():
            committed[(group, topic)] = committed.get((group, topic), 0) + offset
        lags[group] = sum(max(ends[tp] - offset, 0) for tp, offset in offsets.items() if tp in ends)
    return Sample(at_ms, topic_ends, committed, lags)
