"""The outcome of one scenario run with one client."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any


class Status(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    UNSUPPORTED = "unsupported"  # the client library lacks the feature
    SKIPPED = "skipped"  # not run: the client is not installed, or the broker is not the suite's own


@dataclass(frozen=True)
class Outcome:
    scenario: str
    client: str
    status: Status
    reason: str = ""  # why it failed, is unsupported or was skipped, in a line or two
    detail: str = ""  # traceback and the worker's output, for a failure
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status.value}
