"""The audit's worker processes: how the parallel tenants are spread, and what travels back to the parent."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from preflight.audit.inventory import load_inventory
from preflight.audit.output import render_tenant, write_tenant
from preflight.audit.runner import TenantRun, run_audit, spread, worker_processes
from preflight.causes import load_catalogue
from preflight.pipeline import default_registry

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
DEMO = Path(__file__).resolve().parents[2] / "docs" / "examples" / "demo-inventory.toml"


@pytest.mark.parametrize(("workers", "processes", "threads"), [
    (8, 2, [4, 4]), (3, 2, [2, 1]), (1, 1, [1]), (5, 4, [2, 1, 1, 1]), (7, 3, [3, 2, 2]), (0, 1, [1]),
])
def test_the_parallel_tenants_are_spread_over_the_processes_exactly(workers: int, processes: int,
                                                                    threads: list[int]) -> None:
    assert spread(workers, processes) == threads


@pytest.mark.parametrize("keep", [False, True])
def test_a_rendered_snapshot_stays_in_its_worker_and_is_written_private(tmp_path: Path, keep: bool) -> None:
    registry = default_registry()
    inv = load_inventory(DEMO, registry.names)
    if worker_processes(inv, registry) < 2:
        pytest.skip("one core, or no fork: the tenants run on threads in this process")
    seen: list[tuple[TenantRun, bool, set[str]]] = []  # (run, its snapshot reached on_done, the files it had)

    def done(run: TenantRun) -> None:
        seen.append((run, run.snapshot is not None, set(run.files.files if run.files else ())))
        write_tenant(run, tmp_path, NOW, files=run.files.files if run.files else None)

    runs, interrupted = run_audit(inv, registry, load_catalogue(), NOW, tmp_path / "cache", on_done=done,
                                  keep_snapshots=keep, prepare=lambda run: render_tenant(run, NOW))
    assert not interrupted and len(runs) == len(seen) == len(inv.customers) == 7
    for run, had_snapshot, files in seen:
        assert had_snapshot is keep  # without keep_snapshots only its text came back
        assert "snapshot.json" in files and run.files is None  # rendered in the worker; written, then dropped
        snapshot = tmp_path / run.customer.key / "snapshot.json"
        assert '"schema": "preflight.snapshot/v1"' in snapshot.read_text()
        assert stat.S_IMODE(snapshot.stat().st_mode) == 0o600  # as snapshot.save writes one


@pytest.mark.parametrize("keep", [False, True])
def test_a_rendered_result_leaves_its_findings_in_its_worker_unless_kept(tmp_path: Path, keep: bool) -> None:
    """What the parent needs of a rendered tenant is in its rendering: unless the run keeps results, its verdicts
    and findings are not pickled back, and the rendering tells its verdicts and exit code as its result would."""
    from preflight import snapshot as snap_io
    from preflight.model import Finding, MailboxVerdict
    from preflight.pipeline import evaluate_snapshot
    from preflight.report.common import occurring_verdicts

    registry = default_registry()
    inv = load_inventory(DEMO, registry.names)
    if worker_processes(inv, registry) < 2:
        pytest.skip("one core, or no fork: the tenants run on threads in this process")
    seen: list[tuple[TenantRun, list[Finding], list[MailboxVerdict], dict[str, int]]] = []  # as on_done had them

    def done(run: TenantRun) -> None:
        assert run.files is not None
        seen.append((run, list(run.result.findings), list(run.result.mailboxes), run.files.verdicts))

    _runs, interrupted = run_audit(inv, registry, load_catalogue(), NOW, tmp_path / "cache", on_done=done,
                                   keep_snapshots=False, keep_results=keep,
                                   prepare=lambda run: render_tenant(run, NOW))
    assert not interrupted and len(seen) == len(inv.customers) == 7
    for run, findings, mailboxes, verdicts in seen:
        customer = run.customer
        assert customer.snapshot is not None
        whole = evaluate_snapshot(snap_io.load(customer.snapshot), registry.get(customer.provider), NOW,
                                  customer.name, customer.exceptions, load_catalogue())
        assert whole.findings and whole.mailboxes
        assert (findings == whole.findings) is keep and (findings == []) is not keep
        assert (mailboxes == whole.mailboxes) is keep and (mailboxes == []) is not keep
        assert (run.result.name, run.result.tenant, run.result.errors) == (whole.name, whole.tenant, whole.errors)
        assert verdicts == occurring_verdicts(whole)  # what the parent reports of it


def test_the_rendering_tells_the_verdicts_and_exit_code_its_result_would(tmp_path: Path) -> None:
    from preflight import snapshot as snap_io
    from preflight.exitcodes import exit_code
    from preflight.model import TargetResult
    from preflight.pipeline import evaluate_snapshot
    from preflight.report.common import occurring_verdicts

    registry = default_registry()
    customers = load_inventory(DEMO, registry.names).customers
    cases = []
    for customer in customers:
        assert customer.snapshot is not None
        cases.append((customer, evaluate_snapshot(snap_io.load(customer.snapshot), registry.get(customer.provider),
                                                  NOW, customer.name, customer.exceptions, load_catalogue())))
    cases += [(customers[0], TargetResult("Broken", "microsoft", "broken.example", errors=["no such tenant"])),
              (customers[0], TargetResult("Empty", "microsoft", "empty.example"))]
    codes = set()
    for customer, result in cases:
        for fail_on in ("fail", "warn"):
            rendered = render_tenant(TenantRun(customer, result, None, 0.0), NOW, fail_on=fail_on)
            assert rendered.verdicts == occurring_verdicts(result)
            assert rendered.code == int(exit_code([result], fail_on))
            codes.add(rendered.code)
    assert codes == {0, 1, 4}  # a rendering that told one code for all would fail


def test_a_worker_collects_its_young_garbage_less_often_and_the_parent_as_before(tmp_path: Path) -> None:
    import gc

    from preflight.audit.runner import WORKER_GC_THRESHOLD

    registry = default_registry()
    inv = load_inventory(DEMO, registry.names)
    if worker_processes(inv, registry) < 2:
        pytest.skip("one core, or no fork: the tenants run on threads in this process")
    before = gc.get_threshold()
    seen: list[object] = []  # what each tenant's `prepare` found in the process it ran in
    run_audit(inv, registry, load_catalogue(), NOW, tmp_path / "cache", on_done=lambda run: seen.append(run.files),
              prepare=lambda _run: (gc.isenabled(), gc.get_threshold()))  # type: ignore[arg-type,return-value]
    assert seen == [(True, (WORKER_GC_THRESHOLD, *before[1:]))] * len(inv.customers)
    assert gc.get_threshold() == before


def test_a_worker_keeps_its_freed_memory_for_its_next_tenants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              ) -> None:
    import os

    from preflight.audit import runner

    registry = default_registry()
    inv = load_inventory(DEMO, registry.names)
    if worker_processes(inv, registry) < 2:
        pytest.skip("one core, or no fork: the tenants run on threads in this process")
    kept: list[int] = []  # the processes that asked (a worker is forked: it runs this module as patched here)
    monkeypatch.setattr(runner, "keep_freed_memory", lambda: kept.append(os.getpid()) or True)
    seen: list[Any] = []  # (the worker's pid, whether it asked), from each tenant's `prepare`
    run_audit(inv, registry, load_catalogue(), NOW, tmp_path / "cache", on_done=lambda run: seen.append(run.files),
              prepare=lambda _run: (os.getpid(), os.getpid() in kept))  # type: ignore[arg-type,return-value]
    assert len(seen) == len(inv.customers) and all(asked for _pid, asked in seen)
    assert os.getpid() not in kept and os.getpid() not in {pid for pid, _asked in seen}  # the workers, not here


def test_glibc_keeps_freed_memory_when_asked() -> None:
    import os

    from preflight.audit.runner import keep_freed_memory

    try:
        glibc = (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except ValueError:
        glibc = False
    assert keep_freed_memory() is glibc  # (this test process keeps 4 MiB more per heap: harmless)


@pytest.mark.parametrize("collecting", [True, False])
def test_the_providers_are_imported_without_collections_and_collecting_is_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collecting: bool) -> None:
    import gc

    from preflight.providers import PackagedProvider

    registry = default_registry()
    inv = load_inventory(DEMO, registry.names)
    if worker_processes(inv, registry) < 2:
        pytest.skip("one core, or no fork: the tenants run on threads in this process")
    during: list[bool] = []
    preload = PackagedProvider.preload
    monkeypatch.setattr(PackagedProvider, "preload", lambda self: (during.append(gc.isenabled()), preload(self)))
    (gc.enable if collecting else gc.disable)()
    try:
        runs, _ = run_audit(inv, registry, load_catalogue(), NOW, tmp_path / "cache")
        assert gc.isenabled() is collecting
    finally:
        gc.enable()
    assert during and not any(during)
    assert len(runs) == len(inv.customers) and not any(r.result.errors for r in runs)


def test_the_parent_keeps_what_the_workers_inherit_frozen_until_the_results_are_in(tmp_path: Path) -> None:
    import gc

    registry = default_registry()
    inv = load_inventory(DEMO, registry.names)
    if worker_processes(inv, registry) < 2:
        pytest.skip("one core, or no fork: the tenants run on threads in this process")
    assert gc.get_freeze_count() == 0
    frozen: list[int] = []  # in this process, as each tenant's result arrives
    runs, _ = run_audit(inv, registry, load_catalogue(), NOW, tmp_path / "cache",
                        on_done=lambda _run: frozen.append(gc.get_freeze_count()))
    assert len(frozen) == len(inv.customers) and all(frozen)  # its full collections do not walk the modules
    assert gc.get_freeze_count() == 0  # and collects them again once the audit is over
    assert not any(r.result.errors for r in runs)


@pytest.mark.parametrize("watched", [False, True])
def test_a_worker_sends_its_tenants_states_only_when_someone_watches_them(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          watched: bool) -> None:
    import multiprocessing.queues

    registry = default_registry()
    inv = load_inventory(DEMO, registry.names)
    if worker_processes(inv, registry) < 2:
        pytest.skip("one core, or no fork: the tenants run on threads in this process")
    kinds: list[str] = []  # each message this process received from its workers
    get = multiprocessing.queues.Queue.get

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        message = get(self, *args, **kwargs)
        kinds.append(message[0])
        return message

    monkeypatch.setattr(multiprocessing.queues.Queue, "get", counted)
    states: list[tuple[str, str]] = []
    runs, interrupted = run_audit(inv, registry, load_catalogue(), NOW, tmp_path / "cache",
                                  on_state=(lambda k, s: states.append((k, s))) if watched else None)
    assert not interrupted and len(runs) == len(inv.customers) and not any(r.result.errors for r in runs)
    assert kinds.count("done") == len(inv.customers)
    assert ("state" in kinds) is watched
    assert sorted(k for k, s in states if s == "done") == (sorted(c.key for c in inv.customers) if watched else [])


def test_a_worker_inherits_the_default_trust_stores_tls_context_parsed(tmp_path: Path) -> None:
    from preflight.deadline import tls_context
    from preflight.transport import Transport

    registry = default_registry()
    inv = load_inventory(DEMO, registry.names)
    if worker_processes(inv, registry) < 2:
        pytest.skip("one core, or no fork: the tenants run on threads in this process")
    tls_context.cache_clear()  # as in a new process: none parsed yet

    def parsed(_run: TenantRun) -> Any:  # in the worker: how many trust stores its tenant's HTTPS had to parse
        before = tls_context.cache_info().misses
        Transport().context()
        return tls_context.cache_info().misses - before

    seen: list[Any] = []
    run_audit(inv, registry, load_catalogue(), NOW, tmp_path / "cache", on_done=lambda run: seen.append(run.files),
              prepare=parsed)
    assert seen == [0] * len(inv.customers)
