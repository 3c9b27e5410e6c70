"""`kafkapy compat` end to end on a few scenarios: the exit status, and the three reports,
the HTML one checked with a strict parser and, where Debian's chromium is installed,
rendered by it (through Playwright, with every network request refused)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kafkapy.cli import main
from kafkapy.compat.adapters import ADAPTERS
from kafkapy.compat.outcome import Status
from kafkapy.compat.reports import HTML_MARKS, LABELS
from kafkapy.compat.scenarios import load

pytestmark = pytest.mark.kafkapy_internals

CHROMIUM = Path("/usr/bin/chromium")
SCENARIO_PATTERN = "metadata.*"
# HTML elements that have no end tag.
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class MatrixPage(HTMLParser):
    """A strict reading of the report: every element closed in order, nothing loaded from
    elsewhere, and the status of each matrix cell."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.open: list[str] = []
        self.cells: dict[tuple[str, str], str] = {}
        self.external: list[str] = []
        self.tables = 0
        self.feed(text)
        self.close()
        assert not self.open, f"elements never closed: {self.open}"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.external += [v for k, v in attrs if k in ("src", "href") and v]
        self.tables += tag == "table" and found.get("id") == "matrix"
        if "data-status" in found:
            self.cells[(found["data-scenario"], found["data-client"])] = found["data-status"]  # type: ignore[index]
        if tag in ("script", "link", "iframe"):
            self.external.append(tag)
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("reports")
    return main(["compat", "--scenario", SCENARIO_PATTERN, "--out", str(out)]), out


def expected_cells() -> set[tuple[str, str]]:
    return {(s, c) for s in load() if s.startswith(SCENARIO_PATTERN[:-1]) for c in ADAPTERS}


def test_writes_the_three_reports_of_a_passing_run(reports):
    status, out = reports

    assert status == 0
    report = json.loads((out / "compat.json").read_text())
    assert {(o["scenario"], o["client"]) for o in report["outcomes"]} == expected_cells()
    # A client this machine cannot run is skipped with the reason; none fails.
    for o in report["outcomes"]:
        assert o["status"] in ("pass", "unsupported") or (
            o["status"] == "skipped" and ADAPTERS[o["client"]].unavailable() == o["reason"]), o
    assert report["target"] == "embedded kafkapy"
    markdown = (out / "compat.md").read_text()
    assert markdown.count("\n| `metadata.") == len(expected_cells()) // len(ADAPTERS)
    assert "| scenario | " + " | ".join(ADAPTERS) + " |" in markdown


def test_html_report_is_well_formed_self_contained_and_shows_the_matrix(reports):
    _, out = reports
    report = json.loads((out / "compat.json").read_text())

    page = MatrixPage((out / "compat.html").read_text())

    assert page.tables == 1
    assert page.external == [], "the report must open without a network"
    assert page.cells == {(o["scenario"], o["client"]): o["status"] for o in report["outcomes"]}


def test_html_report_renders_in_chromium(reports, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"no browser: {CHROMIUM} (Debian's chromium) is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    _, out = reports
    report = json.loads((out / "compat.json").read_text())
    refused: list[str] = []

    def only_local_files(route) -> None:  # type: ignore[no-untyped-def]
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], timeout=60_000)
        try:
            page = browser.new_page()
            page.route("**/*", only_local_files)
            page.goto((out / "compat.html").as_uri(), timeout=60_000)
            cells = page.locator("#matrix td[data-status]")
            shown = {(cells.nth(i).get_attribute("data-scenario"), cells.nth(i).get_attribute("data-client")):
                     cells.nth(i).inner_text() for i in range(cells.count())}
            assert page.locator("#matrix").is_visible()
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()

    assert refused == []
    assert {cell: text.splitlines()[0] for cell, text in shown.items()} == {
        (o["scenario"], o["client"]): f"{HTML_MARKS[Status(o['status'])]} {LABELS[Status(o['status'])]}" for o in report["outcomes"]
    }


def test_exits_nonzero_and_reports_the_reason_when_a_scenario_fails(tmp_path):
    status = main(["compat", "--override", "message.max.bytes=300", "--scenario", "produce.codec_none",
                   "--client", "confluent-kafka", "--out", str(tmp_path)])

    assert status == 1
    [outcome] = json.loads((tmp_path / "compat.json").read_text())["outcomes"]
    assert (outcome["status"], outcome["reason"].split(":")[0]) == ("fail", "MESSAGE_TOO_LARGE")
    assert "| `produce.codec_none` | ❌ FAIL: MESSAGE_TOO_LARGE" in (tmp_path / "compat.md").read_text()
