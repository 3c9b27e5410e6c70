"""The crash-consistency checker at scale: many more crash states than `make test` runs.

    python benchmarks/crash_states.py                 # every crash point: least, most and one random state
    python benchmarks/crash_states.py --random 3      # ... and three random states at each
    python benchmarks/crash_states.py --sample 2000   # a random sample of 2000 states instead
    python benchmarks/crash_states.py --records 40 --seed 7
    python benchmarks/crash_states.py --swaps --random 10  # only the crash points inside the cleaner's swaps

Runs the workload of kafkapy.testing.crash.workload once on an in-process broker
(flush.messages=1, idempotent and acks=1 producers, a group committing offsets, a
transaction committed and one aborted, topics created and deleted, segment rolls, a
retention deletion, and a compacted topic overwritten and tombstoned while the cleaner
swaps cleaned segments in) while recording its file operations; then builds each crash state
(kafkapy.testing.crash.states gives the rules), starts the broker's recovery on it and
checks the invariants (kafkapy.testing.crash.check). Prints how many states were checked
and how many failed, and for the first failures the crash state (which unsynced
operations were kept, lost or torn) and what was wrong. Exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from kafkapy.testing.crash.check import check_states
from kafkapy.testing.crash.states import every_state_kind, least_and_most, random_state, sample_states
from kafkapy.testing.crash.workload import clean_points, run_workload


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=12, help="records each producer sends (default 12)")
    parser.add_argument("--sample", type=int, default=0, help="check this many random states instead of every crash point")
    parser.add_argument("--random", type=int, default=1, help="random states per crash point besides least and most (default 1)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--swaps", action="store_true", help="only the crash points inside the log cleaner's swaps")
    parser.add_argument("--show", type=int, default=5, help="failures to print in full (default 5)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="kafkapy-crash-") as scratch:
        started = time.monotonic()
        workload = run_workload(Path(scratch) / "workload", records_per_producer=args.records)
        print(f"workload: {len(workload.ops)} file operations, {len(workload.acked)} records acknowledged, "
              f"{len(workload.commits)} offset commits, {len(workload.transactions)} transactions, "
              f"{len(workload.cleaned)} cleans "
              f"({time.monotonic() - started:.1f} s)")
        points = clean_points(workload.ops) if args.swaps else None
        if args.sample:
            states = sample_states(workload.ops, args.sample, rng, points)
        elif points is not None:
            states = (state for point in points for state in (
                *least_and_most(workload.ops, point), *(random_state(workload.ops, point, rng) for _ in range(args.random))))
        else:
            states = every_state_kind(workload.ops, rng, args.random)
        checked = failed = 0
        started = time.monotonic()
        for outcome in check_states(workload, states, Path(scratch)):
            checked += 1
            if outcome.problems:
                failed += 1
                if failed <= args.show:
                    print(f"\nFAILED: {outcome.state.describe(workload.ops)}")
                    print("\n".join(f"  - {problem}" for problem in outcome.problems))
            if checked % 200 == 0:
                print(f"  {checked} states checked, {failed} failed", flush=True)
        elapsed = time.monotonic() - started
    print(f"\n{checked} crash states checked, {failed} failed ({elapsed:.0f} s, {elapsed / max(checked, 1) * 1000:.0f} ms a state)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
