"""Measures brokers side by side and writes Markdown, JSON and a PNG chart.

    .venv/bin/python benchmarks/harness.py                       # kafkapy alone
    .venv/bin/python benchmarks/harness.py --broker kafkapy \\
        --broker 'tansu=/path/to/tansu broker --listener-url tcp://127.0.0.1:{port} \\
                  --advertised-listener-url tcp://127.0.0.1:{port} --storage-engine memory://tansu/'

Every measurement runs against every broker in turn, repeat after repeat (the order
alternates between repeats, so that neither broker always follows the other's disk
writeback), and each figure is reported as the median with its range, because the
machine is noisy. Each client workload is a confluent-kafka process of its own with a
deadline (workloads.py). See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import limits
import report
from brokers import BrokerError, BrokerSpec, RunningBroker, parse_broker
from report import CEILING
from workloads import MOCK

WORKLOADS_PY = str(Path(__file__).with_name("workloads.py"))
_GRACE_S = 30.0  # beyond a workload's own deadline, before the harness kills it


class WorkloadError(RuntimeError):
    pass


def _command(name: str, arguments: dict[str, Any]) -> list[str]:
    return [sys.executable, WORKLOADS_PY, name, json.dumps(arguments)]


def _result(name: str, returncode: int, stdout: str, stderr: str) -> dict[str, Any]:
    lines = stdout.strip().splitlines()
    if returncode != 0 or not lines:
        raise WorkloadError(f"{name} exited with {returncode}: {stderr.strip()[-600:]}")
    try:
        return json.loads(lines[-1])  # type: ignore[no-any-return]
    except ValueError:
        raise WorkloadError(f"{name} printed no result: {lines[-1][:200]!r}") from None


def run_workload(name: str, **arguments: Any) -> dict[str, Any]:
    try:
        done = subprocess.run(_command(name, arguments), check=False, capture_output=True, text=True,
                              timeout=arguments["deadline_s"] + _GRACE_S)
    except subprocess.TimeoutExpired:
        raise WorkloadError(f"{name} overran its deadline and was killed") from None
    return _result(name, done.returncode, done.stdout, done.stderr)


def _finish(name: str, process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    try:
        stdout, stderr = process.communicate(timeout=max(timeout, 0.1))
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise WorkloadError(f"{name} overran its deadline and was killed") from None
    return _result(name, process.returncode, stdout, stderr)


def _spawn(name: str, **arguments: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(_command(name, arguments), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_parallel_producers(clients: int, deadline_s: float, **produce: Any) -> dict[str, Any]:
    """`clients` producer processes, lined up to start together once all are connected;
    the rate is all their bytes over the time from the first start to the last finish."""
    start_at = time.monotonic() + 2.0 + 0.5 * clients
    processes = [_spawn("produce", deadline_s=deadline_s, start_at=start_at, **produce) for _ in range(clients)]
    ends = time.monotonic() + deadline_s + _GRACE_S
    results = [_finish("produce", p, ends - time.monotonic()) for p in processes]
    seconds = max(r["finished"] for r in results) - min(r["started"] for r in results)
    total = sum(r["bytes"] for r in results)
    return {"records": sum(r["records"] for r in results), "bytes": total, "seconds": seconds,
            "mb_s": total / seconds / 1e6, "clients": clients,
            "late_start_s": max(r["started"] for r in results) - start_at}


def run_end_to_end(bootstrap: str, topic: str, rate: int, seconds: float, size: int, deadline_s: float) -> dict[str, Any]:
    """The consumer first, and the producer once the consumer says it is fetching."""
    consumer = _spawn("e2e_consume", bootstrap=bootstrap, topic=topic, deadline_s=deadline_s)
    assert consumer.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(consumer.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout=60) and consumer.stdout.readline().strip() == "ready"
    if not ready:
        return _finish("e2e_consume", consumer, 0)  # raises, with the consumer's error
    producer = run_workload("e2e_produce", bootstrap=bootstrap, topic=topic, rate=rate, seconds=seconds,
                            warmup_seconds=1.0, size=size, deadline_s=deadline_s)
    return {**_finish("e2e_consume", consumer, 60), **producer}


@dataclass
class Contender:
    """A broker under test, or the client-ceiling column (no broker at all)."""
    name: str
    broker: RunningBroker | None

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap if self.broker else MOCK


class Harness:
    def __init__(self, args: argparse.Namespace, specs: list[BrokerSpec], root: Path) -> None:
        self.args = args
        self.specs = specs
        self.root = root
        self.run_id = uuid.uuid4().hex[:6]
        self.samples: list[dict[str, Any]] = []
        self.loads: list[dict[str, Any]] = []

    # -- recording ---------------------------------------------------------------

    def record(self, cell: str, section: str, contender: str, repeat: int | None, result: dict[str, Any] | None,
               error: str | None = None, cpu_s: float | None = None, **params: Any) -> None:
        self.samples.append({"cell": cell, "section": section, "broker": contender, "repeat": repeat,
                             "params": params, "result": result, "error": error, "broker_cpu_s": cpu_s})
        shown = error or report.headline(section, result or {})
        print(f"  {cell:<40} {contender:<16} {shown}", file=sys.stderr, flush=True)

    def note_load(self, when: str) -> None:
        self.loads.append({"when": when, "loadavg": list(os.getloadavg()), "uptime": _uptime()})
        print(f"[{when}] {self.loads[-1]['uptime']}", file=sys.stderr, flush=True)

    def measure(self, cell: str, section: str, contender: Contender, repeat: int, work: Callable[[], dict[str, Any]], **params: Any) -> None:
        """Runs `work()` against one contender and records its result, its error, and the
        broker's CPU time while it ran."""
        broker = contender.broker
        if broker is not None and not broker.alive():
            self.record(cell, section, contender.name, repeat, None, f"broker is not running:\n{broker.log_tail()}", **params)
            return
        cpu_before = broker.cpu_seconds() if broker else None
        try:
            result, error = work(), None
        except (WorkloadError, BrokerError) as e:
            result, error = None, str(e)
        cpu = broker.cpu_seconds() if broker else None
        cpu_s = cpu - cpu_before if cpu is not None and cpu_before is not None else None
        self.record(cell, section, contender.name, repeat, result, error, cpu_s, **params)

    # -- phases ------------------------------------------------------------------

    def starts(self) -> None:
        """Start-to-ready and idle RSS, from fresh processes on empty data directories."""
        spawned = [s for s in self.specs if s.spawned]
        for i in range(self.args.starts):
            for spec in _alternate(spawned, i):
                try:
                    self.start_sample(spec, f"start-{spec.name}-{i}").stop()
                except BrokerError:
                    continue  # recorded; the other starts may still succeed

    def start_sample(self, spec: BrokerSpec, directory: str) -> RunningBroker:
        broker = RunningBroker(spec, self.root / directory)
        try:
            broker.start()
        except BrokerError as e:
            self.record("start-to-ready", "start", spec.name, None, None, str(e))
            raise
        time.sleep(self.args.settle)
        self.record("start-to-ready", "start", spec.name, None,
                    {"start_to_ready_ms": broker.start_to_ready_ms, **(broker.memory() or {})})
        return broker

    def load(self) -> None:
        contenders = []
        try:
            for spec in self.specs:
                if spec.spawned:
                    broker = self.start_sample(spec, f"load-{spec.name}")
                else:
                    broker = RunningBroker(spec, self.root / spec.name).start()
                contenders.append(Contender(spec.name, broker))
            for c in contenders:
                self.warm_up(c)
            for repeat in range(1, self.args.repeats + 1):
                self.note_load(f"repeat {repeat}")
                self.repeat(repeat, contenders)
                for c in contenders:
                    if c.broker and (memory := c.broker.memory()):
                        self.record("RSS after load", "rss", c.name, repeat, memory)
        finally:
            for c in contenders:
                if c.broker:
                    c.broker.stop()

    def warm_up(self, contender: Contender) -> None:
        """A small produce and consume before the first round, so that one-time work (a
        broker creating its consumer offsets topic on a consumer's first FindCoordinator)
        falls outside round 1's figures."""
        topic = f"bench-{self.run_id}-warm-up"
        try:
            run_workload("produce", bootstrap=contender.bootstrap, topic=topic, count=1000, size=self.args.size,
                         acks="all", compression="none", partitions=1, deadline_s=60)
            run_workload("consume", bootstrap=contender.bootstrap, topic=topic, partitions=1, count=1000, deadline_s=60)
        except WorkloadError as e:
            print(f"  warm-up of {contender.name} failed: {e}", file=sys.stderr)
        self.delete([contender], [topic])

    def repeat(self, repeat: int, contenders: list[Contender]) -> None:
        args, order = self.args, _alternate(contenders, repeat - 1)
        ceiling_order = _alternate(contenders + ([Contender(CEILING, None)] if args.ceiling else []), repeat - 1)
        deadline_s = args.workload_timeout

        def topic(label: str) -> str:
            return f"bench-{self.run_id}-r{repeat}-{label}"

        for partitions in args.partitions:
            for codec in args.compression:
                consumed = topic(f"p{partitions}-{args.acks[0]}-{codec}")
                for acks in args.acks:
                    cell = f"produce p={partitions} acks={acks} {codec}"
                    for c in ceiling_order:
                        self.measure(cell, "produce", c, repeat, partial(
                            run_workload, "produce", bootstrap=c.bootstrap, topic=topic(f"p{partitions}-{acks}-{codec}"),
                            count=args.count, size=args.size, acks=acks, compression=codec, partitions=partitions,
                            deadline_s=deadline_s), partitions=partitions, acks=acks, compression=codec)
                cell = f"consume p={partitions} {codec}"
                for c in order:
                    self.measure(cell, "consume", c, repeat, partial(
                        run_workload, "consume", bootstrap=c.bootstrap, topic=consumed, partitions=partitions,
                        count=args.count, deadline_s=deadline_s), partitions=partitions, compression=codec)
                self.delete(order, [topic(f"p{partitions}-{acks}-{codec}") for acks in args.acks])
        widest = max(args.partitions)
        for clients in args.parallel:
            cell = f"produce p={widest} acks={args.acks[0]} {args.compression[0]} x{clients} clients"
            name = topic(f"x{clients}")
            for c in order:
                self.measure(cell, "parallel", c, repeat, partial(
                    run_parallel_producers, clients, deadline_s, bootstrap=c.bootstrap, topic=name, count=args.count // clients, size=args.size,
                    acks=args.acks[0], compression=args.compression[0], partitions=widest),
                    clients=clients, partitions=widest)
            self.delete(order, [name])
        if args.e2e_seconds > 0:
            for c in order:
                self.measure("end-to-end latency", "e2e", c, repeat, partial(
                    run_end_to_end, c.bootstrap, topic(f"e2e-{c.name}"), args.e2e_rate, args.e2e_seconds, args.size, deadline_s),
                    rate=args.e2e_rate, seconds=args.e2e_seconds)
            for c in order:
                self.delete([c], [topic(f"e2e-{c.name}")])
        for c in order if args.metadata_requests > 0 else ():
            self.measure("Metadata latency", "metadata", c, repeat, partial(
                run_workload, "metadata_latency", bootstrap=c.bootstrap, idle_connections=args.idle_connections,
                requests=args.metadata_requests, deadline_s=deadline_s), idle_connections=args.idle_connections)

    def delete(self, contenders: list[Contender], topics: list[str]) -> None:
        """Deletes the topics a cell is done with, so that memory-backed brokers and the
        disk do not fill up over a long run; a failure is noted and the run goes on."""
        for c in contenders:
            try:
                result = run_workload("delete_topics", bootstrap=c.bootstrap, topics=topics, deadline_s=60)
            except WorkloadError as e:
                result = {"errors": {"*": str(e)}}
            if result["errors"]:
                print(f"  deleting topics on {c.name} failed: {result['errors']}", file=sys.stderr)


def _alternate(items: list[Any], turn: int) -> list[Any]:
    return list(items) if turn % 2 == 0 else list(reversed(items))


def _uptime() -> str:
    return subprocess.run(["uptime"], check=False, capture_output=True, text=True).stdout.strip()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", action="append", default=[], metavar="SPEC",
                        help="kafkapy, NAME=HOST:PORT, or NAME='COMMAND with {port}' (also {controller_port}, "
                             "{data_dir}); repeatable; the first is the one the targets are about (default: kafkapy)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--count", type=int, default=200_000, help="records per throughput run")
    parser.add_argument("--size", type=int, default=1024, help="bytes per record value")
    parser.add_argument("--partitions", type=_ints, default=[1, 6], help="comma-separated")
    parser.add_argument("--acks", type=_words, default=["1", "all"], help="comma-separated; the first is consumed back")
    parser.add_argument("--compression", type=_words, default=["none", "zstd"], help="comma-separated")
    parser.add_argument("--parallel", type=_ints, default=[2, 4],
                        help="producer processes in parallel, to find a broker's own ceiling (empty: skip)")
    parser.add_argument("--no-ceiling", dest="ceiling", action="store_false",
                        help="skip the producer against librdkafka's mock cluster")
    parser.add_argument("--e2e-seconds", type=float, default=20.0, help="0 skips end-to-end latency")
    parser.add_argument("--e2e-rate", type=int, default=1000, help="records per second")
    parser.add_argument("--idle-connections", type=int, default=500)
    parser.add_argument("--metadata-requests", type=int, default=1000)
    parser.add_argument("--starts", type=int, default=5, help="extra cold starts per broker for start-to-ready")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds after ready before idle RSS is read")
    parser.add_argument("--workload-timeout", type=float, default=180.0, help="deadline of each client process, s")
    parser.add_argument("--limit-repeats", type=int, default=3, help="0 skips the loopback and disk measurements")
    parser.add_argument("--disk-mb", type=int, default=1024, help="MiB written per disk measurement")
    parser.add_argument("--data-root", type=Path, default=None, help="where brokers keep data (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results"))
    parser.add_argument("--name", default="results", help="file name stem of the reports")
    args = parser.parse_args(argv)
    args.broker = args.broker or ["kafkapy"]
    return args


def _ints(value: str) -> list[int]:
    return [int(v) for v in value.split(",") if v]


def _words(value: str) -> list[str]:
    return [v for v in value.split(",") if v]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        specs = [parse_broker(b) for b in args.broker]
    except ValueError as e:
        raise SystemExit(str(e)) from None
    if len({s.name for s in specs} | {CEILING}) != len(specs) + 1:
        raise SystemExit("broker names must be unique")
    root = Path(tempfile.mkdtemp(prefix="kafkapy-bench-", dir=args.data_root))
    harness = Harness(args, specs, root)
    env = report.environment()  # now: other people may change the working tree during a long run
    started = time.time()
    try:
        harness.note_load("start")
        machine = limits.measure(root, args.limit_repeats, args.disk_mb) if args.limit_repeats else None
        if machine:
            print(f"  loopback {machine['loopback_mb_s']:.0f} MB/s, disk {machine['disk_durable_mb_s']:.0f} MB/s "
                  f"durable, {machine['disk_buffered_mb_s']:.0f} MB/s buffered", file=sys.stderr)
        harness.starts()
        harness.load()
        harness.note_load("end")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    data = report.build(args, specs, harness.samples, harness.loads, machine, env, started, time.time(), argv or sys.argv[1:])
    paths = report.write(data, args.out, args.name)
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
