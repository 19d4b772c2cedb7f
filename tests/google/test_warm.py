"""An audit parses each service-account key once, before it forks its workers (providers.google.run.warm)."""

from __future__ import annotations

from pathlib import Path

import pytest

from preflight.memo import RunMemo
from preflight.providers import Registry
from preflight_providers.google.auth import ServiceAccountSigner, load_key_file
from tests.google.fake import FakeGoogle


@pytest.fixture
def key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("PREFLIGHT_GOOGLE_PROFILE", raising=False)
    monkeypatch.delenv("PREFLIGHT_GOOGLE_KEY_FILE", raising=False)
    return FakeGoogle([], tmp_path).key_file(tmp_path)


def test_warm_parses_each_key_once_and_a_signer_then_parses_none(key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives import serialization

    parsed: list[bytes] = []
    load = serialization.load_pem_private_key
    monkeypatch.setattr(serialization, "load_pem_private_key",
                        lambda data, *a, **kw: parsed.append(data) or load(data, *a, **kw))
    memo = RunMemo()
    customer = {"auth": "service-account", "key_file": str(key), "admin": "admin@a.example"}
    Registry.from_entry_points().get("google").warm([customer, {**customer, "admin": "admin@b.example"}], memo)
    assert len(parsed) == 1  # two Workspaces, one key
    ServiceAccountSigner(load_key_file(key), "admin@a.example", memo=memo)
    assert len(parsed) == 1


def test_warm_is_quiet_about_settings_the_tenant_will_report(key: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    memo = RunMemo()
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "service_account"')
    Registry.from_entry_points().get("google").warm([
        {"auth": "service-account", "key_file": str(broken), "admin": "admin@a.example"},
        {"auth": "service-account", "key_file": str(tmp_path / "missing.json"), "admin": "admin@a.example"},
        {"auth": "service-account", "key_file": str(key)},  # no admin
        {"auth": "oauth"},
    ], memo)
    assert capsys.readouterr() == ("", "")
    assert "0 entries" in repr(memo)
