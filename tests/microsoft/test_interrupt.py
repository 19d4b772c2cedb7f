"""Ctrl-C during `check microsoft` and `audit` (tests/interrupts.py): exit 130 at once, one line, no secret, the
token cache whole, no half-written report or snapshot; the audit still writes the report of what finished."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interrupts import Stall, assert_interrupted, assert_nothing_half_written, interrupt, stalled
from tests.leaks import assert_no_leak, files_text
from tests.microsoft.conftest import CLIENT_ID, SECRET, SECRET_ENV, audit_inventory, load_fixture, tenant_for
from tests.microsoft.fake import Call, FakeMicrosoft, Reply

pytestmark = pytest.mark.slow  # real servers and sign-ins (a subprocess for each Ctrl-C)


@pytest.fixture
def stall() -> Iterator[Stall]:
    yield from stalled()


def _microsoft(microsoft_fake: FakeMicrosoft, stall: Stall, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv(SECRET_ENV, SECRET)

    def slow(call: Call) -> Reply | None:
        if call.api in ("graph", "exchange"):
            stall.hold()
        return None

    microsoft_fake.fault = slow
    return str(snapshot["tenant"]["domain"])


def test_ctrl_c_during_check_microsoft(microsoft_fake: FakeMicrosoft, stall: Stall, monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    domain = _microsoft(microsoft_fake, stall, monkeypatch, tmp_path)
    args = ["--debug", "check", "microsoft", "--tenant", domain, "--client-id", CLIENT_ID, "--auth", "secret",
            "--client-secret-env", SECRET_ENV, "--cloud", "fake", "--mailbox", f"jobs@{domain}", "--format", "json",
            "--output", "report.json", "--save-snapshot", "snapshot.json"]
    code, out, err = interrupt(args, stall, tmp_path)
    assert_interrupted(code, out, err, [SECRET, *microsoft_fake.issued])
    assert not (tmp_path / "report.json").exists() and not (tmp_path / "snapshot.json").exists()
    assert_nothing_half_written(tmp_path, skip="xdg")
    assert_no_leak(files_text(tmp_path, skip="xdg"), [SECRET, *microsoft_fake.issued])
    # The token cache the sign-in wrote before the interrupt is whole: the next run signs in from it.
    caches = [p for p in (tmp_path / "xdg").rglob("*.json") if not p.name.startswith(".")]
    assert caches and all("AccessToken" in json.loads(p.read_text()) for p in caches)



def test_ctrl_c_during_audit_keeps_a_whole_report(microsoft_fake: FakeMicrosoft, stall: Stall,
                                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    domain = _microsoft(microsoft_fake, stall, monkeypatch, tmp_path)
    (tmp_path / "inventory.toml").write_text(audit_inventory(domain))
    code, out, err = interrupt(["--debug", "audit", "inventory.toml", "--output-dir", "out"], stall, tmp_path)
    assert_interrupted(code, out, err, [SECRET, *microsoft_fake.issued])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["audit"]["interrupted"] is True
    assert_nothing_half_written(tmp_path, skip="xdg")
    assert_no_leak(files_text(tmp_path / "out"), [SECRET, *microsoft_fake.issued])


@pytest.mark.parametrize("command,api", [("login", "token"), ("auth-check", "graph")])
def test_ctrl_c_during_login_and_auth_check(command: str, api: str, microsoft_fake: FakeMicrosoft, stall: Stall,
                                            monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Held while the client secret is in flight (login's token request) or the token is (auth-check's reads)."""
    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv(SECRET_ENV, SECRET)

    def slow(call: Call) -> Reply | None:
        if call.api == api:
            stall.hold()
        return None

    microsoft_fake.fault = slow
    args = ["--debug", command, "microsoft", "--tenant", str(snapshot["tenant"]["domain"]), "--client-id", CLIENT_ID,
            "--auth", "secret", "--client-secret-env", SECRET_ENV, "--cloud", "fake"]
    code, out, err = interrupt(args, stall, tmp_path)
    assert_interrupted(code, out, err, [SECRET, *microsoft_fake.issued])
    assert_nothing_half_written(tmp_path, skip="nothing")
