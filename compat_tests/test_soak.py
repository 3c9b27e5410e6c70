"""The short form of the soak (benchmarks/soak.py; its long form runs 30 minutes): about
20 s of mixed produce, consume, group churn, topic creation and deletion, transactions,
retention and compaction against one kafkapy process, with the flatness bounds loosened
for a run this short. Every kind of operation must have happened and none failed, and
what retention, the cleaner and the transactions left must agree with what was sent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafkapy_internals, pytest.mark.timeout(240)]

SOAK = Path(__file__).parents[1] / "benchmarks" / "soak.py"


def test_short_soak_stays_flat_and_every_operation_succeeds(tmp_path: Path) -> None:
    command = [sys.executable, str(SOAK), "--minutes", "0.35", "--out", str(tmp_path),
               "--max-rss-growth-mb", "60", "--max-open-files-growth", "100",
               "--max-latency-ratio", "20", "--latency-slack-ms", "500"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=220)
    print(finished.stdout, finished.stderr[-3000:])
    [summary_file] = tmp_path.glob("soak-*.json")
    summary = json.loads(summary_file.read_text())
    assert summary["failures"] == [], summary["failures"]
    assert finished.returncode == 0, finished.stdout
    assert all(n > 0 for n in summary["operations"].values()), summary["operations"]
    assert summary["operations"]["left"] >= 4 and summary["operations"]["topics_deleted"] >= 3, summary["operations"]
    checks = summary["checks"]
    assert max(checks["retained_log_start_offsets"].values()) > 0, checks
    assert checks["compacted_records_removed"] > 0 and checks["compacted_keys_wrong"] == [], checks
    assert checks["transactional_records_read"] == checks["transactional_records_expected"] > 0, checks
    assert checks["aborted_records_read"] == 0, checks
    assert summary["samples"] >= 20 and (tmp_path / summary_file.with_suffix(".csv").name).exists()
