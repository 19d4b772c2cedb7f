"""An audit's output folder: per-tenant snapshot and report, consolidated JSON and HTML, action plans."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from preflight import __version__, jsontext
from preflight import snapshot as snap_io
from preflight.audit.html import MatrixRow, matrix_row
from preflight.audit.runner import TenantRun
from preflight.causes import load_catalogue
from preflight.model import Report, Status, TargetResult
from preflight.output import make_report
from preflight.private import write_whole
from preflight.report import html, render
from preflight.report import json as report_json
from preflight.report.common import VERDICT_ORDER, Labels, verdict_counts, when
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


def basic_customer(run: TenantRun, today: date) -> dict[str, Any] | None:
    """The customer's entry in the Basic SMTP AUTH roll-up (report.json "audit" -> "basic_smtp"), or None."""
    still = still_on_basic(run.result)
    if not still.accounts:
        return None
    return {"customer": run.customer.key, "name": run.result.name, "provider": run.result.provider,
            "retires_on": still.retires_on.isoformat() if still.retires_on else None,
            "days_left": still.days_left(today),
            "accounts": [{"account": a.account, "in_inventory": a.checked, "successes": a.successes,
                          "last_success": a.last_success} for a in still.accounts]}


def rollup(customers: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The roll-up across customers of their basic_customer entries."""
    accounts = [a for c in customers for a in c["accounts"]]
    return {"customers": list(customers), "total_accounts": len(accounts),
            "not_in_inventory": sum(1 for a in accounts if not a["in_inventory"])}


def basic_rollup(runs: Sequence[TenantRun], today: date) -> dict[str, Any]:
    """The JSON roll-up per customer and across customers (report.json "audit" -> "basic_smtp")."""
    return rollup([c for r in runs if (c := basic_customer(r, today)) is not None])


BASIC_HEAD = ["## Still on Basic SMTP AUTH", "",
              "Mailboxes and integrations whose Basic SMTP AUTH sign-ins succeeded in the sign-in log's window: "
              "move each to OAuth before Microsoft disables Basic SMTP AUTH.", "",
              "| Customer | Account | In the inventory | Sign-ins | Last success | Days left |",
              "|---|---|---|---|---|---|"]


def _basic_md_rows(run: TenantRun, today: date) -> list[str]:
    from preflight.report.markdown import esc

    still = still_on_basic(run.result)
    left = still.days_left(today)
    return [f"| {esc(run.result.name)} | {esc(a.account)} | {'yes' if a.checked else 'no'} | {a.successes} | "
            f"{esc(a.last_success or 'unknown')} | {'' if left is None else left} |" for a in still.accounts]


def _basic_markdown(runs: Sequence[TenantRun], today: date) -> list[str]:
    rows = [row for run in runs for row in _basic_md_rows(run, today)]
    return [*BASIC_HEAD, *rows, ""] if rows else []


def _plans(runs: Sequence[TenantRun], plans: Sequence[Plan] | None) -> Sequence[Plan]:
    """Each run's action plan: those the caller built already (for the run's other files), else built here."""
    if plans is not None:
        return plans
    catalogue = load_catalogue()
    return [build(r.result, catalogue) for r in runs]


def _plan_head(generated: datetime) -> list[str]:
    return ["# Action plan", "", f"Generated {when(generated.isoformat())} by preflight {__version__}. "
            "Steps are ordered by how many mailbox × method verdicts they turn ready.", ""]


def plan_markdown(runs: Sequence[TenantRun], generated: datetime, today: date,
                  plans: Sequence[Plan] | None = None) -> str:
    lines = _plan_head(generated) + _basic_markdown(runs, today)
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
    """The consolidated files of these runs (in this order)."""
    with Consolidated(out_dir, now, generated) as files:
        for i, run in enumerate(runs):
            files.add(run, i)
        return files.write(interrupted)


_MARK = "\x00targets\x00"  # where the targets go in report.json's text: no name or stamp before them holds it


@dataclass
class _Finished:
    """What the consolidated files need of a finished tenant besides its rendered parts: small however many
    mailboxes and findings it has."""

    position: int
    key: str
    named: TargetResult  # its name, provider, tenant and errors; no verdicts or findings
    verdicts: dict[str, int]
    status: dict[str, int]
    accepted: int
    row: MatrixRow
    expired: list[dict[str, Any]]
    basic: dict[str, Any] | None
    basic_rows: int
    parts: dict[str, tuple[int, int]]  # offset and length in bytes of each of its parts in the parts file


class Consolidated:
    """An audit's consolidated files (report.json, report.html, action-plan.md/.csv), built as each tenant
    finishes: its share of each file is rendered then and kept in a nameless temporary file in the output folder,
    only counts and names in memory, so a run of many tenants never holds all their results at once. `write`
    streams the files in the tenants' order (`position`), the same bytes as rendering them all at once."""

    def __init__(self, out_dir: Path, now: datetime, generated: datetime | None = None,
                 labels: Labels | None = None) -> None:
        self.out_dir, self.now, self.generated = out_dir, now, generated or now
        self.labels = labels or Labels.load()
        out_dir.mkdir(parents=True, exist_ok=True)
        # 0600 and nameless: nothing is left behind, however the run ends; closed by __exit__
        self.parts = tempfile.TemporaryFile(dir=out_dir)  # noqa: SIM115
        self.finished: list[_Finished] = []

    def __enter__(self) -> Consolidated:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.parts.close()

    def add(self, run: TenantRun, position: int, plan: Plan | None = None) -> None:
        """A finished tenant's share of each file; `plan` its action plan when the caller built it already."""
        r, today = run.result, self.now.date()
        plan = plan if plan is not None else build(r, self.labels.catalogue)
        said = notices(run, today)
        link = f"{run.customer.key}/report.html"
        section = html.target_section(0, r, self.labels, html.Extra(said, link, brief=True, plan=plan), alone=True)
        basic = _basic_md_rows(run, today)
        texts = {
            # each target is laid out two levels deeper in report.json: its line breaks indented four more
            "json": jsontext.dumps(r.to_dict(), 2, ensure_ascii=False)[:-1].replace("\n", "\n    "),
            "html": section.split("\n", 1)[1],  # after its first line, the one that depends on its place
            "md": "".join("\n" + line for line in markdown(r.name, r, plan, said)),
            "basic": "".join("\n" + row for row in basic),
            "csv": csv_text([(r.name, plan, _basic_rows(run, today))])[len(_CSV_HEAD):],
        }
        spans = {}
        self.parts.seek(0, os.SEEK_END)
        for name, text in texts.items():
            data = text.encode()
            spans[name] = (self.parts.tell(), len(data))
            self.parts.write(data)
        self.finished.append(_Finished(
            position, run.customer.key, TargetResult(r.name, r.provider, r.tenant, errors=list(r.errors)),
            verdict_counts([r]), make_report([r]).summary(), sum(1 for f in r.findings if f.accepted),
            matrix_row(r, link),
            [{"customer": run.customer.key, "match": x.match, "subject": x.subject, "reason": x.reason,
              "expired": x.expires.isoformat() if x.expires else None} for x in run.customer.expired(today)],
            basic_customer(run, today), len(basic), spans))

    def _part(self, tenant: _Finished, name: str) -> str:
        offset, size = tenant.parts[name]
        self.parts.seek(offset)
        return self.parts.read(size).decode()

    def write(self, interrupted: bool, positions: Collection[int] | None = None) -> Path:
        """The files; `positions`: only these tenants (those the run reports finished), default all added."""
        tenants = sorted((t for t in self.finished if positions is None or t.position in positions),
                         key=lambda t: t.position)
        today = self.now.date()
        report = make_report([], self.generated)
        status = {s.value: 0 for s in Status}
        verdicts: dict[str, int] = {}
        for t in tenants:
            for counts, into in ((t.status, status), (t.verdicts, verdicts)):
                for k, n in counts.items():
                    into[k] = into.get(k, 0) + n
        data = report.to_dict()
        data["targets"] = [_MARK] if tenants else []
        data["summary"] = status
        data["audit"] = {
            "interrupted": interrupted,
            "evaluated_as_of": today.isoformat(),
            "customers": [t.key for t in tenants],
            "expired_exceptions": [x for t in tenants for x in t.expired],
            "basic_smtp": rollup([t.basic for t in tenants if t.basic is not None]),
        }
        text = jsontext.dumps(data, report_json.LAYOUT_DEPTH, ensure_ascii=False)
        write_whole(self.out_dir / "report.json", self._json(tenants, text) if tenants else text)
        write_whole(self.out_dir / "action-plan.md", _rstripped(self._markdown(tenants)))
        write_whole(self.out_dir / "action-plan.csv", [_CSV_HEAD, *(self._part(t, "csv") for t in tenants)])
        write_whole(self.out_dir / "report.html", self._html(tenants, report, verdicts, status, interrupted))
        return self.out_dir

    def _json(self, tenants: Sequence[_Finished], text: str) -> Iterator[str]:
        """report.json's `text` with the tenants' targets where it holds the mark."""
        before, _, after = text.partition(jsontext.dumps(_MARK, 0)[:-1])
        yield before
        for n, t in enumerate(tenants):
            yield (",\n    " if n else "") + self._part(t, "json")
        yield after

    def _markdown(self, tenants: Sequence[_Finished]) -> Iterator[str]:
        basic = any(t.basic_rows for t in tenants)
        yield "\n".join(_plan_head(self.generated) + (BASIC_HEAD if basic else []))
        if basic:
            yield from (self._part(t, "basic") for t in tenants)
            yield "\n"  # the empty line after the table
        yield from (self._part(t, "md") for t in tenants)

    def _html(self, tenants: Sequence[_Finished], report: Report, verdicts: dict[str, int], status: dict[str, int],
              interrupted: bool) -> Iterator[str]:
        from preflight.audit.html import render_audit, styled, top

        if not tenants:
            yield render_audit(report, [], interrupted)
            return
        counts = {v.value: verdicts.get(v.value, 0) for v in VERDICT_ORDER}
        summary = html.summary_html(counts, status, sum(t.accepted for t in tenants))
        alone = len(tenants) == 1
        matrix = top([t.row for t in tenants], interrupted)
        head, foot = html.frame(report.generated_at, report.tool_version, len(tenants),
                                tenants[0].named if alone else None, summary, matrix, self.labels)
        yield styled(head)
        if not alone:
            yield "\n" + html.overview([html.overview_row(i, t.named, t.verdicts, t.row.link, self.labels)
                                        for i, t in enumerate(tenants, 1)])
        for i, t in enumerate(tenants, 1):
            yield "\n" + "\n".join(html.section_heading(i, t.named, self.labels, t.row.link, alone))
            yield "\n" + self._part(t, "html")
        yield "\n" + foot + "\n"


_CSV_HEAD = csv_text([])


def _rstripped(pieces: Iterable[str]) -> Iterator[str]:
    """The pieces of "".join(pieces).rstrip("\n") + "\n", a piece at a time."""
    held = ""  # line breaks that end the text so far: written only if more text follows
    for piece in pieces:
        text = piece.rstrip("\n")
        if text:
            yield held + text
            held = ""
        held += piece[len(text):]
    yield "\n"
