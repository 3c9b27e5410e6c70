"""The short form of benchmarks/console_browse.py: a few thousand records instead of a
million, one page of each kind, a one-second tail. The script checks that each page starts
at the record asked for and that the tail shows every record produced; its times are not
asserted (the benchmark reports them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafkapy_internals, pytest.mark.timeout(120)]

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "console_browse.py"


def test_console_browse_benchmark_short_form() -> None:
    run = subprocess.run([sys.executable, str(SCRIPT), "--records", "3000", "--repeats", "1", "--tail-seconds", "1",
                          "--tail-rate", "20"], capture_output=True, text=True, timeout=100)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("filled browse-") and "with 3,000 records of 1024 B" in lines[0]
    pages = [line.split("|")[1].strip() for line in lines if line.startswith("| ") and "ms" in line and "page (" not in line]
    assert pages == ["first page", "jump to an offset", "jump to a timestamp", "last page"]
    assert "live tail, 1 s at 20 records/s (20 shown)" in run.stdout
