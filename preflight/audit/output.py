"""An audit's output folder: per-tenant snapshot and report, consolidated JSON and HTML, action plans."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from preflight import snapshot as snap_io
from preflight.audit.runner import TenantRun
from preflight.model import Finding, Status, TargetResult
from preflight.output import make_report
from preflight.report import render
from preflight.report.csv import safe


@dataclass(frozen=True)
class Action:
    """One thing a customer must change: a cause, where it applies, and the fix."""

    customer: str
    cause: str
    title: str
    subjects: tuple[str, ...]
    fix: str
    severity: str


def actions(result: TargetResult, customer: str) -> list[Action]:
    """Failing findings grouped by cause and fix, tenant-wide ones first; accepted exceptions left out."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in result.findings:
        if f.status is Status.FAIL and not f.accepted:
            groups.setdefault((f.cause or f.check, f.remediation or ""), []).append(f)
    plan = []
    for (cause, fix), items in groups.items():
        subjects = tuple(sorted({f.subject or "whole tenant" for f in items}))
        plan.append(Action(customer, cause, items[0].title, subjects, fix or items[0].message, items[0].severity.value))
    rank = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
    plan.sort(key=lambda a: ("whole tenant" not in a.subjects, rank.get(a.severity, 5), a.cause))
    return plan


def action_plan_markdown(runs: Sequence[TenantRun]) -> str:
    lines = ["# Action plan", ""]
    for run in runs:
        lines += [f"## {run.customer.name}", ""]
        if run.result.errors:
            lines += [f"- Could not audit: {e}" for e in run.result.errors] + [""]
            continue
        plan = actions(run.result, run.customer.key)
        if not plan:
            lines += ["Nothing to change: no failing check.", ""]
        for i, a in enumerate(plan, 1):
            lines += [f"{i}. **{a.title}** (`{a.cause}`, {a.severity}) — {', '.join(a.subjects)}", f"   - Fix: {a.fix}"]
        lines.append("")
    return "\n".join(lines)


def action_plan_csv(runs: Sequence[TenantRun]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["customer", "cause", "title", "severity", "where", "fix", "owner", "due", "done"])
    for run in runs:
        for a in actions(run.result, run.customer.key):
            row = [a.customer, a.cause, a.title, a.severity, "; ".join(a.subjects), a.fix, "", "", ""]
            writer.writerow([safe(v) for v in row])
    return buf.getvalue()


def write_tenant(run: TenantRun, out_dir: Path, now: datetime, generated: datetime | None = None) -> Path:
    """`now` is the day the checks were evaluated for, `generated` when this run happened (default: now)."""
    folder = out_dir / run.customer.key
    folder.mkdir(parents=True, exist_ok=True)
    if run.snapshot is not None:
        snap_io.save(run.snapshot, folder / "snapshot.json")
    report = make_report([run.result], generated or now)
    (folder / "report.json").write_text(render(report, "json"), encoding="utf-8")
    (folder / "report.html").write_text(render(report, "html"), encoding="utf-8")
    return folder


def write_consolidated(
    runs: Sequence[TenantRun], out_dir: Path, now: datetime, interrupted: bool, generated: datetime | None = None,
) -> Path:
    from preflight.audit.html import render_audit

    out_dir.mkdir(parents=True, exist_ok=True)
    report = make_report([r.result for r in runs], generated or now)
    data = report.to_dict()
    data["audit"] = {
        "interrupted": interrupted,
        "evaluated_as_of": now.date().isoformat(),
        "customers": [r.customer.key for r in runs],
        "expired_exceptions": [
            {"customer": r.customer.key, "match": x.match, "subject": x.subject, "reason": x.reason,
             "expired": x.expires.isoformat() if x.expires else None}
            for r in runs for x in r.customer.expired(now.date())
        ],
    }
    (out_dir / "report.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "action-plan.md").write_text(action_plan_markdown(runs), encoding="utf-8")
    (out_dir / "action-plan.csv").write_text(action_plan_csv(runs), encoding="utf-8")
    html = render_audit(report, [actions(r.result, r.customer.key) for r in runs], interrupted)
    (out_dir / "report.html").write_text(html, encoding="utf-8")
    return out_dir
