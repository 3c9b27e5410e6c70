"""Partition leadership and ISR as the active controller decides them, sans-IO: Kafka's
ReplicationControlManager and PartitionChangeBuilder, without eligible leader replicas
(KIP-966).

A leader is chosen from the ISR, in replica order, among brokers that are registered,
unfenced and not in controlled shutdown. A broker that stops serving leaves every ISR
but keeps the last place of one (the partition can only come back with it) and hands its
leaderships to another ISR member, or to nobody (-1). Only where the topic's
`unclean.leader.election.enable` allows it does a live replica outside the ISR take the
lead, with itself as the whole ISR. A partition leader proposes ISR changes
(AlterPartition); an ISR change is a new partition epoch, a leader change a new leader
epoch as well. A partition being reassigned (`reassignments.py`) carries its adding and
removing replicas; the ISR change that holds every target replica completes the move here.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kio.schema.errors import ErrorCode
from kio.static.primitive import i32

from ..config import TOPIC_CONFIGS, BrokerConfig
from .image import MetadataImage, PartitionImage, merge_partition
from .records import PartitionChangeRecord

NO_LEADER = -1
NO_LEADER_CHANGE = -2  # PartitionChangeRecord's "the leader stays"
UNKNOWN_BROKER_EPOCH = -1  # an ISR member whose broker epoch the leader does not check
UNCLEAN_KEY = "unclean.leader.election.enable"


class Election(enum.Enum):
    ONLINE = "online"        # a new leader only if the current one cannot lead
    PREFERRED = "preferred"  # the first replica, if it can lead
    UNCLEAN = "unclean"      # as ONLINE, then any live replica when the ISR has none


# ElectLeaders' election_type on the wire.
ELECTION_TYPES = {0: Election.PREFERRED, 1: Election.UNCLEAN}


@dataclass(frozen=True)
class IsrChange:
    """A partition leader's proposal (Kafka's AlterPartition PartitionData)."""

    topic_id: uuid.UUID
    partition: int
    leader_epoch: int       # the leader's current leader epoch
    partition_epoch: int    # the partition epoch the proposal is based on
    new_isr: tuple[int, ...]


@dataclass(frozen=True)
class IsrChangeResult:
    """What the controller answered (Kafka's AlterPartition response partition)."""

    error: ErrorCode
    leader: int = NO_LEADER
    leader_epoch: int = 0
    partition_epoch: int = 0
    isr: tuple[int, ...] = ()


@dataclass(frozen=True)
class ElectionResult:
    topic: str
    partition: int
    error: ErrorCode = ErrorCode.none
    message: str | None = None


Acceptable = Callable[[int], bool]


def can_lead(image: MetadataImage, broker_id: int) -> bool:
    """Kafka's LeaderAcceptor: registered, unfenced and not shutting down."""
    broker = image.brokers.get(broker_id)
    return broker is not None and not broker.fenced and not broker.in_controlled_shutdown


def partition_change(
    topic_id: uuid.UUID, partition: PartitionImage, target_isr: Sequence[int], election: Election, acceptable: Acceptable,
    *, target_replicas: Sequence[int] | None = None, target_adding: Sequence[int] | None = None,
    target_removing: Sequence[int] | None = None,
) -> PartitionChangeRecord | None:
    """Kafka's PartitionChangeBuilder: the record that gives `partition` the target ISR (and
    replicas, adding and removing replicas: the partition's own unless given) and the leader
    the election picks, or None when nothing changes. A reassignment in progress completes
    here once the target ISR holds every replica it keeps: the removing replicas leave the
    replicas and the ISR, and the leader too if it was one of them."""
    replicas = list(partition.replicas if target_replicas is None else target_replicas)
    adding = list(partition.adding_replicas if target_adding is None else target_adding)
    removing = list(partition.removing_replicas if target_removing is None else target_removing)
    isr = list(target_isr)
    if adding or removing:
        kept = [r for r in replicas if r not in removing]
        kept_isr = [r for r in isr if r not in removing]
        if all(r in kept_isr for r in kept):
            replicas, isr, adding, removing = kept, kept_isr, [], []
    leader = partition.leader
    if _should_elect(partition, isr, election, acceptable):
        leader, unclean = _elect(partition, replicas, isr, election, acceptable)
        if unclean:
            isr = [leader]
    if leader == partition.leader and not set(partition.replicas) <= set(replicas):
        # Replicas taken out: a new leader epoch fences their fetches (as Kafka's
        # triggerLeaderEpochBumpForReplicaReassignmentIfNeeded).
        leader_field = partition.leader
    else:
        leader_field = leader if leader != partition.leader else NO_LEADER_CHANGE
    record = PartitionChangeRecord(
        partition_id=i32(partition.partition_id), topic_id=topic_id,
        isr=_changed(isr, partition.isr), leader=i32(leader_field), replicas=_changed(replicas, partition.replicas),
        adding_replicas=_changed(adding, partition.adding_replicas),
        removing_replicas=_changed(removing, partition.removing_replicas),
    )
    unchanged = PartitionChangeRecord(partition_id=record.partition_id, topic_id=topic_id)
    return None if record == unchanged else record


def _changed(target: Sequence[int], current: Sequence[int]) -> tuple[i32, ...] | None:
    """A PartitionChangeRecord list field: null when it stays as it is."""
    return tuple(i32(r) for r in target) if tuple(target) != tuple(current) else None


def _should_elect(partition: PartitionImage, isr: Sequence[int], election: Election, acceptable: Acceptable) -> bool:
    if election is Election.PREFERRED:
        return partition.leader != partition.replicas[0]
    return partition.leader == NO_LEADER or partition.leader not in isr or not acceptable(partition.leader)


def _elect(
    partition: PartitionImage, replicas: Sequence[int], isr: Sequence[int], election: Election, acceptable: Acceptable,
) -> tuple[int, bool]:
    """(leader, whether it was elected from outside the ISR), among the target `replicas`."""
    def valid(r: int) -> bool:
        return r in isr and acceptable(r)

    if election is Election.PREFERRED and valid(replicas[0]):
        return replicas[0], False
    if partition.leader != NO_LEADER and valid(partition.leader):
        return partition.leader, False
    for r in replicas:
        if valid(r):
            return r, False
    if election is Election.UNCLEAN:
        for r in replicas:
            if acceptable(r):
                return r, True
    return NO_LEADER, False


class ReplicationControl:
    """The controller's partition decisions that depend on its configuration."""

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config

    def unclean_allowed(self, image: MetadataImage, topic: str) -> bool:
        """The topic's `unclean.leader.election.enable`, else the cluster's dynamic default,
        else this controller's own configuration."""
        override = image.topic_configs(topic).get(UNCLEAN_KEY)
        if override is not None:
            return bool(TOPIC_CONFIGS[UNCLEAN_KEY].parse(override))
        cluster_default, _ = image.dynamic_broker_configs(self.config.node_id)
        return bool(self.config.with_dynamic(cluster_default, {}).topic_default(UNCLEAN_KEY)[0])

    def _failover(self, image: MetadataImage, topic: str) -> Election:
        return Election.UNCLEAN if self.unclean_allowed(image, topic) else Election.ONLINE

    def broker_leaves(self, image: MetadataImage, broker_id: int) -> list[PartitionChangeRecord]:
        """A broker fenced or shutting down: out of every ISR (but the last place of one),
        its leaderships to other ISR members, or to nobody."""
        def acceptable(r: int) -> bool:
            return r != broker_id and can_lead(image, r)

        records = []
        for topic in image.topics.values():
            for partition in topic.partitions.values():
                if broker_id not in partition.isr and partition.leader != broker_id:
                    continue
                isr = [r for r in partition.isr if r != broker_id] or list(partition.isr)
                record = partition_change(topic.topic_id, partition, isr, self._failover(image, topic.name), acceptable)
                if record is not None:
                    records.append(record)
        return records

    def broker_returns(self, image: MetadataImage, broker_id: int) -> list[PartitionChangeRecord]:
        """A broker unfenced: the partitions without a leader get one if they can, this
        broker among the candidates. It leads only where it is in the ISR (or the topic
        allows an unclean election); elsewhere it waits for its leader to add it back."""
        def acceptable(r: int) -> bool:
            return r == broker_id or can_lead(image, r)

        records = []
        for topic in image.topics.values():
            for partition in topic.partitions.values():
                if partition.leader != NO_LEADER:
                    continue
                record = partition_change(
                    topic.topic_id, partition, partition.isr, self._failover(image, topic.name), acceptable)
                if record is not None:
                    records.append(record)
        return records

    def alter_partition(
        self, image: MetadataImage, broker_id: int, broker_epoch: int,
        proposals: Sequence[tuple[IsrChange, Sequence[int]]],
    ) -> tuple[tuple[ErrorCode, list[IsrChangeResult]], list[PartitionChangeRecord]]:
        """An AlterPartition from `broker_id`: each proposal with the broker epochs of its
        new ISR's members (UNKNOWN_BROKER_EPOCH where not checked). A stale requester is
        refused whole (STALE_BROKER_EPOCH); otherwise one result per proposal."""
        requester = image.brokers.get(broker_id)
        if requester is None or requester.epoch != broker_epoch:
            return (ErrorCode.stale_broker_epoch, []), []
        results: list[IsrChangeResult] = []
        records: list[PartitionChangeRecord] = []
        for change, epochs in proposals:
            topic = image.topic_by_id(change.topic_id)
            if topic is None:
                results.append(IsrChangeResult(ErrorCode.unknown_topic_id))
                continue
            partition = topic.partitions.get(change.partition)
            error = _proposal_error(image, broker_id, partition, change, epochs)
            if error is not ErrorCode.none or partition is None:
                results.append(IsrChangeResult(error))
                continue
            record = partition_change(topic.topic_id, partition, change.new_isr, Election.ONLINE, lambda r: can_lead(image, r))
            if record is not None:
                records.append(record)
                partition = merge_partition(partition, record)
                if record.leader not in (NO_LEADER_CHANGE, broker_id):
                    # The new ISR completed a reassignment that removes the requester: the
                    # change is made, and the requester told to learn its new role from
                    # the metadata (Kafka answers both, unusually, here).
                    results.append(IsrChangeResult(ErrorCode.new_leader_elected))
                    continue
            results.append(IsrChangeResult(
                ErrorCode.none, partition.leader, partition.leader_epoch, partition.partition_epoch, partition.isr))
        return (ErrorCode.none, results), records

    def elect_leaders(
        self, image: MetadataImage, election_type: int, wanted: Sequence[tuple[str, Sequence[int]]] | None,
    ) -> tuple[list[ElectionResult], list[PartitionChangeRecord]]:
        """ElectLeaders: PREFERRED (0) or UNCLEAN (1) elections of the partitions named, or
        of every partition (then those that need none are left out of the answer)."""
        election = ELECTION_TYPES[election_type]
        results: list[ElectionResult] = []
        records: list[PartitionChangeRecord] = []
        if wanted is None:
            for name in sorted(image.topics):
                for partition in sorted(image.topics[name].partitions):
                    result = self._elect_one(image, name, partition, election, records)
                    if result.error != ErrorCode.election_not_needed:
                        results.append(result)
            return results, records
        for name, partitions in wanted:
            results += [self._elect_one(image, name, p, election, records) for p in partitions]
        return results, records

    def _elect_one(
        self, image: MetadataImage, name: str, index: int, election: Election, records: list[PartitionChangeRecord],
    ) -> ElectionResult:
        topic = image.topics.get(name)
        if topic is None:
            return ElectionResult(name, index, ErrorCode.unknown_topic_or_partition, f"No such topic as {name}")
        partition = topic.partitions.get(index)
        if partition is None:
            return ElectionResult(name, index, ErrorCode.unknown_topic_or_partition, f"No such partition as {name}-{index}")
        if election is Election.PREFERRED and partition.leader == partition.replicas[0]:
            return ElectionResult(name, index, ErrorCode.election_not_needed, "The preferred replica already leads.")
        if election is Election.UNCLEAN and partition.leader != NO_LEADER:
            return ElectionResult(name, index, ErrorCode.election_not_needed, "The partition has a leader.")
        record = partition_change(topic.topic_id, partition, partition.isr, election, lambda r: can_lead(image, r))
        if record is None or record.leader == NO_LEADER_CHANGE:
            if election is Election.PREFERRED:
                return ElectionResult(name, index, ErrorCode.preferred_leader_not_available,
                                      f"The preferred replica {partition.replicas[0]} is not in the ISR or cannot lead.")
            return ElectionResult(name, index, ErrorCode.eligible_leaders_not_available, "No live replica can lead.")
        records.append(record)
        return ElectionResult(name, index)

    def rebalance_leaders(self, image: MetadataImage) -> list[PartitionChangeRecord]:
        """The periodic preferred-leader election (`auto.leader.rebalance.enable`): for each
        broker whose share of partitions it prefers but does not lead is above
        `leader.imbalance.per.broker.percentage`, as Kafka's controller counts it, those
        partitions go back to it where it is in the ISR and can lead."""
        threshold = self.config.int("leader.imbalance.per.broker.percentage") / 100
        preferred: dict[int, list[tuple[uuid.UUID, PartitionImage]]] = {}
        for topic in sorted(image.topics.values(), key=lambda t: t.name):
            for p in sorted(topic.partitions.values(), key=lambda p: p.partition_id):
                preferred.setdefault(p.replicas[0], []).append((topic.topic_id, p))
        records = []
        for broker_id, partitions in sorted(preferred.items()):
            not_led = [(topic_id, p) for topic_id, p in partitions if p.leader != broker_id]
            if len(not_led) / len(partitions) <= threshold:
                continue
            for topic_id, p in not_led:
                if broker_id in p.isr and can_lead(image, broker_id):
                    record = partition_change(topic_id, p, p.isr, Election.PREFERRED, lambda r: can_lead(image, r))
                    if record is not None:
                        records.append(record)
        return records


def _proposal_error(
    image: MetadataImage, broker_id: int, partition: PartitionImage | None, change: IsrChange, epochs: Sequence[int],
) -> ErrorCode:
    """Kafka's checks of one AlterPartition proposal, in Kafka's order."""
    if partition is None:
        return ErrorCode.unknown_topic_or_partition
    # Epochs ahead of this controller's: it is likely no longer the active one.
    if change.leader_epoch > partition.leader_epoch or change.partition_epoch > partition.partition_epoch:
        return ErrorCode.not_controller
    if change.leader_epoch < partition.leader_epoch:
        return ErrorCode.fenced_leader_epoch
    if broker_id != partition.leader:
        return ErrorCode.invalid_request
    if change.partition_epoch < partition.partition_epoch:
        return ErrorCode.invalid_update_version
    new_isr = change.new_isr
    if len(set(new_isr)) != len(new_isr) or any(r not in partition.replicas for r in new_isr) or partition.leader not in new_isr:
        return ErrorCode.invalid_request
    for member, epoch in zip(new_isr, epochs, strict=True):
        broker = image.brokers.get(member)
        if broker is None or broker.fenced or broker.in_controlled_shutdown:
            return ErrorCode.ineligible_replica
        if epoch != UNKNOWN_BROKER_EPOCH and epoch != broker.epoch:
            return ErrorCode.ineligible_replica
    return ErrorCode.none
