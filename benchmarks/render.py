"""preflight's CPU to render one evaluated tenant as an audit does (audit.output.render_tenant).

Usage: python benchmarks/render.py [--runs 50] [--mailboxes 20] [--profile microsoft|google] [--top 30]

The two tenants of benchmarks/evaluate.py, parsed and evaluated once; then render_tenant --runs times each:
the tenant's own files (snapshot.json, report.json, report.html, action-plan.md/.csv) and its share of the
consolidated files (its target's JSON, its HTML section, its plan's Markdown and CSV rows), as the audit's
worker renders them. Prints ms of CPU (time.process_time) per tenant: the first run, the median and the best
of the others. With --profile, cProfile's view of that tenant's runs instead. For a count independent of the
machine's load: perf stat -e instructions:u -- python benchmarks/render.py --runs 200
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

import preflight

# The installation measured (python of its venv), not this file's: `python .../render.py` A/B compares two trees.
ROOT = Path(preflight.__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.evaluate import NOW, tenants  # noqa: E402
from preflight import pipeline  # noqa: E402
from preflight import snapshot as snap_io  # noqa: E402
from preflight.audit.output import render_tenant  # noqa: E402
from preflight.audit.runner import TenantRun  # noqa: E402
from preflight.causes import load_catalogue  # noqa: E402
from preflight.providers import Registry  # noqa: E402
from preflight.report.common import Labels  # noqa: E402


def evaluated(mailboxes: int, registry: Registry) -> dict[str, TenantRun]:
    runs = {}
    for label, (customer, collected) in tenants(mailboxes).items():
        snap = snap_io.parse(collected, f"{customer.key} (collected)")
        result = pipeline.evaluate_snapshot(snap, registry.get(customer.provider), NOW, customer.name,
                                            customer.exceptions, load_catalogue())
        runs[label] = TenantRun(customer, result, snap, 0.0)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--mailboxes", type=int, default=20)
    parser.add_argument("--profile", choices=("microsoft", "google"), help="profile this tenant instead")
    parser.add_argument("--top", type=int, default=30, help="functions the profile lists")
    args = parser.parse_args()
    registry = Registry.from_entry_points()
    labels = Labels.of(registry, load_catalogue())
    runs = evaluated(args.mailboxes, registry)
    if args.profile:
        run = runs[args.profile]
        render_tenant(run, NOW, labels=labels)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.runs):
            render_tenant(run, NOW, labels=labels)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.top)
        return
    for label, run in runs.items():
        spent = []
        for _ in range(args.runs):
            started = time.process_time()
            render_tenant(run, NOW, labels=labels)
            spent.append(time.process_time() - started)
        rest = spent[1:] or spent
        print(f"{label}: render_tenant ms of CPU, first {spent[0] * 1000:.2f}, median "
              f"{statistics.median(rest) * 1000:.2f}, best {min(rest) * 1000:.2f}")


if __name__ == "__main__":
    main()
