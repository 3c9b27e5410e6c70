"""Start-up, cold and warm, and idle RSS, of one or more kafkapy checkouts.

    python benchmarks/startup.py [--runs 5] [--warm 10] [--partitions 1000] [--importtime 15]
        [--tree NAME=CHECKOUT ...]

Cold means a fresh process each time (its `.pyc` files compiled, nothing imported):
- process: exec of `python -m kafkapy` on an empty data directory to its first
  Metadata answered, and the process's RSS once it has been idle for --settle seconds;
- process, N partitions: the same on a data directory holding --partitions partitions
  (made once per checkout by a broker that created them, then stopped);
- first Broker(): in a fresh interpreter, from the first statement (imports included)
  to the first Metadata answered by an embedded `kafkapy.Broker()`.
Warm is a later `Broker()` in that same interpreter, started, asked for Metadata and
stopped --warm times.

With several --tree, the runs alternate between them (old, new, old, new...), so that
the machine's load falls on both alike. --importtime prints the modules that cost most
to import (`python -X importtime`) on the embedded broker's path, for each tree.
Every figure is the median of --runs (the warm ones of all runs' starts). Each tree's
`.pyc` files are compiled first, as an installed package's are: a tree run with
PYTHONDONTWRITEBYTECODE set compiles every module at each start, some 100 ms more.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kio.schema.metadata.v12.request import MetadataRequest

from kafkapy.wire.protocol import encode_request

HERE = Path(__file__).resolve().parent.parent
METADATA_FRAME = encode_request(
    MetadataRequest(topics=(), allow_auto_topic_creation=False, include_topic_authorized_operations=False), 1)
READY_DEADLINE_S = 30.0

# Run in a fresh interpreter: the first Broker() with its imports, then --warm more.
# The Metadata frame comes from the parent as hex, so that the child imports nothing
# before its clock starts.
EMBEDDED_CHILD = """
import time
started = time.perf_counter()
import json, socket, struct, sys
frame = bytes.fromhex(sys.argv[1])

def metadata_answered(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(frame)
        size = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))[0]
        sock.recv(size, socket.MSG_WAITALL)

from kafkapy import Broker
broker = Broker().start()
metadata_answered(broker.port)
first = time.perf_counter() - started
broker.stop()
warm = []
for _ in range(int(sys.argv[2])):
    began = time.perf_counter()
    broker = Broker().start()
    metadata_answered(broker.port)
    warm.append(time.perf_counter() - began)
    broker.stop()
print(json.dumps({"first": first * 1000, "warm": [w * 1000 for w in warm]}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def metadata_answered(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(METADATA_FRAME)
            header = sock.recv(4, socket.MSG_WAITALL)
            if len(header) < 4:
                return False
            size = struct.unpack(">i", header)[0]
            return len(sock.recv(size, socket.MSG_WAITALL)) == size
    except OSError:
        return False


def tree_env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree)}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


@contextmanager
def broker_process(tree: Path, data_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, float]]:
    """A `python -m kafkapy` of the checkout, and how long after exec it first answered Metadata."""
    port = free_port()
    command = [sys.executable, "-m", "kafkapy", "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
               "--override", f"log.dirs={data_dir}"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=tree, env=tree_env(tree), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = started + READY_DEADLINE_S
        while not metadata_answered(port):
            if process.poll() is not None or time.perf_counter() > deadline:
                raise SystemExit(f"{tree}: the broker did not answer: {process.stderr.read().decode() if process.stderr else ''}")
            time.sleep(0.002)
        yield process, port, (time.perf_counter() - started) * 1000
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(READY_DEADLINE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def process_start(tree: Path, settle_s: float) -> tuple[float, float]:
    """(exec to first Metadata answered in ms, idle RSS in MiB) on an empty data directory."""
    with tempfile.TemporaryDirectory(prefix="kafkapy-startup-") as tmp, broker_process(tree, Path(tmp)) as (process, _, ready):
        time.sleep(settle_s)  # idle on purpose: the RSS of a broker that has nothing to do
        return ready, rss_mib(process.pid)


def fill(tree: Path, data_dir: Path, partitions: int) -> None:
    """Leaves `partitions` partitions (10 topics) with one record each in data_dir."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    with broker_process(tree, data_dir) as (_, port, _):
        bootstrap = f"127.0.0.1:{port}"
        per_topic = max(1, partitions // 10)
        topics = [NewTopic(f"startup-{i}", per_topic) for i in range(partitions // per_topic)]
        admin = AdminClient({"bootstrap.servers": bootstrap})  # kept: its futures die with it
        for future in admin.create_topics(topics).values():
            future.result(60)
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        for topic in topics:
            for p in range(per_topic):
                producer.produce(topic.topic, b"x", partition=p)
        if producer.flush(60):
            raise SystemExit("records left undelivered while filling the data directory")


def process_restart(tree: Path, data_dir: Path) -> float:
    with broker_process(tree, data_dir) as (_, _, ready):
        return ready


def embedded_starts(tree: Path, warm: int) -> tuple[float, list[float]]:
    out = subprocess.run([sys.executable, "-c", EMBEDDED_CHILD, METADATA_FRAME.hex(), str(warm)], cwd=tree,
                         env=tree_env(tree), capture_output=True, check=True, timeout=120)
    result = json.loads(out.stdout.decode().strip().splitlines()[-1])
    return float(result["first"]), [float(w) for w in result["warm"]]


def import_offenders(tree: Path, top: int) -> None:
    """The embedded broker's imports that cost most, cumulative and own."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "from kafkapy import Broker; Broker"], cwd=tree,
                         env=tree_env(tree), capture_output=True, check=True, timeout=120)
    rows = []
    for line in out.stderr.decode().splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|")
        rows.append((int(own), int(cumulative), name.strip()))
    total = sum(own for own, _, _ in rows)
    print(f"\nimports of `from kafkapy import Broker` ({tree.name}): {len(rows)} modules, {total / 1000:.0f} ms")
    print("  most cumulative:", ", ".join(f"{n} {c / 1000:.0f}" for _, c, n in sorted(rows, key=lambda r: -r[1])[:top]))
    print("  most own:       ", ", ".join(f"{n} {o / 1000:.1f}" for o, _, n in sorted(rows, key=lambda r: -r[0])[:top]))


def describe(values: list[float], unit: str) -> str:
    return f"{statistics.median(values):7.1f} {unit} ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=CHECKOUT",
                        help="a checkout to measure (repeatable; default: this one)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warm", type=int, default=10, help="later Broker() starts per fresh interpreter")
    parser.add_argument("--settle", type=float, default=1.0, help="idle seconds before the RSS is read")
    parser.add_argument("--partitions", type=int, default=0, help="also start on a data directory with this many partitions")
    parser.add_argument("--importtime", type=int, default=10, metavar="TOP", help="import offenders to list (0: none)")
    args = parser.parse_args()
    trees = dict(t.split("=", 1) for t in args.tree) if args.tree else {"this": str(HERE)}
    paths = {name: Path(path).resolve() for name, path in trees.items()}
    results: dict[str, dict[str, list[float]]] = {name: {} for name in paths}
    for tree in paths.values():
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "kafkapy")], check=True, timeout=300)
    with tempfile.TemporaryDirectory(prefix="kafkapy-startup-full-") as tmp:
        full_dirs = {}
        if args.partitions:
            for name, tree in paths.items():
                full_dirs[name] = Path(tmp) / name
                fill(tree, full_dirs[name], args.partitions)
        for _ in range(args.runs):
            for name, tree in paths.items():
                figures = results[name]
                ready, rss = process_start(tree, args.settle)
                figures.setdefault("process", []).append(ready)
                figures.setdefault("rss", []).append(rss)
                if args.partitions:
                    figures.setdefault("process_full", []).append(process_restart(tree, full_dirs[name]))
                first, warm = embedded_starts(tree, args.warm)
                figures.setdefault("first", []).append(first)
                figures.setdefault("warm", []).extend(warm)
    rows = [("cold: exec to first Metadata, empty data dir", "process", "ms"),
            (f"cold: exec to first Metadata, {args.partitions} partitions", "process_full", "ms"),
            ("cold: first Broker() in a fresh interpreter", "first", "ms"),
            ("warm: a later Broker() in that interpreter", "warm", "ms"),
            ("idle RSS of the process", "rss", "MiB")]
    print(f"median (min-max) of {args.runs} runs; warm: of {args.runs} x {args.warm} starts")
    print(f"{'':48}" + "".join(f"{name:>26}" for name in paths))
    for label, key, unit in rows:
        if key in results[next(iter(paths))]:
            print(f"{label:48}" + "".join(f"{describe(results[name][key], unit):>26}" for name in paths))
    for tree in paths.values() if args.importtime else ():
        import_offenders(tree, args.importtime)


if __name__ == "__main__":
    main()
