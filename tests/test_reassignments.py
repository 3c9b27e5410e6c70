"""Partition reassignments as the controller decides them, sans-IO: the widened replica
set, completion by the ISR change that holds every target replica, cancellation, listing,
and Kafka's per-partition errors."""

from __future__ import annotations

import pytest
from kio.schema.errors import ErrorCode
from kio.static.primitive import i32

from kafkapy.metadata.image import MetadataImage, PartitionImage
from kafkapy.metadata.reassignments import OngoingReassignment, alter_reassignments, list_reassignments
from kafkapy.metadata.records import RESOURCE_TOPIC, ConfigRecord, PartitionRecord
from test_replication_control import Cluster


def reassign(c: Cluster, *wanted: tuple[str, int, list[int] | None], allow_rf_change: bool = True) -> dict:
    results, records = alter_reassignments(c.replication, c.image, wanted, allow_rf_change)
    c.commit(records)
    return {(r.topic, r.partition): r.error for r in results}


def part(c: Cluster, index: int = 0) -> PartitionImage:
    return c.image.topics["t"].partitions[index]


def test_a_move_widens_the_replicas_and_leaves_the_new_ones_outside_the_isr() -> None:
    c = Cluster(1, 2, 3)
    c.partition(0, [1])
    assert reassign(c, ("t", 0, [2, 3])) == {("t", 0): ErrorCode.none}
    p = part(c)
    assert (p.replicas, p.adding_replicas, p.removing_replicas, p.isr, p.leader) == ((2, 3, 1), (2, 3), (1,), (1,), 1)
    # Nothing left the replicas yet: the leader epoch stays, the partition epoch moves.
    assert (p.leader_epoch, p.partition_epoch) == (0, 1)
    assert list_reassignments(c.image, None) == [OngoingReassignment("t", 0, (2, 3, 1), (2, 3), (1,))]


def test_the_isr_change_holding_every_target_replica_completes_the_move_and_moves_the_leader() -> None:
    c = Cluster(1, 2, 3)
    c.partition(0, [1])
    reassign(c, ("t", 0, [2, 3]))
    assert c.alter(c.proposal(0, (1, 2))).error == ErrorCode.none
    assert part(c).reassigning  # 3 not in yet
    result = c.alter(c.proposal(0, (1, 2, 3)))
    # The change is made, and the old leader told that it no longer leads.
    assert result.error == ErrorCode.new_leader_elected
    p = part(c)
    assert (p.replicas, p.isr, p.leader, p.adding_replicas, p.removing_replicas) == ((2, 3), (2, 3), 2, (), ())
    assert p.leader_epoch == 1
    assert list_reassignments(c.image, None) == []


def test_a_replication_factor_increase_completes_when_the_new_replicas_join_the_isr() -> None:
    c = Cluster(1, 2, 3)
    c.partition(0, [1])
    reassign(c, ("t", 0, [1, 2, 3]))
    p = part(c)
    assert (p.replicas, p.adding_replicas, p.removing_replicas) == ((1, 2, 3), (2, 3), ())
    result = c.alter(c.proposal(0, (1, 2, 3)))
    assert (result.error, result.leader, result.isr) == (ErrorCode.none, 1, (1, 2, 3))
    p = part(c)
    assert (p.replicas, p.isr, p.leader, p.reassigning, p.leader_epoch) == ((1, 2, 3), (1, 2, 3), 1, False, 0)


def test_a_move_among_in_sync_replicas_completes_at_once_and_fences_the_removed_one() -> None:
    c = Cluster(1, 2, 3)
    c.partition(0, [1, 2, 3])
    reassign(c, ("t", 0, [2, 1]))
    p = part(c)
    assert (p.replicas, p.isr, p.leader, p.reassigning) == ((2, 1), (1, 2), 1, False)
    assert p.leader_epoch == 1  # 3's fetches are fenced by the new leader epoch


def test_a_reassignment_to_the_current_replicas_changes_nothing() -> None:
    c = Cluster(1, 2)
    c.partition(0, [1, 2])
    results, records = alter_reassignments(c.replication, c.image, [("t", 0, [1, 2])])
    assert [r.error for r in results] == [ErrorCode.none] and records == []


@pytest.mark.parametrize(("target", "error"), [
    ([], ErrorCode.invalid_replica_assignment),
    ([2, 2], ErrorCode.invalid_replica_assignment),
    ([2, 9], ErrorCode.invalid_replica_assignment),  # 9 never registered
    ([3], ErrorCode.invalid_replica_assignment),     # fenced, and nobody else
])
def test_invalid_targets_are_refused_per_partition(target: list[int], error: ErrorCode) -> None:
    c = Cluster(1, 2, 3)
    c.partition(0, [1])
    c.partition(1, [1])
    c.silent(3)
    results = reassign(c, ("t", 0, target), ("t", 1, [2]))
    # The valid one of the same request is carried out all the same.
    assert results == {("t", 0): error, ("t", 1): ErrorCode.none}
    assert not part(c, 0).reassigning and part(c, 1).adding_replicas == (2,)


def test_unknown_topics_and_partitions_and_cancelling_nothing_are_refused() -> None:
    c = Cluster(1, 2)
    c.partition(0, [1])
    assert reassign(c, ("nope", 0, [2]), ("t", 5, [2]), ("t", 0, None)) == {
        ("nope", 0): ErrorCode.unknown_topic_or_partition,
        ("t", 5): ErrorCode.unknown_topic_or_partition,
        ("t", 0): ErrorCode.no_reassignment_in_progress,
    }


def test_a_replication_factor_change_is_refused_when_the_request_does_not_allow_it() -> None:
    c = Cluster(1, 2, 3)
    c.partition(0, [1])
    assert reassign(c, ("t", 0, [2, 3]), allow_rf_change=False) == {("t", 0): ErrorCode.invalid_replication_factor}
    assert reassign(c, ("t", 0, [2]), allow_rf_change=False) == {("t", 0): ErrorCode.none}


def test_cancelling_takes_the_adding_replicas_back_out() -> None:
    c = Cluster(1, 2, 3)
    c.partition(0, [1])
    reassign(c, ("t", 0, [2, 3]))
    c.alter(c.proposal(0, (1, 2)))
    assert reassign(c, ("t", 0, None)) == {("t", 0): ErrorCode.none}
    p = part(c)
    assert (p.replicas, p.isr, p.leader, p.reassigning) == ((1,), (1,), 1, False)
    assert p.leader_epoch == 1  # 2 and 3 stop fetching


def _isr_of_adding_replicas_only(c: Cluster) -> None:
    """[1] moving to [2]: 2 alone in the ISR and leading (1 lost meanwhile)."""
    c.commit([PartitionRecord(
        partition_id=i32(0), topic_id=c.topic_id, replicas=(i32(2), i32(1)), isr=(i32(2),), adding_replicas=(i32(2),),
        removing_replicas=(i32(1),), leader=i32(2), leader_epoch=i32(3), partition_epoch=i32(5))])


def test_cancelling_needs_an_unclean_election_when_only_adding_replicas_are_in_sync() -> None:
    c = Cluster(1, 2)
    _isr_of_adding_replicas_only(c)
    assert reassign(c, ("t", 0, None)) == {("t", 0): ErrorCode.invalid_replica_assignment}
    assert part(c).reassigning

    c.commit([ConfigRecord(resource_type=RESOURCE_TOPIC, resource_name="t", name="unclean.leader.election.enable", value="true")])
    assert reassign(c, ("t", 0, None)) == {("t", 0): ErrorCode.none}
    p = part(c)
    assert (p.replicas, p.isr, p.leader, p.reassigning) == ((1,), (1,), 1, False)


def test_listing_names_only_partitions_in_progress_and_skips_unknown_ones() -> None:
    c = Cluster(1, 2, 3)
    c.partition(0, [1])
    c.partition(1, [1])
    reassign(c, ("t", 1, [1, 2]))
    assert list_reassignments(c.image, [("t", [0, 1, 7]), ("nope", [0])]) == [
        OngoingReassignment("t", 1, (1, 2), (2,), ())]


def test_a_reassignment_in_progress_survives_a_snapshot() -> None:
    c = Cluster(1, 2, 3)
    c.partition(0, [1])
    reassign(c, ("t", 0, [2, 3]))
    rebuilt = MetadataImage().apply(c.image.to_records(), c.image.offset)
    assert rebuilt.topics["t"].partitions[0] == part(c)
