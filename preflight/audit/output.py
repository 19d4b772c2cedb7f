"""An audit's output folder: per-tenant snapshot and report, consolidated JSON and HTML, action plans."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from preflight import __version__, jsontext
from preflight import snapshot as snap_io
from preflight.audit.runner import TenantRun
from preflight.causes import load_catalogue
from preflight.output import make_report
from preflight.private import write_whole
from preflight.report import html, render
from preflight.report import json as report_json
from preflight.report.common import Labels, when
from preflight.report.plan import Plan, StillOnBasic, build, still_on_basic
from preflight.report.planfiles import csv_text, markdown


def notices(run: TenantRun, today: date) -> tuple[str, ...]:
    """What the report must say about the inventory: accepted exceptions that expired, and who the sign-in log
    shows still on Basic SMTP AUTH."""
    expired = tuple(
        f"The accepted exception for {x.match}{' on ' + x.subject if x.subject else ''} ({x.reason}) expired on "
        f"{x.expires}: its findings count again." for x in run.customer.expired(today))
    basic = basic_notice(still_on_basic(run.result), today)
    return expired + ((basic,) if basic else ())


def _deadline(still: StillOnBasic, today: date) -> str:
    left = still.days_left(today)
    if left is None or still.retires_on is None:
        return "before Microsoft disables it"
    said = f"{still.retirement}, {still.retires_on}" if still.retirement else str(still.retires_on)
    if left >= 0:
        return f"{left} day(s) before Microsoft disables it by default ({said})"
    return f"{-left} day(s) after Microsoft's date for disabling it by default ({said})"


def basic_notice(still: StillOnBasic, today: date) -> str | None:
    """One line: the accounts still signing in with Basic SMTP AUTH and the days left, or None."""
    if not still.accounts:
        return None
    who = "; ".join(f"{a.account}{'' if a.checked else ' (not in the inventory)'}: {a.successes} sign-in(s), "
                    f"last {a.last_success or 'unknown'}" for a in still.accounts)
    return (f"Still signing in with Basic SMTP AUTH, {_deadline(still, today)}: {who}. Move them to OAuth "
            "(see the sign-in log findings).")


def basic_rollup(runs: Sequence[TenantRun], today: date) -> dict[str, Any]:
    """The JSON roll-up per customer and across customers (report.json "audit" -> "basic_smtp")."""
    customers: list[dict[str, Any]] = []
    accounts: list[dict[str, Any]] = []
    for run in runs:
        still = still_on_basic(run.result)
        if not still.accounts:
            continue
        mine = [{"account": a.account, "in_inventory": a.checked, "successes": a.successes,
                 "last_success": a.last_success} for a in still.accounts]
        accounts += mine
        customers.append({
            "customer": run.customer.key, "name": run.result.name, "provider": run.result.provider,
            "retires_on": still.retires_on.isoformat() if still.retires_on else None,
            "days_left": still.days_left(today), "accounts": mine})
    return {"customers": customers, "total_accounts": len(accounts),
            "not_in_inventory": sum(1 for a in accounts if not a["in_inventory"])}


def _basic_markdown(runs: Sequence[TenantRun], today: date) -> list[str]:
    from preflight.report.markdown import esc

    rows = []
    for run in runs:
        still = still_on_basic(run.result)
        left = still.days_left(today)
        rows += [f"| {esc(run.result.name)} | {esc(a.account)} | {'yes' if a.checked else 'no'} | {a.successes} | "
                 f"{esc(a.last_success or 'unknown')} | {'' if left is None else left} |" for a in still.accounts]
    if not rows:
        return []
    return ["## Still on Basic SMTP AUTH", "",
            "Mailboxes and integrations whose Basic SMTP AUTH sign-ins succeeded in the sign-in log's window: "
            "move each to OAuth before Microsoft disables Basic SMTP AUTH.", "",
            "| Customer | Account | In the inventory | Sign-ins | Last success | Days left |",
            "|---|---|---|---|---|---|", *rows, ""]


def _plans(runs: Sequence[TenantRun], plans: Sequence[Plan] | None) -> Sequence[Plan]:
    """Each run's action plan: those the caller built already (for the run's other files), else built here."""
    if plans is not None:
        return plans
    catalogue = load_catalogue()
    return [build(r.result, catalogue) for r in runs]


def plan_markdown(runs: Sequence[TenantRun], generated: datetime, today: date,
                  plans: Sequence[Plan] | None = None) -> str:
    lines = ["# Action plan", "", f"Generated {when(generated.isoformat())} by preflight {__version__}. "
             "Steps are ordered by how many mailbox × method verdicts they turn ready.", ""]
    lines += _basic_markdown(runs, today)
    for run, plan in zip(runs, _plans(runs, plans), strict=True):
        lines += markdown(run.result.name, run.result, plan, notices(run, today))
    return "\n".join(lines).rstrip("\n") + "\n"


def _basic_rows(run: TenantRun, today: date) -> list[list[str]]:
    """One tracking row per account the sign-in log shows still on Basic SMTP AUTH, after the customer's steps."""
    still = still_on_basic(run.result)
    return [[run.result.name, "", f"Move {a.account} off Basic SMTP AUTH", "basic-auth-retirement", "still on basic",
             "", a.account, "", "",
             f"{a.successes} Basic SMTP AUTH sign-in(s) succeeded in the sign-in log's window, last "
             f"{a.last_success or 'unknown'}{'' if a.checked else ' (not in the inventory)'}; "
             f"{_deadline(still, today)}. Move it to OAuth (see the sign-in log findings)."]
            for a in still.accounts]


def plan_csv(runs: Sequence[TenantRun], today: date, plans: Sequence[Plan] | None = None) -> str:
    return csv_text([(r.result.name, plan, _basic_rows(r, today))
                     for r, plan in zip(runs, _plans(runs, plans), strict=True)])


def tenant_renderers(run: TenantRun, now: datetime, generated: datetime | None = None, labels: Labels | None = None,
                     ) -> dict[str, Callable[[], str]]:
    """How each file of the customer's own folder is rendered, by file name (benchmarks/evaluate.py times each).
    `labels`: built once by a caller rendering many tenants (Labels.of), else read from the installed providers."""
    generated = generated or now
    labels = labels or Labels.load()
    report = make_report([run.result], generated)
    plans = [build(run.result, labels.catalogue)]  # one plan for the HTML page, the Markdown and the CSV
    said = notices(run, now.date())
    snapshot = run.snapshot
    files: dict[str, Callable[[], str]] = {"snapshot.json": lambda: snap_io.dumps(snapshot)} \
        if snapshot is not None else {}
    files["report.json"] = lambda: render(report, "json")
    files["report.html"] = lambda: html.render(report, [html.Extra(said, plan=plans[0])], labels=labels)
    files["action-plan.md"] = lambda: plan_markdown([run], generated, now.date(), plans)
    files["action-plan.csv"] = lambda: plan_csv([run], now.date(), plans)
    return files


def tenant_files(run: TenantRun, now: datetime, generated: datetime | None = None, labels: Labels | None = None,
                 ) -> dict[str, str]:
    """The texts of the customer's own folder, by file name; rendering them is the CPU-heavy part of writing."""
    return {name: text() for name, text in tenant_renderers(run, now, generated, labels).items()}


def write_tenant(run: TenantRun, out_dir: Path, now: datetime, generated: datetime | None = None,
                 files: dict[str, str] | None = None, labels: Labels | None = None) -> Path:
    """The customer's own folder: what to hand over (report.html, action-plan.md/.csv) and the data behind it.
    `now` is the day the checks were evaluated for, `generated` when this run happened (default: now);
    `files` their texts when tenant_files already rendered them (in the audit's worker process)."""
    folder = out_dir / run.customer.key
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (files if files is not None else tenant_files(run, now, generated, labels)).items():
        if name == "snapshot.json":  # as snap_io.save writes it (the run may not hold the snapshot itself)
            write_whole(folder / name, text, 0o600)
        else:
            write_whole(folder / name, text)
    return folder


def write_consolidated(
    runs: Sequence[TenantRun], out_dir: Path, now: datetime, interrupted: bool, generated: datetime | None = None,
) -> Path:
    from preflight.audit.html import render_audit

    generated = generated or now
    out_dir.mkdir(parents=True, exist_ok=True)
    report = make_report([r.result for r in runs], generated)
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
        "basic_smtp": basic_rollup(runs, now.date()),
    }
    write_whole(out_dir / "report.json", jsontext.dumps(data, report_json.LAYOUT_DEPTH, ensure_ascii=False))
    plans = _plans(runs, None)
    write_whole(out_dir / "action-plan.md", plan_markdown(runs, generated, now.date(), plans))
    write_whole(out_dir / "action-plan.csv", plan_csv(runs, now.date(), plans))
    extras = [html.Extra(notices(r, now.date()), f"{r.customer.key}/report.html", brief=True, plan=plan)
              for r, plan in zip(runs, plans, strict=True)]
    write_whole(out_dir / "report.html", render_audit(report, extras, interrupted))
    return out_dir
