"""Incremental fetch sessions (KIP-227), both sides, sans-IO."""

from __future__ import annotations

import random

from kio.schema.errors import ErrorCode

from kafkapy.replication.fetch_session import (
    EVICTION_MS,
    FULL_EPOCH,
    SESSIONLESS_ID,
    FetchSession,
    FetchSessionCache,
    FetchSessionHandler,
)

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
    session = cache.create({A: entry(0)}, 0)
    assert isinstance(session, FetchSession) and session.session_id != SESSIONLESS_ID
    assert cache.incremental(session.session_id + 1, 1, 0) == ErrorCode.fetch_session_id_not_found
    assert cache.incremental(session.session_id, 2, 0) == ErrorCode.invalid_fetch_session_epoch
    assert cache.incremental(session.session_id, 1, 0) is session
    assert cache.incremental(session.session_id, 1, 0) == ErrorCode.invalid_fetch_session_epoch  # a replayed epoch
    assert cache.incremental(session.session_id, 2, 0) is session
    cache.close(session.session_id)
    assert cache.incremental(session.session_id, 3, 0) == ErrorCode.fetch_session_id_not_found


def test_a_full_cache_creates_no_session_rather_than_evict_one_in_use() -> None:
    # More followers than slots must not evict each other's sessions at every fetch.
    cache = FetchSessionCache(2, random.Random(2))
    first, second = cache.create({A: entry(0)}, 0), cache.create({B: entry(0)}, 0)
    assert first is not None and second is not None
    assert cache.create({A: entry(0), B: entry(0), C: entry(0)}, 1000) is None
    assert len(cache) == 2
    assert cache.incremental(first.session_id, 1, 2000) is first
    assert cache.incremental(second.session_id, 1, 2000) is second
    assert FetchSessionCache(0).create({A: entry(0)}, 0) is None


def test_a_stale_session_is_evicted_for_a_new_one() -> None:
    cache = FetchSessionCache(2, random.Random(3))
    first, second = cache.create({A: entry(0)}, 0), cache.create({B: entry(0)}, 0)
    assert first is not None and second is not None
    assert cache.incremental(second.session_id, 1, EVICTION_MS) is second
    # first has not been used for over EVICTION_MS: stale, whatever its size.
    third = cache.create({C: entry(0)}, EVICTION_MS + 1)
    assert third is not None and len(cache) == 2
    assert cache.incremental(first.session_id, 1, EVICTION_MS + 1) == ErrorCode.fetch_session_id_not_found
    assert cache.incremental(second.session_id, 2, EVICTION_MS + 1) is second


def test_a_session_in_use_long_enough_is_evicted_only_for_one_of_more_partitions() -> None:
    cache = FetchSessionCache(2, random.Random(4))
    small, large = cache.create({A: entry(0)}, 0), cache.create({A: entry(0), B: entry(0)}, 0)
    assert small is not None and large is not None
    later = EVICTION_MS + 1
    assert cache.incremental(small.session_id, 1, later) is small
    assert cache.incremental(large.session_id, 1, later) is large
    # Both in use for over EVICTION_MS, neither stale: one of as many partitions as the
    # smallest (1) evicts nothing; one of more evicts the smallest.
    assert cache.create({C: entry(0)}, later) is None
    assert cache.create({B: entry(0), C: entry(0)}, later) is not None
    assert cache.incremental(small.session_id, 2, later) == ErrorCode.fetch_session_id_not_found
    assert cache.incremental(large.session_id, 2, later) is large


def test_a_session_updates_and_forgets_partitions_and_tells_only_what_changed() -> None:
    session = FetchSession(1, 1, {A: entry(0), B: entry(0)})
    assert session.must_answer(A, False, (5, 5, 0))  # never told
    assert not session.must_answer(A, False, (5, 5, 0))
    assert session.must_answer(A, True, (5, 5, 0))  # records or an error
    assert session.must_answer(A, False, (6, 6, 0))  # the high watermark moved
    session.update({C: entry(3), B: entry(2)}, [A])
    assert session.partitions == {B: entry(2), C: entry(3)}
    assert session.must_answer(A, False, (6, 6, 0))  # forgotten: told afresh if named again
