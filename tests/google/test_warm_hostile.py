"""Google's warm (run.warm) runs in the audit's own process before the fork, for every Google customer at once:
garbled settings or a garbled saved profile must not end the audit (the tenant's own run reports them), print
anything, or show key material."""

from __future__ import annotations

from pathlib import Path

import pytest

from preflight.memo import RunMemo
from preflight.providers import Registry
from preflight_providers.google import profiles
from tests.google.fake import FakeGoogle


@pytest.mark.parametrize("saved", ['{"admin": 5}', '{"admin": ["a@b.example"]}'])
def test_a_garbled_saved_profile_neither_ends_the_audit_nor_prints(saved: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("PREFLIGHT_GOOGLE_PROFILE", raising=False)
    monkeypatch.delenv("PREFLIGHT_GOOGLE_KEY_FILE", raising=False)
    key = FakeGoogle([], tmp_path).key_file(tmp_path)
    profile = profiles.profile("garbled")
    profile.dir.mkdir(parents=True)
    profile.settings_path.write_text(saved)
    memo = RunMemo()  # before the fix: AttributeError out of warm, before the fork, ending the whole audit
    Registry.from_entry_points().get("google").warm([
        {"profile": "garbled", "auth": "service-account", "key_file": str(key)},
        {"profile": "garbled", "key_file": str(key)},
        {"profile": "garbled"},
    ], memo)
    assert capsys.readouterr() == ("", "")
    assert "0 entries" in repr(memo)


@pytest.mark.parametrize("saved", ['{"admin": 5}', '{"admin": ["a@b.example"]}', '{"key_file": {"x": 1}}'])
def test_a_garbled_saved_profile_is_one_line_naming_the_file(saved: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from preflight.errors import InputError
    from preflight_providers.google.run import plan

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    profile = profiles.profile("garbled")
    profile.dir.mkdir(parents=True)
    profile.settings_path.write_text(saved)
    with pytest.raises(InputError, match="is not text; remove the file"):
        plan(profile="garbled", auth=None, key_file=None, admin=None, client_secrets=None, domain="a.example",
             customer_id=None, mailboxes=["jobs@a.example"], methods=[], from_addresses={}, app_id=None)
