"""preflight's CPU per tenant once the payloads are read: parse, evaluate and render, no network.

Usage: python benchmarks/evaluate.py [--runs 30] [--mailboxes 20] [--profile microsoft|google] [--top 30]

The two tenants `benchmarks/audit.py` audits, built the same way: a Microsoft 365 tenant (the oauth-app-ready
fixture cloned into --mailboxes mailboxes, checked for basic and oauth-app) and a Google Workspace (the
gmail-group-override fixture cloned likewise, basic and oauth-delegated). Each is taken through what an audit's
worker process does with a collected tenant, --runs times: parse and validate the collected payloads
(snapshot.parse), evaluate them (pipeline.evaluate_snapshot), then render each file of the customer's folder
(audit.output.tenant_renderers: snapshot.json, report.json, report.html, action-plan.md, action-plan.csv).

Prints ms of CPU (time.process_time) per tenant for each phase: the first run (what loads once per process
is in it), the median of the others and the best of them (on a machine others share, the best is the steadiest
measure of the work itself; the load average is printed with it). With --profile, cProfile's view of the
steady-state runs of that tenant instead, its --top functions by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.audit import workspace_snapshot  # noqa: E402
from benchmarks.microsoft import tenant_snapshot  # noqa: E402
from preflight import pipeline  # noqa: E402
from preflight import snapshot as snap_io  # noqa: E402
from preflight.audit.inventory import Customer  # noqa: E402
from preflight.audit.output import tenant_renderers  # noqa: E402
from preflight.audit.runner import TenantRun  # noqa: E402
from preflight.causes import load_catalogue  # noqa: E402
from preflight.model import Method  # noqa: E402
from preflight.providers import Registry  # noqa: E402
from preflight.report.common import Labels  # noqa: E402

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def tenants(mailboxes: int) -> dict[str, tuple[Customer, dict[str, Any]]]:
    """The two tenants as their collectors hand them over: a customer and its collected payloads."""
    microsoft = tenant_snapshot(mailboxes)
    microsoft["options"]["methods"] = [Method.BASIC.value, Method.OAUTH_APP.value]
    google = workspace_snapshot(mailboxes)
    return {
        "microsoft": (Customer(key="t000", name="Tenant 000", provider="microsoft", settings={},
                               mailboxes=tuple(microsoft["mailboxes"]), methods=(Method.BASIC, Method.OAUTH_APP),
                               app_id=microsoft["options"]["app_id"]), microsoft),
        "google": (Customer(key="g000", name="Workspace 000", provider="google", settings={},
                            mailboxes=tuple(google["mailboxes"]), methods=(Method.BASIC, Method.OAUTH_DELEGATED)),
                   google),
    }


def one_tenant(customer: Customer, collected: dict[str, Any], registry: Registry, labels: Labels,
               clock: Callable[[], float] = time.process_time) -> dict[str, float]:
    """One tenant through parse, evaluate and every file's rendering: seconds of CPU per phase."""
    spent: dict[str, float] = {}
    started = clock()
    snap = snap_io.parse(collected, f"{customer.key} (collected)")
    spent["parse"] = clock() - started
    started = clock()
    result = pipeline.evaluate_snapshot(snap, registry.get(customer.provider), NOW, customer.name,
                                        customer.exceptions, load_catalogue())
    spent["evaluate"] = clock() - started
    started = clock()
    renderers = tenant_renderers(TenantRun(customer, result, snap, 0.0), NOW, labels=labels)
    spent["report model"] = clock() - started  # the report and the action plan its files share
    for name, render in renderers.items():
        started = clock()
        render()
        spent[name] = clock() - started
    return spent


def measure(runs: int, mailboxes: int) -> None:
    registry = Registry.from_entry_points()
    labels = Labels.of(registry, load_catalogue())  # as the audit does, once before its workers fork
    for provider in registry.all():
        preload = getattr(provider, "preload", None)
        if preload is not None:
            preload()  # as the audit does before it forks its workers: the checks' modules are imported
    print(f"1-minute load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
    for label, (customer, collected) in tenants(mailboxes).items():
        samples = [one_tenant(customer, collected, registry, labels) for _ in range(runs)]
        first, rest = samples[0], samples[1:] or samples
        print(f"\n{label}: {mailboxes} mailboxes x {len(customer.methods)} methods, {runs} runs; ms of CPU per tenant")
        print(f"  {'phase':<16}{'first':>9}{'median':>9}{'best':>9}")
        for phase in first:
            print(f"  {phase:<16}{first[phase] * 1000:9.2f}{statistics.median(s[phase] for s in rest) * 1000:9.2f}"
                  f"{min(s[phase] for s in rest) * 1000:9.2f}")
        total = [sum(s.values()) for s in rest]
        print(f"  {'total':<16}{sum(first.values()) * 1000:9.2f}{statistics.median(total) * 1000:9.2f}"
              f"{min(total) * 1000:9.2f}")


def profile(which: str, runs: int, mailboxes: int, top: int) -> None:
    registry = Registry.from_entry_points()
    labels = Labels.of(registry, load_catalogue())
    customer, collected = tenants(mailboxes)[which]
    one_tenant(customer, collected, registry, labels)  # what loads once per process stays out of the profile
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        one_tenant(customer, collected, registry, labels)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--mailboxes", type=int, default=20)
    parser.add_argument("--profile", choices=("microsoft", "google"), help="profile this tenant instead")
    parser.add_argument("--top", type=int, default=30, help="functions the profile lists")
    args = parser.parse_args()
    if args.runs < 1 or args.mailboxes < 1:
        parser.error("--runs and --mailboxes must be at least 1")
    if args.profile:
        profile(args.profile, args.runs, args.mailboxes, args.top)
    else:
        measure(args.runs, args.mailboxes)


if __name__ == "__main__":
    main()
