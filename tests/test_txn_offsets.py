"""Offsets committed in transactions (TxnOffsetCommit): pending until the transaction's
marker, then committed or dropped; require_stable; validation; replay with markers."""

from __future__ import annotations

import itertools

from kio.schema.errors import ErrorCode

from group_harness import Appended, Harness, Marker
from kafkapy.coordinator.records.consumer_offsets import (
    OffsetCommitKey,
    OffsetCommitValue,
    decode_offsets_key,
    decode_offsets_value,
)

E = ErrorCode
ORDERS = "orders"
PRODUCER = 4000
OTHER_PRODUCER = 4001


def view(h: Harness, group_id: str, topics: dict[str, list[int]] | None, *, version: int = 7,
         require_stable: bool = True) -> dict[tuple[str, int], tuple[int, ErrorCode]]:
    """{(topic, partition): (committed offset, error)} of an OffsetFetch."""
    response = h.fetch(group_id, topics, version=version, require_stable=require_stable)
    assert response["error_code"] is E.none
    return {(t["name"], p["partition_index"]): (p["committed_offset"], p["error_code"])
            for t in response["topics"] for p in t["partitions"]}


def groups_by_partition(h: Harness) -> dict[int, list[str]]:
    """Group ids g0, g1, ... by the __consumer_offsets partition that holds them."""
    found: dict[int, list[str]] = {}
    for i in range(500):
        found.setdefault(h.coordinator.partition_for(f"g{i}"), []).append(f"g{i}")
    return found


# Pending, then committed or dropped


def test_offsets_of_a_transaction_are_pending_until_it_commits():
    h = Harness()
    h.commit("g", {(ORDERS, 1): 3})
    response = h.txn_commit("g", {(ORDERS, 0): (10, "m"), (ORDERS, 1): 11}, PRODUCER, producer_epoch=7)
    assert h.committed(response) == {(ORDERS, 0): E.none, (ORDERS, 1): E.none}
    # Written as a transactional batch of the producer, with no expiry of their own.
    now = h.clock.wall_ms()
    written = [(decode_offsets_key(e.key), decode_offsets_value(decode_offsets_key(e.key), e.value), e.producer_id)
               for e in h.log[-2:] if isinstance(e, Appended)]
    assert written == [
        (OffsetCommitKey(group="g", topic=ORDERS, partition=0),
         OffsetCommitValue(offset=10, metadata="m", commit_timestamp=now), PRODUCER),
        (OffsetCommitKey(group="g", topic=ORDERS, partition=1),
         OffsetCommitValue(offset=11, metadata="", commit_timestamp=now), PRODUCER),
    ]
    # Invisible to OffsetFetch; a stable fetch is told to wait for the transaction.
    assert view(h, "g", {ORDERS: [0, 1, 2]}, require_stable=False) == {
        (ORDERS, 0): (-1, E.none), (ORDERS, 1): (3, E.none), (ORDERS, 2): (-1, E.none)}
    assert view(h, "g", {ORDERS: [0, 1, 2]}) == {
        (ORDERS, 0): (-1, E.unstable_offset_commit), (ORDERS, 1): (-1, E.unstable_offset_commit), (ORDERS, 2): (-1, E.none)}
    # Before v7 there is no require_stable: the committed offsets are answered.
    assert view(h, "g", {ORDERS: [0, 1]}, version=6) == {(ORDERS, 0): (-1, E.none), (ORDERS, 1): (3, E.none)}
    h.end_transaction("g", PRODUCER, commit=True)
    assert view(h, "g", {ORDERS: [0, 1]}) == {(ORDERS, 0): (10, E.none), (ORDERS, 1): (11, E.none)}
    assert h.offsets("g", {ORDERS: [0]}) == {(ORDERS, 0): (10, "m")}


def test_an_aborted_transaction_leaves_the_committed_offsets():
    h = Harness()
    h.commit("g", {(ORDERS, 0): 5})
    h.txn_commit("g", {(ORDERS, 0): 9, (ORDERS, 1): 9}, PRODUCER)
    h.end_transaction("g", PRODUCER, commit=False)
    assert view(h, "g", {ORDERS: [0, 1]}) == {(ORDERS, 0): (5, E.none), (ORDERS, 1): (-1, E.none)}
    # A marker with nothing pending (written again after a restart) changes nothing.
    h.end_transaction("g", PRODUCER, commit=True)
    assert view(h, "g", {ORDERS: [0, 1]}) == {(ORDERS, 0): (5, E.none), (ORDERS, 1): (-1, E.none)}


def test_a_marker_ends_its_producers_offsets_in_its_partition_only():
    h = Harness()
    by_partition = groups_by_partition(h)
    partition, same = next((p, groups) for p, groups in by_partition.items() if len(groups) >= 2)
    other = next(groups[0] for p, groups in by_partition.items() if p != partition)
    h.txn_commit(same[0], {(ORDERS, 0): 1}, PRODUCER)
    h.txn_commit(same[1], {(ORDERS, 0): 2}, PRODUCER)
    h.txn_commit(same[0], {(ORDERS, 1): 3}, OTHER_PRODUCER)
    h.txn_commit(other, {(ORDERS, 0): 4}, PRODUCER)  # the same transaction, in another partition
    h.end_transaction(same[0], PRODUCER, commit=True)
    assert view(h, same[0], {ORDERS: [0, 1]}) == {(ORDERS, 0): (1, E.none), (ORDERS, 1): (-1, E.unstable_offset_commit)}
    assert view(h, same[1], {ORDERS: [0]}) == {(ORDERS, 0): (2, E.none)}
    assert view(h, other, {ORDERS: [0]}) == {(ORDERS, 0): (-1, E.unstable_offset_commit)}
    h.end_transaction(other, PRODUCER, commit=True)
    assert view(h, other, {ORDERS: [0]}) == {(ORDERS, 0): (4, E.none)}


def test_the_later_record_wins_between_a_transaction_and_a_plain_commit():
    h = Harness()
    # The transaction's record comes first: the plain commit after it stays.
    h.txn_commit("g", {(ORDERS, 0): 10}, PRODUCER)
    h.commit("g", {(ORDERS, 0): 20})
    assert view(h, "g", {ORDERS: [0]}) == {(ORDERS, 0): (-1, E.unstable_offset_commit)}
    # The plain commit comes first: the transaction's record after it wins.
    h.commit("g", {(ORDERS, 1): 20})
    h.txn_commit("g", {(ORDERS, 1): 10}, PRODUCER)
    h.end_transaction("g", PRODUCER, commit=True)
    expected = {(ORDERS, 0): (20, E.none), (ORDERS, 1): (10, E.none)}
    assert view(h, "g", {ORDERS: [0, 1]}) == expected
    assert view(h.restarted(), "g", {ORDERS: [0, 1]}) == expected


def test_fetching_all_offsets_with_require_stable():
    h = Harness()
    h.commit("g", {(ORDERS, 0): 1, (ORDERS, 1): 2})
    h.txn_commit("g", {(ORDERS, 1): 5, (ORDERS, 2): 6}, PRODUCER)
    # Partitions with only a pending offset are not listed, as they have no committed one.
    assert view(h, "g", None) == {(ORDERS, 0): (1, E.none), (ORDERS, 1): (-1, E.unstable_offset_commit)}
    [group] = h.fetch_groups({"g": None}, version=8)["groups"]
    assert [(p["partition_index"], p["committed_offset"]) for t in group["topics"] for p in t["partitions"]] == [(0, 1), (1, 2)]


# Validation


def test_a_transaction_commits_to_a_new_group_as_a_simple_group():
    h = Harness()
    assert h.committed(h.txn_commit("new", {(ORDERS, 0): 1}, PRODUCER, version=0)) == {(ORDERS, 0): E.none}
    assert h.list_groups() == {"new": ("Empty", "")}
    refused = h.txn_commit("unknown", {(ORDERS, 0): 1}, PRODUCER, generation_id=1, member_id="m")
    assert h.committed(refused) == {(ORDERS, 0): E.illegal_generation}
    assert "unknown" not in h.coordinator.groups


def test_requests_refused_as_a_whole():
    h = Harness()
    assert h.committed(h.txn_commit("", {(ORDERS, 0): 1}, PRODUCER)) == {(ORDERS, 0): E.invalid_group_id}
    assert h.committed(h.txn_commit("g", {(ORDERS, 0): 1}, -1)) == {(ORDERS, 0): E.invalid_producer_id_mapping}
    assert h.records == [] and h.coordinator.groups == {}


def test_members_of_a_classic_group_are_checked_but_not_its_state():
    h = Harness()
    a, b = h.form_group("g", 2)
    h.commit("g", {(ORDERS, 0): 1}, generation_id=1, member_id=a)
    refusals = {
        "generation": h.txn_commit("g", {(ORDERS, 0): 2}, PRODUCER, generation_id=0, member_id=a),
        "member": h.txn_commit("g", {(ORDERS, 0): 2}, PRODUCER, generation_id=1, member_id="who"),
        "instance": h.txn_commit("g", {(ORDERS, 0): 2}, PRODUCER, generation_id=1, member_id=a, instance="i"),
    }
    assert {name: h.committed(r) for name, r in refusals.items()} == {
        "generation": {(ORDERS, 0): E.illegal_generation}, "member": {(ORDERS, 0): E.unknown_member_id},
        "instance": {(ORDERS, 0): E.unknown_member_id},
    }
    # Before v3 a transaction names no member: its commit is taken although the group is not empty.
    assert h.committed(h.txn_commit("g", {(ORDERS, 0): 3}, PRODUCER, version=2)) == {(ORDERS, 0): E.none}
    # A rebalance does not hold a transaction's commit back.
    h.join("g", a)
    h.join("g", b)
    assert h.state("g") == "CompletingRebalance"
    plain = h.commit("g", {(ORDERS, 1): 4}, generation_id=2, member_id=b)
    assert h.committed(plain) == {(ORDERS, 1): E.rebalance_in_progress}
    assert h.committed(h.txn_commit("g", {(ORDERS, 1): 4}, PRODUCER, generation_id=2, member_id=b)) == {(ORDERS, 1): E.none}
    h.end_transaction("g", PRODUCER, commit=True)
    assert h.offsets("g", {ORDERS: [0, 1]}) == {(ORDERS, 0): (3, ""), (ORDERS, 1): (4, "")}


def test_a_static_member_of_another_id_is_fenced():
    h = Harness()
    static_join = h.join("g", instance="i1")
    h.settle()
    member_id = h.reply(static_join)["member_id"]  # type: ignore[index]
    h.sync("g", member_id, 1, {member_id: b""}, instance="i1")
    fenced = h.txn_commit("g", {(ORDERS, 0): 1}, PRODUCER, generation_id=1, member_id="other", instance="i1")
    assert h.committed(fenced) == {(ORDERS, 0): E.fenced_instance_id}
    ok = h.txn_commit("g", {(ORDERS, 0): 1}, PRODUCER, generation_id=1, member_id=member_id, instance="i1")
    assert h.committed(ok) == {(ORDERS, 0): E.none}


def test_consumer_group_members_name_their_member_epoch_as_generation():
    h = Harness()
    h.set_topics(orders=2)
    h.consumer_join("g", "m1", [ORDERS])
    # OffsetCommit needs v9 from such a member; TxnOffsetCommit takes any version.
    assert h.committed(h.commit("g", {(ORDERS, 0): 1}, generation_id=1, member_id="m1", version=8)) == {
        (ORDERS, 0): E.unsupported_version}
    assert h.committed(h.txn_commit("g", {(ORDERS, 0): 2}, PRODUCER, generation_id=1, member_id="m1")) == {
        (ORDERS, 0): E.none}
    assert h.committed(h.txn_commit("g", {(ORDERS, 0): 3}, PRODUCER, generation_id=0, member_id="m1")) == {
        (ORDERS, 0): E.illegal_generation}
    assert h.committed(h.txn_commit("g", {(ORDERS, 0): 3}, PRODUCER, generation_id=1, member_id="who")) == {
        (ORDERS, 0): E.unknown_member_id}
    assert h.committed(h.txn_commit("g", {(ORDERS, 0): 3}, PRODUCER)) == {(ORDERS, 0): E.unknown_member_id}
    h.end_transaction("g", PRODUCER, commit=True)
    assert h.offsets("g", {ORDERS: [0]}) == {(ORDERS, 0): (2, "")}


def test_too_large_metadata_is_refused_per_partition():
    h = Harness()
    response = h.txn_commit("g", {(ORDERS, 0): (1, "x" * 4097), (ORDERS, 1): (2, "x" * 4096)}, PRODUCER, version=1)
    assert h.committed(response) == {(ORDERS, 0): E.offset_metadata_too_large, (ORDERS, 1): E.none}
    [written] = h.log
    assert isinstance(written, Appended)
    assert decode_offsets_key(written.key) == OffsetCommitKey(group="g", topic=ORDERS, partition=1)
    h.end_transaction("g", PRODUCER, commit=True)
    assert h.offsets("g", {ORDERS: [0, 1]}) == {(ORDERS, 0): (-1, ""), (ORDERS, 1): (2, "x" * 4096)}


def test_leader_epochs_are_kept_from_version_2():
    h = Harness()
    h.txn_commit("g", {(ORDERS, 0): 1}, PRODUCER, version=2, leader_epoch=6)
    h.txn_commit("g", {(ORDERS, 1): 1}, PRODUCER, version=1, leader_epoch=6)
    h.end_transaction("g", PRODUCER, commit=True)
    [topic] = h.fetch("g", {ORDERS: [0, 1]})["topics"]
    epochs = {p["partition_index"]: p["committed_leader_epoch"] for p in topic["partitions"]}
    assert epochs == {0: 6, 1: -1}


def test_a_batch_the_log_refuses_leaves_nothing_pending():
    h = Harness()
    h.commit("g", {(ORDERS, 0): 5})
    h.txn_commit("g", {(ORDERS, 0): 9}, PRODUCER, appended=False)
    h.txn_commit("fresh", {(ORDERS, 0): 9}, PRODUCER, appended=False)
    assert view(h, "g", {ORDERS: [0]}) == {(ORDERS, 0): (5, E.none)}
    assert "fresh" not in h.coordinator.groups
    h.end_transaction("g", PRODUCER, commit=True)
    assert view(h, "g", {ORDERS: [0]}) == {(ORDERS, 0): (5, E.none)}


# Deletion and retention


def test_deleting_an_offset_drops_it_from_open_transactions():
    h = Harness()
    h.txn_commit("g", {(ORDERS, 0): 1, (ORDERS, 1): 2}, PRODUCER)
    assert h.committed(h.delete_offsets("g", {ORDERS: [0]})) == {(ORDERS, 0): E.none}
    tombstone = h.log[-1]
    assert isinstance(tombstone, Appended) and tombstone.value is None and tombstone.producer_id == -1
    assert view(h, "g", {ORDERS: [0, 1]}) == {(ORDERS, 0): (-1, E.none), (ORDERS, 1): (-1, E.unstable_offset_commit)}
    h.end_transaction("g", PRODUCER, commit=True)
    assert view(h, "g", {ORDERS: [0, 1]}) == {(ORDERS, 0): (-1, E.none), (ORDERS, 1): (2, E.none)}


def test_deleting_a_group_deletes_its_pending_offsets_too():
    h = Harness()
    h.commit("g", {(ORDERS, 0): 1})
    h.txn_commit("g", {(ORDERS, 0): 2, (ORDERS, 1): 3}, PRODUCER)
    start = len(h.log)
    assert h.delete_groups("g") == [("g", E.none)]
    deleted = [decode_offsets_key(e.key) for e in h.log[start:] if isinstance(e, Appended) and e.value is None]
    assert [(k.topic, k.partition) for k in deleted if isinstance(k, OffsetCommitKey)] == [(ORDERS, 0), (ORDERS, 1)]
    h.end_transaction("g", PRODUCER, commit=True)
    assert h.offsets("g", None) == {} and "g" not in h.coordinator.groups


def test_an_open_transaction_holds_back_expiration():
    h = Harness({"offsets.retention.minutes": 1, "offsets.retention.check.interval.ms": 1000})
    h.commit("g", {(ORDERS, 0): 1, (ORDERS, 1): 1})
    h.txn_commit("g", {(ORDERS, 0): 2}, PRODUCER)
    h.txn_commit("only-pending", {(ORDERS, 0): 2}, PRODUCER)
    h.tick(60_000)
    # The offset with a transaction in flight stays, and so does every group with one.
    assert view(h, "g", None, require_stable=False) == {(ORDERS, 0): (1, E.none)}
    assert {"g", "only-pending"} <= set(h.coordinator.groups)
    h.end_transaction("g", PRODUCER, commit=False)
    h.end_transaction("only-pending", PRODUCER, commit=False)
    h.tick(1000)
    assert view(h, "g", None) == {}
    assert "g" not in h.coordinator.groups and "only-pending" not in h.coordinator.groups


# Replay


def test_replay_rebuilds_pending_offsets_and_ends_transactions_by_their_markers():
    h = Harness()
    producers = itertools.count(PRODUCER)
    committed, aborted, open_, late = next(producers), next(producers), next(producers), next(producers)
    h.commit("g", {(ORDERS, 0): 1, (ORDERS, 1): 1, (ORDERS, 2): 1})
    h.txn_commit("g", {(ORDERS, 0): 10}, committed)
    h.txn_commit("g", {(ORDERS, 1): 20}, aborted)
    h.txn_commit("g", {(ORDERS, 2): 30}, open_)
    h.txn_commit("g", {(ORDERS, 3): 40}, late)
    h.commit("g", {(ORDERS, 3): 4})  # later than the transaction's record: it stays
    h.end_transaction("g", committed, commit=True)
    h.end_transaction("g", aborted, commit=False)
    h.end_transaction("g", late, commit=True)
    expected = {(ORDERS, 0): (10, E.none), (ORDERS, 1): (1, E.none), (ORDERS, 2): (-1, E.unstable_offset_commit),
                (ORDERS, 3): (4, E.none)}
    assert view(h, "g", {ORDERS: [0, 1, 2, 3]}) == expected
    assert sum(isinstance(e, Marker) for e in h.log) == 3
    fresh = h.restarted()
    assert view(fresh, "g", {ORDERS: [0, 1, 2, 3]}) == expected
    # The open transaction ends after the restart.
    fresh.end_transaction("g", open_, commit=True)
    assert view(fresh, "g", {ORDERS: [2]}) == {(ORDERS, 2): (30, E.none)}
    assert view(fresh.restarted(), "g", {ORDERS: [0, 1, 2, 3]}) == {**expected, (ORDERS, 2): (30, E.none)}


def test_a_group_that_only_a_transaction_committed_to_is_replayed():
    h = Harness()
    h.txn_commit("g", {(ORDERS, 0): 1}, PRODUCER)
    fresh = h.restarted()
    assert fresh.list_groups() == {"g": ("Empty", "")}
    assert view(fresh, "g", {ORDERS: [0]}) == {(ORDERS, 0): (-1, E.unstable_offset_commit)}
