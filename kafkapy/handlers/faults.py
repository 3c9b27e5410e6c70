"""Faults on demand, for testing clients against a misbehaving broker.

A fault is one of:
- `error`: answer the next `count` requests of an API key with an error code, for the
  whole request or only for one topic (and partition);
- `latency`: hold each request of an API key (or of every API) for `latency_ms`;
- `drop_connection`: apply the next `count` requests of an API key, then close the
  connection instead of answering, so the client retries what was already done;
- `leaderless`: a partition has no leader for `duration_ms` (Metadata says so, and
  produce, fetch and list offsets answer NOT_LEADER_OR_FOLLOWER);
- `no_heartbeats`: Heartbeat requests of a group (or of all groups) get no answer
  for `duration_ms`, so the coordinator sees the members' sessions expire.

Every fault counts how often it fired, so a test can assert that it did.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from kio.schema.errors import ErrorCode

KINDS = ("error", "latency", "drop_connection", "leaderless", "no_heartbeats")
PARTITION_APIS = frozenset({0, 1, 2})  # Produce, Fetch, ListOffsets: faults apply per partition


class FaultSpecError(ValueError):
    pass


@dataclass
class Fault:
    id: int
    kind: str
    api_key: int | None = None
    topic: str | None = None
    partition: int | None = None
    group: str | None = None
    error_code: int | None = None
    count: int | None = None  # how many more times it fires; None: until removed or expired
    latency_ms: int = 0
    expires_ms: int | None = None  # monotonic ms; None: never
    fired: int = 0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.error_code is not None:
            out["error_name"] = ErrorCode(self.error_code).name.upper()
        return out


@dataclass
class Faults:
    now_ms: Callable[[], int]
    faults: list[Fault] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def add(self, kind: str, *, api_key: int | None = None, topic: str | None = None, partition: int | None = None,
            group: str | None = None, error: int | str | None = None, count: int | None = None,
            latency_ms: int = 0, duration_ms: int | None = None) -> Fault:
        if kind not in KINDS:
            raise FaultSpecError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")
        if kind == "error" and (error is None or api_key is None):
            raise FaultSpecError("an error fault needs api_key and error (a code or a name such as NOT_LEADER_OR_FOLLOWER)")
        if kind in ("drop_connection",) and api_key is None:
            raise FaultSpecError("a drop_connection fault needs api_key")
        if kind == "leaderless" and (topic is None or partition is None or duration_ms is None):
            raise FaultSpecError("a leaderless fault needs topic, partition and duration_ms")
        if kind == "no_heartbeats" and duration_ms is None:
            raise FaultSpecError("a no_heartbeats fault needs duration_ms")
        code = None
        if error is not None:
            try:
                code = int(ErrorCode[error.lower()] if isinstance(error, str) else ErrorCode(error))
            except (KeyError, ValueError):
                raise FaultSpecError(f"unknown error {error!r}") from None
        expires = None if duration_ms is None else self.now_ms() + duration_ms
        fault = Fault(next(self._ids), kind, api_key, topic, partition, group, code, count, latency_ms, expires)
        self.faults.append(fault)
        return fault

    def remove(self, fault_id: int) -> bool:
        before = len(self.faults)
        self.faults = [f for f in self.faults if f.id != fault_id]
        return len(self.faults) != before

    def clear(self) -> None:
        self.faults = []

    def _active(self, kind: str) -> list[Fault]:
        if not self.faults:  # asked for every partition of every fetch: a fetch of 1,000 partitions
            return []
        now = self.now_ms()
        return [
            f for f in self.faults
            if f.kind == kind and (f.count is None or f.count > 0) and (f.expires_ms is None or now < f.expires_ms)
        ]

    @staticmethod
    def _fire(fault: Fault) -> None:
        fault.fired += 1
        if fault.count is not None:
            fault.count -= 1

    # Consulted while serving requests

    def request_error(self, api_key: int) -> ErrorCode | None:
        """An error for the whole request of an API without partitions."""
        if api_key in PARTITION_APIS:
            return None
        for fault in self._active("error"):
            if fault.api_key == api_key:
                self._fire(fault)
                assert fault.error_code is not None  # add() gives every error fault its code
                return ErrorCode(fault.error_code)
        return None

    def partition_error(self, api_key: int, topic: str, partition: int) -> ErrorCode | None:
        """An error for one partition of a Produce, Fetch or ListOffsets request."""
        for fault in self._active("error"):
            if fault.api_key == api_key and fault.topic in (None, topic) and fault.partition in (None, partition):
                self._fire(fault)
                assert fault.error_code is not None  # add() gives every error fault its code
                return ErrorCode(fault.error_code)
        if self.leaderless(topic, partition):
            return ErrorCode.not_leader_or_follower
        return None

    def leaderless(self, topic: str, partition: int) -> bool:
        for fault in self._active("leaderless"):
            if fault.topic == topic and fault.partition == partition:
                fault.fired += 1
                return True
        return False

    def latency_ms(self, api_key: int) -> int:
        total = 0
        for fault in self._active("latency"):
            if fault.api_key in (None, api_key):
                self._fire(fault)
                total += fault.latency_ms
        return total

    def drop_connection(self, api_key: int) -> bool:
        for fault in self._active("drop_connection"):
            if fault.api_key == api_key:
                self._fire(fault)
                return True
        return False

    def heartbeat_hold_ms(self, group_id: str) -> int:
        """How long a heartbeat of this group goes unanswered (0: answer it now)."""
        for fault in self._active("no_heartbeats"):
            if fault.group in (None, group_id):
                fault.fired += 1
                return max(0, (fault.expires_ms or 0) - self.now_ms())
        return 0
