"""Turns the harness's samples into figures (median and range per broker), checks the
issue's targets, and writes them as JSON, Markdown and a PNG chart."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import confluent_kafka

from brokers import BrokerSpec

CEILING = "client ceiling"
THROUGHPUT_SECTIONS = ("produce", "consume", "parallel")
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Row:
    label: str
    unit: str
    section: str
    cell: str
    value: Callable[[dict[str, Any]], float | None]
    higher_is_better: bool


def headline(section: str, result: dict[str, Any]) -> str:
    """One sample in a few words, for the progress lines."""
    if section in THROUGHPUT_SECTIONS:
        return f"{result['mb_s']:8.1f} MB/s  {result['seconds']:6.2f} s"
    if section == "e2e":
        return f"p50 {result['p50_ms']:.2f} p99 {result['p99_ms']:.2f} p999 {result['p999_ms']:.2f} ms ({result['samples']} records)"
    if section == "metadata":
        return f"p99 {result['alone']['p99_ms']:.2f} ms alone, {result['crowded']['p99_ms']:.2f} ms with {result['idle_connections']} idle"
    if section == "start":
        return f"ready in {result['start_to_ready_ms']:.0f} ms, idle RSS {result.get('rss_mb', 0):.1f} MB"
    if section == "rss":
        return f"RSS {result['rss_mb']:.1f} MB, peak {result['peak_rss_mb']:.1f} MB"
    return json.dumps(result)


def _rows(samples: list[dict[str, Any]]) -> list[Row]:
    cells: dict[str, str] = {}
    for s in samples:
        cells.setdefault(s["cell"], s["section"])
    rows = [Row(f"{cell} (MB/s)", "MB/s", section, cell, lambda r: r["mb_s"], True)
            for cell, section in cells.items() if section in THROUGHPUT_SECTIONS]
    if "end-to-end latency" in cells:
        rows += [Row(f"end-to-end {q} (ms)", "ms", "e2e", "end-to-end latency", lambda r, q=q: r[f"{q}_ms"], False)
                 for q in ("p50", "p99", "p999")]
    if "Metadata latency" in cells:
        idle = next(s["params"]["idle_connections"] for s in samples if s["cell"] == "Metadata latency")
        rows += [
            Row("Metadata p99, no other connection (ms)", "ms", "metadata", "Metadata latency", lambda r: r["alone"]["p99_ms"], False),
            Row(f"Metadata p50, {idle} idle connections (ms)", "ms", "metadata", "Metadata latency", lambda r: r["crowded"]["p50_ms"], False),
            Row(f"Metadata p99, {idle} idle connections (ms)", "ms", "metadata", "Metadata latency", lambda r: r["crowded"]["p99_ms"], False),
        ]
    if "start-to-ready" in cells:
        rows += [Row("start-to-ready (ms)", "ms", "start", "start-to-ready", lambda r: r["start_to_ready_ms"], False),
                 Row("idle RSS (MB)", "MB", "start", "start-to-ready", lambda r: r.get("rss_mb"), False)]
    if "RSS after load" in cells:
        rows += [Row("RSS after each repeat's load (MB)", "MB", "rss", "RSS after load", lambda r: r["rss_mb"], False)]
    return rows


def _stats(values: list[float], failures: int) -> dict[str, Any]:
    if not values:
        return {"n": 0, "failures": failures}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "failures": failures, "values": values}


def summarise(samples: list[dict[str, Any]], brokers: list[str]) -> list[dict[str, Any]]:
    summary = []
    for row in _rows(samples):
        per_broker = {}
        for broker in brokers:
            mine = [s for s in samples if s["cell"] == row.cell and s["broker"] == broker]
            values = [v for s in mine if s["result"] is not None and (v := row.value(s["result"])) is not None]
            if mine:
                per_broker[broker] = _stats(values, sum(1 for s in mine if s["error"]))
        summary.append({"label": row.label, "unit": row.unit, "section": row.section, "cell": row.cell,
                        "higher_is_better": row.higher_is_better, "brokers": per_broker})
    return summary


def _median(summary: list[dict[str, Any]], label: str, broker: str) -> float | None:
    for row in summary:
        if row["label"] == label:
            return row["brokers"].get(broker, {}).get("median")  # type: ignore[no-any-return]
    return None


def _ratios(summary: list[dict[str, Any]], section: str, subject: str, other: str) -> list[tuple[str, float]]:
    ratios = []
    for row in summary:
        if row["section"] == section:
            mine, theirs = row["brokers"].get(subject, {}).get("median"), row["brokers"].get(other, {}).get("median")
            if mine and theirs:
                ratios.append((row["cell"], mine / theirs))
    return ratios


def _ratio_target(name: str, ratios: list[tuple[str, float]], at_least: float) -> dict[str, Any]:
    if not ratios:
        return {"target": name, "measured": "not measured", "met": None, "distance": ""}
    worst_cell, worst = min(ratios, key=lambda r: r[1])
    best_cell, best = max(ratios, key=lambda r: r[1])
    return {"target": name, "measured": f"{worst:.2f}x ({worst_cell}) to {best:.2f}x ({best_cell})",
            "met": worst >= at_least,
            "distance": "" if worst >= at_least else f"worst cell needs {at_least / worst:.2f}x its throughput"}


def _upper_target(name: str, value: float | None, limit: float, unit: str) -> dict[str, Any]:
    if value is None:
        return {"target": name, "measured": "not measured", "met": None, "distance": ""}
    return {"target": name, "measured": f"{_fmt(value)} {unit}", "met": value < limit,
            "distance": "" if value < limit else f"{_fmt(value - limit)} {unit} over ({value / limit:.1f}x the limit)"}


def targets(summary: list[dict[str, Any]], subject: str, others: list[str], idle: int) -> list[dict[str, Any]]:
    """The issue's targets for `subject` (kafkapy), reported and never asserted."""
    result = []
    for other in others:
        result.append(_ratio_target(f"produce MB/s >= 1.0x {other}", _ratios(summary, "produce", subject, other), 1.0))
        result.append(_ratio_target(f"consume MB/s >= 1.0x {other}", _ratios(summary, "consume", subject, other), 1.0))
    result.append(_ratio_target("produce MB/s >= 0.9x the client's own ceiling (one producer, mock cluster)",
                                _ratios(summary, "produce", subject, CEILING), 0.9))
    result.append(_upper_target("end-to-end p99 < 10 ms at 1,000 msg/s", _median(summary, "end-to-end p99 (ms)", subject), 10, "ms"))
    result.append(_upper_target("start-to-ready < 300 ms", _median(summary, "start-to-ready (ms)", subject), 300, "ms"))
    result.append(_upper_target("idle RSS < 40 MB", _median(summary, "idle RSS (MB)", subject), 40, "MB"))
    result.append(_rss_bounded(summary, subject))
    result.append(_upper_target(f"Metadata p99 < 100 ms with {idle} idle connections",
                                _median(summary, f"Metadata p99, {idle} idle connections (ms)", subject), 100, "ms"))
    return result


def _rss_bounded(summary: list[dict[str, Any]], subject: str) -> dict[str, Any]:
    """Bounded: each repeat runs the same load, so RSS after the last repeat should be
    about where it was after the first; steady growth would be a leak."""
    name = "RSS after load bounded (after the last repeat <= 1.25x after the first)"
    row = next((r for r in summary if r["label"].startswith("RSS after each repeat")), None)
    values = row["brokers"].get(subject, {}).get("values", []) if row else []
    if len(values) < 2:
        return {"target": name, "measured": "needs two repeats" if values else "not measured", "met": None, "distance": ""}
    growth = values[-1] / values[0]
    return {"target": name, "measured": " -> ".join(f"{v:.0f}" for v in values) + f" MB ({growth:.2f}x)",
            "met": growth <= 1.25, "distance": "" if growth <= 1.25 else f"grew {growth:.2f}x"}


def environment() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")))

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], check=False, capture_output=True, text=True).stdout.strip()

    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory_kb * 1024 / 1e9, "kernel": platform.release(),
        "python": sys.version.split()[0], "confluent_kafka": confluent_kafka.__version__,
        "librdkafka": confluent_kafka.libversion()[0], "kafkapy_commit": git("rev-parse", "--short", "HEAD"),
        "kafkapy_uncommitted_files": len(git("status", "--porcelain").splitlines()),
    }


def portable(text: str) -> str:
    """A command as anyone could run it: no path of this machine's in it."""
    return text.replace(sys.executable, "python").replace(str(REPO), ".")


def build(args: argparse.Namespace, specs: list[BrokerSpec], samples: list[dict[str, Any]], loads: list[dict[str, Any]],
          machine: dict[str, Any] | None, env: dict[str, Any], started: float, ended: float, argv: list[str]) -> dict[str, Any]:
    brokers = [s.name for s in specs] + ([CEILING] if args.ceiling else [])
    summary = summarise(samples, brokers)
    return {
        "command": portable("benchmarks/harness.py " + " ".join(argv)),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)), "minutes": (ended - started) / 60,
        "environment": env, "load": loads, "limits": machine,
        "brokers": [{"name": s.name, "command": s.template and portable(s.template), "address": s.address} for s in specs],
        "settings": {k: (portable(str(v)) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "summary": summary, "targets": targets(summary, specs[0].name, [s.name for s in specs[1:]], args.idle_connections),
        "samples": samples,
    }


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def _cell(stats: dict[str, Any]) -> str:
    if not stats:
        return ""
    if not stats["n"]:
        return f"failed ({stats['failures']})"
    text = f"{_fmt(stats['median'])} ({_fmt(stats['min'])}–{_fmt(stats['max'])})" if stats["n"] > 1 else _fmt(stats["median"])
    return text + (f", {stats['failures']} failed" if stats["failures"] else "")


def _cpu_section(samples: list[dict[str, Any]], brokers: list[str]) -> list[str]:
    cells = dict.fromkeys(s["cell"] for s in samples if s["section"] in THROUGHPUT_SECTIONS)
    if not cells:
        return []
    out = ["", "## Broker CPU", "",
           "CPU seconds (user + system, whole process tree) the broker spent per GB of record values, median over "
           "the repeats; on 2 cores the clients compete for the same CPUs.", "",
           "| workload | " + " | ".join(brokers) + " |", "|---" * (1 + len(brokers)) + "|"]
    for cell in cells:
        per = []
        for broker in brokers:
            costs = [s["broker_cpu_s"] / (s["result"]["bytes"] / 1e9) for s in samples
                     if s["cell"] == cell and s["broker"] == broker and s["result"] and s["broker_cpu_s"] is not None]
            per.append(f"{statistics.median(costs):.2f}" if costs else "")
        out.append(f"| {cell} | " + " | ".join(per) + " |")
    return out


def markdown(data: dict[str, Any], chart: str) -> str:
    env, summary = data["environment"], data["summary"]
    names = [b["name"] for b in data["brokers"]] + ([CEILING] if data["settings"]["ceiling"] else [])
    subject, others = names[0], names[1:]
    out = [f"# Broker benchmark: {' vs '.join(names)}", "",
           f"`{data['command']}`, started {data['started']}, took {data['minutes']:.0f} minutes.", "",
           ("Each figure is the median over the repeats, with the lowest and highest in brackets. "
            "MB is 10^6 bytes of record values. See `benchmarks/README.md` for how each is measured."), ""]
    out += ["## Results", "", "| measurement | " + " | ".join(names) + " | " + " | ".join(f"{subject} ÷ {o}" for o in others) + " |",
            "|---" * (1 + 2 * len(names) - 1) + "|"]
    for row in summary:
        ratios = []
        for other in others:
            mine, theirs = row["brokers"].get(subject, {}).get("median"), row["brokers"].get(other, {}).get("median")
            ratios.append(f"{mine / theirs:.2f}x" if mine and theirs else "")
        out.append(f"| {row['label']} | " + " | ".join(_cell(row["brokers"].get(n, {})) for n in names) + " | " + " | ".join(ratios) + " |")
    out += ["", f"![throughput and latency]({chart})", "", "## Targets", "",
            f"For {subject}; reported, never asserted in tests.", "", "| target | measured | met | distance |", "|---|---|---|---|"]
    for t in data["targets"]:
        if t["measured"] == "not measured":
            continue
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        out.append(f"| {t['target']} | {t['measured']} | {met} | {t['distance']} |")
    limits = data["limits"]
    if limits:
        out += ["", "## Against this machine's limits", "",
                f"One TCP stream over loopback: **{limits['loopback_mb_s']:.0f} MB/s**; sequential writes to the brokers' "
                f"filesystem: **{limits['disk_durable_mb_s']:.0f} MB/s** including fsync "
                f"({limits['disk_buffered_mb_s']:.0f} MB/s into the page cache), medians of "
                f"{len(limits['loopback_samples'])} runs (loopback "
                + ", ".join(f"{v:.0f}" for v in limits["loopback_samples"]) + "; disk with fsync "
                + ", ".join(f"{d['durable_mb_s']:.0f}" for d in limits["disk_samples"]) + " MB/s).", "",
                "| throughput (median) | " + " | ".join(f"{n}: % loopback / % disk" for n in names) + " |",
                "|---" * (1 + len(names)) + "|"]
        for row in summary:
            if row["section"] in THROUGHPUT_SECTIONS:
                shares = []
                for n in names:
                    median = row["brokers"].get(n, {}).get("median")
                    shares.append(f"{100 * median / limits['loopback_mb_s']:.1f}% / {100 * median / limits['disk_durable_mb_s']:.1f}%"
                                  if median else "")
                out.append(f"| {row['cell']} | " + " | ".join(shares) + " |")
    out += _cpu_section(data["samples"], [n for n in names if n != CEILING])
    out += ["", "## Machine and load", "",
            f"{env['cpu']}, {env['cores']} cores, {env['memory_gb']:.0f} GB, Linux {env['kernel']}, Python {env['python']}, "
            f"confluent-kafka {env['confluent_kafka']} (librdkafka {env['librdkafka']}), kafkapy at {env['kafkapy_commit']}"
            + (f" with {env['kafkapy_uncommitted_files']} uncommitted files" if env["kafkapy_uncommitted_files"] else "") + ".",
            "", "Other work ran on the machine at the same time; `uptime` during the run:", ""]
    out += [f"- {load['when']}: `{load['uptime']}`" for load in data["load"]]
    out += ["", "Brokers:", ""]
    for b in data["brokers"]:
        out.append(f"- **{b['name']}**: " + (f"`{b['command']}`" if b["command"] else f"external, at {b['address']}"))
    if data["settings"]["ceiling"]:
        out.append(f"- **{CEILING}**: one confluent-kafka producer against librdkafka's in-process mock cluster "
                   "(`test.mock.num.brokers=1`; the mock gives every topic 4 partitions, so its p=6 rows use 4)")
    return "\n".join(out) + "\n"


def chart(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [b["name"] for b in data["brokers"]] + ([CEILING] if data["settings"]["ceiling"] else [])
    panels = [("throughput (MB/s, median, bars span min to max)", [r for r in data["summary"] if r["unit"] == "MB/s"], False),
              ("latency (ms, log scale)", [r for r in data["summary"] if r["unit"] == "ms"], True)]
    panels = [p for p in panels if p[1]]
    colours = {name: f"C{i}" for i, name in enumerate(names)}
    figure, axes = plt.subplots(len(panels), 1, figsize=(14, 5 * len(panels)), squeeze=False)
    for ax, (title, rows, log) in zip(axes[:, 0], panels, strict=True):
        shown = [n for n in names if any(r["brokers"].get(n, {}).get("n") for r in rows)]
        width = 0.8 / max(len(shown), 1)
        for i, name in enumerate(shown):
            xs, medians, low, high = [], [], [], []
            for x, row in enumerate(rows):
                stats = row["brokers"].get(name, {})
                if stats.get("n"):
                    xs.append(x + (i - (len(shown) - 1) / 2) * width)
                    medians.append(stats["median"])
                    low.append(stats["median"] - stats["min"])
                    high.append(stats["max"] - stats["median"])
            ax.bar(xs, medians, width, yerr=[low, high], capsize=2, label=name, color=colours[name])
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([r["label"].rsplit(" (", 1)[0] for r in rows], rotation=30, ha="right", fontsize=8)
        ax.set_title(title)
        if log:
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(data: dict[str, Any], out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.json", out / f"{name}.md", out / f"{name}.png"]
    paths[0].write_text(json.dumps(data, indent=1) + "\n")
    paths[1].write_text(markdown(data, paths[2].name))
    chart(data, paths[2])
    return paths


def main() -> None:
    """Renders the Markdown and the PNG again from a JSON report: report.py results/results.json"""
    source = Path(sys.argv[1])
    data = json.loads(source.read_text())
    data["targets"] = targets(data["summary"], data["brokers"][0]["name"], [b["name"] for b in data["brokers"][1:]],
                              data["settings"]["idle_connections"])
    write(data, source.parent, source.stem)


if __name__ == "__main__":
    main()
