"""Test data and the checks scenarios make on it, each failing with a message that says
what differed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from .adapters.base import TIMEOUT_S, BrokerError, Record, Unsupported

T = TypeVar("T")

BASE_TIMESTAMP = 1_700_000_000_000


def keyed_records(count: int) -> list[Record]:
    """Records with repeating keys, binary values of varied length, repeated and empty
    headers, and explicit timestamps that go back and forth within a batch."""
    return [
        Record(
            key=b"key-%d" % (i % 500),
            value=b"%d:" % i + bytes(range(i % 256)),
            headers=(("seq", b"%d" % i), ("dup", b"a"), ("dup", b"b"), ("empty", b"")),
            timestamp=BASE_TIMESTAMP + (i * 7919) % 100_000,
        )
        for i in range(count)
    ]


def by_position(records: Iterable[Record]) -> dict[tuple[int, int], Record]:
    """Records keyed by (partition, offset); fails on two records at one position."""
    out: dict[tuple[int, int], Record] = {}
    for r in records:
        assert r.partition is not None and r.offset is not None, f"record without a position: {r}"
        assert (r.partition, r.offset) not in out, f"two records at partition {r.partition} offset {r.offset}"
        out[(r.partition, r.offset)] = r
    return out


def end_offsets(records: Iterable[Record]) -> dict[int, int]:
    """The offset after the last of the records in each partition."""
    ends: dict[int, int] = {}
    for r in records:
        assert r.partition is not None and r.offset is not None, f"record without a position: {r}"
        ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)
    return ends


def assert_same_records(got: Iterable[Record], expected: Iterable[Record], reader: str = "") -> None:
    """The same records at the same (partition, offset) positions, reported briefly."""
    got_at, expected_at = by_position(got), by_position(expected)
    missing = sorted(expected_at.keys() - got_at.keys())
    unexpected = sorted(got_at.keys() - expected_at.keys())
    differing = [k for k in sorted(expected_at.keys() & got_at.keys()) if got_at[k] != expected_at[k]]
    by = f" (read by {reader})" if reader else ""
    assert not missing, f"{len(missing)} records missing{by}, first at (partition, offset) {missing[:5]}"
    assert not unexpected, f"{len(unexpected)} unexpected records{by}, first at {unexpected[:5]}"
    assert not differing, (f"{len(differing)} records differ{by}, first: got {got_at[differing[0]]}, "
                           f"expected {expected_at[differing[0]]}")


def assert_equal(got: object, expected: object, what: str) -> None:
    assert got == expected, f"{what}: got {got!r}, expected {expected!r}"


@contextmanager
def refused_with(*errors: str) -> Iterator[None]:
    """The block must fail with a BrokerError named one of errors (Kafka's names)."""
    try:
        yield
    except BrokerError as e:
        assert e.name in errors, f"expected the broker to refuse with {' or '.join(errors)}, got {e}"
    else:
        raise AssertionError(f"expected the broker to refuse with {' or '.join(errors)}, but it accepted")


def once_it_works(call: Callable[[], T], what: str, timeout: float = TIMEOUT_S) -> T:
    """call's result, retried while it raises, as an application retries a client whose
    connection is being re-established; fails with the last error after timeout. A call
    the client lacks (Unsupported) is not retried: no reconnection brings it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except Unsupported:
            raise  # what the client lacks, no retry gives it
        except Exception as e:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} still failing after {timeout:g}s: {type(e).__name__}: {e}") from e
        time.sleep(0.2)
