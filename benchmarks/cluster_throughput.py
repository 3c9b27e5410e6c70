"""acks=all on a replicated cluster next to the single node: produce throughput and
end-to-end latency, on three kafkapy processes (Kafka's default timeouts) with a topic
of replication factor 3 and min.insync.replicas=2, and on one process with
replication factor 1, in interleaved rounds.

    python benchmarks/cluster_throughput.py                     # 3 rounds, 100,000 x 1 KiB
    python benchmarks/cluster_throughput.py --rounds 1 --count 20000 --e2e-seconds 5

The workloads are the harness's (benchmarks/workloads.py, each in a process of its own):
`produce` (acks=all, as fast as the client can, 6 partitions) and the end-to-end pair
(1,000 records/s on one partition, acks=all, linger.ms=0; latency from the producer's
send to the consumer's receipt). The time from kill -9 of a partition leader to the next
acknowledged acks=all record is measured by benchmarks/jepsen.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic

from kafkapy.testing.process import BrokerProcess, cluster_processes, start_all, wait_until

WORKLOADS = Path(__file__).with_name("workloads.py")


def workload(name: str, deadline_s: float, **arguments: Any) -> dict[str, Any]:
    result = subprocess.run([sys.executable, str(WORKLOADS), name, json.dumps({**arguments, "deadline_s": deadline_s})],
                            capture_output=True, text=True, timeout=deadline_s + 30)
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{result.stderr[-2000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def end_to_end(bootstrap: str, topic: str, rate: int, seconds: float, size: int) -> dict[str, Any]:
    consumer = subprocess.Popen([sys.executable, str(WORKLOADS), "e2e_consume",
                                 json.dumps({"bootstrap": bootstrap, "topic": topic, "deadline_s": seconds + 90})],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert consumer.stdout is not None
    try:
        if consumer.stdout.readline().strip() != "ready":
            raise RuntimeError("the end-to-end consumer did not start")
        workload("e2e_produce", seconds + 60, bootstrap=bootstrap, topic=topic, rate=rate, seconds=seconds,
                 warmup_seconds=2.0, size=size)
        out, _ = consumer.communicate(timeout=120)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()
    return dict(json.loads(out.strip().splitlines()[-1]))


def create(bootstrap: str, topic: str, partitions: int, replication: int) -> None:
    config = {"min.insync.replicas": "2"} if replication >= 3 else {}
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept: the futures die with their client
    admin.create_topics([NewTopic(topic, partitions, replication, config=config)])[topic].result(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--e2e-rate", type=int, default=1000)
    parser.add_argument("--e2e-seconds", type=float, default=10.0)
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {"one node, replication 1": {}, "three nodes, replication 3": {}}
    with tempfile.TemporaryDirectory(prefix="kafkapy-cluster-tput-") as root:
        single = BrokerProcess(Path(root) / "single")
        processes = cluster_processes(Path(root) / "cluster", 3)
        try:
            single.start()
            start_all(processes)
            cluster_bootstrap = ",".join(p.bootstrap for p in processes)
            admin = AdminClient({"bootstrap.servers": cluster_bootstrap})
            wait_until(lambda: len(admin.list_topics(timeout=5).brokers) == 3, 60, message="three brokers registered")
            targets = {"one node, replication 1": (single.bootstrap, 1), "three nodes, replication 3": (cluster_bootstrap, 3)}
            for round_ in range(args.rounds):
                for name, (bootstrap, replication) in targets.items():
                    figures = results[name]
                    topic, e2e_topic = f"tput-{round_}", f"e2e-{round_}"
                    create(bootstrap, topic, args.partitions, replication)
                    create(bootstrap, e2e_topic, 1, replication)
                    produced = workload("produce", 300, bootstrap=bootstrap, topic=topic, count=args.count, size=args.size,
                                        acks="all", compression="none", partitions=args.partitions)
                    latency = end_to_end(bootstrap, e2e_topic, args.e2e_rate, args.e2e_seconds, args.size)
                    figures.setdefault("mb_s", []).append(produced["mb_s"])
                    figures.setdefault("p50_ms", []).append(latency["p50_ms"])
                    figures.setdefault("p99_ms", []).append(latency["p99_ms"])
                    print(f"round {round_ + 1}, {name}: acks=all {produced['mb_s']:.1f} MB/s; end to end p50 "
                          f"{latency['p50_ms']:.2f} ms, p99 {latency['p99_ms']:.2f} ms", flush=True)
        finally:
            single.kill()
            for process in processes:
                process.kill()
    print(f"medians of {args.rounds} rounds ({args.count:,} x {args.size} B, {args.partitions} partitions; "
          f"end to end {args.e2e_rate}/s for {args.e2e_seconds:.0f} s):")
    for name, figures in results.items():
        print(f"  {name}: acks=all {statistics.median(figures['mb_s']):.1f} MB/s, end to end p50 "
              f"{statistics.median(figures['p50_ms']):.2f} ms, p99 {statistics.median(figures['p99_ms']):.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
