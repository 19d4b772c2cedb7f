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
