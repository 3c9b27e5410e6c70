"""Incremental fetch sessions (KIP-227), both sides, sans-IO."""

from __future__ import annotations

import random

from kio.schema.errors import ErrorCode

from kafkapy.replication.fetch_session import FULL_EPOCH, SESSIONLESS_ID, FetchSession, FetchSessionCache, FetchSessionHandler

A, B, C = ("t", 0), ("t", 1), ("u", 0)


def entry(offset: int) -> dict[str, int]:
    return {"fetch_offset": offset, "current_leader_epoch": 1}


def test_the_first_fetch_is_full_then_only_changed_and_forgotten_partitions_are_named() -> None:
    handler = FetchSessionHandler()
    full = handler.plan({A: entry(5), B: entry(7)})
    assert (full.session_id, full.epoch, full.partitions, full.forgotten) == (SESSIONLESS_ID, FULL_EPOCH, {A: entry(5), B: entry(7)}, [])
    handler.answered(full, ErrorCode.none, 42)

    first = handler.plan({A: entry(6), B: entry(7)})
    assert (first.session_id, first.epoch, first.partitions, first.forgotten) == (42, 1, {A: entry(6)}, [])
    handler.answered(first, ErrorCode.none, 42)

    second = handler.plan({A: entry(6), C: entry(0)})
    assert (second.epoch, second.partitions, second.forgotten) == (2, {C: entry(0)}, [B])
    handler.answered(second, ErrorCode.none, 42)
    assert handler.plan({A: entry(6), C: entry(0)}).partitions == {}


def test_a_lost_session_or_a_failed_request_makes_the_next_fetch_full() -> None:
    handler = FetchSessionHandler()
    handler.answered(handler.plan({A: entry(1)}), ErrorCode.none, 9)
    handler.answered(handler.plan({A: entry(2)}), ErrorCode.fetch_session_id_not_found, SESSIONLESS_ID)
    assert handler.plan({A: entry(2)}).full and handler.plan({A: entry(2)}).partitions == {A: entry(2)}

    handler.answered(handler.plan({A: entry(2)}), ErrorCode.none, 10)
    handler.reset()
    assert handler.plan({A: entry(2)}).session_id == SESSIONLESS_ID


def test_a_leader_that_keeps_no_session_gets_full_fetches() -> None:
    handler = FetchSessionHandler()
    handler.answered(handler.plan({A: entry(1)}), ErrorCode.none, SESSIONLESS_ID)
    plan = handler.plan({A: entry(1)})
    assert plan.full and plan.partitions == {A: entry(1)}


def test_the_cache_checks_session_ids_and_epochs() -> None:
    cache = FetchSessionCache(10, random.Random(1))
    session = cache.create({A: entry(0)})
    assert isinstance(session, FetchSession) and session.session_id != SESSIONLESS_ID
    assert cache.incremental(session.session_id + 1, 1) == ErrorCode.fetch_session_id_not_found
    assert cache.incremental(session.session_id, 2) == ErrorCode.invalid_fetch_session_epoch
    assert cache.incremental(session.session_id, 1) is session
    assert cache.incremental(session.session_id, 1) == ErrorCode.invalid_fetch_session_epoch  # a replayed epoch
    assert cache.incremental(session.session_id, 2) is session
    cache.close(session.session_id)
    assert cache.incremental(session.session_id, 3) == ErrorCode.fetch_session_id_not_found


def test_the_cache_keeps_at_most_its_slots_evicting_the_least_recently_used() -> None:
    cache = FetchSessionCache(2, random.Random(2))
    first, second = cache.create({A: entry(0)}), cache.create({B: entry(0)})
    assert first is not None and second is not None
    assert cache.incremental(first.session_id, 1) is first  # second is now the least recently used
    third = cache.create({C: entry(0)})
    assert third is not None and len(cache) == 2
    assert cache.incremental(second.session_id, 1) == ErrorCode.fetch_session_id_not_found
    assert FetchSessionCache(0).create({A: entry(0)}) is None


def test_a_session_updates_and_forgets_partitions_and_tells_only_what_changed() -> None:
    session = FetchSession(1, 1, {A: entry(0), B: entry(0)})
    assert session.must_answer(A, False, (5, 5, 0))  # never told
    assert not session.must_answer(A, False, (5, 5, 0))
    assert session.must_answer(A, True, (5, 5, 0))  # records or an error
    assert session.must_answer(A, False, (6, 6, 0))  # the high watermark moved
    session.update({C: entry(3), B: entry(2)}, [A])
    assert session.partitions == {B: entry(2), C: entry(3)}
    assert session.must_answer(A, False, (6, 6, 0))  # forgotten: told afresh if named again
