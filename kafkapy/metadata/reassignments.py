"""Partition reassignments as the active controller decides them, sans-IO: Kafka's
AlterPartitionReassignments and ListPartitionReassignments (ReplicationControlManager,
PartitionReassignmentReplicas, PartitionReassignmentRevert).

A reassignment first widens the partition to its target replicas plus the current ones,
with `adding_replicas` (target, not current) and `removing_replicas` (current, not target).
The added replicas start outside the ISR, follow the leader and are brought into the ISR
by it (AlterPartition); the change that puts every target replica in the ISR also
completes the reassignment (see `partition_change`): the removing replicas leave, the
leader with them if it was one. A reassignment whose targets are already in the ISR
completes at once. Cancelling (a null target) takes the adding replicas back out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from .controller import Refused, check_manual_assignment
from .image import MetadataImage, PartitionImage, TopicImage
from .partitions import Election, ReplicationControl, can_lead, partition_change
from .records import PartitionChangeRecord


@dataclass(frozen=True)
class ReassignmentResult:
    topic: str
    partition: int
    error: ErrorCode = ErrorCode.none
    message: str | None = None


@dataclass(frozen=True)
class OngoingReassignment:
    """ListPartitionReassignments' OngoingPartitionReassignment."""

    topic: str
    partition: int
    replicas: tuple[int, ...]
    adding: tuple[int, ...]
    removing: tuple[int, ...]


# (topic, partition, target replicas or None to cancel)
Wanted = tuple[str, int, Sequence[int] | None]


def alter_reassignments(
    replication: ReplicationControl, image: MetadataImage, wanted: Sequence[Wanted], allow_replication_factor_change: bool = True,
) -> tuple[list[ReassignmentResult], list[PartitionChangeRecord]]:
    """One result per partition named, in order; the records of those accepted. As in
    Kafka, each is decided against the image the request found."""
    results: list[ReassignmentResult] = []
    records: list[PartitionChangeRecord] = []
    for name, index, target in wanted:
        try:
            record = _alter_one(replication, image, name, index, target, allow_replication_factor_change)
        except Refused as e:
            results.append(ReassignmentResult(name, index, e.error, e.message))
            continue
        if record is not None:
            records.append(record)
        results.append(ReassignmentResult(name, index))
    return results, records


def _alter_one(
    replication: ReplicationControl, image: MetadataImage, name: str, index: int, target: Sequence[int] | None,
    allow_replication_factor_change: bool,
) -> PartitionChangeRecord | None:
    topic = image.topics.get(name)
    if topic is None:
        raise Refused(ErrorCode.unknown_topic_or_partition, f"Unable to find a topic named {name}.")
    partition = topic.partitions.get(index)
    if partition is None:
        raise Refused(ErrorCode.unknown_topic_or_partition, f"Unable to find partition {name}:{index}.")
    if target is None:
        return _cancel(replication, image, topic, partition)
    check_manual_assignment(image, index, target, None)
    original = _original_replicas(partition)
    if not allow_replication_factor_change and len(target) != len(original):
        raise Refused(ErrorCode.invalid_replication_factor,
                      f"The replication factor is changed from {len(original)} to {len(target)}")
    current = partition.replicas
    merged = list(target) + [r for r in current if r not in target]
    adding = [r for r in target if r not in current]
    removing = [r for r in current if r not in target]
    # As Kafka's: an empty list leaves a reassignment in progress its own.
    return partition_change(
        topic.topic_id, partition, partition.isr, Election.ONLINE, lambda r: can_lead(image, r),
        target_replicas=merged, target_adding=adding or None, target_removing=removing or None,
    )


def _original_replicas(partition: PartitionImage) -> list[int]:
    """The replicas before the reassignment in progress, if any (Kafka's originalReplicas)."""
    return [r for r in partition.replicas if r not in partition.adding_replicas]


def _cancel(
    replication: ReplicationControl, image: MetadataImage, topic: TopicImage, partition: PartitionImage,
) -> PartitionChangeRecord | None:
    """Back to the original replicas; the adding replicas leave the ISR. Should they be the
    whole ISR, the first original replica is its only member: an unclean election, which
    only a topic that allows one accepts."""
    if not partition.reassigning:
        raise Refused(ErrorCode.no_reassignment_in_progress, "No partition reassignment is in progress.")
    replicas = _original_replicas(partition)
    isr = [r for r in partition.isr if r not in partition.adding_replicas]
    unclean_allowed = replication.unclean_allowed(image, topic.name)
    if not isr:
        if not unclean_allowed:
            raise Refused(ErrorCode.invalid_replica_assignment,
                          f"Unable to revert partition assignment for {topic.name}:{partition.partition_id} "
                          "because it would require an unclean leader election.")
        isr = replicas[:1]
    return partition_change(
        topic.topic_id, partition, isr, Election.UNCLEAN if unclean_allowed else Election.ONLINE,
        lambda r: can_lead(image, r), target_replicas=replicas, target_adding=[], target_removing=[],
    )


def list_reassignments(image: MetadataImage, wanted: Sequence[tuple[str, Sequence[int]]] | None) -> list[OngoingReassignment]:
    """The reassignments in progress among the partitions named (unknown ones left out), or
    all of them."""
    if wanted is None:
        wanted = [(name, sorted(image.topics[name].partitions)) for name in sorted(image.topics)]
    ongoing = []
    for name, indexes in wanted:
        topic = image.topics.get(name)
        if topic is None:
            continue
        for index in indexes:
            p = topic.partitions.get(index)
            if p is not None and p.reassigning:
                ongoing.append(OngoingReassignment(name, index, p.replicas, p.adding_replicas, p.removing_replicas))
    return ongoing
