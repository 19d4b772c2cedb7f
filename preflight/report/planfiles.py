"""The action plan as files a customer works through: Markdown (commands fenced, ready to copy) and CSV
(one row per change, with empty owner/due/done columns for the customer's own tracking)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from preflight.model import Status, TargetResult
from preflight.report.common import one_line
from preflight.report.csv import safe
from preflight.report.fixtext import Segment, language
from preflight.report.plan import Change, OAuthMove, Plan, pairs_label

CSV_COLUMNS = ("customer", "step", "change", "cause", "kind", "severity", "where", "makes_ready", "also_for", "fix",
               "owner", "due", "done")


def _fence(seg: Segment, indent: str) -> list[str]:
    ticks = "```" if "```" not in seg.text else "~~~~"
    return [f"{indent}{ticks}{language(seg.text)}", *(f"{indent}{line}" for line in seg.text.split("\n")),
            f"{indent}{ticks}"]


def _fix_md(segs: Sequence[Segment], indent: str) -> list[str]:
    from preflight.report.markdown import esc_block

    lines: list[str] = []
    for seg in segs:
        lines += [*_fence(seg, indent), ""] if seg.command else [f"{indent}{esc_block(seg.text)}", ""]
    return lines


def markdown(name: str, target: TargetResult, plan: Plan, notices: Sequence[str] = ()) -> list[str]:
    """One customer's plan: a heading, then each step numbered, its impact and its fix."""
    from preflight.report.markdown import esc

    lines = [f"## {esc(name)}", ""]
    lines += [f"> {esc(n)}" for n in notices] + ([""] if notices else [])
    if target.errors:
        return lines + [f"- Could not audit: {esc(err)}" for err in target.errors] + [""]
    if not plan.steps:
        lines += ["Nothing to change: no check failed or warned.", ""]
    for n, step in enumerate(plan.steps, 1):
        if isinstance(step, OAuthMove):
            lines += [f"### {n}. {esc(step.title)} (recommended)", "",
                      f"Resolves at once, for {esc(', '.join(step.mailboxes))}: "
                      + esc("; ".join(c.title for c in step.resolves)) + ".", ""]
            if step.ready:
                lines += [f"Ready over OAuth today: {esc(pairs_label(step.ready))}.", ""]
            lines += _fix_md(step.fix, "")
            lines += ["To keep Basic instead:", ""]
            for c in step.resolves:
                lines += [f"- **{esc(c.title)}** ({esc(', '.join(c.subjects) or 'tenant-wide')})", ""]
                lines += _fix_md(c.fix, "  ")
            continue
        kind = "blocks" if step.status is Status.FAIL else "at risk"
        where = ", ".join(step.subjects) or "tenant-wide"
        lines += [f"### {n}. {esc(step.title)} ({kind}; {esc(where)})", ""]
        if step.ready:
            lines += [f"Makes ready: {esc(pairs_label(step.ready))}.", ""]
        rest = [p for p in step.unblocks if p not in step.ready]
        if rest:
            lines += [f"Also needed for: {esc(pairs_label(rest))}.", ""]
        lines += _fix_md(step.fix, "")
    if plan.grants:
        lines += ["For a complete verdict, before the next run:", ""]
        lines += [f"- Grant {esc(g.text)} ({g.checks} checks could not read what they need)" for g in plan.grants]
        lines.append("")
    return lines


def _fix_plain(segs: Sequence[Segment]) -> str:
    return "\n".join(seg.text for seg in segs)


def csv_rows(name: str, plan: Plan) -> list[list[str]]:
    rows = []
    for n, step in enumerate(plan.steps, 1):
        if isinstance(step, OAuthMove):
            causes = " + ".join(c.cause for c in step.resolves)
            rows.append([name, str(n), step.title, causes, "recommended", "", "; ".join(step.mailboxes),
                         pairs_label(step.ready), "", _fix_plain(step.fix)])
            continue
        assert isinstance(step, Change)
        rest = [p for p in step.unblocks if p not in step.ready]
        rows.append([name, str(n), step.title, step.cause, "blocks" if step.status is Status.FAIL else "at risk",
                     step.severity.value, "; ".join(step.subjects) or "tenant-wide", pairs_label(step.ready),
                     pairs_label(rest), _fix_plain(step.fix)])
    return rows


def csv_text(plans: Sequence[tuple[str, Plan, Sequence[list[str]]]]) -> str:
    """Every customer's steps, then the rows the caller adds for it (in the columns' order, without the
    tracking columns)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for name, plan, extra in plans:
        for row in [*csv_rows(name, plan), *extra]:
            writer.writerow([safe(one_line(v)) if i != 9 else safe(v) for i, v in enumerate([*row, "", "", ""])])
    return buf.getvalue()
