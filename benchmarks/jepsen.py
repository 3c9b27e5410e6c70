"""The long form of the Jepsen-style check of acks=all (kafkapy.testing.jepsen): three
kafkapy processes, a topic with replication factor 3 and min.insync.replicas=2, an
idempotent confluent-kafka producer writing sequence numbers with acks=all, and a
nemesis that kills -9 a broker (the partition's leader every other time) and restarts
it, again and again. With --in-process the nodes are an in-process kafkapy.Cluster
instead (the test kit's quorum timeouts), and every third action of the nemesis cuts a
node off from the others instead of killing one. Afterwards a consumer reads the topic
and the checker reports records acknowledged, lost, duplicated, never sent and out of
order, the leader kills and the time from each to the next acknowledgement.

    python benchmarks/jepsen.py                       # 10 minutes, an action every 8 s
    python benchmarks/jepsen.py --minutes 1 --period 6 --fast
    python benchmarks/jepsen.py --in-process --period 6
    python benchmarks/jepsen.py --minutes 4 --message-timeout-ms 4000   # librdkafka sends records again

Exit status 0 when nothing acknowledged was lost or reordered and the broker duplicated
nothing; copies the client made itself (after an epoch bump, see kafkapy.testing.jepsen)
are listed with their batches' producer ids, epochs and sequences but do not fail it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from kafkapy.testing.cluster import FAST_QUORUM, Cluster
from kafkapy.testing.jepsen import MESSAGE_TIMEOUT_MS, InProcessTarget, ProcessTarget, RunOutcome, run
from kafkapy.testing.process import cluster_processes, start_all, wait_until


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--period", type=float, default=8.0, help="seconds between nemesis actions")
    parser.add_argument("--down", type=float, default=4.0, help="seconds a killed broker stays down")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--rate", type=float, default=500.0, help="records per second sent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--message-timeout-ms", type=int, default=MESSAGE_TIMEOUT_MS,
                        help="the producer's message.timeout.ms (short ones make librdkafka send records again)")
    parser.add_argument("--fast", action="store_true", help="the test kit's shorter quorum and session timeouts")
    parser.add_argument("--in-process", action="store_true", help="an in-process cluster: kills and network cuts")
    return parser.parse_args()


def create_topic(bootstrap: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("jepsen", partitions, 3, config={"min.insync.replicas": "2"})])["jepsen"].result(30)


def run_processes(args: argparse.Namespace) -> RunOutcome:
    with tempfile.TemporaryDirectory(prefix="kafkapy-jepsen-") as root:
        processes = cluster_processes(Path(root), 3, FAST_QUORUM if args.fast else {})
        start_all(processes)
        try:
            bootstrap = ",".join(p.bootstrap for p in processes)
            admin = AdminClient({"bootstrap.servers": bootstrap})
            wait_until(lambda: len(admin.list_topics(timeout=5).brokers) == 3, 60, message="three brokers registered")
            create_topic(bootstrap, args.partitions)
            return run(ProcessTarget(processes), "jepsen", args.partitions, duration_s=args.minutes * 60,
                       period_s=args.period, down_s=args.down, seed=args.seed, rate_per_s=args.rate,
                       message_timeout_ms=args.message_timeout_ms)
        finally:
            for process in processes:
                process.kill()


def run_in_process(args: argparse.Namespace) -> RunOutcome:
    with Cluster(brokers=3) as cluster:
        create_topic(cluster.bootstrap_servers, args.partitions)
        return run(InProcessTarget(cluster), "jepsen", args.partitions, duration_s=args.minutes * 60,
                   period_s=args.period, down_s=args.down, seed=args.seed, rate_per_s=args.rate,
                   message_timeout_ms=args.message_timeout_ms)


def main() -> int:
    args = parse_args()
    outcome = run_in_process(args) if args.in_process else run_processes(args)
    verdict = outcome.verdict
    print(outcome.summary())
    print(f"records sent {outcome.sent}, acknowledged {verdict.acknowledged}, lost {len(verdict.lost)}, "
          f"duplicated {len(verdict.broker_duplicated)} by the broker and {len(verdict.client_duplicated)} re-sent by the "
          f"client, never sent {len(verdict.unexpected)}, out of order {len(verdict.out_of_order)}")
    if outcome.failovers_s:
        print(f"{len(outcome.nemesis.leader_kills)} leader kills; failover p50 {statistics.median(outcome.failovers_s):.2f} s, "
              f"max {max(outcome.failovers_s):.2f} s")
    for error in outcome.writer_errors[:5]:
        print(f"producer error: {error}")
    if not verdict.ok or verdict.duplicates:
        print(verdict.details())
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
