"""The controller's partition decisions, sans-IO: ISR-aware leader elections when brokers
leave and return, AlterPartition, ElectLeaders and the leader rebalance (Kafka's rules and
error codes)."""

from __future__ import annotations

import uuid

import pytest
from kio.schema.errors import ErrorCode
from kio.static.primitive import i32

from kafkapy.config import BrokerConfig
from kafkapy.metadata.brokers import BrokerLifecycle, Endpoint
from kafkapy.metadata.image import MetadataImage
from kafkapy.metadata.partitions import NO_LEADER, UNKNOWN_BROKER_EPOCH, IsrChange, ReplicationControl
from kafkapy.metadata.records import (
    RESOURCE_BROKER,
    RESOURCE_TOPIC,
    ConfigRecord,
    PartitionChangeRecord,
    PartitionRecord,
    TopicRecord,
)

SESSION_MS = 9_000
PREFERRED, UNCLEAN = 0, 1


class Cluster:
    """Brokers and one topic "t" as the active controller's image holds them."""

    def __init__(self, *brokers: int, **config: object) -> None:
        self.replication = ReplicationControl(BrokerConfig(config))
        self.lifecycle = BrokerLifecycle(SESSION_MS, self.replication)
        self.image = MetadataImage()
        self.topic_id = uuid.uuid4()
        self.commit([TopicRecord(name="t", topic_id=self.topic_id)])
        for b in brokers:
            _, records = self.lifecycle.register(self.image, 0, self.image.offset + 1, b, uuid.uuid4(),
                                                 (Endpoint("PLAINTEXT", "127.0.0.1", 9090 + b),), None)
            self.commit(records)
        for b in brokers:
            self.heartbeat(b, 0)

    def commit(self, records: list) -> None:
        self.image = self.image.apply(records, self.image.offset + len(records))

    def heartbeat(self, broker_id: int, now: int, *, fence: bool = False, shut_down: bool = False) -> None:
        _, records = self.lifecycle.heartbeat(self.image, now, broker_id, self.epoch(broker_id), self.image.offset,
                                              fence, shut_down)
        self.commit(records)

    def epoch(self, broker_id: int) -> int:
        return self.image.brokers[broker_id].epoch

    def partition(self, index: int, replicas: list[int], isr: list[int] | None = None, leader: int | None = None) -> None:
        isr = replicas if isr is None else isr
        self.commit([PartitionRecord(
            partition_id=i32(index), topic_id=self.topic_id, replicas=tuple(map(i32, replicas)), isr=tuple(map(i32, isr)),
            leader=i32(isr[0] if leader is None else leader), leader_epoch=i32(0), partition_epoch=i32(0))])

    def state(self, index: int) -> tuple[int, tuple[int, ...], int, int]:
        p = self.image.topics["t"].partitions[index]
        return p.leader, p.isr, p.leader_epoch, p.partition_epoch

    def silent(self, *broker_ids: int, now: int = SESSION_MS + 1) -> None:
        """The other brokers heartbeat; these miss their session and are fenced."""
        for b in self.image.brokers:
            if b not in broker_ids and not self.image.brokers[b].fenced:
                self.heartbeat(b, now - 1)
        while records := self.lifecycle.expire(self.image, now):
            self.commit(records)

    def alter(self, change: IsrChange, requester: int | None = None, epochs: tuple[int, ...] | None = None):
        requester = self.image.topics["t"].partitions[change.partition].leader if requester is None else requester
        epochs = tuple(self.epoch(b) if b in self.image.brokers else -1 for b in change.new_isr) if epochs is None else epochs
        (error, results), records = self.replication.alter_partition(
            self.image, requester, self.epoch(requester), [(change, epochs)])
        assert error == ErrorCode.none
        self.commit(records)
        return results[0]

    def proposal(self, index: int, new_isr: tuple[int, ...], **changes: int) -> IsrChange:
        p = self.image.topics["t"].partitions[index]
        return IsrChange(self.topic_id, index, changes.get("leader_epoch", p.leader_epoch),
                         changes.get("partition_epoch", p.partition_epoch), new_isr)

    def elect(self, election_type: int, wanted: list[tuple[str, list[int]]] | None):
        results, records = self.replication.elect_leaders(self.image, election_type, wanted)
        self.commit(records)
        return {(r.topic, r.partition): r.error for r in results}


# -- brokers leaving and returning ---------------------------------------------------------


def test_a_fenced_leader_hands_over_to_the_next_isr_member_in_replica_order() -> None:
    c = Cluster(1, 2, 3)
    c.partition(0, [1, 2, 3], isr=[1, 3, 2])
    c.silent(1)
    # Out of the ISR; 2 comes before 3 among the replicas; a new leader epoch and partition epoch.
    assert c.state(0) == (2, (3, 2), 1, 1)


def test_a_fenced_follower_leaves_the_isr_and_the_leader_epoch_stays() -> None:
    c = Cluster(1, 2, 3)
    c.partition(0, [1, 2, 3])
    c.silent(3)
    assert c.state(0) == (1, (1, 2), 0, 1)


def test_a_leader_is_never_taken_from_outside_the_isr_without_unclean_election() -> None:
    c = Cluster(1, 2, 3)
    c.partition(0, [1, 2, 3], isr=[1])
    c.silent(1)
    # No live ISR member: no leader, and the ISR keeps its last member.
    assert c.state(0) == (NO_LEADER, (1,), 1, 1)
    c.elect(UNCLEAN, [("t", [0])])  # nothing else changed it meanwhile
    assert c.state(0)[0] == 2


def test_a_topic_that_allows_unclean_election_gets_a_live_replica_outside_the_isr() -> None:
    c = Cluster(1, 2, 3)
    c.commit([ConfigRecord(resource_type=RESOURCE_TOPIC, resource_name="t", name="unclean.leader.election.enable", value="true")])
    c.partition(0, [1, 3, 2], isr=[1])
    c.silent(1)
    assert c.state(0) == (3, (3,), 1, 1)  # the first live replica, alone in the ISR


@pytest.mark.parametrize("where", ["static", "cluster default"])
def test_the_broker_level_unclean_election_setting_applies_to_topics_without_their_own(where: str) -> None:
    static = {"unclean.leader.election.enable": True} if where == "static" else {}
    c = Cluster(1, 2, **static)
    if where == "cluster default":
        c.commit([ConfigRecord(resource_type=RESOURCE_BROKER, resource_name="", name="unclean.leader.election.enable", value="true")])
    c.partition(0, [1, 2], isr=[1])
    c.silent(1)
    assert c.state(0)[:2] == (2, (2,))


def test_a_returning_broker_leads_only_where_it_is_still_in_the_isr() -> None:
    c = Cluster(1, 2)
    c.partition(0, [1])          # it was the last ISR member: the partition waits for it
    c.partition(1, [1, 2])       # 2 took over and the ISR shrank to [2]
    c.silent(1)
    assert c.state(0)[:2] == (NO_LEADER, (1,)) and c.state(1)[:2] == (2, (2,))
    c.heartbeat(1, SESSION_MS + 10)
    assert not c.image.brokers[1].fenced
    assert c.state(0) == (1, (1,), 2, 2)
    assert c.state(1) == (2, (2,), 1, 1)  # 1 leads nothing here until its leader adds it back


def test_controlled_shutdown_takes_the_broker_out_of_every_isr() -> None:
    c = Cluster(1, 2, 3)
    c.partition(0, [1, 2, 3])
    c.partition(1, [2, 1, 3])
    c.heartbeat(1, 10, shut_down=True)
    assert c.state(0)[:2] == (2, (2, 3)) and c.state(1)[:2] == (2, (2, 3))


def test_brokers_whose_sessions_end_together_are_fenced_one_at_a_time() -> None:
    c = Cluster(1, 2, 3)
    c.partition(0, [1, 2, 3])
    c.heartbeat(3, SESSION_MS)
    first = c.lifecycle.expire(c.image, SESSION_MS + 1)
    c.commit(first)
    assert c.image.brokers[1].fenced and not c.image.brokers[2].fenced
    c.commit(c.lifecycle.expire(c.image, SESSION_MS + 1))
    # Broker 2 was never handed the leadership it was about to lose.
    assert c.state(0)[:2] == (3, (3,))


# -- AlterPartition --------------------------------------------------------------------------


def test_an_isr_change_bumps_the_partition_epoch_and_answers_what_the_image_will_hold() -> None:
    c = Cluster(1, 2, 3)
    c.partition(0, [1, 2, 3], isr=[1])
    result = c.alter(c.proposal(0, (1, 3)))
    assert (result.error, result.leader, result.leader_epoch, result.partition_epoch, result.isr) == (ErrorCode.none, 1, 0, 1, (1, 3))
    assert c.state(0) == (1, (1, 3), 0, 1)


def test_an_unchanged_isr_writes_nothing_and_answers_the_current_state() -> None:
    c = Cluster(1, 2)
    c.partition(0, [1, 2])
    (error, results), records = c.replication.alter_partition(
        c.image, 1, c.epoch(1), [(c.proposal(0, (1, 2)), (c.epoch(1), c.epoch(2)))])
    assert records == [] and results[0].error == ErrorCode.none and results[0].isr == (1, 2)


def test_alter_partition_from_a_stale_broker_epoch_is_refused_whole() -> None:
    c = Cluster(1, 2)
    c.partition(0, [1, 2], isr=[1])
    (error, results), records = c.replication.alter_partition(c.image, 1, c.epoch(1) - 1, [(c.proposal(0, (1, 2)), (-1, -1))])
    assert (error, results, records) == (ErrorCode.stale_broker_epoch, [], [])


@pytest.mark.parametrize(("case", "expected"), [
    ("unknown topic id", ErrorCode.unknown_topic_id),
    ("unknown partition", ErrorCode.unknown_topic_or_partition),
    ("older leader epoch", ErrorCode.fenced_leader_epoch),
    ("newer leader epoch", ErrorCode.not_controller),
    ("newer partition epoch", ErrorCode.not_controller),
    ("not the leader", ErrorCode.invalid_request),
    ("older partition epoch", ErrorCode.invalid_update_version),
    ("not a replica", ErrorCode.invalid_request),
    ("a member twice", ErrorCode.invalid_request),
    ("without the leader", ErrorCode.invalid_request),
    ("fenced member", ErrorCode.ineligible_replica),
    ("member shutting down", ErrorCode.ineligible_replica),
    ("member with an old broker epoch", ErrorCode.ineligible_replica),
])
def test_alter_partition_refusals(case: str, expected: ErrorCode) -> None:
    c = Cluster(1, 2, 3, 4)
    c.partition(0, [1, 2, 3], isr=[1, 2])
    # A leader change then an ISR change: leader epoch 1, partition epoch 2.
    c.commit([PartitionChangeRecord(partition_id=i32(0), topic_id=c.topic_id, leader=i32(1))])
    c.alter(c.proposal(0, (1,)))
    assert c.state(0) == (1, (1,), 1, 2)
    requester, new_isr, epochs = 1, (1, 2, 3), None
    change = c.proposal(0, new_isr)
    match case:
        case "unknown topic id":
            change = IsrChange(uuid.uuid4(), 0, 1, 2, new_isr)
        case "unknown partition":
            change = IsrChange(c.topic_id, 7, 1, 2, new_isr)
        case "older leader epoch":
            change = c.proposal(0, new_isr, leader_epoch=0)
        case "newer leader epoch":
            change = c.proposal(0, new_isr, leader_epoch=2)
        case "newer partition epoch":
            change = c.proposal(0, new_isr, partition_epoch=3)
        case "not the leader":
            requester = 2
        case "older partition epoch":
            change = c.proposal(0, new_isr, partition_epoch=1)
        case "not a replica":
            change = c.proposal(0, (1, 4))
        case "a member twice":
            change = c.proposal(0, (1, 3, 3))
        case "without the leader":
            change = c.proposal(0, (2, 3))
        case "fenced member":
            c.silent(3, now=2 * SESSION_MS)
        case "member shutting down":
            c.heartbeat(3, 100, shut_down=True)
        case "member with an old broker epoch":
            epochs = (c.epoch(1), c.epoch(2), c.epoch(3) - 1)
    before = c.image.topics["t"].partitions[0]
    assert c.alter(change, requester, epochs).error == expected
    assert c.image.topics["t"].partitions[0] == before  # nothing written


def test_an_unchecked_member_epoch_is_accepted() -> None:
    c = Cluster(1, 2)
    c.partition(0, [1, 2], isr=[1])
    assert c.alter(c.proposal(0, (1, 2)), epochs=(UNKNOWN_BROKER_EPOCH, UNKNOWN_BROKER_EPOCH)).error == ErrorCode.none


# -- ElectLeaders and the rebalance ---------------------------------------------------------


def test_preferred_election_answers_per_partition() -> None:
    c = Cluster(1, 2, 3)
    c.partition(0, [1, 2], leader=2)        # 1 is in the ISR: it takes the lead back
    c.partition(1, [1, 2])                  # already led by 1
    c.partition(2, [3, 1], isr=[1])         # 3 is out of the ISR
    results = c.elect(PREFERRED, [("t", [0, 1, 2, 9]), ("nope", [0])])
    assert results == {
        ("t", 0): ErrorCode.none, ("t", 1): ErrorCode.election_not_needed,
        ("t", 2): ErrorCode.preferred_leader_not_available, ("t", 9): ErrorCode.unknown_topic_or_partition,
        ("nope", 0): ErrorCode.unknown_topic_or_partition,
    }
    assert c.state(0) == (1, (1, 2), 1, 1)


def test_electing_every_partition_leaves_out_those_that_need_none() -> None:
    c = Cluster(1, 2)
    c.partition(0, [1, 2])
    c.partition(1, [1, 2], leader=2)
    assert c.elect(PREFERRED, None) == {("t", 1): ErrorCode.none}


def test_unclean_election_of_a_leaderless_partition() -> None:
    c = Cluster(1, 2, 3)
    c.partition(0, [1, 2], isr=[1])
    c.partition(1, [3], isr=[3])
    c.partition(2, [2, 3])
    c.silent(1, 3)
    assert c.elect(UNCLEAN, [("t", [0, 1, 2])]) == {
        ("t", 0): ErrorCode.none, ("t", 1): ErrorCode.eligible_leaders_not_available,
        ("t", 2): ErrorCode.election_not_needed,
    }
    assert c.state(0)[:2] == (2, (2,))


def test_the_rebalance_moves_leaders_back_only_above_the_imbalance_ratio() -> None:
    c = Cluster(1, 2, **{"leader.imbalance.per.broker.percentage": 40})
    for p in range(5):
        c.partition(p, [1, 2], leader=2 if p < 2 else 1)   # 1 leads 3 of its 5: 40 %, not above
    assert c.replication.rebalance_leaders(c.image) == []
    c.partition(2, [1, 2], leader=2)                         # 60 %
    c.commit(c.replication.rebalance_leaders(c.image))
    assert [c.state(p)[0] for p in range(5)] == [1] * 5
