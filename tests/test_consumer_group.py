"""Consumer groups of the KIP-848 protocol in the sans-IO group coordinator:
ConsumerGroupHeartbeat and ConsumerGroupDescribe, the server-side assignors,
reconciliation with member epochs, timeouts, static members, offsets and the other
group APIs on consumer groups, records and their replay."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode

from group_harness import REBALANCE_MS, Harness
from kafkapy.coordinator.assignors import GroupSpec, MemberSubscription, SubscriptionType, assign_range, assign_uniform
from kafkapy.coordinator.records.consumer_offsets import (
    GroupMetadataKey,
    OffsetCommitKey,
    decode_offsets_key,
    decode_offsets_value,
)
from kafkapy.coordinator.shard import GROUP_AUTHORIZED_OPERATIONS

E = ErrorCode
SESSION_MS = 45_000  # group.consumer.session.timeout.ms
INTERVAL_MS = 5_000  # group.consumer.heartbeat.interval.ms
ORDERS = "orders"


def records_of(h: Harness, group_id: str, start: int = 0) -> list[tuple[str, str | None, Any]]:
    """(record kind, member id, value or None) of the group's records from h.records[start:],
    kinds named after Kafka's keys: 'ConsumerGroupMetadata', 'GroupMetadata', 'OffsetCommit', ..."""
    found = []
    for partition, key, value in h.records[start:]:
        record_key = decode_offsets_key(key)
        owner = record_key.group if isinstance(record_key, (GroupMetadataKey, OffsetCommitKey)) else record_key.group_id
        if owner == group_id:
            assert partition == h.coordinator.partition_for(group_id)
            kind = type(record_key).__name__.removesuffix("Key")
            found.append((kind, getattr(record_key, "member_id", None), decode_offsets_value(record_key, value)))
    return found


def kinds(records: list[tuple[str, str | None, Any]]) -> list[tuple[str, str | None, bool]]:
    """(kind, member id, is a tombstone) of each record."""
    return [(kind, member_id, value is None) for kind, member_id, value in records]


def assignments(h: Harness, group_id: str, which: str = "assignment") -> dict[str, dict[str, set[int]]]:
    """Each member's current (or target) assignment as ConsumerGroupDescribe reports it."""
    [described] = h.consumer_describe(group_id)
    return {
        m["member_id"]: {tp["topic_name"]: set(tp["partitions"]) for tp in m[which]["topic_partitions"]}
        for m in described["members"]
    }


def stable_group(h: Harness, group_id: str, *member_ids: str, topics: list[str] | None = None, **join: Any) -> int:
    """Members join one after the other (subscribed to topics, by default ORDERS), then all
    the group's members heartbeat until it is Stable; the group epoch."""
    for member_id in member_ids:
        h.consumer_join(group_id, member_id, [ORDERS] if topics is None else topics, **join)
    for _ in range(3):  # revoke, then pick up what was released
        for member_id in h.group(group_id).members:
            member = h.group(group_id).members[member_id]
            h.consumer_heartbeat(group_id, member_id, member.member_epoch, owned=owned(h, group_id, member_id))
    assert h.group(group_id).state.value == "Stable"
    return h.group(group_id).group_epoch


def owned(h: Harness, group_id: str, member_id: str) -> dict[str, list[int]]:
    """What a well-behaved client owns: its current assignment."""
    names = {topic_id: name for name, topic_id in h.topic_ids.items()}
    member = h.group(group_id).members[member_id]
    return {names[t]: sorted(p) for t, p in member.assigned_partitions.items()}


# Joining and the records of a join


def test_a_member_joins_and_gets_every_partition():
    h = Harness()
    h.set_topics(orders=3)
    response = h.consumer_join("g", "m1", [ORDERS], client_id="app")
    assert (response["error_code"], response["member_id"], response["member_epoch"], response["heartbeat_interval"]) == (
        E.none, "m1", 1, INTERVAL_MS)
    assert h.assignment(response) == {ORDERS: {0, 1, 2}}
    assert h.group("g").state.value == "Stable"
    # The records Kafka writes for a first join, in its order.
    written = records_of(h, "g")
    assert kinds(written) == [
        ("ConsumerGroupMemberMetadata", "m1", False), ("ConsumerGroupPartitionMetadata", None, False),
        ("ConsumerGroupMetadata", None, False), ("ConsumerGroupTargetAssignmentMember", "m1", False),
        ("ConsumerGroupTargetAssignmentMetadata", None, False), ("ConsumerGroupCurrentMemberAssignment", "m1", False),
    ]
    member, metadata, epoch, target, target_epoch, current = (value for _, _, value in written)
    assert (member.client_id, member.client_host, member.subscribed_topic_names, member.rebalance_timeout_ms,
            member.instance_id, member.server_assignor) == ("app", "/10.0.0.1", (ORDERS,), REBALANCE_MS, None, None)
    assert [(t.topic_id, t.topic_name, t.num_partitions) for t in metadata.topics] == [(h.topic_ids[ORDERS], ORDERS, 3)]
    assert (epoch.epoch, target_epoch.assignment_epoch) == (1, 1)
    assert [(tp.topic_id, tp.partitions) for tp in target.topic_partitions] == [(h.topic_ids[ORDERS], (0, 1, 2))]
    assert (current.member_epoch, current.previous_member_epoch, current.state) == (1, 0, 0)
    assert [(tp.topic_id, tp.partitions) for tp in current.assigned_partitions] == [(h.topic_ids[ORDERS], (0, 1, 2))]
    assert current.partitions_pending_revocation == ()
    # A heartbeat of a stable member writes nothing and sends no assignment.
    before = len(h.records)
    again = h.consumer_heartbeat("g", "m1", 1, owned={ORDERS: [0, 1, 2]}, client_id="app")
    assert (again["error_code"], again["member_epoch"], again["assignment"]) == (E.none, 1, None)
    assert len(h.records) == before


def test_in_version_0_the_coordinator_names_the_member():
    h = Harness()
    h.set_topics(orders=2)
    response = h.consumer_join("g", "", [ORDERS], version=0)
    member_id = response["member_id"]
    assert response["error_code"] is E.none and len(member_id) == 22 and not member_id.startswith("-")
    assert set(h.group("g").members) == {member_id}
    assert h.consumer_heartbeat("g", member_id, 1, version=0, owned={ORDERS: [0, 1]})["error_code"] is E.none
    # From version 1 the consumer names itself.
    refused = h.consumer_join("g", "", [ORDERS], version=1)
    assert (refused["error_code"], refused["error_message"]) == (E.invalid_request, "MemberId can't be empty.")


def test_a_full_request_gets_the_assignment_again():
    h = Harness()
    h.set_topics(orders=2)
    h.consumer_join("g", "m1", [ORDERS])
    full = h.consumer_heartbeat("g", "m1", 1, rebalance_ms=REBALANCE_MS, topics=[ORDERS], owned={ORDERS: [0, 1]})
    assert h.assignment(full) == {ORDERS: {0, 1}}


# Reconciliation


def test_a_partition_moves_only_once_its_owner_revoked_it():
    h = Harness()
    h.set_topics(orders=6)
    h.consumer_join("g", "m1", [ORDERS])
    joined = h.consumer_join("g", "m2", [ORDERS])
    # m2 is in epoch 2 but its partitions are still m1's: it waits for them.
    assert (joined["member_epoch"], h.assignment(joined)) == (2, {})
    assert h.group("g").members["m2"].state.value == 2  # UNRELEASED_PARTITIONS
    assert h.group("g").state.value == "Reconciling"
    assert assignments(h, "g", "target_assignment") == {"m1": {ORDERS: {0, 1, 2}}, "m2": {ORDERS: {3, 4, 5}}}

    # m1 is asked to give up 3, 4 and 5, and stays in epoch 1 until it has.
    revoking = h.consumer_heartbeat("g", "m1", 1, owned={ORDERS: [0, 1, 2, 3, 4, 5]})
    assert (revoking["member_epoch"], h.assignment(revoking)) == (1, {ORDERS: {0, 1, 2}})
    member = h.group("g").members["m1"]
    assert member.state.value == 1 and member.partitions_pending_revocation == {h.topic_ids[ORDERS]: {3, 4, 5}}
    still_waiting = h.consumer_heartbeat("g", "m2", 2, owned={})
    assert (still_waiting["member_epoch"], still_waiting["assignment"]) == (2, None)
    assert h.consumer_heartbeat("g", "m1", 1, owned={ORDERS: [0, 1, 2, 3, 4, 5]})["member_epoch"] == 1

    # Revoked: m1 moves to epoch 2, and m2 gets the partitions at its next heartbeat.
    revoked = h.consumer_heartbeat("g", "m1", 1, owned={ORDERS: [0, 1, 2]})
    assert (revoked["member_epoch"], revoked["assignment"]) == (2, None)
    released = h.consumer_heartbeat("g", "m2", 2, owned={})
    assert (released["member_epoch"], h.assignment(released)) == (2, {ORDERS: {3, 4, 5}})
    assert h.group("g").state.value == "Stable"
    assert assignments(h, "g") == {"m1": {ORDERS: {0, 1, 2}}, "m2": {ORDERS: {3, 4, 5}}}


def test_a_member_may_come_back_with_its_previous_epoch_if_it_owns_no_more_than_its_assignment():
    h = Harness()
    h.set_topics(orders=4)
    epoch = stable_group(h, "g", "m1", "m2")
    assert epoch == 2
    # The response that moved m1 to epoch 2 was lost: m1 still says 1.
    assert h.consumer_heartbeat("g", "m1", 1, owned={ORDERS: [0, 1]})["member_epoch"] == 2
    owning_more = h.consumer_heartbeat("g", "m1", 1, owned={ORDERS: [0, 1, 2]})
    assert owning_more["error_code"] is E.fenced_member_epoch
    not_saying = h.consumer_heartbeat("g", "m1", 1)
    assert not_saying["error_code"] is E.fenced_member_epoch
    ahead = h.consumer_heartbeat("g", "m1", 3, owned={ORDERS: [0, 1]})
    assert ahead["error_code"] is E.fenced_member_epoch
    assert "greater member epoch (3)" in ahead["error_message"]


# Assignors


def test_uniform_assignor_is_balanced_and_sticky():
    h = Harness()
    h.set_topics(a=5, b=3)
    for member_id in ("m1", "m2", "m3"):
        h.consumer_join("g", member_id, ["a", "b"])
    # m1 had everything, gave m2 half, then each gave m3 what exceeded its quota.
    assert assignments(h, "g", "target_assignment") == {
        "m1": {"a": {0, 1, 2}}, "m2": {"a": {4}, "b": {0, 1}}, "m3": {"a": {3}, "b": {2}},
    }
    [described] = h.consumer_describe("g")
    assert (described["assignor_name"], described["group_epoch"], described["assignment_epoch"]) == ("uniform", 3, 3)


def test_uniform_assignor_with_different_subscriptions():
    h = Harness()
    h.set_topics(a=4, b=2)
    h.consumer_join("g", "m1", ["a"])
    h.consumer_join("g", "m2", ["a", "b"])
    # b can only go to m2; then m2 takes from a until both have three.
    assert assignments(h, "g", "target_assignment") == {"m1": {"a": {0, 1, 2}}, "m2": {"a": {3}, "b": {0, 1}}}


def test_range_assignor_named_by_the_members():
    h = Harness()
    h.set_topics(a=5, b=3)
    for member_id in ("m3", "m1", "m2"):
        h.consumer_join("g", member_id, ["a", "b"], assignor="range")
    assert assignments(h, "g", "target_assignment") == {
        "m1": {"a": {0, 1}, "b": {0}}, "m2": {"a": {2, 3}, "b": {1}}, "m3": {"a": {4}, "b": {2}},
    }
    assert h.consumer_describe("g")[0]["assignor_name"] == "range"


def test_range_assignor_by_default_and_with_different_subscriptions():
    h = Harness({"group.consumer.assignors": "range,uniform"})
    h.set_topics(a=4, b=2)
    h.consumer_join("g", "m1", ["a"])
    h.consumer_join("g", "m2", ["a", "b"])
    h.consumer_join("g", "s", ["a"], instance="i0")  # static members come first
    assert assignments(h, "g", "target_assignment") == {
        "s": {"a": {0, 1}}, "m1": {"a": {2}}, "m2": {"a": {3}, "b": {0, 1}},
    }
    assert h.consumer_describe("g")[0]["assignor_name"] == "range"


@st.composite
def group_specs(draw: Any) -> tuple[GroupSpec, dict[uuid.UUID, int]]:
    """Members subscribing to some of four topics, with a previous target assignment that
    gives each partition to at most one member (subscribed or not any more)."""
    counts = {uuid.UUID(int=t): draw(st.integers(0, 7)) for t in range(1, 5)}
    member_ids = draw(st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=6, unique=True))
    subscriptions = {m: frozenset(draw(st.sets(st.sampled_from(sorted(counts))))) for m in member_ids}
    previous: dict[str, dict[uuid.UUID, set[int]]] = {m: {} for m in member_ids}
    owners: dict[uuid.UUID, dict[int, str]] = {}
    for topic_id, count in counts.items():
        for partition in range(count):
            owner = draw(st.sampled_from([None, *member_ids]))
            if owner is not None:
                previous[owner].setdefault(topic_id, set()).add(partition)
                owners.setdefault(topic_id, {})[partition] = owner
    homogeneous = len(set(subscriptions.values())) == 1
    members = {m: MemberSubscription(None, subscriptions[m], {t: frozenset(p) for t, p in previous[m].items()})
               for m in member_ids}
    kind = SubscriptionType.HOMOGENEOUS if homogeneous else SubscriptionType.HETEROGENEOUS
    return GroupSpec(members, kind, owners), counts


@given(group_specs(), st.sampled_from([assign_uniform, assign_range]))
def test_assignors_give_each_subscribed_partition_to_one_subscriber(spec_and_counts: Any, assignor: Any):
    spec, counts = spec_and_counts
    assignment = assignor(spec, counts)
    owners: dict[tuple[uuid.UUID, int], str] = {}
    for member_id, topics in assignment.items():
        for topic_id, partitions in topics.items():
            assert topic_id in spec.members[member_id].subscribed_topic_ids
            for partition in partitions:
                assert (topic_id, partition) not in owners
                owners[(topic_id, partition)] = member_id
    subscribed = {t for m in spec.members.values() for t in m.subscribed_topic_ids}
    assert set(owners) == {(t, p) for t in subscribed for p in range(counts[t])}
    if assignor is assign_uniform and spec.subscription_type is SubscriptionType.HOMOGENEOUS:
        sizes = [sum(len(p) for p in assignment.get(m, {}).values()) for m in spec.members]
        assert max(sizes) - min(sizes) <= 1


# Leaving and timeouts


def test_a_leaving_members_partitions_go_to_the_others():
    h = Harness()
    h.set_topics(orders=4)
    stable_group(h, "g", "m1", "m2")
    start = len(h.records)
    left = h.consumer_heartbeat("g", "m2", -1)
    assert (left["error_code"], left["member_id"], left["member_epoch"], left["heartbeat_interval"]) == (E.none, "m2", -1, 0)
    assert kinds(records_of(h, "g", start)) == [
        ("ConsumerGroupCurrentMemberAssignment", "m2", True), ("ConsumerGroupTargetAssignmentMember", "m2", True),
        ("ConsumerGroupMemberMetadata", "m2", True), ("ConsumerGroupMetadata", None, False),
    ]
    assert set(h.group("g").members) == {"m1"} and h.group("g").state.value == "Assigning"
    taken = h.consumer_heartbeat("g", "m1", 2, owned={ORDERS: [0, 1]})
    assert (taken["member_epoch"], h.assignment(taken)) == (3, {ORDERS: {0, 1, 2, 3}})
    # The last one leaving leaves an empty group behind, whose subscriptions are gone too.
    start = len(h.records)
    h.consumer_heartbeat("g", "m1", -1)
    assert h.group("g").state.value == "Empty"
    assert [t for t in kinds(records_of(h, "g", start)) if t[0] == "ConsumerGroupPartitionMetadata"] == [
        ("ConsumerGroupPartitionMetadata", None, False)]
    assert h.group("g").subscription_metadata == {}
    assert h.consumer_heartbeat("g", "m1", -1)["error_code"] is E.unknown_member_id


def test_a_member_that_stops_heartbeating_is_fenced_at_its_session_timeout():
    h = Harness()
    h.set_topics(orders=2)
    stable_group(h, "g", "m1", "m2")
    h.tick(SESSION_MS - INTERVAL_MS)
    h.consumer_heartbeat("g", "m1", 2, owned={ORDERS: [0]})
    h.tick(INTERVAL_MS - 1)
    assert set(h.group("g").members) == {"m1", "m2"}
    h.tick(1)
    assert set(h.group("g").members) == {"m1"}
    assert h.consumer_heartbeat("g", "m2", 2, owned={ORDERS: [1]})["error_code"] is E.unknown_member_id
    assert h.assignment(h.consumer_heartbeat("g", "m1", 2, owned={ORDERS: [0]})) == {ORDERS: {0, 1}}


def test_a_member_that_does_not_revoke_within_its_rebalance_timeout_is_fenced():
    h = Harness()
    h.set_topics(orders=2)
    h.consumer_join("g", "slow", [ORDERS], rebalance_ms=20_000)
    h.consumer_join("g", "m2", [ORDERS])
    h.consumer_heartbeat("g", "slow", 1, owned={ORDERS: [0, 1]})  # asked to revoke 1
    for _ in range(3):  # heartbeating keeps the session, not the revocation, alive
        h.tick(INTERVAL_MS)
        h.consumer_heartbeat("g", "slow", 1, owned={ORDERS: [0, 1]})
    h.tick(20_000 - 3 * INTERVAL_MS - 1)
    assert "slow" in h.group("g").members
    h.tick(1)
    assert set(h.group("g").members) == {"m2"}
    assert h.assignment(h.consumer_heartbeat("g", "m2", 2, owned={})) == {ORDERS: {0, 1}}


def test_revoking_in_time_cancels_the_rebalance_timeout():
    h = Harness()
    h.set_topics(orders=2)
    h.consumer_join("g", "m1", [ORDERS], rebalance_ms=20_000)
    h.consumer_join("g", "m2", [ORDERS])
    h.consumer_heartbeat("g", "m1", 1, owned={ORDERS: [0, 1]})
    h.consumer_heartbeat("g", "m1", 1, owned={ORDERS: [0]})
    h.consumer_heartbeat("g", "m2", 2, owned={})
    h.tick(20_000)
    assert set(h.group("g").members) == {"m1", "m2"}


# Static members


def test_a_static_member_leaves_for_a_while_and_its_next_instance_takes_its_place():
    h = Harness()
    h.set_topics(orders=4)
    h.consumer_join("g", "s1", [ORDERS], instance="i1")
    epoch = stable_group(h, "g", "dyn")
    kept = owned(h, "g", "s1")
    assert kept == {ORDERS: [0, 1]}

    away = h.consumer_heartbeat("g", "s1", -2, instance="i1")
    assert (away["error_code"], away["member_id"], away["member_epoch"]) == (E.none, "s1", -2)
    # Still a member, still owning its partitions, and no rebalance for the others.
    assert h.group("g").members["s1"].member_epoch == -2 and h.group("g").group_epoch == epoch
    assert h.consumer_heartbeat("g", "dyn", epoch, owned={ORDERS: [2, 3]})["assignment"] is None

    start = len(h.records)
    back = h.consumer_join("g", "s1-again", [ORDERS], instance="i1")
    assert (back["error_code"], back["member_epoch"], h.assignment(back)) == (E.none, epoch, {ORDERS: {0, 1}})
    assert set(h.group("g").members) == {"s1-again", "dyn"} and h.group("g").group_epoch == epoch
    assert h.group("g").static_members == {"i1": "s1-again"}
    assert kinds(records_of(h, "g", start))[:6] == [
        ("ConsumerGroupCurrentMemberAssignment", "s1", True), ("ConsumerGroupTargetAssignmentMember", "s1", True),
        ("ConsumerGroupMemberMetadata", "s1", True), ("ConsumerGroupMemberMetadata", "s1-again", False),
        ("ConsumerGroupTargetAssignmentMember", "s1-again", False), ("ConsumerGroupCurrentMemberAssignment", "s1-again", False),
    ]

    # The instance id is taken: another process with it is refused, the old one is fenced.
    duplicate = h.consumer_join("g", "s1-twin", [ORDERS], instance="i1")
    assert duplicate["error_code"] is E.unreleased_instance_id
    old = h.consumer_heartbeat("g", "s1", epoch, instance="i1", owned={ORDERS: [0, 1]})
    assert old["error_code"] is E.fenced_instance_id
    assert h.consumer_heartbeat("g", "s1", -2, instance="i1")["error_code"] is E.fenced_instance_id
    assert h.consumer_heartbeat("g", "x", epoch, instance="nobody")["error_code"] is E.unknown_member_id
    assert h.consumer_heartbeat("g", "x", -2, instance="nobody")["error_code"] is E.unknown_member_id
    # A static member leaving for good (-1) is removed at once.
    assert h.consumer_heartbeat("g", "s1-again", -1, instance="i1")["error_code"] is E.none
    assert set(h.group("g").members) == {"dyn"} and h.group("g").group_epoch == epoch + 1


def test_a_static_member_that_does_not_come_back_is_fenced_at_its_session_timeout():
    h = Harness()
    h.set_topics(orders=2)
    h.consumer_join("g", "s1", [ORDERS], instance="i1")
    h.consumer_join("g", "dyn", [ORDERS])
    h.consumer_heartbeat("g", "s1", -2, instance="i1")
    for _ in range(SESSION_MS // INTERVAL_MS - 1):
        h.tick(INTERVAL_MS)
        assert h.consumer_heartbeat("g", "dyn", 2, owned={})["assignment"] is None  # partition 1 is still s1's
    h.tick(INTERVAL_MS)
    assert set(h.group("g").members) == {"dyn"}
    assert h.assignment(h.consumer_heartbeat("g", "dyn", 2, owned={})) == {ORDERS: {0, 1}}


# Errors


@pytest.mark.parametrize("fields, message", [
    ({"group_id": " "}, "GroupId can't be empty."),
    ({"member_id": ""}, "MemberId can't be empty."),
    ({"instance": ""}, "InstanceId can't be empty."),
    ({"rack": " "}, "RackId can't be empty."),
    ({"rebalance_ms": -1}, "RebalanceTimeoutMs must be provided in first request."),
    ({"owned": None}, "TopicPartitions must be empty when (re-)joining."),
    ({"owned": {ORDERS: [0]}}, "TopicPartitions must be empty when (re-)joining."),
    ({"topics": None}, "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining."),
    ({"regex": "ord.*"}, "SubscribedTopicRegex is not supported."),
    ({"member_epoch": -2}, "InstanceId can't be null."),
    ({"member_epoch": -3}, "MemberEpoch is invalid."),
])
def test_malformed_heartbeats_are_invalid_requests(fields: dict[str, Any], message: str):
    h = Harness()
    h.set_topics(orders=1)
    request: dict[str, Any] = {"group_id": "g", "member_id": "m1", "member_epoch": 0, "rebalance_ms": REBALANCE_MS,
                               "topics": [ORDERS], "owned": {}, **fields}
    response = h.consumer_heartbeat(request.pop("group_id"), request.pop("member_id"), request.pop("member_epoch"), **request)
    assert (response["error_code"], response["error_message"], response["member_id"]) == (E.invalid_request, message, None)
    assert h.records == []


def test_an_empty_subscription_and_an_empty_regex_join_without_topics():
    h = Harness()
    h.set_topics(orders=1)
    response = h.consumer_join("g", "m1", [], regex="")
    assert (response["error_code"], h.assignment(response)) == (E.none, {})


def test_unknown_assignor_group_or_member():
    h = Harness()
    h.set_topics(orders=1)
    unsupported = h.consumer_join("g", "m1", [ORDERS], assignor="sticky")
    assert (unsupported["error_code"], unsupported["error_message"]) == (
        E.unsupported_assignor, "ServerAssignor sticky is not supported. Supported assignors: uniform, range.")
    assert h.consumer_heartbeat("nowhere", "m1", 1, owned={})["error_code"] is E.group_id_not_found
    assert h.consumer_heartbeat("nowhere", "m1", -1)["error_code"] is E.group_id_not_found
    h.consumer_join("g", "m1", [ORDERS])
    assert h.consumer_heartbeat("g", "stranger", 1, owned={})["error_code"] is E.unknown_member_id


def test_a_full_group_takes_no_more_members():
    h = Harness({"group.consumer.max.size": 1})
    h.set_topics(orders=1)
    h.consumer_join("g", "m1", [ORDERS])
    full = h.consumer_join("g", "m2", [ORDERS])
    assert (full["error_code"], full["error_message"]) == (
        E.group_max_size_reached, "The consumer group has reached its maximum capacity of 1 members.")
    assert h.consumer_heartbeat("g", "m1", 1, owned={ORDERS: [0]})["error_code"] is E.none


# Topics


def test_subscriptions_follow_the_topics():
    h = Harness()
    h.set_topics(orders=2)
    h.consumer_join("g", "m1", [ORDERS, "later"])
    assert h.group("g").group_epoch == 1
    h.set_topics(orders=3, later=1)  # a partition added, a topic created
    grown = h.consumer_heartbeat("g", "m1", 1, owned={ORDERS: [0, 1]})
    assert (grown["member_epoch"], h.assignment(grown)) == (2, {ORDERS: {0, 1, 2}, "later": {0}})
    h.set_topics(orders=3)  # a topic deleted
    shrunk = h.consumer_heartbeat("g", "m1", 2, owned={ORDERS: [0, 1, 2], "later": [0]})
    # The deleted topic's partition is revoked first.
    assert (shrunk["member_epoch"], h.assignment(shrunk)) == (2, {ORDERS: {0, 1, 2}})
    assert h.consumer_heartbeat("g", "m1", 2, owned={ORDERS: [0, 1, 2]})["member_epoch"] == 3
    # The described assignment names only topics that exist.
    h.set_topics()
    assert assignments(h, "g") == {"m1": {}}


# Offsets


def test_offset_commits_carry_the_member_epoch():
    h = Harness()
    h.set_topics(orders=2)
    h.consumer_join("g", "m1", [ORDERS])
    assert h.committed(h.commit("g", {(ORDERS, 0): 5}, generation_id=1, member_id="m1")) == {(ORDERS, 0): E.none}
    assert h.committed(h.commit("g", {(ORDERS, 0): 6}, generation_id=0, member_id="m1")) == {(ORDERS, 0): E.stale_member_epoch}
    assert h.committed(h.commit("g", {(ORDERS, 0): 7}, generation_id=1, member_id="who")) == {(ORDERS, 0): E.unknown_member_id}
    assert h.committed(h.commit("g", {(ORDERS, 0): 8}, generation_id=1, member_id="m1", version=8)) == {
        (ORDERS, 0): E.unsupported_version}
    # Outside of the group (an admin client): only while it is empty.
    assert h.committed(h.commit("g", {(ORDERS, 0): 9})) == {(ORDERS, 0): E.unknown_member_id}
    h.consumer_heartbeat("g", "m1", -1)
    assert h.committed(h.commit("g", {(ORDERS, 1): 10})) == {(ORDERS, 1): E.none}
    assert h.offsets("g", {ORDERS: [0, 1]}) == {(ORDERS, 0): (5, ""), (ORDERS, 1): (10, "")}


def test_offset_fetch_checks_the_member_epoch_from_version_9():
    h = Harness()
    h.set_topics(orders=1)
    h.consumer_join("g", "m1", [ORDERS])
    h.commit("g", {(ORDERS, 0): 5}, generation_id=1, member_id="m1")

    def fetched(**member: Any) -> tuple[ErrorCode, list[Any]]:
        [group] = h.fetch_groups({"g": {ORDERS: [0]}}, version=9, **member)["groups"]
        return group["error_code"], [p["committed_offset"] for t in group["topics"] for p in t["partitions"]]

    assert fetched(member_id="m1", member_epoch=1) == (E.none, [5])
    assert fetched(member_id="m1", member_epoch=0) == (E.stale_member_epoch, [])
    assert fetched(member_id="who", member_epoch=1) == (E.unknown_member_id, [])
    assert fetched() == (E.none, [5])  # an admin client


def test_offset_delete_refuses_the_subscribed_topics():
    h = Harness()
    h.set_topics(orders=1, old=1)
    h.consumer_join("g", "m1", [ORDERS])
    h.commit("g", {(ORDERS, 0): 1, ("old", 0): 2}, generation_id=1, member_id="m1")
    response = h.delete_offsets("g", {ORDERS: [0], "old": [0]})
    assert response["error_code"] is E.none
    assert h.committed(response) == {(ORDERS, 0): E.group_subscribed_to_topic, ("old", 0): E.none}
    assert h.offsets("g", None) == {(ORDERS, 0): (1, "")}


def test_offsets_of_topics_a_consumer_group_does_not_subscribe_to_expire_then_the_empty_group_goes():
    h = Harness({"offsets.retention.minutes": 1, "offsets.retention.check.interval.ms": 1000})
    h.set_topics(orders=1, old=1)
    h.consumer_join("g", "m1", [ORDERS])
    h.commit("g", {(ORDERS, 0): 1, ("old", 0): 2}, generation_id=1, member_id="m1")
    for _ in range(12):
        h.tick(INTERVAL_MS)
        h.consumer_heartbeat("g", "m1", 1, owned={ORDERS: [0]})
    # A consumer group's offsets expire a retention after their commit, unless subscribed.
    assert h.offsets("g", None) == {(ORDERS, 0): (1, "")}
    h.consumer_heartbeat("g", "m1", -1)
    h.tick(1000)
    assert "g" not in h.coordinator.groups and h.offsets("g", None) == {}
    assert kinds(records_of(h, "g"))[-4:] == [
        ("OffsetCommit", None, True), ("ConsumerGroupTargetAssignmentMetadata", None, True),
        ("ConsumerGroupPartitionMetadata", None, True), ("ConsumerGroupMetadata", None, True),
    ]


# The other group APIs


def test_delete_groups_deletes_only_an_empty_consumer_group():
    h = Harness()
    h.set_topics(orders=1)
    h.consumer_join("g", "m1", [ORDERS])
    h.commit("g", {(ORDERS, 0): 1}, generation_id=1, member_id="m1")
    assert h.delete_groups("g") == [("g", E.non_empty_group)]
    h.consumer_heartbeat("g", "m1", -1)
    start = len(h.records)
    assert h.delete_groups("g") == [("g", E.none)]
    assert kinds(records_of(h, "g", start)) == [
        ("OffsetCommit", None, True), ("ConsumerGroupTargetAssignmentMetadata", None, True),
        ("ConsumerGroupPartitionMetadata", None, True), ("ConsumerGroupMetadata", None, True),
    ]
    assert "g" not in h.coordinator.groups
    [gone] = h.consumer_describe("g")
    assert (gone["error_code"], gone["error_message"]) == (E.group_id_not_found, "Group g not found.")


def test_list_groups_and_describe_groups_of_consumer_groups():
    h = Harness()
    h.set_topics(orders=2)
    h.consumer_join("stable", "m1", [ORDERS])
    h.consumer_join("reconciling", "m1", [ORDERS])
    h.consumer_join("reconciling", "m2", [ORDERS])
    h.form_group("classic", 1)
    assert h.list_groups() == {
        "stable": ("Stable", "consumer"), "reconciling": ("Reconciling", "consumer"), "classic": ("Stable", "consumer"),
    }
    assert set(h.list_groups(types=("Consumer",))) == {"stable", "reconciling"}
    assert set(h.list_groups(types=("classic",))) == {"classic"}
    assert set(h.list_groups(states=("reconciling",))) == {"reconciling"}
    # The classic API does not describe consumer groups: they are not found from v6.
    [v6] = h.describe("stable", version=6)
    assert (v6["error_code"], v6["error_message"], v6["group_state"]) == (
        E.group_id_not_found, "Group stable is not a classic group.", "Dead")
    [v5] = h.describe("stable", version=5)
    assert (v5["error_code"], v5["group_state"], v5["members"]) == (E.none, "Dead", [])


def test_consumer_group_describe():
    h = Harness()
    h.set_topics(orders=2)
    h.consumer_join("g", "m1", [ORDERS], instance="i1", rack="r1", client_id="app")
    h.consumer_join("g", "m2", [ORDERS])
    h.form_group("classic", 1)
    described, classic, missing, blank = h.consumer_describe("g", "classic", "missing", "", authorized_operations=True)
    assert (described["error_code"], described["group_state"], described["group_epoch"], described["assignment_epoch"],
            described["assignor_name"], described["authorized_operations"]) == (
        E.none, "Reconciling", 2, 2, "uniform", GROUP_AUTHORIZED_OPERATIONS)
    m1, m2 = described["members"]
    orders_id = h.topic_ids[ORDERS]
    assert m1 == {
        "member_id": "m1", "instance_id": "i1", "rack_id": "r1", "member_epoch": 1, "client_id": "app",
        "client_host": "/10.0.0.1", "subscribed_topic_names": [ORDERS], "subscribed_topic_regex": "",
        "assignment": {"topic_partitions": [{"topic_id": orders_id, "topic_name": ORDERS, "partitions": [0, 1]}]},
        "target_assignment": {"topic_partitions": [{"topic_id": orders_id, "topic_name": ORDERS, "partitions": [0]}]},
        "member_type": 1,
    }
    assert (m2["member_id"], m2["member_epoch"], m2["assignment"]["topic_partitions"]) == ("m2", 2, [])
    assert (classic["error_code"], classic["error_message"]) == (E.group_id_not_found, "Group classic is not a consumer group.")
    assert (missing["error_code"], blank["error_code"]) == (E.group_id_not_found, E.invalid_group_id)
    [v0] = h.consumer_describe("g", version=0)
    assert v0["authorized_operations"] == -(2**31)


def test_classic_requests_to_a_consumer_group():
    h = Harness()
    h.set_topics(orders=1)
    h.consumer_join("g", "m1", [ORDERS])
    h.consumer_join("g", "s1", [ORDERS], instance="i1")
    join = h.reply(h.join("g"))
    assert join is not None and join["error_code"] is E.inconsistent_group_protocol
    assert h.heartbeat("g", "m1", 1) is E.unknown_member_id
    assert h.heartbeat("g", "other", 1, instance="i1") is E.fenced_instance_id
    assert h.reply(h.sync("g", "m1", 1))["error_code"] is E.unknown_member_id  # type: ignore[index]
    left = h.leave("g", [("m1", None), ("other", "i1"), ("", "i1")])
    assert [m["error_code"] for m in left["members"]] == [E.unknown_member_id, E.fenced_instance_id, E.unknown_member_id]
    assert set(h.group("g").members) == {"m1", "s1"}


def test_an_empty_consumer_group_becomes_classic_when_a_classic_member_joins():
    h = Harness()
    h.set_topics(orders=1)
    h.consumer_join("g", "m1", [ORDERS])
    h.commit("g", {(ORDERS, 0): 3}, generation_id=1, member_id="m1")
    h.consumer_heartbeat("g", "m1", -1)
    start = len(h.records)
    h.form_group("g", 1)
    assert h.group("g").group_type == "classic"
    assert kinds(records_of(h, "g", start))[:4] == [
        ("ConsumerGroupTargetAssignmentMetadata", None, True), ("ConsumerGroupPartitionMetadata", None, True),
        ("ConsumerGroupMetadata", None, True), ("GroupMetadata", None, False),
    ]
    assert h.offsets("g", {ORDERS: [0]}) == {(ORDERS, 0): (3, "")}


def test_an_empty_classic_group_becomes_a_consumer_group_and_a_busy_one_does_not():
    h = Harness()
    h.set_topics(orders=1)
    h.commit("g", {(ORDERS, 0): 3})  # a simple group
    start = len(h.records)
    assert h.consumer_join("g", "m1", [ORDERS])["error_code"] is E.none
    assert h.group("g").group_type == "consumer"
    assert kinds(records_of(h, "g", start))[:2] == [("GroupMetadata", None, True), ("ConsumerGroupMemberMetadata", "m1", False)]
    assert h.offsets("g", {ORDERS: [0]}) == {(ORDERS, 0): (3, "")}
    h.form_group("busy", 1)
    refused = h.consumer_join("busy", "m1", [ORDERS])
    assert (refused["error_code"], refused["error_message"]) == (E.group_id_not_found, "Group busy is not a consumer group.")


# Replay


def snapshot(h: Harness) -> dict[str, Any]:
    return {
        group_id: {
            "state": g.state, "epoch": g.group_epoch, "members": dict(g.members), "static": dict(g.static_members),
            "target": dict(g.target_assignment), "target_epoch": g.target_assignment_epoch,
            "owners": g.partition_owners, "partition_epochs": g.partition_epochs,
            "metadata": dict(g.subscription_metadata), "subscribed": dict(g.subscribed_topic_names),
            "assignors": dict(g.server_assignors), "offsets": h.coordinator.offsets.of_group(group_id),
        }
        for group_id, g in h.coordinator.groups.items()
    }


def test_a_restarted_coordinator_carries_on_with_its_consumer_groups():
    h = Harness()
    h.set_topics(orders=4)
    h.consumer_join("g", "slow", [ORDERS], rebalance_ms=60_000)
    h.consumer_join("g", "m2", [ORDERS], assignor="range")  # range: m2 gets 0 and 1, slow 2 and 3
    h.consumer_heartbeat("g", "slow", 1, owned={ORDERS: [0, 1, 2, 3]})
    assert h.group("g").members["slow"].partitions_pending_revocation == {h.topic_ids[ORDERS]: {0, 1}}
    h.consumer_join("g", "s1", [ORDERS], instance="i1")
    h.consumer_heartbeat("g", "s1", -2, instance="i1")
    h.commit("g", {(ORDERS, 0): 7}, generation_id=1, member_id="slow")
    h.consumer_join("gone", "m1", [ORDERS])
    h.consumer_heartbeat("gone", "m1", -1)
    h.delete_groups("gone")
    h.consumer_join("empty", "m1", [ORDERS])
    h.consumer_heartbeat("empty", "m1", -1)
    before = snapshot(h)

    fresh = h.restarted()
    assert snapshot(fresh) == before
    assert set(fresh.coordinator.groups) == {"g", "empty"}
    assert fresh.group("g").state.value == "Reconciling" and fresh.group("empty").state.value == "Empty"
    # The members carry on where they were: slow revoked 0 and 1, moves on to revoke 2 (s1's
    # arrival moved the target again), then reaches the group epoch; m2 gets 2.
    revoking = fresh.consumer_heartbeat("g", "slow", 1, owned={ORDERS: [2, 3]})
    assert (revoking["member_epoch"], fresh.assignment(revoking)) == (2, {ORDERS: {3}})
    assert fresh.consumer_heartbeat("g", "slow", 2, owned={ORDERS: [3]})["member_epoch"] == 3
    assert fresh.assignment(fresh.consumer_heartbeat("g", "m2", 2, owned={})) == {ORDERS: {2}}
    # Sessions start again at the restart: s1 did not come back and goes at its session timeout.
    for _ in range(SESSION_MS // INTERVAL_MS):
        fresh.tick(INTERVAL_MS)
        for member_id in ("slow", "m2"):
            member = fresh.group("g").members[member_id]
            fresh.consumer_heartbeat("g", member_id, member.member_epoch, owned=owned(fresh, "g", member_id))
    assert set(fresh.group("g").members) == {"slow", "m2"}


def test_a_member_revoking_at_a_restart_keeps_its_rebalance_timeout():
    h = Harness()
    h.set_topics(orders=2)
    h.consumer_join("g", "slow", [ORDERS], rebalance_ms=20_000)
    h.consumer_join("g", "m2", [ORDERS])
    h.consumer_heartbeat("g", "slow", 1, owned={ORDERS: [0, 1]})
    fresh = h.restarted()
    fresh.tick(INTERVAL_MS)
    fresh.consumer_heartbeat("g", "slow", 1, owned={ORDERS: [0, 1]})
    fresh.tick(20_000 - INTERVAL_MS)
    assert set(fresh.group("g").members) == {"m2"}
