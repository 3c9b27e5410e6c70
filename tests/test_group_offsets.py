"""Committed offsets, group deletion, listing and description, offset retention and
replay of the group coordinator."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode

from group_harness import SESSION_MS, Harness, subscription
from kafkapy.coordinator.classic_group import decode_subscription
from kafkapy.coordinator.group_coordinator import GroupCoordinator
from kafkapy.coordinator.offsets import OffsetAndMetadata
from kafkapy.coordinator.records.consumer_offsets import (
    OffsetCommitKey,
    OffsetCommitValue,
    decode_offsets_key,
    decode_offsets_value,
)
from kafkapy.coordinator.shard import GROUP_AUTHORIZED_OPERATIONS

E = ErrorCode
MINUTE_MS = 60_000


def offset_records(h: Harness) -> list[tuple[tuple[str, str, int], OffsetCommitValue | None]]:
    """((group, topic, partition), value or None for a tombstone) of every OffsetCommit record written."""
    found = []
    for partition, key, value in h.records:
        record_key = decode_offsets_key(key)
        if isinstance(record_key, OffsetCommitKey):
            assert partition == h.coordinator.partition_for(record_key.group)
            decoded = decode_offsets_value(record_key, value)
            assert decoded is None or isinstance(decoded, OffsetCommitValue)
            found.append(((record_key.group, record_key.topic, int(record_key.partition)), decoded))
    return found


# OffsetCommit and OffsetFetch


def test_a_commit_without_membership_creates_a_simple_group():
    h = Harness()
    response = h.commit("simple", {("t", 0): (5, "meta"), ("t", 1): (7, None), ("u", 0): 9}, version=2)
    assert h.committed(response) == {("t", 0): E.none, ("t", 1): E.none, ("u", 0): E.none}
    assert h.list_groups() == {"simple": ("Empty", "")}
    assert h.offsets("simple", {"t": [0, 1, 2], "nope": [0]}) == {
        ("t", 0): (5, "meta"), ("t", 1): (7, ""), ("t", 2): (-1, ""), ("nope", 0): (-1, ""),
    }
    now = h.clock.wall_ms()
    assert offset_records(h) == [
        (("simple", "t", 0), OffsetCommitValue(offset=5, metadata="meta", commit_timestamp=now)),
        (("simple", "t", 1), OffsetCommitValue(offset=7, metadata="", commit_timestamp=now)),
        (("simple", "u", 0), OffsetCommitValue(offset=9, metadata="", commit_timestamp=now)),
    ]


def test_a_commit_with_a_generation_to_an_unknown_group_fails():
    h = Harness()
    old = h.commit("g", {("t", 0): 1}, generation_id=1, member_id="m", version=8)
    assert h.committed(old) == {("t", 0): E.illegal_generation}
    new = h.commit("g", {("t", 0): 1}, generation_id=1, member_id="m", version=9)
    assert h.committed(new) == {("t", 0): E.group_id_not_found}
    assert h.coordinator.groups == {} and h.records == []


def test_member_commits_are_validated_against_the_group():
    h = Harness()
    a, _ = h.form_group("g", 2)
    assert h.committed(h.commit("g", {("topic", 0): 10}, generation_id=1, member_id=a)) == {("topic", 0): E.none}
    assert h.committed(h.commit("g", {("topic", 0): 11}, generation_id=0, member_id=a)) == {("topic", 0): E.illegal_generation}
    assert h.committed(h.commit("g", {("topic", 0): 12}, generation_id=1, member_id="x")) == {("topic", 0): E.unknown_member_id}
    # Without membership, commits are only accepted while the group is empty.
    assert h.committed(h.commit("g", {("topic", 0): 13})) == {("topic", 0): E.unknown_member_id}
    assert h.offsets("g", {"topic": [0]}) == {("topic", 0): (10, "")}


def test_commits_during_a_rebalance():
    h = Harness()
    a, b = h.form_group("g", 2)
    h.join("g", a)
    # PreparingRebalance: the previous generation may still commit, which keeps its session.
    h.tick(SESSION_MS - 1)
    assert h.committed(h.commit("g", {("topic", 0): 1}, generation_id=1, member_id=b)) == {("topic", 0): E.none}
    h.tick(SESSION_MS - 1)
    assert b in h.group("g").members
    h.join("g", b)
    assert h.state("g") == "CompletingRebalance"
    # CompletingRebalance: the member has the new generation but no assignment yet.
    commit = h.commit("g", {("topic", 0): 2}, generation_id=2, member_id=b)
    assert h.committed(commit) == {("topic", 0): E.rebalance_in_progress}


def test_metadata_longer_than_4096_utf16_units_is_refused():
    h = Harness()
    response = h.commit("g", {
        ("t", 0): (1, "x" * 4096),
        ("t", 1): (2, "x" * 4097),
        ("t", 2): (3, "😀" * 2048),  # 4096 UTF-16 units
        ("t", 3): (4, "😀" * 2049),  # 2049 code points, 4098 units
    })
    assert h.committed(response) == {
        ("t", 0): E.none, ("t", 1): E.offset_metadata_too_large, ("t", 2): E.none, ("t", 3): E.offset_metadata_too_large,
    }
    assert [key for key, _ in offset_records(h)] == [("g", "t", 0), ("g", "t", 2)]


def test_commit_timestamps_leader_epochs_and_retention_times():
    h = Harness()
    h.clock.advance(1234)
    h.commit("g", {("t", 0): 5}, version=6, leader_epoch=3)
    h.commit("g", {("t", 1): 6}, version=2, retention_ms=MINUTE_MS)
    now = h.clock.wall_ms()
    assert h.coordinator.offsets.get("g", "t", 0) == OffsetAndMetadata(5, 3, "", now, None)
    assert h.coordinator.offsets.get("g", "t", 1) == OffsetAndMetadata(6, -1, "", now, now + MINUTE_MS)
    # An expire timestamp is only held by OffsetCommitValue v1, which Kafka then writes.
    [(_, first), (_, second)] = offset_records(h)
    assert first == OffsetCommitValue(offset=5, leader_epoch=3, metadata="", commit_timestamp=now)
    assert second == OffsetCommitValue(offset=6, metadata="", commit_timestamp=now, expire_timestamp=now + MINUTE_MS)
    assert h.records[1][2][:2] == b"\x00\x01"
    fetched = h.fetch("g", {"t": [0]}, version=5)["topics"][0]["partitions"][0]
    assert (fetched["committed_offset"], fetched["committed_leader_epoch"]) == (5, 3)


def test_fetch_all_offsets_and_several_groups():
    h = Harness()
    h.commit("g1", {("t", 0): 1, ("u", 2): 3})
    h.commit("g2", {("t", 0): 7})
    assert h.offsets("g1", None) == {("t", 0): (1, ""), ("u", 2): (3, "")}
    response = h.fetch_groups({"g1": {"t": [0, 1]}, "g2": None, "unknown": None, "unknown2": {"t": [0]}})
    by_group = {g["group_id"]: g for g in response["groups"]}
    assert [g["error_code"] for g in response["groups"]] == [E.none] * 4
    assert [(p["partition_index"], p["committed_offset"]) for p in by_group["g1"]["topics"][0]["partitions"]] == [(0, 1), (1, -1)]
    assert [(t["name"], [p["committed_offset"] for p in t["partitions"]]) for t in by_group["g2"]["topics"]] == [("t", [7])]
    # An unknown group has no offsets, which is no error.
    assert by_group["unknown"]["topics"] == []
    assert by_group["unknown2"]["topics"][0]["partitions"][0]["committed_offset"] == -1
    for version in (1, 3, 7):
        topics = h.fetch("g1", {"t": [0]}, version=version)["topics"]
        assert topics[0]["partitions"][0]["committed_offset"] == 1
    [g1] = h.fetch_groups({"g1": {"t": [0]}}, version=9)["groups"]
    assert g1["topics"][0]["partitions"][0]["committed_offset"] == 1


# OffsetDelete


def test_offset_delete():
    h = Harness()
    assert h.delete_offsets("nowhere", {"t": [0]}) == {"error_code": E.group_id_not_found, "throttle_time": 0, "topics": []}
    assert h.delete_offsets("", {"t": [0]})["error_code"] is E.invalid_group_id
    h.commit("simple", {("t", 0): 1, ("t", 1): 2})
    response = h.delete_offsets("simple", {"t": [0, 5]})
    assert response["error_code"] is E.none
    assert h.committed(response) == {("t", 0): E.none, ("t", 5): E.none}
    assert h.offsets("simple", None) == {("t", 1): (2, "")}
    # Only offsets that exist get a tombstone.
    assert offset_records(h)[-1] == (("simple", "t", 0), None)
    assert len(offset_records(h)) == 3


def test_offset_delete_refuses_topics_a_consumer_group_subscribes_to():
    h = Harness()
    a, _ = h.form_group("g", 2, protocols=(("range", subscription("topic", "other")),))
    h.commit("g", {("topic", 0): 1, ("other", 0): 2, ("old", 0): 3}, generation_id=1, member_id=a)
    response = h.delete_offsets("g", {"topic": [0], "old": [0]})
    assert h.committed(response) == {("topic", 0): E.group_subscribed_to_topic, ("old", 0): E.none}
    assert h.offsets("g", None) == {("topic", 0): (1, ""), ("other", 0): (2, "")}


def test_offset_delete_of_a_non_consumer_group_needs_it_empty():
    h = Harness()
    [a] = h.form_group("g", 1, protocol_type="connect")
    h.commit("g", {("t", 0): 1}, generation_id=1, member_id=a)
    assert h.delete_offsets("g", {"t": [0]})["error_code"] is E.non_empty_group
    h.leave("g", [(a, None)])
    assert h.committed(h.delete_offsets("g", {"t": [0]})) == {("t", 0): E.none}


def test_a_consumer_group_with_an_unreadable_subscription_protects_all_its_topics():
    h = Harness()
    [a] = h.form_group("g", 1, protocols=(("range", b"\x00"),))
    h.commit("g", {("t", 0): 1}, generation_id=1, member_id=a)
    assert h.committed(h.delete_offsets("g", {"t": [0]})) == {("t", 0): E.group_subscribed_to_topic}


def test_subscriptions_are_read_with_the_version_0_schema():
    assert decode_subscription(subscription("a", "b")) == ("a", "b")
    assert decode_subscription(b"\x00\x09\x00\x00\x00\x01\x00\x01z\xff\xff\xff\xffanything after") == ("z",)


@given(st.binary(max_size=40))
def test_any_bytes_are_a_subscription_or_none(data):
    topics = decode_subscription(data)
    assert topics is None or all(isinstance(topic, str) for topic in topics)


# DeleteGroups


def test_delete_groups():
    h = Harness()
    h.form_group("busy", 1)
    h.commit("idle", {("t", 0): 1, ("t", 1): 2})
    idle = h.group("idle")
    # A group named twice is answered once.
    assert h.delete_groups("busy", "idle", "nowhere", "idle") == [
        ("busy", E.non_empty_group), ("idle", E.none), ("nowhere", E.group_id_not_found),
    ]
    assert "idle" not in h.coordinator.groups and idle.state.value == "Dead"
    assert h.offsets("idle", None) == {}
    assert offset_records(h)[-2:] == [(("idle", "t", 0), None), (("idle", "t", 1), None)]
    partition, _, value = h.records[-1]
    assert (partition, value) == (h.coordinator.partition_for("idle"), None)
    [described] = h.describe("idle")
    assert described["group_state"] == "Dead"


# ListGroups and DescribeGroups


def test_list_groups_filters_by_state_and_type():
    h = Harness()
    h.form_group("stable", 1)
    h.commit("simple", {("t", 0): 1})
    h.join_new("joining")
    assert h.list_groups() == {"stable": ("Stable", "consumer"), "simple": ("Empty", ""), "joining": ("PreparingRebalance", "consumer")}
    assert h.list_groups(version=4, states=(" stable ", "EMPTY")) == {"stable": ("Stable", "consumer"), "simple": ("Empty", "")}
    assert h.list_groups(states=("dead",)) == {}
    assert set(h.list_groups(types=("Classic",))) == {"stable", "simple", "joining"}
    assert h.list_groups(types=("consumer",)) == {}
    assert set(h.list_groups(version=0)) == {"stable", "simple", "joining"}


def test_describe_groups():
    h = Harness()
    a, _ = h.form_group("g", 2, client_id="app")
    [stable] = h.describe("g")
    assert (stable["error_code"], stable["group_state"], stable["protocol_type"], stable["protocol_data"]) == (
        E.none, "Stable", "consumer", "range")
    assert stable["members"][0] == {
        "member_id": a, "group_instance_id": None, "client_id": "app", "client_host": "/10.0.0.1",
        "member_metadata": subscription("topic"), "member_assignment": a.encode(),
    }
    h.join("g", a)
    [rebalancing] = h.describe("g")
    # Until a protocol is settled, neither it nor member metadata is shown.
    assert (rebalancing["group_state"], rebalancing["protocol_data"]) == ("PreparingRebalance", "")
    assert [m["member_metadata"] for m in rebalancing["members"]] == [b"", b""]
    [old] = h.describe("nowhere", version=5)
    assert (old["error_code"], old["group_state"], old["members"]) == (E.none, "Dead", [])
    [new] = h.describe("nowhere", version=6)
    assert (new["error_code"], new["error_message"], new["group_state"]) == (E.group_id_not_found, "Group nowhere not found.", "Dead")
    with_operations, missing = h.describe("g", "nowhere", version=5, authorized_operations=True)
    [missing_v6] = h.describe("nowhere", version=6, authorized_operations=True)
    # Operations are given for every group described without error.
    assert with_operations["authorized_operations"] == missing["authorized_operations"] == GROUP_AUTHORIZED_OPERATIONS
    assert missing_v6["authorized_operations"] == -(2**31)
    assert h.describe("g", version=3)[0]["authorized_operations"] == -(2**31)


# Offset retention


def retention_harness() -> Harness:
    return Harness({"offsets.retention.minutes": 1, "offsets.retention.check.interval.ms": 1000})


def test_offsets_of_a_simple_group_expire_from_their_commit_then_the_group_goes():
    h = retention_harness()
    h.commit("simple", {("t", 0): 1})
    h.tick(30_000)
    h.commit("simple", {("t", 1): 2})
    h.tick(30_000)  # t=60 s: the first offset is a minute old
    assert h.offsets("simple", None) == {("t", 1): (2, "")}
    assert "simple" in h.coordinator.groups
    h.tick(30_000)
    assert h.offsets("simple", None) == {}
    assert "simple" not in h.coordinator.groups
    assert offset_records(h)[-2:] == [(("simple", "t", 0), None), (("simple", "t", 1), None)]
    assert h.records[-1][2] is None  # the group's tombstone


def test_offsets_of_an_empty_group_expire_a_retention_after_it_became_empty():
    h = retention_harness()
    [a] = h.form_group("g", 1)
    h.commit("g", {("topic", 0): 1, ("elsewhere", 0): 2}, generation_id=1, member_id=a)
    for _ in range(11):
        h.tick(5000)
        assert h.heartbeat("g", a, 1) is E.none
    assert len(h.offsets("g", None)) == 2
    # While Stable, offsets of topics the group does not subscribe to expire by commit time...
    h.tick(5000)
    assert h.heartbeat("g", a, 1) is E.none
    assert h.offsets("g", None) == {("topic", 0): (1, "")}
    h.leave("g", [(a, None)])
    # ...and once Empty, every offset expires a retention after the group emptied.
    h.tick(59_000)
    assert h.offsets("g", None) == {("topic", 0): (1, "")}
    h.tick(1000)
    assert h.offsets("g", None) == {}
    assert "g" not in h.coordinator.groups


def test_offsets_of_a_non_consumer_group_that_is_not_empty_never_expire():
    h = retention_harness()
    [a] = h.form_group("g", 1, protocol_type="connect")
    h.commit("g", {("t", 0): 1}, generation_id=1, member_id=a)
    for _ in range(20):
        h.tick(5000)
        assert h.heartbeat("g", a, 1) is E.none
    assert h.offsets("g", None) == {("t", 0): (1, "")}


def test_a_retention_time_from_an_old_commit_is_its_own_expiry():
    h = retention_harness()
    h.commit("g", {("t", 0): 1}, version=2, retention_ms=5000)
    h.tick(5000)
    assert h.offsets("g", None) == {}


def test_an_empty_group_without_offsets_is_deleted_at_the_next_check():
    h = retention_harness()
    member_id = h.reply(h.join("g"))["member_id"]  # type: ignore[index]
    h.tick(999)
    assert h.state("g") == "Empty"
    # A pending member does not keep its group: Kafka deletes any Empty group without offsets.
    h.tick(1)
    assert "g" not in h.coordinator.groups
    assert h.records[-1][2] is None
    assert h.reply(h.join("g", member_id))["error_code"] is E.unknown_member_id  # type: ignore[index]


# Replay


def snapshot(coordinator: GroupCoordinator) -> dict[str, Any]:
    """What a restart must keep: groups with their members, and offsets."""
    groups = {}
    for group_id, g in coordinator.groups.items():
        groups[group_id] = {
            "state": g.state, "generation": g.generation_id, "protocol_type": g.protocol_type,
            "protocol": g.protocol_name, "leader": g.leader_id, "subscribed": g.subscribed_topics,
            "members": {
                m.member_id: (m.group_instance_id, m.client_id, m.client_host, m.session_timeout_ms,
                              m.rebalance_timeout_ms, m.metadata(g.protocol_name) if g.protocol_name else None, m.assignment)
                for m in g.members.values()
            },
            "static": dict(g.static_members),
            "offsets": coordinator.offsets.of_group(group_id),
        }
    return groups


def test_replay_rebuilds_groups_and_offsets():
    h = Harness()
    _, b = h.form_group("consumers", 2)
    h.commit("consumers", {("topic", 0): 10, ("topic", 1): (11, "m")}, generation_id=1, member_id=b)
    static_join = h.join("statics", instance="s1", client_id="worker")
    h.settle()
    s1 = h.reply(static_join)["member_id"]  # type: ignore[index]
    h.sync("statics", s1, 1, {s1: b"everything"}, instance="s1")
    h.join("statics", instance="s1")  # a restart of the static member: a new member id, recorded
    h.commit("simple", {("t", 0): 1, ("t", 1): 2})
    h.delete_offsets("simple", {"t": [1]})
    h.commit("doomed", {("t", 0): 1})
    h.delete_groups("doomed")
    [lonely] = h.form_group("deserted", 1)
    h.leave("deserted", [(lonely, None)])

    fresh = h.restarted()
    assert snapshot(fresh.coordinator) == snapshot(h.coordinator)
    assert set(fresh.coordinator.groups) == {"consumers", "statics", "simple", "deserted"}
    assert fresh.state("consumers") == "Stable" and fresh.state("deserted") == "Empty"


def test_members_of_a_replayed_group_carry_on_or_expire():
    h = Harness()
    a, b = h.form_group("g", 2)
    fresh = h.restarted()
    # The members keep their generation: no rebalance after a coordinator restart.
    assert fresh.heartbeat("g", a, 1) is E.none
    assert fresh.reply(fresh.sync("g", b, 1))["assignment"] == b.encode()  # type: ignore[index]
    fresh.tick(SESSION_MS - 1)
    assert fresh.heartbeat("g", a, 1) is E.none
    fresh.tick(1)  # b went away with the old broker
    assert set(fresh.group("g").members) == {a}
    assert fresh.state("g") == "PreparingRebalance"


def test_a_replayed_group_over_the_max_size_rebalances():
    h = Harness()
    h.form_group("g", 3)
    fresh = h.restarted({"group.max.size": 2})
    assert fresh.state("g") == "PreparingRebalance"
