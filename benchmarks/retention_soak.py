"""Does size retention keep the disk bounded? Produces for a while into a topic with a
small retention.bytes and samples the partition directory's size as it goes.

    python benchmarks/retention_soak.py [--seconds 60] [--retention-bytes 8000000]

It starts its own kafkapy process on 127.0.0.1 (retention checked every second) and
prints the size over time against the limit. As in Kafka, retention deletes whole
segments at each check, so between checks a partition holds up to retention.bytes,
plus one segment, plus what was produced since the last check: the bound reported.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from kafkapy.testing.process import BrokerProcess


def directory_size(path: Path) -> int:
    total = 0
    for f in path.iterdir():
        if f.name.endswith((".log", ".index", ".timeindex")):
            try:
                total += f.stat().st_size
            except FileNotFoundError:  # deleted by retention while we looked
                pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--retention-bytes", type=int, default=8_000_000)
    parser.add_argument("--segment-bytes", type=int, default=1_000_000)
    parser.add_argument("--record-size", type=int, default=1024)
    args = parser.parse_args()
    overrides = {"log.retention.check.interval.ms": 1000, "log.segment.delete.delay.ms": 1000}
    with tempfile.TemporaryDirectory() as data, BrokerProcess(data, overrides) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        topic = "soak"
        config = {"retention.bytes": str(args.retention_bytes), "segment.bytes": str(args.segment_bytes), "file.delete.delay.ms": "1000"}
        admin.create_topics([NewTopic(topic, 1, config=config)])[topic].result(30)
        partition_dir = Path(data) / f"{topic}-0"
        stop = threading.Event()
        produced = [0]

        def produce() -> None:
            producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "acks": 1})
            payload = b"x" * args.record_size
            while not stop.is_set():
                try:
                    producer.produce(topic, payload)
                    produced[0] += 1
                except BufferError:
                    producer.poll(0.01)
                producer.poll(0)
            producer.flush(30)

        worker = threading.Thread(target=produce)
        worker.start()
        samples: list[tuple[float, int]] = []
        started = time.monotonic()
        while time.monotonic() - started < args.seconds:
            samples.append((time.monotonic() - started, directory_size(partition_dir)))
            time.sleep(0.5)
        stop.set()
        worker.join()
    limit = args.retention_bytes
    written = produced[0] * args.record_size
    check_interval_s = overrides["log.retention.check.interval.ms"] / 1000
    # The broker looks at its retention schedule on a half-second tick: a check can come that much late.
    bound = limit + 2 * args.segment_bytes + written / args.seconds * (check_interval_s + 0.5)
    steady = [size for at, size in samples if at > 5]
    print(f"produced {written / 1e6:.0f} MB in {args.seconds:.0f} s into retention.bytes={limit / 1e6:.1f} MB, segment.bytes={args.segment_bytes / 1e6:.1f} MB")
    print(f"partition directory after the first 5 s: max {max(steady) / 1e6:.2f} MB, "
          f"median {sorted(steady)[len(steady) // 2] / 1e6:.2f} MB, final {samples[-1][1] / 1e6:.2f} MB "
          f"(bound: retention.bytes + two segments + what is produced in one check interval and one tick = {bound / 1e6:.2f} MB)")
    halves = steady[: len(steady) // 2], steady[len(steady) // 2 :]
    print(f"max in the first half {max(halves[0]) / 1e6:.2f} MB, in the second half {max(halves[1]) / 1e6:.2f} MB")
    print("within the bound" if max(steady) <= bound else "OVER THE BOUND")
    for at, size in samples[:: max(1, len(samples) // 12)]:
        print(f"  t={at:5.1f}s  {size / 1e6:8.2f} MB  {'#' * min(60, int(40 * size / bound))}")


if __name__ == "__main__":
    main()
