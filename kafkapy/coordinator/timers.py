"""Keyed timers on a monotonic clock, fired by whoever owns them (no threads)."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Hashable


class Timers:
    """At most one timer per key: scheduling a key again replaces its timer."""

    def __init__(self) -> None:
        self._timers: dict[Hashable, tuple[int, int, Callable[[], None]]] = {}
        self._heap: list[tuple[int, int, Hashable]] = []  # may hold replaced entries, skipped lazily
        self._sequence = itertools.count()

    def schedule(self, key: Hashable, deadline_ms: int, action: Callable[[], None]) -> None:
        sequence = next(self._sequence)
        self._timers[key] = (deadline_ms, sequence, action)
        heapq.heappush(self._heap, (deadline_ms, sequence, key))

    def cancel(self, key: Hashable) -> None:
        self._timers.pop(key, None)

    def cancel_where(self, predicate: Callable[[Hashable], bool]) -> None:
        """Cancels every timer whose key satisfies the predicate."""
        for key in [key for key in self._timers if predicate(key)]:
            del self._timers[key]

    def _drop_stale_head(self) -> None:
        while self._heap:
            _, sequence, key = self._heap[0]
            timer = self._timers.get(key)
            if timer is not None and timer[1] == sequence:
                return
            heapq.heappop(self._heap)

    def next_deadline(self) -> int | None:
        self._drop_stale_head()
        return self._heap[0][0] if self._heap else None

    def fire_due(self, now_ms: int) -> None:
        """Runs every timer due at now_ms, earliest first. Timers that the actions schedule
        wait for the next call even when already due, so a zero delay cannot spin here."""
        horizon = next(self._sequence)
        while True:
            self._drop_stale_head()
            if not self._heap:
                return
            deadline, sequence, key = self._heap[0]
            if deadline > now_ms or sequence > horizon:
                return
            heapq.heappop(self._heap)
            _, _, action = self._timers.pop(key)
            action()
