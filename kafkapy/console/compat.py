"""The compatibility report of `kafkapy compat` (its compat.json) as the console shows it:
the matrix of scenarios by client, grouped by area, each failing cell with its cause."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..compat.outcome import Status
from ..compat.reports import HTML_MARKS, LABELS


class CompatReportError(ValueError):
    """A file that is not a report `kafkapy compat` wrote; the message says what is wrong."""


@dataclass(frozen=True)
class CompatCell:
    client: str
    status: Status | None
    """None: the report has no outcome of this scenario with this client."""
    reason: str
    detail: str

    @property
    def label(self) -> str:
        return "not run" if self.status is None else f"{HTML_MARKS[self.status]} {LABELS[self.status]}"


@dataclass(frozen=True)
class CompatRow:
    scenario: str
    area: str
    summary: str
    cells: list[CompatCell]


@dataclass(frozen=True)
class CompatMatrix:
    target: str
    started: str
    seconds: float
    kafkapy_version: str
    clients: list[str]
    rows: list[CompatRow]

    @property
    def counts(self) -> dict[str, int]:
        statuses = [cell.status for row in self.rows for cell in row.cells]
        return {LABELS[s]: statuses.count(s) for s in Status if s in statuses}

    @property
    def failures(self) -> list[tuple[CompatRow, CompatCell]]:
        return [(row, cell) for row in self.rows for cell in row.cells if cell.status is Status.FAIL]


def read_matrix(text: str) -> CompatMatrix:
    try:
        report = json.loads(text)
        outcomes = {(o["scenario"], o["client"]): o for o in report["outcomes"]}
        clients = [str(c) for c in report["clients"]]
        rows = [CompatRow(s["name"], s["area"], s.get("summary", ""),
                          [_cell(client, outcomes.get((s["name"], client))) for client in clients])
                for s in report["scenarios"]]
        return CompatMatrix(str(report["target"]), str(report.get("started", "")), float(report.get("seconds", 0)),
                            str(report.get("kafkapy_version", "")), clients, rows)
    except json.JSONDecodeError as e:
        raise CompatReportError(f"not JSON: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise CompatReportError(f"not a report of `kafkapy compat` (compat.json): {type(e).__name__} {e}") from None


def _cell(client: str, outcome: dict[str, Any] | None) -> CompatCell:
    if outcome is None:
        return CompatCell(client, None, "", "")
    return CompatCell(client, Status(outcome["status"]), str(outcome.get("reason", "")), str(outcome.get("detail", "")))
