"""Kill -9 of the active controller of a three-process kafkapy cluster while a client
creates topics, again and again; reports the time from each kill to the first topic
created after it, and checks that every acknowledged topic exists.

    python benchmarks/cluster_failover.py                 # 5 kills, Kafka's default timeouts
    python benchmarks/cluster_failover.py --kills 10 --fast

Kafka's defaults: controller.quorum.fetch.timeout.ms=2000 (a follower stands for
election after that long without the leader), election timeout 1000-2000 ms.
`--fast` uses the test kit's timeouts (kafkapy.testing.cluster.FAST_QUORUM).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from confluent_kafka.admin import AdminClient

from kafkapy.testing.cluster import FAST_QUORUM
from kafkapy.testing.failover import create_topics_through_a_controller_kill
from kafkapy.testing.process import cluster_processes, start_all


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--fast", action="store_true", help="the test kit's shorter quorum timeouts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kafkapy-failover-") as root:
        processes = cluster_processes(Path(root), 3, FAST_QUORUM if args.fast else {})
        start_all(processes)
        times: list[float] = []
        elections: list[float] = []
        lost = 0
        try:
            for round_ in range(args.kills):
                outcome = create_topics_through_a_controller_kill(processes, before_s=2.0, after_s=8.0, prefix=f"r{round_}")
                listed = AdminClient({"bootstrap.servers": ",".join(p.bootstrap for p in processes if p.running)}) \
                    .list_topics(timeout=10).topics
                missing = set(outcome.acknowledged) - set(listed)
                lost += len(missing)
                took, elected = outcome.first_success_after_kill_s, outcome.new_leader_after_s
                print(f"kill {round_ + 1}: node {outcome.killed}; new leader after {_s(elected)}, first topic asked "
                      f"after the kill created {_s(took)} after it; {len(outcome.acknowledged)} acknowledged, "
                      f"{outcome.failed} failed, {len(missing)} missing", flush=True)
                if took is not None and elected is not None:
                    times.append(took)
                    elections.append(elected)
                start_all(processes)  # the killed node comes back before the next round
        finally:
            for process in processes:
                process.kill()
    if times:
        print(f"{len(times)} kills: new leader after median {statistics.median(elections):.2f} s, max {max(elections):.2f} s; "
              f"first creation asked after the kill done after median {statistics.median(times):.2f} s, "
              f"max {max(times):.2f} s; acknowledged topics missing: {lost}")
    return 0 if lost == 0 and len(times) == args.kills else 1


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"


if __name__ == "__main__":
    sys.exit(main())
