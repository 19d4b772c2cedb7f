"""`preflight --debug audit` end to end against the fake: no client secret or token anywhere it writes,
token caches 0600 in the user cache folder and never in the output folder."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pytest

from preflight.cli import main
from tests.microsoft.conftest import CLIENT_ID, SECRET, load_fixture, tenant_for
from tests.microsoft.fake import FakeMicrosoft

pytestmark = pytest.mark.slow

INVENTORY = """
[defaults]
methods = ["basic", "oauth-app"]

[customer.alpha]
provider = "microsoft"
tenant = "alpha.example"
auth = "secret"
client_id = "{client_id}"
client_secret_env = "PF_TEST_SECRET"
cloud = "fake"
app_id = "5a7c9e21-4b3d-4f6a-8c2e-1d9f0b7a6e53"
mailboxes = ["jobs@contoso.com"]

[customer.beta]
provider = "microsoft"
tenant = "beta.example"
auth = "secret"
client_id = "{client_id}"
client_secret_env = "PF_TEST_SECRET"
cloud = "fake"
mailboxes = ["jobs@contoso.com", "alerts@contoso.com"]
"""


def test_audit_leaks_no_secret_and_keeps_caches_private(
    microsoft_fake: FakeMicrosoft, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for i, (domain, name) in enumerate([("alpha.example", "oauth-app-ready"), ("beta.example", "security-defaults")]):
        snap = load_fixture(name)
        snap["tenant"] = {**snap["tenant"], "id": str(uuid.UUID(int=i + 1)), "domain": domain}
        microsoft_fake.add_tenant(tenant_for(snap))
    monkeypatch.setenv("PF_TEST_SECRET", SECRET)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    inv = tmp_path / "inventory.toml"
    inv.write_text(INVENTORY.format(client_id=CLIENT_ID))
    out = tmp_path / "out"

    with pytest.raises(SystemExit) as info:
        main(["--debug", "audit", str(inv), "--output-dir", str(out)])
    stdout, stderr = capsys.readouterr()
    assert info.value.code == 1, stderr[-3000:]  # security defaults block Basic in beta
    assert "GET" in stderr or "POST" in stderr  # --debug really logged the HTTP calls

    sentinels = [SECRET, *microsoft_fake.issued]
    assert len(sentinels) > 2
    written = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {"report.html", "report.json", "snapshot.json", "action-plan.csv"}
    for text in [stdout, stderr, *(p.read_text(encoding="utf-8") for p in written)]:
        for secret in sentinels:
            assert secret not in text

    caches = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert caches, "the token caches live in the user cache folder"
    for cache in caches:
        assert stat.S_IMODE(cache.stat().st_mode) == 0o600, cache
    assert not any(p.resolve().is_relative_to((tmp_path / "cache").resolve()) for p in written)
    # one cache folder per tenant: no tenant can read another's token
    folders = {c.relative_to(tmp_path / "cache").parts[:4] for c in caches}
    assert len(folders) == 2, folders
    # read-only on the wire: Graph reads (POST only to carry a $batch of reads), Exchange Get-* only
    graph = microsoft_fake.calls("graph")
    assert graph and all(c.method == "GET" or (c.path == "/$batch" and not c.sub) for c in graph)
    assert all(c.method == "GET" for c in graph if c.sub)
    exchange = microsoft_fake.calls("exchange")  # a $batch carries only InvokeCommand POSTs, each logged
    cmdlets = {c.cmdlet for c in exchange if not c.path.endswith("/$batch")}
    assert cmdlets and all(str(c).startswith("Get-") for c in cmdlets), cmdlets
    assert all(not c.sub and c.cmdlet is None for c in exchange if c.path.endswith("/$batch"))


def test_output_folder_may_not_hold_token_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    inv = tmp_path / "inventory.toml"
    inv.write_text(INVENTORY.format(client_id=CLIENT_ID))
    with pytest.raises(SystemExit) as info:
        main(["audit", str(inv), "--output-dir", str(tmp_path / "cache" / "preflight")])
    assert info.value.code == 2 and "must not hold token caches" in capsys.readouterr().err
