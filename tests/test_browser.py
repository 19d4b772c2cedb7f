"""The consolidated audit report in a real headless browser: it renders, shows the matrix, logs nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from preflight.audit.inventory import load_inventory
from preflight.audit.output import write_consolidated
from preflight.audit.runner import run_audit
from preflight.causes import load_catalogue
from preflight.providers import Registry
from tests.test_audit import GOOD, ToyProvider

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]


def browse(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM, "chromium is not installed: .ci/run installs it with apt-get"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="chromium not installed (CI installs it)")
def test_audit_report_renders_in_chromium_without_console_errors(tmp_path: Path) -> None:
    (tmp_path / "inventory.toml").write_text(GOOD)
    inv = load_inventory(tmp_path / "inventory.toml", ["microsoft"])
    provider = ToyProvider({"contoso.example": {"hr@contoso.example": True}, "fabrikam.example": {}},
                           fail={"broken.example"})
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    runs, _ = run_audit(inv, Registry([provider]), load_catalogue(), now, tmp_path / "cache")
    out = write_consolidated(runs, tmp_path / "out", now, interrupted=False)
    page = out / "report.html"

    dom = browse(page, tmp_path / "profile1", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Readiness across tenants" in dom.stdout and 'class="matrix"' in dom.stdout
    assert "smtp-auth-disabled-mailbox" in dom.stdout
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []

    shot = tmp_path / "report.png"
    result = browse(page, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1280,1600")
    assert result.returncode == 0 and shot.stat().st_size > 10_000
