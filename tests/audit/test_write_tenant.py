"""An audit's per-tenant files: whole or absent (temporary file, then rename), not synced one by one."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from preflight.audit.inventory import Customer
from preflight.audit.output import write_tenant
from preflight.audit.runner import TenantRun
from preflight.model import Method
from tests.conftest import NOW

DEMO = Path(__file__).resolve().parents[2] / "docs" / "examples" / "demo-inventory.toml"


def test_a_tenants_files_are_renamed_into_place_without_a_sync_each(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    customer = Customer(key="t000", name="Tenant 000", provider="microsoft", settings={},
                        mailboxes=("jobs@contoso.example",), methods=(Method.BASIC,))
    run = TenantRun(customer, None, None, 0.0)  # type: ignore[arg-type]  # the files are already rendered
    folder = write_tenant(run, tmp_path, NOW, files={"snapshot.json": "{}\n", "report.html": "<html></html>\n"})
    assert synced == []
    assert (folder / "report.html").read_text() == "<html></html>\n"
    assert stat.S_IMODE((folder / "snapshot.json").stat().st_mode) == 0o600
    assert sorted(p.name for p in folder.iterdir()) == ["report.html", "snapshot.json"]  # no temporary file left


def _demo_runs() -> list[TenantRun]:
    """The demo inventory's tenants evaluated, with their snapshots (one has an expired exception)."""
    from preflight import snapshot as snap_io
    from preflight.audit.inventory import load_inventory
    from preflight.causes import load_catalogue
    from preflight.pipeline import default_registry, evaluate_snapshot

    registry = default_registry()
    runs = []
    for c in load_inventory(DEMO, registry.names).customers:
        assert c.snapshot is not None
        snap = snap_io.load(c.snapshot)
        result = evaluate_snapshot(snap, registry.get(c.provider), NOW, c.name, c.exceptions, load_catalogue())
        runs.append(TenantRun(c, result, snap, 1.0))
    return runs


def _tree(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_tenant_rendered_into_the_stage_is_written_as_from_its_texts_and_only_names_travel(tmp_path: Path) -> None:
    """A worker that writes its tenant's folder and its share's texts into the stage: the same bytes and modes,
    folder by folder and in the consolidated files, as the parent writing them from the texts sent to it; what it
    sends (the Rendered, pickled) holds no text."""
    import pickle

    from preflight.audit.output import Consolidated, place_tenant, render_tenant
    from preflight.report.common import Labels

    labels = Labels.load()
    runs = _demo_runs()
    sent, staged_sent = [], []
    with Consolidated(tmp_path / "texts", NOW, labels=labels) as texts, \
            Consolidated(tmp_path / "staged", NOW, labels=labels) as staged:
        stage = staged.staging()
        assert stage.parent == tmp_path / "staged" and stat.S_IMODE(stage.stat().st_mode) == 0o700
        for i, run in reversed(list(enumerate(runs))):  # the last first, as tenants finish in any order
            rendered = render_tenant(run, NOW, labels=labels, fail_on="warn")
            write_tenant(run, tmp_path / "texts", NOW, files=rendered.files)
            texts.add(rendered.share, i)
            sent.append(len(pickle.dumps(rendered)))
            kept = render_tenant(run, NOW, labels=labels, fail_on="warn", stage=stage)
            assert kept.files == {} and kept.share.texts == {} and kept.staged == stage / run.customer.key
            assert (kept.verdicts, kept.code) == (rendered.verdicts, rendered.code)
            staged_sent.append(len(pickle.dumps(kept)))
            assert place_tenant(kept.staged, tmp_path / "staged") == tmp_path / "staged" / run.customer.key
            staged.add(kept.share, i)
        texts.write(False)
        staged.write(False)
        assert stage.is_dir()  # the shares' texts are read from it until the consolidated files are written
    assert not stage.exists()
    assert _tree(tmp_path / "staged") == _tree(tmp_path / "texts")
    assert sorted(p.name for p in (tmp_path / "staged").iterdir()) == sorted(
        ["report.json", "report.html", "action-plan.md", "action-plan.csv", *(r.customer.key for r in runs)])
    assert min(sent) > 50_000 and max(staged_sent) < 5_000


def test_a_staged_folder_joins_one_that_force_kept_file_by_file(tmp_path: Path) -> None:
    from preflight.audit.output import place_tenant

    staged = tmp_path / "stage" / "contoso"
    staged.mkdir(parents=True)
    (staged / "report.json").write_text("new")
    (staged / "report.html").write_text("<html>")
    kept = tmp_path / "out" / "contoso"
    kept.mkdir(parents=True)
    (kept / "notes.txt").write_text("mine")
    (kept / "report.json").write_text("old")
    assert place_tenant(staged, tmp_path / "out") == kept
    assert {p.name: p.read_text() for p in kept.iterdir()} == {"notes.txt": "mine", "report.json": "new",
                                                               "report.html": "<html>"}
    assert not staged.exists()


def test_force_removes_a_stage_an_audit_ended_at_once_left(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from preflight.audit.folder import STAGE_PREFIX, claim

    out = tmp_path / "out"
    (out / f"{STAGE_PREFIX}x1y2" / "contoso").mkdir(parents=True)
    (out / f"{STAGE_PREFIX}x1y2" / "contoso" / "report.json").write_text("{}")
    (out / ".mine").mkdir()
    (out / ".mine" / "notes.txt").write_text("mine")
    claim(out, datetime.now(UTC), True, tmp_path / "cache")
    assert [p.name for p in out.iterdir()] == [".mine"]


@pytest.mark.slow
def test_an_interrupted_audit_leaves_whole_tenant_folders_its_report_names_and_no_stage(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the third tenant's folder is placed: the two placed are whole and the report holds them, the
    others (their workers ended, or their folders in the stage) are absent, and so is the stage."""
    import json

    import typer

    from preflight.audit import output
    from preflight.audit.cli import audit

    place, placed = output.place_tenant, []

    def interrupted(staged: Path, out_dir: Path) -> Path:
        if len(placed) == 2:
            raise KeyboardInterrupt
        placed.append(staged.name)
        return place(staged, out_dir)

    here, exit_ = os.getpid(), os._exit

    def leave(code: int) -> None:  # this process only: a worker forked from it ends as it would
        if os.getpid() != here:
            exit_(code)
        raise typer.Exit(code)

    monkeypatch.setattr(output, "place_tenant", interrupted)
    monkeypatch.setattr(os, "_exit", leave)
    out = tmp_path / "out"
    with pytest.raises(typer.Exit) as info:
        audit(str(DEMO), output_dir=out)
    assert info.value.exit_code == 130
    report = json.loads((out / "report.json").read_text())
    assert report["audit"]["interrupted"] is True and report["audit"]["customers"] == sorted(
        placed, key=[c.customer.key for c in _demo_runs()].index)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["report.json", "report.html", "action-plan.md", "action-plan.csv", *placed])  # no stage, nothing else
    for key in placed:
        assert sorted(p.name for p in (out / key).iterdir()) == [
            "action-plan.csv", "action-plan.md", "report.html", "report.json", "snapshot.json"]
