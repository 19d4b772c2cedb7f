"""An audit's output folder: per-tenant snapshot and report, consolidated JSON and HTML, action plans."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from preflight import __version__, jsontext
from preflight import snapshot as snap_io
from preflight.audit.folder import STAGE_PREFIX
from preflight.audit.html import MatrixRow, matrix_row
from preflight.audit.runner import TenantRun
from preflight.exitcodes import exit_code
from preflight.model import Report, Status, TargetResult
from preflight.output import make_report
from preflight.private import write_whole
from preflight.report import html
from preflight.report import json as report_json
from preflight.report.common import VERDICT_ORDER, Labels, occurring_verdicts, verdict_counts, when
from preflight.report.plan import StillOnBasic, build, still_on_basic
from preflight.report.planfiles import csv_text, markdown


def notices(run: TenantRun, today: date, still: StillOnBasic | None = None) -> tuple[str, ...]:
    """What the report must say about the inventory: accepted exceptions that expired, and who the sign-in log
    shows still on Basic SMTP AUTH (`still`: still_on_basic of its result, when the caller has it)."""
    expired = tuple(
        f"The accepted exception for {x.match}{' on ' + x.subject if x.subject else ''} ({x.reason}) expired on "
        f"{x.expires}: its findings count again." for x in run.customer.expired(today))
    basic = basic_notice(still or still_on_basic(run.result), today)
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


def basic_customer(run: TenantRun, today: date, still: StillOnBasic | None = None) -> dict[str, Any] | None:
    """The customer's entry in the Basic SMTP AUTH roll-up (report.json "audit" -> "basic_smtp"), or None."""
    still = still or still_on_basic(run.result)
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


BASIC_HEAD = ["## Still on Basic SMTP AUTH", "",
              "Mailboxes and integrations whose Basic SMTP AUTH sign-ins succeeded in the sign-in log's window: "
              "move each to OAuth before Microsoft disables Basic SMTP AUTH.", "",
              "| Customer | Account | In the inventory | Sign-ins | Last success | Days left |",
              "|---|---|---|---|---|---|"]


def _basic_md_rows(name: str, still: StillOnBasic, today: date) -> list[str]:
    from preflight.report.markdown import esc

    left = still.days_left(today)
    return [f"| {esc(name)} | {esc(a.account)} | {'yes' if a.checked else 'no'} | {a.successes} | "
            f"{esc(a.last_success or 'unknown')} | {'' if left is None else left} |" for a in still.accounts]


def _plan_head(generated: datetime) -> list[str]:
    return ["# Action plan", "", f"Generated {when(generated.isoformat())} by preflight {__version__}. "
            "Steps are ordered by how many mailbox × method verdicts they turn ready.", ""]


def _basic_rows(name: str, still: StillOnBasic, today: date) -> list[list[str]]:
    """One tracking row per account the sign-in log shows still on Basic SMTP AUTH, after the customer's steps."""
    return [[name, "", f"Move {a.account} off Basic SMTP AUTH", "basic-auth-retirement", "still on basic",
             "", a.account, "", "",
             f"{a.successes} Basic SMTP AUTH sign-in(s) succeeded in the sign-in log's window, last "
             f"{a.last_success or 'unknown'}{'' if a.checked else ' (not in the inventory)'}; "
             f"{_deadline(still, today)}. Move it to OAuth (see the sign-in log findings)."]
            for a in still.accounts]


_CSV_HEAD = csv_text([])


@dataclass
class Share:
    """A finished tenant's share of the consolidated files: the texts of its parts (`texts`, by part) and what
    else they need of it, small however many mailboxes and findings it has. Made where the tenant ran, with its
    own files (render_tenant); Consolidated.add only writes it."""

    key: str
    named: TargetResult  # its name, provider, tenant and errors; no verdicts or findings
    verdicts: dict[str, int]
    status: dict[str, int]
    accepted: int
    row: MatrixRow
    expired: list[dict[str, Any]]
    basic: dict[str, Any] | None
    basic_rows: int
    texts: dict[str, str]
    # Rendered into a stage (render_tenant's `stage`): `texts` empty, they are in this file, at these offsets and
    # lengths in bytes, by part.
    stored: tuple[Path, dict[str, tuple[int, int]]] | None = None


@dataclass
class Rendered:
    """A finished tenant rendered: the texts of its own folder by file name, its share of the consolidated
    files, and what the run says of it (its findings need not travel to the parent for that). Rendered into a
    stage, its folder's files are written in `staged` instead (`files` empty) and its share's texts too."""

    files: dict[str, str]
    share: Share
    verdicts: dict[str, int]  # occurring_verdicts of its result
    code: int  # exit_code of its result
    staged: Path | None = None


class _Tenant:
    """One tenant's rendering. Its own files and its share of the consolidated files hold the same parts (its
    target's JSON text, its action plan as Markdown lines and CSV rows, its section's matrix and plan): each is
    made once, when first needed."""

    def __init__(self, run: TenantRun, now: datetime, generated: datetime | None, labels: Labels | None) -> None:
        self.run, self.today, self.generated = run, now.date(), generated or now
        self.labels = labels or Labels.load()
        r = run.result
        self.report = make_report([r], self.generated)
        self.plan = build(r, self.labels.catalogue)  # one plan for the pages, the Markdown and the CSV
        self.still = still_on_basic(r)
        self.said = notices(run, self.today, self.still)

    @cached_property
    def summary(self) -> dict[str, int]:  # findings by status: report.json's and the consolidated files'
        return self.report.summary()

    @cached_property
    def target_json(self) -> str:
        return report_json.result_text(self.run.result)

    @cached_property
    def plan_md(self) -> list[str]:
        return markdown(self.run.result.name, self.run.result, self.plan, self.said)

    @cached_property
    def basic_md(self) -> list[str]:
        return _basic_md_rows(self.run.result.name, self.still, self.today)

    @cached_property
    def csv(self) -> str:
        r = self.run.result
        return csv_text([(r.name, self.plan, _basic_rows(r.name, self.still, self.today))])

    @cached_property
    def body(self) -> tuple[str, ...]:
        return html.section_body(self.run.result, self.labels, self.said, self.plan)

    def report_json(self) -> str:
        data = make_report([], self.generated).to_dict()
        data["targets"], data["summary"] = [report_json.TARGETS], self.summary
        return "".join(report_json.with_targets(data, [self.target_json]))

    def action_plan(self) -> str:
        basic = [*BASIC_HEAD, *self.basic_md, ""] if self.basic_md else []
        return "\n".join(_plan_head(self.generated) + basic + self.plan_md).rstrip("\n") + "\n"

    def files(self) -> dict[str, Callable[[], str]]:
        snapshot = self.run.snapshot
        files: dict[str, Callable[[], str]] = {"snapshot.json": lambda: snap_io.dumps(snapshot)} \
            if snapshot is not None else {}
        files["report.json"] = self.report_json
        files["report.html"] = lambda: html.render(
            self.report, [html.Extra(self.said, plan=self.plan, body=self.body)], labels=self.labels)
        files["action-plan.md"] = self.action_plan
        files["action-plan.csv"] = lambda: self.csv
        return files

    def share(self) -> Share:
        run, r, today = self.run, self.run.result, self.today
        link = f"{run.customer.key}/report.html"
        extra = html.Extra(self.said, link, brief=True, plan=self.plan, body=self.body)
        texts = {
            "json": self.target_json,
            "html": html.target_section(0, r, self.labels, extra, alone=True).split("\n", 1)[1],  # after its
            # first line, the one that depends on its place
            "md": "".join("\n" + line for line in self.plan_md),
            "basic": "".join("\n" + row for row in self.basic_md),
            "csv": self.csv[len(_CSV_HEAD):],
        }
        return Share(
            run.customer.key, TargetResult(r.name, r.provider, r.tenant, errors=list(r.errors)),
            verdict_counts([r]), self.summary, sum(1 for f in r.findings if f.accepted),
            matrix_row(r, link),
            [{"customer": run.customer.key, "match": x.match, "subject": x.subject, "reason": x.reason,
              "expired": x.expires.isoformat() if x.expires else None} for x in run.customer.expired(today)],
            basic_customer(run, today, self.still), len(self.basic_md), texts)


def tenant_renderers(run: TenantRun, now: datetime, generated: datetime | None = None, labels: Labels | None = None,
                     ) -> dict[str, Callable[[], str]]:
    """How each file of the customer's own folder is rendered, by file name (benchmarks/evaluate.py times each).
    `labels`: built once by a caller rendering many tenants (Labels.of), else read from the installed providers."""
    return _Tenant(run, now, generated, labels).files()


def tenant_files(run: TenantRun, now: datetime, generated: datetime | None = None, labels: Labels | None = None,
                 ) -> dict[str, str]:
    """The texts of the customer's own folder, by file name; rendering them is the CPU-heavy part of writing."""
    return {name: text() for name, text in tenant_renderers(run, now, generated, labels).items()}


def render_tenant(run: TenantRun, now: datetime, generated: datetime | None = None, labels: Labels | None = None,
                  fail_on: str = "fail", stage: Path | None = None) -> Rendered:
    """All an audit writes of a finished tenant: its own folder's texts and its share of the consolidated files,
    rendered together (in the audit's worker process: the parent then only writes them), with its verdict
    counts and exit code for `fail_on`.

    With `stage` (Consolidated.staging: a folder of the run's own, in its output folder) both are written there
    instead, where the tenant ran: what travels to the parent is then a few names and counts, not hundreds of KB of
    text to pickle, send through a pipe, unpickle and write (place_tenant moves the folder into place)."""
    tenant = _Tenant(run, now, generated, labels)
    verdicts, code = occurring_verdicts(run.result), int(exit_code([run.result], fail_on))
    if stage is None:
        return Rendered({name: text() for name, text in tenant.files().items()}, tenant.share(), verdicts, code)
    folder = stage / run.customer.key
    folder.mkdir()  # not its parents: a stage removed (its run ended) is not made again
    _write_files(folder, ((name, text()) for name, text in tenant.files().items()))
    # beside the folders, named as no customer can be (a key starts with a letter or digit)
    return Rendered({}, _stored(tenant.share(), stage / f".{run.customer.key}.parts"), verdicts, code, folder)


def _stored(share: Share, path: Path) -> Share:
    """The share with its texts written to `path` (0600, as the consolidated files' own parts file), one after
    another: the share then holds only where each is."""
    spans: dict[str, tuple[int, int]] = {}
    chunks: list[bytes] = []
    offset = 0
    for name, text in share.texts.items():
        data = text.encode()
        spans[name] = (offset, len(data))
        offset += len(data)
        chunks.append(data)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.writelines(chunks)
    return replace(share, texts={}, stored=(path, spans))


def place_tenant(staged: Path, out_dir: Path) -> Path:
    """A tenant's folder written in the stage (render_tenant's `staged`) moved into the output folder in one
    rename: whole or absent, whenever the audit is interrupted. Where a folder of its name is there already (one
    --force kept, holding other files too, or empty, or a symlink to a folder), its files are moved into it one by
    one, as write_tenant writes them: the folder keeps its own mode, and a file goes to another file system whole."""
    folder = out_dir / staged.name
    if not os.path.lexists(folder):  # a rename would replace an empty folder, and its mode with it
        try:
            os.rename(staged, folder)
            return folder
        except OSError:
            pass
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(staged.iterdir()):
        try:
            os.replace(path, folder / path.name)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # a symlink --force kept, to another file system: written there whole, as write_tenant writes
            write_whole(folder / path.name, path.read_bytes().decode(), stat.S_IMODE(path.stat().st_mode),
                        durable=False)
            path.unlink()
    staged.rmdir()
    return folder


def write_tenant(run: TenantRun, out_dir: Path, now: datetime, generated: datetime | None = None,
                 files: dict[str, str] | None = None, labels: Labels | None = None) -> Path:
    """The customer's own folder: what to hand over (report.html, action-plan.md/.csv) and the data behind it.
    `now` is the day the checks were evaluated for, `generated` when this run happened (default: now);
    `files` their texts when tenant_files already rendered them (in the audit's worker process)."""
    folder = out_dir / run.customer.key
    folder.mkdir(parents=True, exist_ok=True)
    _write_files(folder, (files if files is not None else tenant_files(run, now, generated, labels)).items())
    return folder


def _write_files(folder: Path, files: Iterable[tuple[str, str]]) -> None:
    # Whole or absent for readers and for an interrupted audit (temporary file, then rename), but not synced to
    # the disk one by one: a re-run remakes them, and five syncs per tenant cost more than rendering it.
    for name, text in files:
        if name == "snapshot.json":  # as snap_io.save writes it (the run may not hold the snapshot itself)
            write_whole(folder / name, text, 0o600, durable=False)
        else:
            write_whole(folder / name, text, durable=False)


def write_consolidated(
    runs: Sequence[TenantRun], out_dir: Path, now: datetime, interrupted: bool, generated: datetime | None = None,
) -> Path:
    """The consolidated files of these runs (in this order)."""
    with Consolidated(out_dir, now, generated) as files:
        for i, run in enumerate(runs):
            files.add_run(run, i)
        return files.write(interrupted)


@dataclass
class _Finished:
    """A finished tenant as the consolidated files keep it: its share without the texts, and where they are in
    the parts file."""

    position: int
    share: Share  # its texts left out
    parts: dict[str, tuple[int, int]]  # offset and length in bytes of each of its parts in the parts file
    source: Path | None = None  # the file its parts are in, when not this run's parts file (a staged share's)


class Consolidated:
    """An audit's consolidated files (report.json, report.html, action-plan.md/.csv), built as each tenant
    finishes: its share of each file (rendered then, where it ran) is kept in a nameless temporary file in the
    output folder, only counts and names in memory, so a run of many tenants never holds all their results at
    once. `write` streams the files in the tenants' order (`position`), the same bytes as rendering them all at
    once."""

    def __init__(self, out_dir: Path, now: datetime, generated: datetime | None = None,
                 labels: Labels | None = None) -> None:
        self.out_dir, self.now, self.generated = out_dir, now, generated or now
        self.labels = labels or Labels.load()
        out_dir.mkdir(parents=True, exist_ok=True)
        # 0600 and nameless: nothing is left behind, however the run ends; closed by __exit__
        self.parts = tempfile.TemporaryFile(dir=out_dir)  # noqa: SIM115
        self.finished: list[_Finished] = []
        self.stage: Path | None = None

    def __enter__(self) -> Consolidated:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.parts.close()
        if self.stage is not None:  # what is left of it: the shares' texts, a tenant's folder never placed
            shutil.rmtree(self.stage, ignore_errors=True)

    def staging(self) -> Path:
        """A folder for render_tenant's `stage`: in the output folder (a folder is moved from it in one rename),
        hidden, 0700, removed with what is left in it by __exit__ (the consolidated files are written by then)."""
        if self.stage is None:
            self.stage = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=self.out_dir))
        return self.stage

    def add(self, share: Share, position: int) -> None:
        """A finished tenant's share of each file (render_tenant's), at `position` in the tenants' order."""
        if share.stored is not None:  # written where it ran, kept there until `write`
            source, stored = share.stored
            self.finished.append(_Finished(position, share, stored, source))
            return
        spans = {}
        self.parts.seek(0, os.SEEK_END)
        for name, text in share.texts.items():
            data = text.encode()
            spans[name] = (self.parts.tell(), len(data))
            self.parts.write(data)
        self.finished.append(_Finished(position, replace(share, texts={}), spans))

    def add_run(self, run: TenantRun, position: int) -> None:
        """A finished tenant whose share is rendered here (not in its worker: redacted, or its worker died)."""
        self.add(_Tenant(run, self.now, self.generated, self.labels).share(), position)

    def _part(self, tenant: _Finished, name: str) -> str:
        offset, size = tenant.parts[name]
        if tenant.source is not None:
            with tenant.source.open("rb") as fh:
                fh.seek(offset)
                return fh.read(size).decode()
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
            for counts, into in ((t.share.status, status), (t.share.verdicts, verdicts)):
                for k, n in counts.items():
                    into[k] = into.get(k, 0) + n
        data = report.to_dict()
        data["targets"] = [report_json.TARGETS] if tenants else []
        data["summary"] = status
        data["audit"] = {
            "interrupted": interrupted,
            "evaluated_as_of": today.isoformat(),
            "customers": [t.share.key for t in tenants],
            "expired_exceptions": [x for t in tenants for x in t.share.expired],
            "basic_smtp": rollup([t.share.basic for t in tenants if t.share.basic is not None]),
        }
        write_whole(self.out_dir / "report.json",
                    report_json.with_targets(data, (self._part(t, "json") for t in tenants)) if tenants
                    else jsontext.dumps(data, report_json.LAYOUT_DEPTH, ensure_ascii=False))
        write_whole(self.out_dir / "action-plan.md", _rstripped(self._markdown(tenants)))
        write_whole(self.out_dir / "action-plan.csv", [_CSV_HEAD, *(self._part(t, "csv") for t in tenants)])
        write_whole(self.out_dir / "report.html", self._html(tenants, report, verdicts, status, interrupted))
        return self.out_dir

    def _markdown(self, tenants: Sequence[_Finished]) -> Iterator[str]:
        basic = any(t.share.basic_rows for t in tenants)
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
        summary = html.summary_html(counts, status, sum(t.share.accepted for t in tenants))
        alone = len(tenants) == 1
        matrix = top([t.share.row for t in tenants], interrupted)
        head, foot = html.frame(report.generated_at, report.tool_version, len(tenants),
                                tenants[0].share.named if alone else None, summary, matrix, self.labels)
        yield styled(head)
        if not alone:
            yield "\n" + html.overview([html.overview_row(i, t.share.named, t.share.verdicts, t.share.row.link,
                                                           self.labels) for i, t in enumerate(tenants, 1)])
        for i, t in enumerate(tenants, 1):
            yield "\n" + "\n".join(html.section_heading(i, t.share.named, self.labels, t.share.row.link, alone))
            yield "\n" + self._part(t, "html")
        yield "\n" + foot + "\n"


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
