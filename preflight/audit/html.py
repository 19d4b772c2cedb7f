"""The consolidated audit report: a tenants × causes matrix, then each customer from a new page with its
verdicts and action plan and a link to the customer's own report (which holds the evidence)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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

_PASS = ("pass", "✓")
_UNREADABLE = ("unknown", "?")


@dataclass(frozen=True)
class MatrixRow:
    """All the matrix needs of one tenant: kept for each finished tenant of an audit instead of its result."""

    name: str
    link: str | None
    state: str  # its readiness chip: css kind and label
    label: str
    unreadable: bool  # could not be audited: every cell unknown
    causes: frozenset[str]  # the causes it gives a column: failing or unknown, not accepted
    cells: Mapping[str, tuple[str, str]]  # (css status, text) of each cause whose cell is not a pass


def _cells(target: TargetResult) -> tuple[frozenset[str], dict[str, tuple[str, str]]]:
    """The causes a tenant gives a column (failing or unknown, not accepted), and (css status, text) for each
    cause of its findings whose cell is not a pass: how many mailboxes it blocks, or what is unknown."""
    failing: dict[str, set[str]] = {}
    unknown: set[str] = set()
    named: dict[str, None] = {}  # every cause of a finding, in their order
    columns = set()
    for f in target.findings:
        cause = f.cause
        if not cause:
            continue
        named[cause] = None
        if f.status is Status.FAIL and not f.accepted:
            failing.setdefault(cause, set()).add(f.subject or "*")
            columns.add(cause)
        elif f.status is Status.UNKNOWN:
            unknown.add(cause)
            if not f.accepted:
                columns.add(cause)
    cells = {}
    for cause in named:
        if cause in failing:
            cells[cause] = ("fail", "all" if "*" in failing[cause] else str(len(failing[cause])))
        elif cause in unknown:
            cells[cause] = _UNREADABLE
    return frozenset(columns), cells


def matrix_row(t: TargetResult, link: str | None) -> MatrixRow:
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
    causes, cells = _cells(t)  # one pass over the findings, not one per cause
    return MatrixRow(t.name, link, state, label, bool(t.errors), causes, {} if t.errors else cells)


def matrix(rows: Sequence[MatrixRow]) -> str:
    """Tenants as rows, causes as numbered columns: a legend under the table names each cause in full, so
    the headers read the same on screen and on paper."""
    catalogue = load_catalogue()
    order = {c.id: i for i, c in enumerate(catalogue.causes)}
    causes = sorted(set().union(*(r.causes for r in rows)), key=lambda c: order.get(c, len(order)))
    title = {c: catalogue.get(c).title if c in catalogue else c for c in causes}
    head = "".join(f'<th class="cause" scope="col"><abbr title="{html.e(title[c])}">{n}</abbr></th>'
                   for n, c in enumerate(causes, 1))
    lines = []
    for i, r in enumerate(rows, 1):
        cells = "".join(f'<td class="cell s-{s}">{html.e(text)}</td>'
                        for s, text in ((_UNREADABLE if r.unreadable else r.cells.get(c, _PASS)) for c in causes))
        own = f' <a href="{html.e(r.link)}">report</a>' if r.link else ""
        lines.append(f'<tr><th scope="row"><a href="#target-{i}">{html.e(r.name)}</a>{own}</th>'
                     f"<td>{html.chip(r.state, r.label)}</td>{cells}</tr>")
    legend = "".join(f"<li>{html.e(title[c])}</li>" for c in causes)
    note = ("Each numbered column is a cause (named below); a cell counts the mailboxes it blocks (all: "
            "tenant-wide); ? could not be read; ✓ blocks none. Accepted exceptions are not counted.")
    return (
        '<section class="card"><h2>Readiness across tenants</h2>'
        f'<p class="tmeta">{html.e(note)}</p><div class="scroll"><table class="matrix">'
        f"<thead><tr><th>Tenant</th><th>Readiness</th>{head}</tr></thead><tbody>{''.join(lines)}</tbody>"
        f'</table></div><ol class="legend">{legend}</ol></section>'
    )


def top(rows: Sequence[MatrixRow], interrupted: bool) -> str:
    """What the audit's page shows after its summary: whether it was interrupted, and the matrix."""
    notice = ('<p class="alert">This audit was interrupted: only the tenants that finished are in this '
              "report.</p>") if interrupted else ""
    return notice + matrix(rows)


def styled(head: str) -> str:
    """The page's head with the matrix's styles."""
    return head.replace("</style>", EXTRA_CSS + "</style>", 1)


def render_audit(report: Report, extras: Sequence[html.Extra], interrupted: bool) -> str:
    page = html.render(report, extras, top([matrix_row(t, x.link) for t, x in zip(report.targets, extras,
                                                                                   strict=True)], interrupted))
    return styled(page)
