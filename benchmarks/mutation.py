"""Mutation testing of every shipped snapshot at a larger budget than the test suite's (issue 11).

Usage: python benchmarks/mutation.py [--budget N] [--seed 11]   (no --budget: every mutant)

Prints the mutant count, the outcome counts by kind of mutation, and the time; lists every fail-open,
crash, internal error and invalid JSON report (there should be none). Exit 1 when there is one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the mutation machinery lives with the tests

from preflight.providers import Registry  # noqa: E402
from tests.mutants import Outcomes, Runner, mutants, sample, shipped  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=None, help="mutants to run (default: all)")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    registry = Registry.from_entry_points()
    items = shipped(registry)
    total = sum(len(mutants(item)) for item in items)
    chosen = sample(items, args.budget, args.seed)
    runner, out = Runner(registry), Outcomes()
    wall, cpu = time.perf_counter(), time.process_time()
    for item, mutant in chosen:
        runner.run(item, mutant, out)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu

    print(f"snapshots: {len(items)}; mutants: {total}; run: {len(chosen)} (seed {args.seed})")
    print(f"time: {wall:.1f} s wall, {cpu:.1f} s CPU ({cpu / max(len(chosen), 1) * 1000:.2f} ms CPU per mutant)")
    print("outcomes:")
    for outcome, n in sorted(out.outcome_counts().items(), key=lambda kv: -kv[1]):
        print(f"  {n:7d}  {outcome}")
    print("by kind:")
    for (kind, outcome), n in sorted(out.counts.items()):
        print(f"  {n:7d}  {kind:14s} {outcome}")
    for problem in out.problems:
        print(f"PROBLEM {problem}")
    return 1 if out.problems else 0


if __name__ == "__main__":
    sys.exit(main())
