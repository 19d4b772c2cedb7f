"""The consolidated audit report: a tenants × causes matrix and a printable action plan per customer,
added to the standard HTML report (which already has each tenant's verdicts and findings)."""

from __future__ import annotations

from collections.abc import Sequence

from preflight.audit.output import Action
from preflight.causes import load_catalogue
from preflight.model import Report, Status, TargetResult, Verdict
from preflight.report import html

EXTRA_CSS = """
table.matrix th.cause{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;font-size:11.5px;
padding:8px 4px;text-transform:none;letter-spacing:0}
table.matrix td.cell{text-align:center;font-weight:650;width:34px}
td.cell.s-fail{background:var(--red-bg);color:var(--red)}td.cell.s-unknown{background:var(--violet-bg);
color:var(--violet)}td.cell.s-pass{color:var(--green)}
ol.plan li{margin:0 0 10px}ol.plan .where{color:var(--muted);font-size:12.5px}
section.plan{break-before:page}
"""


def _cell(target: TargetResult, cause: str) -> tuple[str, str]:
    """(css status, text) for one tenant and cause: how many mailboxes it blocks, or what is unknown."""
    if target.errors:
        return "unknown", "?"
    failing = {f.subject or "*" for f in target.findings
               if f.cause == cause and f.status is Status.FAIL and not f.accepted}
    if failing:
        return "fail", "all" if "*" in failing else str(len(failing))
    if any(f.cause == cause and f.status is Status.UNKNOWN for f in target.findings):
        return "unknown", "?"
    return "pass", "✓"


def matrix(report: Report) -> str:
    catalogue = load_catalogue()
    causes = sorted(
        {f.cause for t in report.targets for f in t.findings
         if f.cause and f.status in (Status.FAIL, Status.UNKNOWN) and not f.accepted},
        key=lambda c: [x.id for x in catalogue.causes].index(c) if c in catalogue else 999,
    )
    head = "".join(
        f'<th class="cause" title="{html.e(catalogue.get(c).title if c in catalogue else c)}">{html.e(c)}</th>'
        for c in causes
    )
    rows = []
    for t in report.targets:
        verdicts = [m.verdict for m in t.mailboxes]
        ready = sum(v is Verdict.READY for v in verdicts)
        if t.errors:
            state = "unknown"
        elif Verdict.BLOCKED in verdicts:
            state = "blocked"
        elif Verdict.INCOMPLETE in verdicts or not verdicts:
            state = "incomplete"
        else:
            state = "at-risk" if Verdict.AT_RISK in verdicts else "ready"
        label = "could not audit" if t.errors else f"{ready}/{len(verdicts)} ready"
        cells = "".join(f'<td class="cell s-{s}">{html.e(text)}</td>' for s, text in (_cell(t, c) for c in causes))
        rows.append(f'<tr><th>{html.e(t.name)}</th><td>{html.chip(state, label)}</td>{cells}</tr>')
    legend = ("Each cell counts the mailboxes a cause blocks (all: tenant-wide); ? could not be read; "
              "✓ blocks none. Accepted exceptions are not counted.")
    return (
        '<section class="card"><h2>Readiness across tenants</h2>'
        f'<p class="tmeta">{html.e(legend)}</p><div style="overflow-x:auto"><table class="matrix">'
        f"<thead><tr><th>Tenant</th><th>Readiness</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table></div></section>"
    )


def action_plans(report: Report, plans: Sequence[Sequence[Action]]) -> str:
    """One plan per target, in the report's order (two customers may share a display name)."""
    parts = ['<section class="card plan"><h2>Action plan per customer</h2>']
    for target, plan in zip(report.targets, plans, strict=True):
        parts.append(f"<h4>{html.e(target.name)}</h4>")
        if target.errors:
            parts.append(f'<p class="alert">Could not audit: {html.e("; ".join(target.errors))}</p>')
            continue
        if not plan:
            parts.append("<p>Nothing to change: no failing check.</p>")
            continue
        items = "".join(
            f"<li><b>{html.e(a.title)}</b> {html.chip('fail', a.severity)}"
            f'<div class="where">Where: {html.e(", ".join(a.subjects))} · cause <code>{html.e(a.cause)}</code></div>'
            f'<div class="fix"><b>Fix</b>{html.e(a.fix)}</div></li>'
            for a in plan
        )
        parts.append(f'<ol class="plan">{items}</ol>')
    parts.append("</section>")
    return "".join(parts)


def render_audit(report: Report, plans: Sequence[Sequence[Action]], interrupted: bool) -> str:
    page = html.render(report)
    notice = ('<p class="alert">This audit was interrupted: only the tenants that finished are in this '
              "report.</p>") if interrupted else ""
    extra = notice + matrix(report) + action_plans(report, plans)
    page = page.replace("</style>", EXTRA_CSS + "</style>", 1)
    marker = '<main class="wrap">'
    return page.replace(marker, marker + extra, 1)
