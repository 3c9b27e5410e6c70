"""The matrix of outcomes as Markdown, as a self-contained HTML page, and as JSON."""

from __future__ import annotations

import html
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .outcome import Outcome, Status
from .registry import Scenario

LABELS = {Status.PASS: "pass", Status.FAIL: "FAIL", Status.UNSUPPORTED: "not supported by client", Status.SKIPPED: "skipped"}
MARKS = {Status.PASS: "✅", Status.FAIL: "❌", Status.UNSUPPORTED: "➖", Status.SKIPPED: "⏭️"}
# Emoji fonts are often missing where the HTML report is opened; these are in common fonts.
HTML_MARKS = {Status.PASS: "✓", Status.FAIL: "✗", Status.UNSUPPORTED: "–", Status.SKIPPED: "–"}
SHORT_REASON_CHARS = 160


@dataclass(frozen=True)
class Report:
    target: str
    clients: list[str]
    scenarios: list[Scenario]
    outcomes: list[Outcome]
    started: datetime
    seconds: float

    def outcome(self, scenario: str, client: str) -> Outcome:
        return self._by_cell[(scenario, client)]

    @cached_property
    def _by_cell(self) -> dict[tuple[str, str], Outcome]:
        return {(o.scenario, o.client): o for o in self.outcomes}

    @property
    def counts(self) -> Counter[Status]:
        return Counter(o.status for o in self.outcomes)

    @property
    def failed(self) -> bool:
        return self.counts[Status.FAIL] > 0

    @property
    def summary(self) -> str:
        counts = self.counts
        parts = ", ".join(f"{counts[s]} {LABELS[s]}" for s in Status if counts[s])
        return (f"{parts} — {len(self.scenarios)} scenarios × {len(self.clients)} clients against {self.target}, "
                f"{self.started:%Y-%m-%d %H:%M} UTC, {self.seconds:.0f}s, kafkapy {_kafkapy_version()}")


def _kafkapy_version() -> str:
    try:
        return version("kafkapy")
    except PackageNotFoundError:
        return "(not installed)"


def short_reason(outcome: Outcome) -> str:
    line = " ".join(outcome.reason.split())
    return line if len(line) <= SHORT_REASON_CHARS else line[: SHORT_REASON_CHARS - 1] + "…"


def to_markdown(report: Report) -> str:
    def cell(o: Outcome) -> str:
        text = f"{MARKS[o.status]} {LABELS[o.status]}"
        return text + (f": {short_reason(o)}" if o.status is Status.FAIL else "")

    def escape(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [report.summary, "", "| scenario | " + " | ".join(report.clients) + " |",
             "|---" * (len(report.clients) + 1) + "|"]
    for s in report.scenarios:
        lines.append(f"| `{s.name}` | " + " | ".join(escape(cell(report.outcome(s.name, c))) for c in report.clients) + " |")
    notes = [o for o in report.outcomes if o.status is not Status.PASS]
    if notes:
        lines += ["", "Why each cell that is not a pass:", ""]
        lines += [f"- `{o.scenario}` with {o.client}: {LABELS[o.status]}: {escape(' '.join(o.reason.split()))}" for o in notes]
    lines += ["", "Scenarios:", ""]
    lines += [f"- `{s.name}`{_needs(s)}: {escape(s.summary)}" for s in report.scenarios]
    return "\n".join(lines) + "\n"


def _needs(s: Scenario) -> str:
    if s.needs_broker_control:
        return " (acts on the broker)"
    if s.as_super_user:
        return " (as a super user of a broker with an authorizer: only on the suite's own)"
    return " (needs a broker with an authorizer)" if s.needs_authorizer else ""


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.4rem; }
p.summary { color: #555; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: .35rem .6rem; vertical-align: top; text-align: left; }
th.area { background: #eee; font-weight: 600; }
td.scenario code { font-weight: 600; }
td.scenario div { color: #666; font-size: .85rem; max-width: 36rem; }
td.pass { background: #e3f6e3; }
td.fail { background: #fbe0e0; }
td.unsupported, td.skipped { background: #f1f1f1; color: #666; }
td .reason { font-size: .85rem; max-width: 28rem; }
pre { white-space: pre-wrap; font-size: .75rem; max-width: 48rem; max-height: 24rem; overflow: auto; }
"""


def to_html(report: Report) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in report.clients)
    rows = []
    area = None
    for s in report.scenarios:
        if s.area != area:
            area = s.area
            rows.append(f'<tr><th class="area" colspan="{len(report.clients) + 1}">{e(area)}</th></tr>')
        cells = []
        for c in report.clients:
            o = report.outcome(s.name, c)
            body = f"{HTML_MARKS[o.status]} {LABELS[o.status]}"
            if o.reason:
                body += f'<div class="reason">{e(o.reason)}</div>'
            if o.detail:
                body += f"<details><summary>details</summary><pre>{e(o.detail)}</pre></details>"
            cells.append(f'<td class="{o.status.value}" data-scenario="{e(s.name)}" data-client="{e(c)}" '
                         f'data-status="{o.status.value}">{body}</td>')
        rows.append(f'<tr><td class="scenario"><code>{e(s.name)}</code><div>{e(s.summary)}</div></td>{"".join(cells)}</tr>')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>kafkapy compatibility matrix</title><style>{_CSS}</style></head><body>"
        f'<h1>Client compatibility: {e(report.target)}</h1><p class="summary">{e(report.summary)}</p>'
        f'<table id="matrix"><thead><tr><th>scenario</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
        "</body></html>\n"
    )


def to_json(report: Report) -> str:
    return json.dumps({
        "target": report.target,
        "kafkapy_version": _kafkapy_version(),
        "started": report.started.isoformat(),
        "seconds": report.seconds,
        "clients": report.clients,
        "scenarios": [{"name": s.name, "area": s.area, "summary": s.summary, "needs_broker_control": s.needs_broker_control}
                      for s in report.scenarios],
        "outcomes": [o.to_json() for o in report.outcomes],
        "counts": {s.value: report.counts[s] for s in Status},
    }, indent=2) + "\n"


def write(report: Report, directory: Path) -> list[Path]:
    """compat.md, compat.html and compat.json in directory; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, render in (("md", to_markdown), ("html", to_html), ("json", to_json)):
        path = directory / f"compat.{suffix}"
        path.write_text(render(report), encoding="utf-8")
        paths.append(path)
    return paths
