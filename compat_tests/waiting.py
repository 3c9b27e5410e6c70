"""Waiting on a condition in a test: polled, with a deadline, failing the test with what
was awaited (no bare sleep stands for synchronisation)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(predicate: Callable[[], T], timeout_s: float, what: str, explain: Callable[[], object] | None = None) -> T:
    """The first truthy value of `predicate()`; fails after `timeout_s` naming `what`, and
    what `explain()` says of the state then."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}" + (f"; {explain()}" if explain else ""))
        time.sleep(0.02)
