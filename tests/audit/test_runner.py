"""The audit's worker processes: how the parallel tenants are spread, and what travels back to the parent."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

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
