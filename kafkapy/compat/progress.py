"""The live matrix on the terminal while the suite runs (one line per finished run when
the output is not a terminal, as in CI logs)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .outcome import Outcome, Status
from .reports import LABELS, short_reason

STYLES = {Status.PASS: "green", Status.FAIL: "bold red", Status.UNSUPPORTED: "dim", Status.SKIPPED: "dim"}


class Progress:
    def __init__(self, scenarios: Sequence[str], clients: Sequence[str], title: str, console: Console | None = None) -> None:
        self.scenarios, self.clients, self.title = scenarios, clients, title
        self.console = console or Console()
        self.cells: dict[tuple[str, str], Outcome | None] = {}
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._live = Live(console=self.console, refresh_per_second=4,
                          vertical_overflow="visible", get_renderable=self._render) if self.console.is_terminal else None

    def __enter__(self) -> Progress:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.stop()

    def update(self, scenario: str, client: str, outcome: Outcome | None) -> None:
        """Called from the runner's threads: None when a run starts, its outcome when it ends."""
        with self._lock:
            self.cells[(scenario, client)] = outcome
        if self._live is None and outcome is not None:
            reason = f": {short_reason(outcome)}" if outcome.status is not Status.PASS else ""
            self.console.print(f"{LABELS[outcome.status]:>4} {scenario} [{client}] {outcome.seconds:.1f}s{reason}",
                               markup=False, highlight=False, soft_wrap=True)

    def _cell(self, key: tuple[str, str]) -> Text:
        if key not in self.cells:
            return Text("·", style="dim")
        outcome = self.cells[key]
        if outcome is None:
            return Text("running", style="yellow")
        label = LABELS[outcome.status] if outcome.status is not Status.UNSUPPORTED else "n/a"
        return Text(f"{label} {outcome.seconds:.0f}s" if outcome.status is Status.PASS else label, style=STYLES[outcome.status])

    def _render(self) -> Group:
        table = Table(title=self.title, title_justify="left")
        table.add_column("scenario")
        for client in self.clients:
            table.add_column(client)
        with self._lock:
            for scenario in self.scenarios:
                table.add_row(scenario, *(self._cell((scenario, c)) for c in self.clients))
            done = sum(o is not None for o in self.cells.values())
        total = len(self.scenarios) * len(self.clients)
        return Group(table, Text(f"{done}/{total} done, {time.monotonic() - self.started:.0f}s"))
