"""Incremental fetch sessions (KIP-227), sans-IO, both sides.

Without a session every fetch names every partition the fetcher copies from that leader,
and every answer carries them all: a follower of the 50 partitions of __consumer_offsets
pays for each of them at each record of a busy topic. With a session the leader keeps the
fetch state of each partition; an incremental request names only the partitions whose
fetch state changed (and those forgotten), and an incremental answer carries only the
partitions with records, an error, or a high watermark, last stable offset or log start
offset the fetcher has not been told yet.

`FetchSessionCache` is the leader's side (at most `max.incremental.fetch.session.cache.slots`
sessions, evicted for a new one as Kafka evicts them); `FetchSessionHandler` is the
fetcher's side. Time comes in as arguments.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kio.schema.errors import ErrorCode

SESSIONLESS_ID = 0
FULL_EPOCH = 0  # a full fetch that asks for (or keeps asking for) a new session
FINAL_EPOCH = -1  # a full fetch without a session (or closing one)
_MAX_EPOCH = 2**31 - 1
# Kafka's MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS: a session unused this long is stale, and
# one in use for longer may be evicted for a new session of more partitions.
EVICTION_MS = 120_000

PartitionKey = tuple[Hashable, int]  # (topic id, or name before Fetch v13; partition)
SentState = tuple[int, int, int]  # high watermark, last stable offset, log start offset


def next_epoch(epoch: int) -> int:
    return 1 if epoch >= _MAX_EPOCH else epoch + 1


@dataclass
class FetchSession:
    """What the leader keeps of one fetcher's session: the fetch state of each partition
    (the request's partition entries) and what it last told of each."""

    session_id: int
    epoch: int  # the epoch of the next incremental request
    partitions: dict[PartitionKey, Any] = field(default_factory=dict)
    sent: dict[PartitionKey, SentState] = field(default_factory=dict)
    created_ms: int = 0
    last_used_ms: int = 0

    def update(self, changed: Mapping[PartitionKey, Any], forgotten: Iterable[PartitionKey]) -> None:
        for key in forgotten:
            self.partitions.pop(key, None)
            self.sent.pop(key, None)
        self.partitions.update(changed)

    def must_answer(self, key: PartitionKey, has_news: bool, state: SentState) -> bool:
        """Whether an incremental answer carries the partition; remembers what it tells."""
        if has_news or self.sent.get(key) != state:
            self.sent[key] = state
            return True
        return False


class FetchSessionCache:
    """Sessions are kept for followers only, which Kafka calls privileged: each may evict
    another follower's session, but only a stale one or one of fewer partitions in use for
    longer than EVICTION_MS, so that more followers than slots do not evict each other's
    sessions at every fetch; the follower left without one fetches sessionless."""

    def __init__(self, slots: int, rng: random.Random | None = None) -> None:
        self.slots = slots
        self._rng = rng or random.Random()
        self._sessions: OrderedDict[int, FetchSession] = OrderedDict()  # least recently used first

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, partitions: Mapping[PartitionKey, Any], now_ms: int) -> FetchSession | None:
        """A new session for a full fetch of `partitions`; None when sessions are disabled
        or every slot holds a session Kafka would not evict for it."""
        if self.slots <= 0 or (len(self._sessions) >= self.slots and not self._evict_for(len(partitions), now_ms)):
            return None
        session_id = self._rng.randint(1, _MAX_EPOCH)
        while session_id in self._sessions:
            session_id = self._rng.randint(1, _MAX_EPOCH)
        session = self._sessions[session_id] = FetchSession(session_id, 1, dict(partitions), created_ms=now_ms,
                                                            last_used_ms=now_ms)
        return session

    def _evict_for(self, size: int, now_ms: int) -> bool:
        """Evicts, as Kafka's FetchSessionCache.tryEvict does, the least recently used
        session if it is stale, else the smallest of those in use for over EVICTION_MS (at
        their last use) if it has fewer partitions than the new one."""
        least_recent = next(iter(self._sessions.values()))
        if now_ms - least_recent.last_used_ms > EVICTION_MS:
            del self._sessions[least_recent.session_id]
            return True
        evictable = [s for s in self._sessions.values() if s.last_used_ms - s.created_ms > EVICTION_MS]
        if not evictable:
            return False
        victim = min(evictable, key=lambda s: (len(s.partitions), s.session_id))
        if size <= len(victim.partitions):
            return False
        del self._sessions[victim.session_id]
        return True

    def close(self, session_id: int) -> None:
        self._sessions.pop(session_id, None)

    def incremental(self, session_id: int, epoch: int, now_ms: int) -> FetchSession | ErrorCode:
        """The session an incremental fetch continues, its epoch moved on; or the error."""
        session = self._sessions.get(session_id)
        if session is None:
            return ErrorCode.fetch_session_id_not_found
        if session.epoch != epoch:
            return ErrorCode.invalid_fetch_session_epoch
        session.epoch = next_epoch(epoch)
        session.last_used_ms = now_ms
        self._sessions.move_to_end(session_id)
        return session


@dataclass(frozen=True)
class FetchPlan:
    """One fetch request's session fields and what it names."""

    session_id: int
    epoch: int
    partitions: dict[PartitionKey, dict[str, Any]]
    forgotten: list[PartitionKey]

    @property
    def full(self) -> bool:
        return self.epoch == FULL_EPOCH


class FetchSessionHandler:
    """The fetcher's side: a full fetch first, then incremental fetches naming only the
    partitions whose fetch state changed, for as long as the leader keeps the session."""

    def __init__(self) -> None:
        self.session_id = SESSIONLESS_ID
        self.epoch = FULL_EPOCH
        self._sent: dict[PartitionKey, dict[str, Any]] = {}

    def plan(self, wanted: Mapping[PartitionKey, dict[str, Any]]) -> FetchPlan:
        if self.session_id == SESSIONLESS_ID:
            return FetchPlan(SESSIONLESS_ID, FULL_EPOCH, dict(wanted), [])
        changed = {key: entry for key, entry in wanted.items() if self._sent.get(key) != entry}
        forgotten = [key for key in self._sent if key not in wanted]
        return FetchPlan(self.session_id, self.epoch, changed, forgotten)

    def answered(self, plan: FetchPlan, error: ErrorCode, session_id: int) -> None:
        """The leader answered `plan` with this top-level error and session id."""
        if error != ErrorCode.none:
            self.reset()
            return
        if plan.full:
            self.session_id = session_id
            self.epoch = next_epoch(FULL_EPOCH)
            self._sent = dict(plan.partitions) if session_id != SESSIONLESS_ID else {}
            return
        self.epoch = next_epoch(self.epoch)
        for key in plan.forgotten:
            del self._sent[key]
        self._sent.update(plan.partitions)

    def reset(self) -> None:
        """The next fetch is a full one (the session is lost, or the request failed)."""
        self.session_id = SESSIONLESS_ID
        self.epoch = FULL_EPOCH
        self._sent = {}

