"""The terminal report: per target, the verdict of every mailbox and method first, then what to fix.

Every payload-derived string goes in as rich `Text` (never markup) and through `clean()`, so a value like
"[bold]" or an ESC byte cannot style or drive the terminal.
"""

from __future__ import annotations

import shutil
from io import StringIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

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
)

VERDICT_STYLE = {"ready": "bold green", "blocked": "bold red", "at-risk": "bold yellow", "incomplete": "bold magenta"}
STATUS_STYLE = {
    "fail": "bold red",
    "unknown": "bold magenta",
    "warn": "bold yellow",
    "pass": "green",
    "skipped": "dim",
    "accepted": "cyan",
}
DEFAULT_WIDTH = 100
GUTTER = 9  # "ACCEPTED" and a space


def render(report: Report, color: bool = False, width: int | None = None) -> str:
    out = StringIO()
    console = Console(
        file=out,
        width=width or shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns,
        force_terminal=color,
        no_color=not color,
        color_system="standard" if color else None,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=False,
        legacy_windows=False,
    )
    labels = Labels.load()
    if not report.targets:
        console.print("No targets were evaluated.")
    for index, target in enumerate(report.targets):
        if index:
            console.print()
        _target(console, target, labels)
    console.print()
    console.print(Text(summary_line(report), style="bold"))
    # rich pads every line to the full width; trailing blanks only get in the way of copy and paste.
    return "\n".join(line.rstrip() for line in out.getvalue().split("\n"))


def _target(console: Console, target: TargetResult, labels: Labels) -> None:
    console.rule(Text(target_heading(target), style="bold"), align="left")
    for error in target.errors:
        console.print(Text.assemble(("Not evaluated: ", "bold red"), clean(error)))
    if target.mailboxes:
        console.print(_verdicts(target, labels))
    for subject, findings in grouped(target):
        console.print()
        console.print(Text(one_line(subject) if subject else "Tenant-wide", style="bold underline"))
        for entry in findings:
            console.print(_finding(console, entry), soft_wrap=True)


def _verdicts(target: TargetResult, labels: Labels) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    table.add_column("Mailbox", overflow="fold")
    table.add_column("Method", no_wrap=True)
    table.add_column("Verdict", no_wrap=True)
    table.add_column("Why", overflow="fold")
    previous = None
    bearing = relevance(target)
    for mv in target.mailboxes:
        shown = "" if mv.address == previous else one_line(mv.address)
        previous = mv.address
        table.add_row(
            Text(shown),
            Text(mv.method.value),
            Text(mv.verdict.value, style=VERDICT_STYLE[mv.verdict.value]),
            Text(labels.note(target, mv, bearing)),
        )
    return table


def _finding(console: Console, entry: Entry) -> Text:
    """Status in a left gutter, everything else wrapped beside it (hand-wrapped: a rich grid per finding
    costs milliseconds each, which adds up to seconds on a large tenant)."""
    f = entry.finding
    label = status_label(f)
    body = [
        Text.assemble((one_line(f.title), "bold"), f"  {f.severity.value} · {method_label(entry)} · {f.check}"),
        Text(clean(f.message)),
    ]
    if f.accepted:
        body.append(Text.assemble(("Accepted: ", "cyan"), clean(f.accepted)))
    fix = compact_fix(f)
    if fix:
        body.append(Text.assemble((f"{fix_label(f)}: ", "bold"), clean(fix)))
    width = max(console.width - GUTTER, 20)
    lines: list[Text] = []
    for part in body:
        for line in part.wrap(console, width, overflow="fold"):
            gutter = Text.assemble((label.upper(), STATUS_STYLE[label]), " " * (GUTTER - len(label))) if not lines \
                else Text(" " * GUTTER)
            lines.append(gutter + line)
    return Text("\n").join(lines)
