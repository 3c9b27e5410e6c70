"""Runs the Raft simulation over many seeds and reports seeds per second, or replays one.

    python benchmarks/raft_simulation.py                    # 20,000 seeds: 3 voters + observer, 5 voters, 1 voter
    python benchmarks/raft_simulation.py --seeds 2000 --first 50000
    python benchmarks/raft_simulation.py --seed 1234        # replay one seed and print its figures

`make test` runs a few hundred of these seeds (tests/test_raft.py); this is the long
form. A failing seed prints the invariant it broke and the command that replays it;
the run goes on and the exit status is 1 if any seed failed.
"""

from __future__ import annotations

import argparse
import sys
import time

from kafkapy.testing.raft_simulation import Simulation, SimulationConfig, Violation

# Each shape gets this share of the seeds.
SHAPES = (
    ("3 voters + 1 observer", SimulationConfig(voters=3, observers=1), 0.6),
    ("5 voters", SimulationConfig(voters=5, observers=0), 0.3),
    ("1 voter + 1 observer", SimulationConfig(voters=1, observers=1), 0.1),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20_000, help="how many seeds in all")
    parser.add_argument("--first", type=int, default=0, help="the first seed")
    parser.add_argument("--seed", type=int, help="replay this one seed (3 voters + 1 observer unless --voters)")
    parser.add_argument("--voters", type=int, default=3)
    parser.add_argument("--observers", type=int, default=1)
    args = parser.parse_args()

    if args.seed is not None:
        result = Simulation(args.seed, SimulationConfig(voters=args.voters, observers=args.observers)).run()
        print(result)
        return 0

    failures = 0
    total_seeds = total_events = 0
    started = time.perf_counter()
    next_seed = args.first
    for name, config, share in SHAPES:
        count = max(1, round(args.seeds * share))
        shape_started = time.perf_counter()
        committed = events = 0
        for seed in range(next_seed, next_seed + count):
            try:
                result = Simulation(seed, config).run()
            except Violation as violation:
                failures += 1
                print(f"FAILED ({name}): {violation}", flush=True)
                continue
            committed += result.committed
            events += result.events
        next_seed += count
        elapsed = time.perf_counter() - shape_started
        total_seeds += count
        total_events += events
        print(f"{name}: {count} seeds in {elapsed:.1f} s ({count / elapsed:.0f} seeds/s), "
              f"{events} events, {committed} entries committed", flush=True)
    elapsed = time.perf_counter() - started
    print(f"all: {total_seeds} seeds, {failures} failed, {elapsed:.1f} s, {total_seeds / elapsed:.0f} seeds/s, "
          f"{total_events / elapsed:.0f} events/s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
