"""The web console on a large partition: how long the messages page takes to answer for
the first page, a jump to an offset and a jump to a timestamp, and the console's memory
while a live tail runs.

    python benchmarks/console_browse.py                     # 1,000,000 records of 1 KiB, a 10-minute tail
    python benchmarks/console_browse.py --records 50000 --tail-seconds 20

It starts a kafkapy broker and `kafkapy console` as processes of their own on 127.0.0.1,
fills one partition with records whose timestamps are one millisecond apart (so that a
timestamp names one record), and times each page over HTTP, from the request to the last
byte of the HTML (the median of --repeats pages, each at another position; what a browser
adds to draw it is not counted). Each page is checked to start at the record asked for.
Then it opens the live tail (server-sent events), produces --tail-rate records a second
for --tail-seconds, and samples the console's resident memory (VmRSS) every second.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from kafkapy.client import Client
from kafkapy.testing.process import BrokerProcess, wait_until

TARGET_MS = 300
BASE_TIMESTAMP_MS = 1_700_000_000_000
_SERVING = re.compile(r"serving (http://127\.0\.0\.1:\d+)/")
_FIRST_OFFSET = re.compile(r'<tr data-offset="(\d+)"')


def fill(bootstrap: str, topic: str, records: int, size: int) -> float:
    """Records `size` bytes each into partition 0, the i-th stamped BASE + i ms; returns seconds."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1 << 20,
                         "queue.buffering.max.kbytes": 1 << 20, "compression.type": "none"})
    value = bytes(random.Random(7).getrandbits(8) for _ in range(size))
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    started = time.monotonic()
    for i in range(records):
        while True:
            try:
                producer.produce(topic, value=value, key=b"%d" % i, partition=0, timestamp=BASE_TIMESTAMP_MS + i,
                                 on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10_000 == 0:
            producer.poll(0)
    if producer.flush(300) != 0 or failures:
        raise RuntimeError(f"records were left unsent, or refused: {failures[:3]}")
    return time.monotonic() - started


class Console:
    """`kafkapy console` as a process of its own, stopped by its pid."""

    def __init__(self, bootstrap: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "kafkapy", "console", "--bootstrap", bootstrap, "--port", "0"],
                                        stderr=subprocess.PIPE, text=True)
        assert self.process.stderr is not None
        line = self.process.stderr.readline()
        match = _SERVING.search(line)
        if match is None:
            self.stop()
            raise RuntimeError(f"the console did not start: {line}")
        self.url = match.group(1)

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def timed_page(url: str, expected_first: int) -> float:
    """Milliseconds to the last byte of the page; the page must start at `expected_first`."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read().decode()
    elapsed = (time.perf_counter() - started) * 1000
    shown = _FIRST_OFFSET.search(body)
    if shown is None or int(shown.group(1)) != expected_first:
        raise AssertionError(f"{url} starts at {shown.group(1) if shown else 'no record'}, not {expected_first}")
    return elapsed


def browse_times(console: Console, topic: str, records: int, repeats: int) -> dict[str, list[float]]:
    base = f"{console.url}/topics/{topic}/messages?partition=0"
    pick = random.Random(11)
    times: dict[str, list[float]] = {"first page": [], "jump to an offset": [], "jump to a timestamp": [], "last page": []}
    timed_page(base, 0)  # the console's first connection to the cluster is not what is measured
    for _ in range(repeats):
        times["first page"].append(timed_page(f"{base}&seek=beginning", 0))
        offset = pick.randrange(records - 100)
        times["jump to an offset"].append(timed_page(f"{base}&seek=offset&offset={offset}", offset))
        offset = pick.randrange(records - 100)
        times["jump to a timestamp"].append(timed_page(f"{base}&seek=timestamp&timestamp={BASE_TIMESTAMP_MS + offset}", offset))
        times["last page"].append(timed_page(f"{base}&seek=end&limit=50", records - 50))
    return times


def tail_memory(console: Console, bootstrap: str, topic: str, seconds: float, rate: int, size: int) -> dict[str, Any]:
    """The console's RSS, sampled each second, while its live tail gets `rate` records a second."""
    received = 0
    stop = threading.Event()

    def read_tail() -> None:
        nonlocal received
        with urllib.request.urlopen(f"{console.url}/topics/{topic}/tail?partition=0", timeout=60) as stream:
            for line in stream:
                if line.startswith(b'data: {"'):  # not the ready event's empty object
                    received += 1
                if stop.is_set():
                    return

    reader = threading.Thread(target=read_tail, daemon=True)
    reader.start()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    value = b"t" * size
    samples = [console.rss_kib()]
    sent = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        second = time.monotonic()
        for _ in range(rate):
            producer.produce(topic, value=value, partition=0)
        sent += rate
        producer.poll(0)
        samples.append(console.rss_kib())
        time.sleep(max(0.0, 1 - (time.monotonic() - second)))  # paces the load; nothing waits on it
    producer.flush(30)
    wait_until(lambda: received >= sent, 30, message=f"the tail shows the {sent} records produced")
    stop.set()
    return {"seconds": seconds, "records": sent, "received": received, "rss_kib_start": samples[0],
            "rss_kib_max": max(samples), "rss_kib_end": samples[-1],
            "rss_kib_second_half_max": max(samples[len(samples) // 2:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=1024, help="bytes of each record's value")
    parser.add_argument("--repeats", type=int, default=7, help="pages timed of each kind, each at another position")
    parser.add_argument("--tail-seconds", type=float, default=600)
    parser.add_argument("--tail-rate", type=int, default=200, help="records a second produced while tailing")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    topic = f"browse-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="console-browse-") as data, BrokerProcess(data) as broker:
        with Client(broker.bootstrap) as client:
            client.create_topic(topic, 1, 1)
        fill_s = fill(broker.bootstrap, topic, args.records, args.size)
        print(f"filled {topic}-0 with {args.records:,} records of {args.size} B in {fill_s:.0f} s", flush=True)
        console = Console(broker.bootstrap)
        try:
            times = browse_times(console, topic, args.records, args.repeats)
            tail = tail_memory(console, broker.bootstrap, topic, args.tail_seconds, args.tail_rate, args.size)
        finally:
            console.stop()
    print(f"\n| page ({args.records:,} records of {args.size} B, {args.repeats} each) | median ms | max ms | target |")
    print("|---|---:|---:|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.0f} | {max(values):.0f} | < {TARGET_MS} ms |")
    print(f"\nlive tail, {tail['seconds']:.0f} s at {args.tail_rate} records/s ({tail['received']:,} shown): console RSS "
          f"{tail['rss_kib_start'] / 1024:.1f} MiB at the start, {tail['rss_kib_max'] / 1024:.1f} MiB at most, "
          f"{tail['rss_kib_end'] / 1024:.1f} MiB at the end (at most {tail['rss_kib_second_half_max'] / 1024:.1f} MiB "
          f"in the second half)")
    if args.out:
        args.out.write_text(json.dumps({"records": args.records, "size": args.size, "fill_seconds": fill_s,
                                        "pages_ms": times, "tail": tail}, indent=2) + "\n")


if __name__ == "__main__":
    main()
