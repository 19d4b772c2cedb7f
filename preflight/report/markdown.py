"""GitHub-flavoured Markdown: the table report's content, for a pull request, an issue or a wiki page."""

from __future__ import annotations

import re

from preflight.model import Report, TargetResult
from preflight.report.common import (
    Entry,
    Labels,
    clean,
    compact_fix,
    fix_label,
    grouped,
    method_label,
    one_line,
    relevance,
    status_label,
    summary_line,
    target_heading,
    verdict_counts,
    when,
)

# Backslash-escaping ASCII punctuation is always literal in CommonMark; these are the characters that
# would otherwise start emphasis, links, raw HTML, code, strikethrough, entities or end a table cell
# (">" and "!" only matter at a line start or before "[", and every line starts with our own text).
_SPECIAL = re.compile(r"([\\`*_\[\]<|~&#])")
ICON = {"fail": "❌", "unknown": "❔", "warn": "⚠️", "pass": "✅", "skipped": "➖", "accepted": "☑️"}
VERDICT_ICON = {"ready": "✅", "blocked": "❌", "at-risk": "⚠️", "incomplete": "❔"}


def esc(value: object) -> str:
    """One line of literal text, safe inside a table cell."""
    return _SPECIAL.sub(r"\\\1", one_line(value))


def esc_block(value: object) -> str:
    """Literal text that may span lines; a line break becomes a hard break inside the same paragraph."""
    return "  \n".join(_SPECIAL.sub(r"\\\1", line) for line in clean(value).split("\n"))


def row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def render(report: Report) -> str:
    labels = Labels.load()
    lines = [
        "# SMTP readiness report",
        "",
        f"Generated {esc(when(report.generated_at))} by preflight {esc(report.tool_version)}. "
        + esc(summary_line(report)),
        "",
    ]
    if len(report.targets) > 1:
        lines += _overview(report)
    for target in report.targets:
        lines += _target(target, labels)
    return "\n".join(lines).rstrip("\n") + "\n"


def _overview(report: Report) -> list[str]:
    lines = [row("Target", "Provider", "Tenant", "Blocked", "Incomplete", "At risk", "Ready"), row(*["---"] * 7)]
    for t in report.targets:
        counts = verdict_counts([t])
        status = [str(counts[v]) for v in ("blocked", "incomplete", "at-risk", "ready")]
        if t.errors:
            status = ["not evaluated", "", "", ""]
        lines.append(row(esc(t.name), esc(t.provider), esc(t.tenant), *status))
    return [*lines, ""]


def _target(target: TargetResult, labels: Labels) -> list[str]:
    lines = [f"## {esc(target_heading(target))}", ""]
    for error in target.errors:
        lines += [f"> **Not evaluated:** {esc(error)}", ""]
    if target.mailboxes:
        lines += [row("Mailbox", "Method", "Verdict", "Why"), row("---", "---", "---", "---")]
        bearing = relevance(target)
        for mv in target.mailboxes:
            verdict = f"{VERDICT_ICON[mv.verdict.value]} **{mv.verdict.value}**"
            lines.append(row(esc(mv.address), mv.method.value, verdict, esc(labels.note(target, mv, bearing))))
        lines.append("")
    for subject, findings in grouped(target):
        lines += [f"### {esc(subject) if subject else 'Tenant-wide'}", ""]
        for entry in findings:
            lines += _finding(entry)
    return lines


def _finding(entry: Entry) -> list[str]:
    f = entry.finding
    label = status_label(f)
    lines = [
        f"- {ICON[label]} **{label.upper()}** · **{esc(f.title)}** · {f.severity.value} · "
        f"{esc(method_label(entry))} · `{f.check.replace('`', '')}`  ",
        f"  {esc_block(f.message)}".replace("\n", "\n  "),
    ]
    if f.accepted:
        lines[-1] += "  "
        lines.append(f"  *Accepted:* {esc(f.accepted)}")
    fix = compact_fix(f)
    if fix:
        lines[-1] += "  "
        lines.append(f"  **{fix_label(f)}:** {esc_block(fix)}".replace("\n", "\n  "))
    return [*lines, ""]
