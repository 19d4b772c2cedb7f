"""The consolidated audit report: a tenants × causes matrix, then each customer from a new page with its
verdicts and action plan and a link to the customer's own report (which holds the evidence)."""

from __future__ import annotations

from collections.abc import Sequence

from preflight.causes import load_catalogue
from preflight.model import Report, Status, TargetResult, Verdict
from preflight.report import html

EXTRA_CSS = """
table.matrix td.cell{text-align:center;font-weight:650;width:34px}
table.matrix th.cause{text-align:center;width:34px}
td.cell.s-fail{background:var(--red-bg);color:var(--red)}td.cell.s-unknown{background:var(--violet-bg);
color:var(--violet)}td.cell.s-pass{color:var(--green)}
ol.legend{columns:2 320px;font-size:12.5px;margin:10px 0 0;padding-left:26px}
@media print{ol.legend{columns:2}table.matrix td.cell,table.matrix th.cause{-webkit-print-color-adjust:exact;
print-color-adjust:exact}}
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


def matrix(report: Report, links: Sequence[str | None]) -> str:
    """Tenants as rows, causes as numbered columns: a legend under the table names each cause in full, so
    the headers read the same on screen and on paper."""
    catalogue = load_catalogue()
    order = {c.id: i for i, c in enumerate(catalogue.causes)}
    causes = sorted(
        {f.cause for t in report.targets for f in t.findings
         if f.cause and f.status in (Status.FAIL, Status.UNKNOWN) and not f.accepted},
        key=lambda c: order.get(c, len(order)),
    )
    title = {c: catalogue.get(c).title if c in catalogue else c for c in causes}
    head = "".join(f'<th class="cause" scope="col"><abbr title="{html.e(title[c])}">{n}</abbr></th>'
                   for n, c in enumerate(causes, 1))
    rows = []
    for i, (t, link) in enumerate(zip(report.targets, links, strict=True), 1):
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
        own = f' <a href="{html.e(link)}">report</a>' if link else ""
        rows.append(f'<tr><th scope="row"><a href="#target-{i}">{html.e(t.name)}</a>{own}</th>'
                    f"<td>{html.chip(state, label)}</td>{cells}</tr>")
    legend = "".join(f"<li>{html.e(title[c])}</li>" for c in causes)
    note = ("Each numbered column is a cause (named below); a cell counts the mailboxes it blocks (all: "
            "tenant-wide); ? could not be read; ✓ blocks none. Accepted exceptions are not counted.")
    return (
        '<section class="card"><h2>Readiness across tenants</h2>'
        f'<p class="tmeta">{html.e(note)}</p><div class="scroll"><table class="matrix">'
        f"<thead><tr><th>Tenant</th><th>Readiness</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        f'</table></div><ol class="legend">{legend}</ol></section>'
    )


def render_audit(report: Report, extras: Sequence[html.Extra], interrupted: bool) -> str:
    notice = ('<p class="alert">This audit was interrupted: only the tenants that finished are in this '
              "report.</p>") if interrupted else ""
    page = html.render(report, extras, notice + matrix(report, [x.link for x in extras]))
    return page.replace("</style>", EXTRA_CSS + "</style>", 1)
