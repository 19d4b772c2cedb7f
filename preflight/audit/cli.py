"""`preflight audit`, `preflight diff` and `preflight redact`."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from preflight.errors import InputError
from preflight.output import FailOn, FailOnOpt, OutputOpt, TextFormat, TextFormatOpt

# The root --help imports this module to list its commands: what only running them needs is imported inside.


def audit(
    inventory: Annotated[str, typer.Argument(help="Inventory file (TOML), or `init` to write an example.")],
    path: Annotated[Path | None, typer.Argument(help="With init: where to write the example.")] = None,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-d", help="Folder for this run: new or empty "
                                  "(default: a new preflight-audit-TIME).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Reuse a non-empty --output-dir, replacing an earlier audit's outputs.")
    ] = False,
    only: Annotated[list[str] | None, typer.Option("--only", help="Audit only this customer (repeatable).")] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="Leave this customer out (repeatable).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, max=64, help="Tenants in parallel.")] = None,
    redact: Annotated[bool, typer.Option("--redact", help="Pseudonymise personal data in every output.")] = False,
    fail_on: FailOnOpt = FailOn.fail,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Evaluate date-dependent checks as of this day (YYYY-MM-DD).")
    ] = None,
    deadline: Annotated[float | None, typer.Option(
        "--deadline", metavar="SECONDS",
        help="Seconds each tenant may take to sign in and be read (default 900; the inventory key `deadline` "
             "wins): what was not read by then is reported unknown.")] = None,
    fmt: TextFormatOpt = TextFormat.table,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Also write the run's summary (tenants, verdicts, errors) to this file.")] = None,
) -> None:
    """Audit many customer tenants from an inventory file: one report per customer and one across them."""
    if inventory == "init":
        raise typer.Exit(_init(path or Path("preflight-inventory.toml")))
    if path is not None:
        raise InputError(f"unexpected argument {str(path)!r} (only `audit init` takes a path)")
    from preflight.deadline import check_seconds

    seconds = check_seconds(deadline) if deadline is not None else None
    raise typer.Exit(_run(Path(inventory), output_dir, force, only or [], skip or [], workers, redact, fail_on,
                          as_of, seconds, fmt, output))


def _init(path: Path) -> int:
    from preflight.audit.inventory import TEMPLATE

    if path.exists():
        raise InputError(f"{path} exists already; choose another path")
    path.write_text(TEMPLATE, encoding="utf-8")
    sys.stderr.write(f"Wrote an example inventory to {path}. Edit it, then: preflight audit {path}\n")
    return 0


def _run(
    inv_path: Path, output_dir: Path | None, force: bool, only: list[str], skip: list[str], workers: int | None,
    redact: bool, fail_on: FailOn, as_of: str | None, deadline: float | None = None,
    fmt: TextFormat = TextFormat.table, output: Path | None = None,
) -> int:
    from dataclasses import replace

    import platformdirs

    from preflight import interrupt
    from preflight.audit.folder import claim
    from preflight.audit.inventory import load_inventory
    from preflight.audit.output import Consolidated, Rendered, place_tenant, render_tenant, write_tenant
    from preflight.audit.progress import AuditProgress
    from preflight.audit.runner import TenantRun, keep_freed_memory, run_audit, select
    from preflight.causes import load_catalogue
    from preflight.exitcodes import exit_code, worst
    from preflight.pipeline import as_of_date, default_registry
    from preflight.report.common import Labels, occurring_verdicts, verdict_text
    from preflight.runsecrets import for_command

    # This process ends with the audit: the results its workers send, unpickled and written one tenant after another,
    # reuse the same memory instead of the kernel mapping and zeroing it again for each (half the parent's page
    # faults in the 50x20 mixed audit); the workers fork with the setting made.
    keep_freed_memory()
    registry = default_registry()
    catalogue = load_catalogue()
    causes = {c.id for c in catalogue.causes}
    ids = {p.name: causes | {c.id for c in p.checks()} for p in registry.all()}
    inv = load_inventory(inv_path, registry.names, ids=ids)
    inv = replace(inv, customers=select(inv.customers, only, skip), workers=workers or inv.workers)
    started = datetime.now(UTC)
    now = as_of_date(as_of) if as_of else started
    cache_root = Path(platformdirs.user_cache_dir("preflight", appauthor=False)) / "tenants"
    for c in inv.customers:
        for x in c.expired(now.date()):
            sys.stderr.write(f"preflight: {c.key}: the exception for {x.match!r} expired on {x.expires}; "
                             "its findings count again\n")
    out = claim(output_dir, started, force, cache_root)
    redactor = _redactor() if redact else None

    labels = Labels.of(registry, catalogue)  # once, not per tenant: it is what every worker process forks with
    position = {c.key: i for i, c in enumerate(inv.customers)}
    told: dict[str, tuple[dict[str, int], int]] = {}  # per customer: its verdict counts and exit code

    with Consolidated(out, now, started, labels) as consolidated:
        # where a tenant's worker writes what it rendered, made before the workers fork (redaction: here, at the end)
        stage = None if redactor else consolidated.staging()

        def finished(run: TenantRun) -> None:
            if redactor is not None:  # its share of the consolidated files once every tenant taught the redactor
                told[run.customer.key] = (occurring_verdicts(run.result),
                                          int(exit_code([run.result], fail_on.value)))
                write_tenant(_redacted(run, redactor), out, now, started, labels=labels)
                return
            # rendered in its worker, its share of the consolidated files too (here only if its worker died); its
            # result came without its verdicts and findings
            rendered = run.files or render_tenant(run, now, started, labels, fail_on.value)
            told[run.customer.key] = (rendered.verdicts, rendered.code)
            if rendered.staged is not None:  # written by its worker: its folder appears whole
                place_tenant(rendered.staged, out)
            else:
                write_tenant(run, out, now, started, rendered.files, labels)
            consolidated.add(rendered.share, position[run.customer.key])  # now: its result is not kept

        def render(run: TenantRun) -> Rendered:  # in the tenant's worker; redaction learns across tenants: here
            return render_tenant(run, now, started, labels, fail_on.value, stage)

        # Ctrl-C keeps what finished: the first one ends the tenants' runs and the report of the others is written.
        with interrupt.graceful(), AuditProgress([c.key for c in inv.customers],
                                                 enabled=sys.stderr.isatty()) as progress:
            watched = progress.update if progress.enabled else None  # else the workers send no states
            runs, interrupted = run_audit(inv, registry, catalogue, now, cache_root, watched, finished,
                                          keep_snapshots=False, secrets=for_command(), deadline=deadline,
                                          prepare=None if redactor else render, keep_results=redactor is not None)
        if redactor is not None:  # redacted once every tenant taught the redactor its names, as each own folder was
            for r in runs:
                consolidated.add_run(_redacted(r, redactor), position[r.customer.key])
        consolidated.write(interrupted, {position[r.customer.key] for r in runs})
    for r in runs:
        state = "could not audit: " + "; ".join(r.result.errors) if r.result.errors else \
            verdict_text(told[r.customer.key][0])
        sys.stderr.write(f"{r.customer.key}: {state} ({r.seconds:.1f} s)\n")
    failed = sum(1 for r in runs if r.result.errors)
    counted = f"{len(runs) - failed} of {len(inv.customers)} tenants audited"
    if failed:
        counted += f", {failed} could not be audited"
    if len(runs) < len(inv.customers):
        counted += f", {len(inv.customers) - len(runs)} not run"
    sys.stderr.write(f"{counted}. Written to {out}/ (report.html, report.json, action-plan.md, action-plan.csv; "
                     "one folder per customer)\n")
    code = int(worst(told[r.customer.key][1] for r in runs))
    if fmt is TextFormat.json or output is not None:
        _write_summary([(r, *told[r.customer.key]) for r in runs], len(inv.customers), out, fmt, output)
    if interrupted:
        sys.stderr.write("preflight: interrupted; the report holds the tenants that finished\n")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(130)  # tenants still signing in hold threads that would otherwise delay the exit
    return code


def _write_summary(runs: list[tuple[Any, dict[str, int], int]], total: int, out: Path, fmt: TextFormat,
                   output: Path | None) -> None:
    """--format json / --output: the run's summary as data (the stderr lines say the same for people); `runs`
    each finished run with its verdict counts and exit code."""
    from preflight.output import write_text
    from preflight.report.common import verdict_text

    tenants = []
    for r, verdicts, _code in runs:
        tenants.append({"customer": r.customer.key, "verdicts": verdicts, "errors": list(r.result.errors),
                        "seconds": round(r.seconds, 1), "text": verdict_text(verdicts)})
    if fmt is TextFormat.json:
        import json

        data = {"schema": "preflight.audit-summary/v1", "output_dir": str(out), "tenants": tenants,
                "customers": total, "audited": sum(1 for r, _v, _c in runs if not r.result.errors)}
        write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", output)
    else:
        lines = [f"{x['customer']}: {'could not audit: ' + '; '.join(x['errors']) if x['errors'] else x['text']}"
                 for x in tenants]
        write_text("\n".join(lines) + "\n", output)


def _redactor() -> Any:
    from preflight.audit.redact import Redactor

    key = os.environ.get("PREFLIGHT_REDACT_KEY")
    return Redactor(key.encode() if key else None)


def _redacted(run: Any, redactor: Any) -> Any:
    """The run as --redact writes it: snapshot, result, customer name and folder, exceptions all pseudonymised,
    after the redactor learned every address, domain, name and id they hold."""
    if redactor is None:
        return run
    from dataclasses import replace

    from preflight import snapshot as snap_io
    from preflight.engine import Exception_
    from preflight.model import TargetResult

    c = run.customer
    redactor.learn_name(c.name)
    redactor.learn_name(c.key)
    redactor.learn({"settings": c.settings, "mailboxes": list(c.mailboxes), "from": c.from_addresses})
    if run.snapshot is not None:
        redactor.learn(run.snapshot.to_dict())
    redactor.learn(run.result.to_dict())
    snap = snap_io.parse(redactor.value(run.snapshot.to_dict())) if run.snapshot is not None else None
    result = TargetResult.from_dict(redactor.value(run.result.to_dict()))
    exceptions = tuple(Exception_(x.match, redactor.text(x.reason), redactor.text(x.subject) if x.subject else None,
                                  x.expires) for x in c.exceptions)
    customer = replace(c, key=redactor.folder(c.key), name=result.name,
                       exceptions=exceptions, settings={}, mailboxes=(), from_addresses={})
    return replace(run, customer=customer, result=result, snapshot=snap)


def diff(
    old: Annotated[Path, typer.Argument(help="Earlier report (report.json) or snapshot.")],
    new: Annotated[Path, typer.Argument(help="Later report or snapshot.")],
    fmt: TextFormatOpt = TextFormat.table,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date for evaluating snapshots.")] = None,
    output: OutputOpt = None,
) -> None:
    """What got fixed, what regressed and what is new between two audits. Exit 1 when something regressed."""
    from preflight.audit.diff import diff_reports, has_regressions, render_text, to_dict
    from preflight.output import write_text

    drifts = diff_reports(_as_report(old, as_of), _as_report(new, as_of))
    if fmt is TextFormat.json:
        import json

        write_text(json.dumps(to_dict(drifts), indent=2, allow_nan=False) + "\n", output)
    else:
        write_text(render_text(drifts), output)
    raise typer.Exit(1 if has_regressions(drifts) else 0)


def _as_report(path: Path, as_of: str | None) -> Any:
    from preflight.model import REPORT_SCHEMA
    from preflight.output import make_report
    from preflight.pipeline import as_of_date, default_registry, evaluate_snapshots
    from preflight.report.read import parse_report
    from preflight.snapshot import SCHEMA as SNAPSHOT_SCHEMA

    schema, data = _read_json(path)
    if schema == REPORT_SCHEMA:
        return parse_report(data, str(path))
    if schema == SNAPSHOT_SCHEMA:
        return make_report(evaluate_snapshots([path], default_registry(), as_of_date(as_of)))
    raise InputError(f"{path}: schema {schema!r} is neither {REPORT_SCHEMA} nor {SNAPSHOT_SCHEMA}")


def _read_json(path: Path) -> tuple[str | None, Any]:
    """(schema, data) of a JSON file that should be a preflight snapshot or report."""
    from preflight import strictjson

    data = strictjson.read(path)
    schema = data.get("schema") if isinstance(data, dict) else None
    return (schema if isinstance(schema, str) else None), data


def redact(
    files: Annotated[list[Path], typer.Argument(help="Snapshots or JSON reports to redact.")],
    output_dir: Annotated[Path, typer.Option("--output-dir", "-d", help="Where the redacted copies go.")],
) -> None:
    """Replace personal data (addresses, names, ids) with stable pseudonyms so the files can be shared.

    Pseudonyms are stable within one run; set PREFLIGHT_REDACT_KEY to keep them stable across runs. The
    copies are named snapshot-ID.json and report-ID.json, as a file name may name the customer.
    """
    import json

    from preflight import snapshot as snap_io
    from preflight.model import REPORT_SCHEMA
    from preflight.report.read import parse_report
    from preflight.snapshot import SCHEMA as SNAPSHOT_SCHEMA

    redactor = _redactor()
    read: list[tuple[Path, Path, Any]] = []  # (original, redacted copy, data)
    for path in files:
        schema, data = _read_json(path)
        # Only what preflight itself would write is redacted: a file of another shape could hold personal
        # data where the redactor does not look.
        if schema == SNAPSHOT_SCHEMA:
            snap_io.parse(data, str(path))
        elif schema == REPORT_SCHEMA:
            parse_report(data, str(path))
        else:
            raise InputError(f"{path}: not a preflight snapshot or report (schema {schema!r})")
        # A file named after its customer (contoso.json) would name it: each copy gets a pseudonymous name.
        kind = "snapshot" if schema == SNAPSHOT_SCHEMA else "report"
        target = output_dir / redactor.file_name(kind, str(path.resolve()))
        if target.resolve() == path.resolve():
            raise InputError(f"{target}: would overwrite the original; choose another --output-dir")
        if any(t == target for _, t, _ in read):
            raise InputError(f"{path}: given twice")
        read.append((path, target, data))
        redactor.learn(data)  # every file's names first: a name one file holds is replaced in all of them
    outputs = [(path, target, redactor.value(data)) for path, target, data in read]
    output_dir.mkdir(parents=True, exist_ok=True)
    for path, target, data in outputs:
        target.write_text(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
        sys.stderr.write(f"Redacted copy of {path}: {target}\n")
