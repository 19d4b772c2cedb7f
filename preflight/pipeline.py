"""The one pipeline every report-producing command runs through.

    check microsoft|google   provider signs in and collects -> save (--save-snapshot) -> evaluate -> emit
    evaluate SNAPSHOT...     load -> evaluate -> emit
    demo                     the providers' bundled snapshots -> evaluate -> emit (and the HTML report)
    audit                    per tenant: collect or load -> evaluate; the audit writes its own folder

A provider only signs in and collects (its `run` module); what happens to the collected snapshot is
decided here, once, for every provider.

Unreachable admin APIs, one rule for every provider, in `check` and in `audit`: when a live collection
read nothing at all and no read got an answer from the service (every resource failed without an HTTP
status: DNS, refused connection, a proxy or TLS interception in the way), the tenant is reported as a
target holding only that error, with no findings (each check would be unknown for a reason that is not
the tenant's), and the exit code is 4. `check` still writes that report (and the snapshot, when asked),
so a scheduled run keeps a file that says why. A refusal (401/403) is an answer: its checks are unknown,
naming the grant (exit 3). A deadline that ran out is not unreachability either: what was not read is
unknown. Offline `evaluate` of a saved snapshot does not apply the rule: it reports what the file holds.

Progress: one printer, `progress()`, writes `preflight: <message>` to stderr, masked with the run's
secrets; reports go to stdout or --output.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from preflight.errors import InputError

if TYPE_CHECKING:
    from preflight.causes import Catalogue
    from preflight.engine import Exception_
    from preflight.model import Report, TargetResult
    from preflight.output import FailOn, Format
    from preflight.providers import Provider, Registry
    from preflight.snapshot import Snapshot


def default_registry() -> Registry:
    """The installed providers (entry-point group `preflight.providers`)."""
    from preflight.providers import Registry

    return Registry.from_entry_points()


def as_of_date(value: str | None) -> datetime:
    """--as-of YYYY-MM-DD: noon UTC that day, so a date-dependent check gives one answer worldwide; None: now."""
    if value is None:
        return datetime.now(UTC)
    try:
        return datetime.combine(date.fromisoformat(value), time(12), tzinfo=UTC)
    except ValueError:
        raise InputError(f"--as-of: {value!r} is not a date (YYYY-MM-DD)") from None


def progress(message: str) -> None:
    """One progress line for the person at the terminal: stderr, `preflight: ` first, secrets masked."""
    from preflight.runsecrets import for_command

    sys.stderr.write(f"preflight: {for_command().mask(message)}\n")
    sys.stderr.flush()


# --- evaluate -----------------------------------------------------------------------------------------


def evaluate_snapshot(snap: Snapshot, provider: Provider, now: datetime, name: str | None = None,
                      exceptions: Sequence[Exception_] = (), catalogue: Catalogue | None = None) -> TargetResult:
    """The provider's checks over one snapshot, as of `now`."""
    from preflight.causes import load_catalogue
    from preflight.engine import evaluate

    return evaluate(snap, provider.checks(), catalogue or load_catalogue(), now, provider.permissions(), name,
                    exceptions, resources=provider.resources())


def evaluate_snapshots(paths: Sequence[Path], registry: Registry, now: datetime) -> list[TargetResult]:
    """Saved snapshot files, each by the provider it names; every file is read and checked before any is
    evaluated, so a bad second file fails fast."""
    from preflight import snapshot as snap_io
    from preflight.causes import load_catalogue

    catalogue = load_catalogue()
    snapshots = [snap_io.load(p) for p in paths]
    results = []
    for snap in snapshots:
        try:
            provider = registry.get(snap.provider)
        except InputError as exc:
            raise InputError(f"{snap.source}: {exc}") from None
        results.append(evaluate_snapshot(snap, provider, now, catalogue=catalogue))
    return results


def unanswered(values: Iterable[Any]) -> dict[str, Any] | None:
    """The first network failure when no read got an answer (the rule in the module docstring), else None."""
    from preflight.snapshot import error_of

    errors = [error_of(v) for v in values]
    if not errors or any(e is None or e.get("status") is not None for e in errors):
        return None
    return next((e for e in errors if e is not None and e.get("code") != "DeadlineExceeded"), None)


def unreachable(snap: Snapshot, title: str) -> str | None:
    """Why the admin APIs could not be reached at all, or None."""
    values: list[Any] = list(snap.org.values())
    for box in snap.mailboxes.values():
        values.extend(box.values())
    first = unanswered(values)
    return None if first is None else f"could not reach the {title} admin APIs ({first.get('code')}: " \
                                      f"{first.get('message')})"


def evaluate_collected(snap: Snapshot, provider: Provider, now: datetime, name: str | None = None,
                       exceptions: Sequence[Exception_] = (), catalogue: Catalogue | None = None) -> TargetResult:
    """A live collection's result: the unreachable rule first, then the checks."""
    from preflight.model import TargetResult

    problem = unreachable(snap, provider.title)
    if problem is not None:
        return TargetResult(name=name or snap.tenant_label, provider=provider.name, tenant=snap.tenant_label,
                            errors=[problem])
    return evaluate_snapshot(snap, provider, now, name, exceptions, catalogue)


# --- check --------------------------------------------------------------------------------------------


def check(provider: Provider, collected: Mapping[str, Any], source: str, *, save_snapshot: Path | None,
          fmt: Format, output: Path | None, fail_on: FailOn) -> int:
    """`preflight check PROVIDER` after the provider collected: save, evaluate, emit; the exit code."""
    from preflight import snapshot as snap_io

    snap = snap_io.parse_collected(dict(collected), source)
    if save_snapshot is not None:
        try:
            snap_io.save(snap, save_snapshot)
        except OSError as exc:
            raise InputError(f"{save_snapshot}: cannot write snapshot ({exc.strerror or type(exc).__name__})") \
                from None
        progress(f"Snapshot written to {save_snapshot}")
    return emit([evaluate_collected(snap, provider, datetime.now(UTC))], fmt, output, fail_on)


# --- emit ---------------------------------------------------------------------------------------------


def write_report(report: Report, fmt: Format, output: Path | None, *, summary: bool = False) -> None:
    """The report (or, with --summary, its verdict counts per tenant) on stdout or in --output."""
    from preflight.output import color_enabled, write_text
    from preflight.report import render

    if summary:
        from preflight.summary import render_summary

        write_text(render_summary(report, fmt.value), output)
    else:
        write_text(render(report, fmt.value, color=output is None and color_enabled()), output)
    if output is not None:
        progress(f"Report written to {output}")


def emit(results: Sequence[TargetResult], fmt: Format, output: Path | None, fail_on: FailOn, *,
         summary: bool = False) -> int:
    """Render and write the results; return the exit code (DESIGN §8), the same with or without --summary."""
    from preflight.exitcodes import exit_code
    from preflight.output import make_report

    write_report(make_report(results), fmt, output, summary=summary)
    return int(exit_code(results, fail_on.value))
