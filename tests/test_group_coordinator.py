"""The classic group state machine of the sans-IO group coordinator."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from group_harness import REBALANCE_MS, SESSION_MS, Harness, subscription
from kafkapy.coordinator.java_hash import java_string_hash
from kafkapy.coordinator.records.consumer_offsets import (
    GroupMetadataKey,
    GroupMetadataValue,
    decode_offsets_key,
    decode_offsets_value,
)

E = ErrorCode


def group_records(h: Harness, group_id: str) -> list[GroupMetadataValue | None]:
    """The GroupMetadata values written for a group, in order (None for a tombstone)."""
    values = []
    for partition, key, value in h.records:
        record_key = decode_offsets_key(key)
        if isinstance(record_key, GroupMetadataKey) and record_key.group == group_id:
            assert partition == h.coordinator.partition_for(group_id)
            decoded = decode_offsets_value(record_key, value)
            assert decoded is None or isinstance(decoded, GroupMetadataValue)
            values.append(decoded)
    return values


def member_ids(response: dict[str, Any]) -> list[str]:
    return [m["member_id"] for m in response["members"]]


def answer(h: Harness, token: Any) -> dict[str, Any]:
    response = h.reply(token)
    assert response is not None, f"{token} is still parked"
    return response


# Routing


def test_partition_for_is_kafkas_abs_of_java_hash_code():
    h = Harness()
    assert java_string_hash("hello") == 99162322
    assert h.coordinator.partition_for("hello") == 99162322 % 50
    # Kafka's Utils.abs is the absolute value...
    assert java_string_hash("orders") == -1008770331
    assert h.coordinator.partition_for("orders") == 1008770331 % 50
    # ...except for Integer.MIN_VALUE, which it maps to 0.
    assert java_string_hash("polygenelubricants") == -(2**31)
    assert h.coordinator.partition_for("polygenelubricants") == 0
    # Hashed over UTF-16 code units, as Java strings are.
    assert java_string_hash("ü€😀") == 17318035


# Joining


def test_first_join_asks_for_a_member_id_and_records_the_new_group():
    h = Harness()
    first = answer(h, h.join("g", client_id="app"))
    assert first["error_code"] is E.member_id_required
    member_id = first["member_id"]
    assert member_id.startswith("app-") and len(member_id) == len("app-") + 36
    assert (first["generation_id"], first["protocol_name"], first["leader"]) == (-1, None, "")
    assert h.state("g") == "Empty"
    assert h.group("g").pending_join_members == {member_id}
    # Kafka records a group it creates, even before it has a member.
    assert group_records(h, "g") == [GroupMetadataValue(
        protocol_type="", generation=0, protocol=None, leader=None, current_state_timestamp=h.clock.wall_ms(), members=(),
    )]


def test_initial_rebalance_join_and_sync_reach_stable():
    h = Harness()
    member_id, token = h.join_new("g")
    assert h.reply(token) is None
    assert h.state("g") == "PreparingRebalance"
    h.settle()
    response = answer(h, token)
    assert response["error_code"] is E.none
    assert (response["generation_id"], response["protocol_type"], response["protocol_name"]) == (1, "consumer", "range")
    assert response["leader"] == member_id and response["member_id"] == member_id
    assert response["members"] == [{"member_id": member_id, "group_instance_id": None, "metadata": subscription("topic")}]
    assert h.state("g") == "CompletingRebalance"

    sync = answer(h, h.sync("g", member_id, 1, {member_id: b"mine"}))
    assert sync == {"throttle_time": 0, "error_code": E.none, "protocol_type": "consumer", "protocol_name": "range",
                    "assignment": b"mine"}
    assert h.state("g") == "Stable"
    record = group_records(h, "g")[-1]
    assert record is not None
    assert (record.protocol_type, record.generation, record.protocol, record.leader) == ("consumer", 1, "range", member_id)
    [member] = record.members
    assert (member.member_id, member.client_host, member.session_timeout, member.rebalance_timeout) == (
        member_id, "/10.0.0.1", SESSION_MS, REBALANCE_MS)
    assert (member.subscription, member.assignment) == (subscription("topic"), b"mine")


def test_join_before_v4_adds_the_member_at_once():
    h = Harness()
    token = h.join("g", version=3)
    assert h.state("g") == "PreparingRebalance"
    assert len(h.group("g").members) == 1
    h.settle()
    response = answer(h, token)
    assert response["error_code"] is E.none and response["generation_id"] == 1
    assert response["member_id"] in h.group("g").members
    assert answer(h, h.join("g", version=4))["error_code"] is E.member_id_required


def test_v0_join_uses_the_session_timeout_as_rebalance_timeout():
    h = Harness()
    h.join("g", version=0, session_ms=7000)
    [member] = h.group("g").members.values()
    assert (member.session_timeout_ms, member.rebalance_timeout_ms) == (7000, 7000)


def test_pending_member_expires_after_its_session_timeout():
    h = Harness()
    member_id = answer(h, h.join("g"))["member_id"]
    h.tick(SESSION_MS - 1)
    assert member_id in h.group("g").pending_join_members
    h.tick(1)
    assert not h.group("g").pending_join_members
    late = answer(h, h.join("g", member_id))
    assert (late["error_code"], late["member_id"]) == (E.unknown_member_id, member_id)


def test_three_member_rebalance_completes_when_all_have_rejoined():
    h = Harness()
    [a] = h.form_group("g", 1)
    b, b_join = h.join_new("g")
    assert h.state("g") == "PreparingRebalance"
    c, c_join = h.join_new("g")
    assert h.heartbeat("g", a, 1) is E.rebalance_in_progress
    assert h.reply(b_join) is None and h.reply(c_join) is None

    a_join = h.join("g", a)
    leader, follower_b, follower_c = answer(h, a_join), answer(h, b_join), answer(h, c_join)
    assert h.state("g") == "CompletingRebalance"
    assert {r["generation_id"] for r in (leader, follower_b, follower_c)} == {2}
    assert {r["leader"] for r in (leader, follower_b, follower_c)} == {a}
    assert member_ids(leader) == [a, b, c]
    assert follower_b["members"] == [] and follower_c["members"] == []

    parked_b = h.sync("g", b, 2)
    parked_c = h.sync("g", c, 2)
    assert h.reply(parked_b) is None and h.reply(parked_c) is None
    leader_sync = h.sync("g", a, 2, {a: b"A", b: b"B", c: b"C"})
    assert [answer(h, t)["assignment"] for t in (leader_sync, parked_b, parked_c)] == [b"A", b"B", b"C"]
    assert h.state("g") == "Stable"


def test_rebalance_timeout_removes_a_member_that_does_not_rejoin():
    h = Harness()
    a, b = h.form_group("g", 2)
    c, _ = h.join_new("g")
    a_join = h.join("g", a)
    for _ in range(3):
        h.tick(8000)
        # Heartbeats keep b's session alive, but do not rejoin it.
        assert h.heartbeat("g", b, 1) is E.rebalance_in_progress
    h.tick(REBALANCE_MS - 24_000 - 1)
    assert h.reply(a_join) is None
    h.tick(1)
    assert answer(h, a_join)["generation_id"] == 2
    assert member_ids(answer(h, a_join)) == [a, c]
    assert set(h.group("g").members) == {a, c}
    assert h.heartbeat("g", b, 1) is E.unknown_member_id


def test_session_expiry_removes_the_member_and_rebalances():
    h = Harness()
    a, b = h.form_group("g", 2)
    h.tick(5000)
    assert h.heartbeat("g", a, 1) is E.none
    h.tick(SESSION_MS - 5000)
    assert set(h.group("g").members) == {a}
    assert h.state("g") == "PreparingRebalance"
    assert h.heartbeat("g", a, 1) is E.rebalance_in_progress
    response = answer(h, h.join("g", a))
    assert (response["generation_id"], member_ids(response)) == (2, [a])
    assert h.heartbeat("g", b, 1) is E.unknown_member_id


def test_expiry_of_the_last_member_leaves_the_group_empty_and_recorded():
    h = Harness()
    [a] = h.form_group("g", 1)
    h.tick(SESSION_MS)
    assert h.state("g") == "Empty"
    assert h.group("g").generation_id == 2
    assert group_records(h, "g")[-1] == GroupMetadataValue(
        protocol_type="consumer", generation=2, protocol=None, leader=None,
        current_state_timestamp=h.clock.wall_ms(), members=(),
    )
    assert h.heartbeat("g", a, 1) is E.unknown_member_id


def test_initial_rebalance_delay_waits_for_more_members():
    h = Harness({"group.initial.rebalance.delay.ms": 3000})
    a_join = h.join("g", version=3, rebalance_ms=10_000)
    h.tick(2000)
    b_join = h.join("g", version=3, rebalance_ms=10_000)
    h.tick(1000)
    # b joined during the delay: the group waits another delay.
    assert h.reply(a_join) is None and h.state("g") == "PreparingRebalance"
    h.tick(2999)
    assert h.reply(a_join) is None
    h.tick(1)
    assert len(answer(h, a_join)["members"]) == 2
    assert answer(h, b_join)["generation_id"] == 1


def test_initial_rebalance_delay_never_exceeds_the_rebalance_timeout():
    h = Harness({"group.initial.rebalance.delay.ms": 3000})
    first = h.join("g", version=3, rebalance_ms=10_000)
    for _ in range(3):  # joins at 2 s, 5 s and 8 s keep extending the delay
        h.tick(2000)
        h.join("g", version=3, rebalance_ms=10_000)
        h.tick(1000)
    h.tick(999)
    assert h.reply(first) is None
    h.tick(1)
    assert len(answer(h, first)["members"]) == 4


def test_pending_sync_expiry_removes_members_that_did_not_sync():
    h = Harness()
    a, _ = h.join_new("g", rebalance_ms=6000)
    b, _ = h.join_new("g", rebalance_ms=6000)
    h.settle()
    assert answer(h, h.sync("g", a, 1, {a: b"A", b: b"B"}))["assignment"] == b"A"
    assert h.state("g") == "Stable"
    h.tick(5999)
    assert set(h.group("g").members) == {a, b}
    h.tick(1)
    assert set(h.group("g").members) == {a}
    assert h.state("g") == "PreparingRebalance"
    assert h.heartbeat("g", a, 1) is E.rebalance_in_progress


def test_pending_sync_expiry_in_completing_rebalance_sends_parked_syncs_back_to_rejoin():
    h = Harness()
    h.join_new("g", rebalance_ms=6000)
    b, _ = h.join_new("g", rebalance_ms=6000)
    h.settle()
    parked = h.sync("g", b, 1)
    h.tick(6000)  # the leader never sent its assignment
    assert answer(h, parked) == {"throttle_time": 0, "error_code": E.rebalance_in_progress, "protocol_type": None,
                                 "protocol_name": None, "assignment": b""}
    assert set(h.group("g").members) == {b}
    assert h.state("g") == "PreparingRebalance"


def test_a_new_leader_is_elected_when_the_static_leader_does_not_rejoin():
    h = Harness()
    a_join = h.join("g", instance="a")
    b, _ = h.join_new("g")
    h.settle()
    a = answer(h, a_join)["member_id"]
    assert answer(h, a_join)["leader"] == a
    h.sync("g", b, 1)
    h.sync("g", a, 1, {a: b"A", b: b"B"})
    c, c_join = h.join_new("g")
    b_rejoin = h.join("g", b)
    for _ in range(3):
        h.tick(8000)
        assert h.heartbeat("g", a, 1, instance="a") is E.rebalance_in_progress
    h.tick(REBALANCE_MS - 24_000)
    new_leader = answer(h, b_rejoin)
    # The static member stays, but a member that rejoined leads.
    assert (new_leader["generation_id"], new_leader["leader"]) == (2, b)
    assert member_ids(new_leader) == [a, b, c]
    assert answer(h, c_join)["leader"] == b and answer(h, c_join)["members"] == []
    assert h.heartbeat("g", a, 1, instance="a") is E.illegal_generation


def test_the_protocol_most_members_prefer_among_common_ones_wins():
    s = subscription("topic")
    h = Harness()
    h.join("g", version=3, protocols=(("roundrobin", s), ("range", s)))
    h.join("g", version=3, protocols=(("range", s), ("roundrobin", s)))
    token = h.join("g", version=3, protocols=(("range", s), ("roundrobin", s)))
    h.settle()
    assert answer(h, token)["protocol_name"] == "range"

    h2 = Harness()
    # sticky is preferred by one member but not supported by all: it is no candidate.
    first = h2.join("g", version=3, protocols=(("sticky", s), ("range", s)))
    h2.join("g", version=3, protocols=(("range", s), ("roundrobin", s)))
    h2.settle()
    assert answer(h2, first)["protocol_name"] == "range"


def test_inconsistent_group_protocol():
    s = subscription("topic")
    h = Harness()
    # An empty group needs a protocol type and at least one protocol.
    assert answer(h, h.join("g", protocol_type=""))["error_code"] is E.inconsistent_group_protocol
    assert answer(h, h.join("g2", protocols=()))["error_code"] is E.inconsistent_group_protocol
    a, _ = h.form_group("g3", 2)
    other_type = answer(h, h.join("g3", protocol_type="connect"))
    assert (other_type["error_code"], other_type["member_id"]) == (E.inconsistent_group_protocol, "")
    no_common = answer(h, h.join("g3", a, protocols=(("sticky", s),)))
    assert (no_common["error_code"], no_common["member_id"]) == (E.inconsistent_group_protocol, a)
    assert h.state("g3") == "Stable"


def test_an_unchanged_follower_join_in_stable_returns_the_current_generation():
    h = Harness()
    a, b = h.form_group("g", 2)
    again = answer(h, h.join("g", b))
    assert (again["error_code"], again["generation_id"], again["leader"], again["members"]) == (E.none, 1, a, [])
    assert h.state("g") == "Stable"
    changed = h.join("g", b, protocols=(("range", subscription("topic", "other")),))
    assert h.reply(changed) is None and h.state("g") == "PreparingRebalance"


def test_a_leader_join_in_stable_starts_a_rebalance():
    h = Harness()
    a, b = h.form_group("g", 2)
    token = h.join("g", a)
    assert h.reply(token) is None
    assert h.state("g") == "PreparingRebalance"
    assert answer(h, h.sync("g", b, 1))["error_code"] is E.rebalance_in_progress
    assert h.heartbeat("g", b, 1) is E.rebalance_in_progress


def test_rejoining_during_completing_rebalance():
    h = Harness()
    a, _ = h.join_new("g")
    b, _ = h.join_new("g")
    h.settle()
    parked_sync = h.sync("g", b, 1)
    # Same metadata: the member lost its JoinGroup response and gets it again.
    again = answer(h, h.join("g", a))
    assert (again["generation_id"], again["leader"], member_ids(again)) == (1, a, [a, b])
    assert h.state("g") == "CompletingRebalance"
    # New metadata: a new rebalance, and the parked SyncGroup must rejoin.
    b_rejoin = h.join("g", b, protocols=(("range", subscription("topic", "more")),))
    assert answer(h, parked_sync)["error_code"] is E.rebalance_in_progress
    assert h.reply(b_rejoin) is None
    assert h.state("g") == "PreparingRebalance"
    assert h.group("g").members[b].assignment == b""


def test_a_parked_request_superseded_by_the_same_member_is_answered():
    h = Harness()
    a, b = h.form_group("g", 2)
    first = h.join("g", a)
    second = h.join("g", a)  # the client gave up on its first JoinGroup and sent another
    assert answer(h, first)["error_code"] is E.rebalance_in_progress
    h.join("g", b)
    assert answer(h, second)["generation_id"] == 2
    first_sync = h.sync("g", b, 2)
    second_sync = h.sync("g", b, 2)
    assert answer(h, first_sync)["error_code"] is E.rebalance_in_progress
    h.sync("g", a, 2, {b: b"B"})
    assert answer(h, second_sync)["assignment"] == b"B"


def test_a_new_member_parked_too_long_is_dropped():
    h = Harness()
    [a] = h.form_group("g", 1, rebalance_ms=600_000)
    c_join = h.join("g", version=3, rebalance_ms=600_000)
    assert h.state("g") == "PreparingRebalance"
    for _ in range(37):
        h.tick(8000)
        assert h.heartbeat("g", a, 1) is E.rebalance_in_progress
    h.tick(300_000 - 37 * 8000)
    dropped = answer(h, c_join)
    assert (dropped["error_code"], dropped["member_id"]) == (E.unknown_member_id, "")
    assert set(h.group("g").members) == {a}


def test_join_responses_follow_the_version_rules_for_protocol_name():
    h = Harness()
    assert answer(h, h.join("g", version=6))["protocol_name"] == ""
    assert answer(h, h.join("g", version=7))["protocol_name"] is None


# Static membership


def form_static_group(h: Harness) -> tuple[str, str]:
    """Stable group "g" of static leader a (instance "a") and dynamic b, assigned b"A" and b"B"."""
    a_join = h.join("g", instance="a")
    b, _ = h.join_new("g")
    h.settle()
    a = answer(h, a_join)["member_id"]
    assert a.startswith("a-")
    h.sync("g", b, 1)
    h.sync("g", a, 1, {a: b"A", b: b"B"})
    assert h.state("g") == "Stable"
    return a, b


def test_a_restarted_static_leader_rejoins_without_a_rebalance():
    h = Harness()
    a, b = form_static_group(h)
    restarted = answer(h, h.join("g", instance="a"))
    new_a = restarted["member_id"]
    assert new_a != a and new_a.startswith("a-")
    assert restarted["error_code"] is E.none
    assert (restarted["generation_id"], restarted["leader"], restarted["skip_assignment"]) == (1, new_a, True)
    assert set(member_ids(restarted)) == {new_a, b}
    assert h.state("g") == "Stable" and h.group("g").generation_id == 1
    assert h.heartbeat("g", b, 1) is E.none
    # The new member id is recorded, with the assignment kept.
    record = group_records(h, "g")[-1]
    assert record is not None and record.leader == new_a
    assert {m.member_id: m.assignment for m in record.members} == {new_a: b"A", b: b"B"}
    assert answer(h, h.sync("g", new_a, 1, instance="a"))["assignment"] == b"A"
    # The old incarnation is fenced.
    assert h.heartbeat("g", a, 1, instance="a") is E.fenced_instance_id
    assert h.heartbeat("g", a, 1) is E.unknown_member_id


def test_a_restarted_static_follower_before_v9_learns_the_current_leader():
    h = Harness()
    a, _ = h.join_new("g", version=5)
    b_join = h.join("g", instance="b", version=5)
    h.settle()
    b = answer(h, b_join)["member_id"]
    h.sync("g", b, 1, instance="b")
    h.sync("g", a, 1, {a: b"A", b: b"B"})
    restarted = answer(h, h.join("g", instance="b", version=5))
    assert restarted["error_code"] is E.none and restarted["member_id"] not in (a, b)
    assert (restarted["generation_id"], restarted["leader"], restarted["members"], restarted["skip_assignment"]) == (1, a, [], False)
    assert h.state("g") == "Stable"


def test_a_static_rejoin_that_changes_the_selected_protocol_rebalances():
    s = subscription("topic")
    h = Harness()
    a_join = h.join("g", instance="a", protocols=(("range", s),))
    b, _ = h.join_new("g", protocols=(("roundrobin", s), ("range", s)))
    c, _ = h.join_new("g", protocols=(("roundrobin", s), ("range", s)))
    h.settle()
    a = answer(h, a_join)["member_id"]
    for member in (b, c):
        h.sync("g", member, 1)
    h.sync("g", a, 1, {a: b"A"})
    assert h.group("g").protocol_name == "range"
    token = h.join("g", instance="a", protocols=(("roundrobin", s), ("range", s)))
    assert h.reply(token) is None
    assert h.state("g") == "PreparingRebalance"


def test_a_duplicate_static_instance_fences_the_parked_one():
    h = Harness()
    a, b = form_static_group(h)
    old_join = h.join("g", a, instance="a")  # the leader's join starts a rebalance
    assert h.state("g") == "PreparingRebalance"
    new_join = h.join("g", instance="a")
    fenced = answer(h, old_join)
    assert (fenced["error_code"], fenced["member_id"], fenced["leader"]) == (E.fenced_instance_id, a, "")
    assert h.reply(new_join) is None
    h.join("g", b)
    new = answer(h, new_join)
    assert new["generation_id"] == 2 and new["leader"] == new["member_id"] != a
    assert h.heartbeat("g", a, 2, instance="a") is E.fenced_instance_id


def test_a_static_rejoin_during_completing_rebalance_rebalances_again():
    h = Harness()
    a_join = h.join("g", instance="a")
    b, _ = h.join_new("g")
    h.settle()
    parked = h.sync("g", b, 1)
    restarted = h.join("g", instance="a")
    assert answer(h, parked)["error_code"] is E.rebalance_in_progress
    assert h.reply(restarted) is None
    assert h.state("g") == "PreparingRebalance"
    assert answer(h, a_join)["error_code"] is E.none  # answered once, at generation 1


def test_fenced_and_unknown_static_instances():
    h = Harness()
    a, b = form_static_group(h)
    assert h.heartbeat("g", b, 1, instance="a") is E.fenced_instance_id
    assert h.heartbeat("g", a, 1, instance="nobody") is E.unknown_member_id
    assert answer(h, h.sync("g", b, 1, instance="a"))["error_code"] is E.fenced_instance_id
    commit = h.commit("g", {("topic", 0): 1}, generation_id=1, member_id=b, instance="a")
    assert h.committed(commit) == {("topic", 0): E.fenced_instance_id}
    rejoin = answer(h, h.join("g", b, instance="a"))
    assert rejoin["error_code"] is E.fenced_instance_id


# Limits and validation


def test_group_max_size_refuses_new_members():
    h = Harness({"group.max.size": 2})
    h.form_group("g", 2)
    refused = answer(h, h.join("g"))
    assert (refused["error_code"], refused["member_id"]) == (E.group_max_size_reached, "")
    assert h.state("g") == "Stable" and not h.group("g").pending_join_members


def test_group_max_size_turns_away_the_last_member_to_rejoin():
    h = Harness({"group.max.size": 2})
    a, b = h.form_group("g", 2)
    a_join = h.join("g", a)
    c_join = h.join("g", version=3)  # 1 member has rejoined: room for a new one
    refused = answer(h, h.join("g", b))
    assert (refused["error_code"], refused["member_id"]) == (E.group_max_size_reached, "")
    assert b not in h.group("g").members
    h.tick(REBALANCE_MS)
    assert answer(h, a_join)["generation_id"] == 2
    assert member_ids(answer(h, a_join)) == [a, answer(h, c_join)["member_id"]]


def test_session_timeout_must_be_within_the_configured_bounds():
    h = Harness()
    for session_ms in (5999, 1_800_001):
        response = answer(h, h.join("g", "m", session_ms=session_ms))
        assert (response["error_code"], response["member_id"]) == (E.invalid_session_timeout, "m")
    assert h.coordinator.groups == {} and h.records == []
    assert answer(h, h.join("g", session_ms=6000))["error_code"] is E.member_id_required
    lenient = Harness({"group.min.session.timeout.ms": 1000})
    assert answer(lenient, lenient.join("g", session_ms=5999))["error_code"] is E.member_id_required


def test_an_empty_group_id_is_invalid():
    h = Harness()
    assert answer(h, h.join(""))["error_code"] is E.invalid_group_id
    assert answer(h, h.sync("", "m", 1))["error_code"] is E.invalid_group_id
    assert h.heartbeat("", "m", 1) is E.invalid_group_id
    assert h.leave("", [("m", None)])["error_code"] is E.invalid_group_id
    assert h.coordinator.groups == {}


def test_unknown_member_id():
    h = Harness()
    unknown_group = answer(h, h.join("nowhere", "m"))
    assert (unknown_group["error_code"], unknown_group["member_id"]) == (E.unknown_member_id, "m")
    assert "nowhere" not in h.coordinator.groups
    a, _ = h.form_group("g", 2)
    assert answer(h, h.join("g", "stranger"))["error_code"] is E.unknown_member_id
    assert h.heartbeat("g", "stranger", 1) is E.unknown_member_id
    assert h.heartbeat("nowhere", a, 1) is E.unknown_member_id
    assert answer(h, h.sync("nowhere", a, 1))["error_code"] is E.unknown_member_id
    assert answer(h, h.sync("g", "stranger", 1))["error_code"] is E.unknown_member_id
    h.commit("simple", {("topic", 0): 1})  # an Empty group, created by a commit
    assert answer(h, h.sync("simple", a, 0))["error_code"] is E.unknown_member_id


def test_illegal_generation():
    h = Harness()
    _, b = h.form_group("g", 2)
    assert h.heartbeat("g", b, 0) is E.illegal_generation
    assert answer(h, h.sync("g", b, 2))["error_code"] is E.illegal_generation


def test_sync_group_protocol_checks():
    h = Harness()
    _, b = h.form_group("g", 2)
    # From v5 both protocol fields are required.
    assert answer(h, h.sync("g", b, 1, protocol_type=None))["error_code"] is E.inconsistent_group_protocol
    assert answer(h, h.sync("g", b, 1, protocol_name="roundrobin"))["error_code"] is E.inconsistent_group_protocol
    assert answer(h, h.sync("g", b, 1, version=4))["assignment"] == b.encode()


# Leaving


def test_batched_leave_answers_each_member():
    h = Harness()
    a, b = form_static_group(h)
    c, _ = h.join_new("g")
    h.join("g", a, instance="a")
    h.join("g", b)
    h.settle()
    h.sync("g", a, 2, {a: b"A"}, instance="a")
    response = h.leave("g", [("stale", "a"), (b, None), ("", "a"), ("", "nobody"), ("stranger", None), (c, "wrong")])
    assert response["error_code"] is E.none
    assert [(m["member_id"], m["group_instance_id"], m["error_code"]) for m in response["members"]] == [
        ("stale", "a", E.fenced_instance_id),
        (b, None, E.none),
        ("", "a", E.none),
        ("", "nobody", E.unknown_member_id),
        ("stranger", None, E.unknown_member_id),
        (c, "wrong", E.unknown_member_id),
    ]
    assert set(h.group("g").members) == {c}
    assert h.state("g") == "PreparingRebalance"


def test_leave_before_v3_reports_the_member_error_at_the_top():
    h = Harness()
    a, b = h.form_group("g", 2)
    assert h.leave("g", [("stranger", None)], version=0)["error_code"] is E.unknown_member_id
    assert h.leave("g", [(b, None)], version=2)["error_code"] is E.none
    assert set(h.group("g").members) == {a}


def test_leave_of_an_unknown_group():
    h = Harness()
    response = h.leave("nowhere", [("m", None)])
    assert response["error_code"] is E.none
    assert [m["error_code"] for m in response["members"]] == [E.unknown_member_id]
    assert h.leave("nowhere", [("m", None)], version=1)["error_code"] is E.unknown_member_id


def test_the_last_member_leaving_empties_the_group():
    h = Harness()
    [a] = h.form_group("g", 1)
    assert h.leave("g", [(a, None)])["error_code"] is E.none
    assert h.state("g") == "Empty" and h.group("g").generation_id == 2
    record = group_records(h, "g")[-1]
    assert record is not None and (record.generation, record.members) == (2, ())


def test_a_parked_member_that_leaves_gets_its_join_answered():
    h = Harness()
    a, b = h.form_group("g", 2)
    parked = h.join("g", a)
    h.leave("g", [(a, None)])
    response = answer(h, parked)
    assert (response["error_code"], response["member_id"]) == (E.unknown_member_id, "")
    assert set(h.group("g").members) == {b}


def test_a_member_removed_while_its_sync_is_parked_gets_an_answer():
    h = Harness()
    a, _ = h.join_new("g")
    b_join = h.join("g", instance="b")
    h.settle()
    parked = h.sync("g", answer(h, b_join)["member_id"], 1, instance="b")
    assert h.leave("g", [("", "b")])["members"][0]["error_code"] is E.none
    assert answer(h, parked)["error_code"] is E.unknown_member_id
    assert set(h.group("g").members) == {a}


def test_a_pending_member_can_leave():
    h = Harness()
    pending = answer(h, h.join("g"))["member_id"]
    assert [m["error_code"] for m in h.leave("g", [(pending, None)])["members"]] == [E.none]
    assert not h.group("g").pending_join_members


# Timers


def test_next_deadline_is_the_earliest_timer():
    h = Harness()
    # Once every member synced, nothing waits for the (shorter) rebalance timeout.
    h.form_group("g", 1, rebalance_ms=5000)
    assert h.coordinator.next_deadline() == h.clock.monotonic_ms() + SESSION_MS
    h.tick(4000)
    assert h.heartbeat("g", h.group("g").leader_id, 1) is E.none
    assert h.coordinator.next_deadline() == h.clock.monotonic_ms() + SESSION_MS
    fresh = Harness()
    assert fresh.coordinator.next_deadline() == 600_000  # the offset retention check
