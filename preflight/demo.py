"""`preflight demo`: the whole pipeline on the simulated tenants the providers bundle."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

from preflight import pipeline
from preflight.causes import load_catalogue
from preflight.model import TargetResult
from preflight.output import Format, make_report, write_text
from preflight.providers import Registry
from preflight.snapshot import parse


def demo_results(registry: Registry, now: datetime) -> list[TargetResult]:
    catalogue = load_catalogue()
    results = []
    for provider in registry.all():
        for item in provider.demo_snapshots():
            data = json.loads(item.read_text(encoding="utf-8"))
            snap = parse(data, f"{provider.name}/demo/{item.name}")
            name = str(data.get("tenant", {}).get("name") or snap.tenant_label)
            results.append(pipeline.evaluate_snapshot(snap, provider, now, name, catalogue=catalogue))
    return results


def run_demo(registry: Registry, html: Path, fmt: Format, now: datetime, output: Path | None = None,
             summary: bool = False) -> None:
    from preflight.report import render

    results = demo_results(registry, now)
    if not results:
        pipeline.progress("no provider with demo tenants is installed")
        return
    report = make_report(results)  # generated now; `now` is only the day the checks are evaluated for
    pipeline.write_report(report, fmt, output, summary=summary)
    write_text(render(report, "html"), html)
    sys.stderr.write(
        f"\nSimulated tenants: {len(results)}. HTML report: {html.resolve()}\n"
        "This was a demo on bundled snapshots; `preflight check microsoft|google` runs it on your tenant.\n"
    )
