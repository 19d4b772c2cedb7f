"""The cause catalogue is a public contract (DESIGN §3): validate the data file."""

from __future__ import annotations

import re
import tomllib
from importlib.resources import files

import pytest

from preflight.causes import load_catalogue
from preflight.providers import Registry

DESIGN_IDS = """
mailbox-not-found shared-mailbox alias-address account-disabled no-mailbox-license wrong-credentials
smtp-auth-disabled-tenant smtp-auth-disabled-mailbox basic-auth-policy-block security-defaults
ca-legacy-auth-block ca-location-block mfa-required basic-auth-retirement password-login-retired
app-password-required app-passwords-unavailable web-login-required third-party-apps-blocked
oauth-app-not-authorized oauth-token-invalid send-as-denied sending-limit tenant-sending-blocked dns-failure
connection-timeout connection-refused ip-not-allowed starttls-required tls-version-unsupported
tls-certificate-invalid auth-not-offered auth-required rate-limited temporary-failure
""".split()


def raw() -> list[dict[str, object]]:
    text = files("preflight").joinpath("data/causes.toml").read_text(encoding="utf-8")
    causes: list[dict[str, object]] = tomllib.loads(text)["cause"]
    return causes


def test_every_design_id_is_in_the_catalogue() -> None:
    ids = {c.id for c in load_catalogue().causes}
    assert set(DESIGN_IDS) <= ids, set(DESIGN_IDS) - ids


def test_ids_are_unique_and_well_formed() -> None:
    ids = [str(c["id"]) for c in raw()]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", i) for i in ids)


@pytest.mark.parametrize("cause", raw(), ids=lambda c: str(c["id"]))
def test_cause_is_complete(cause: dict[str, object]) -> None:
    assert str(cause["title"]).strip() and len(str(cause["title"])) <= 90
    assert len(str(cause["explanation"])) >= 40
    remediation = cause["remediation"]
    assert isinstance(remediation, dict) and remediation
    assert set(remediation) <= set(load_catalogue().remediation_keys)
    assert all(str(v).strip() for v in remediation.values())
    for link in cause.get("docs", []):  # type: ignore[attr-defined]
        assert str(link).startswith("https://")
    for pattern in cause.get("pattern", []):  # type: ignore[attr-defined]
        re.compile(pattern["regex"])
        assert 0 < float(pattern["confidence"]) <= 1
        assert pattern.get("provider") in (None, *(p.name for p in load_catalogue().providers))


def test_fix_falls_back_to_generic_and_names_the_subject() -> None:
    cat = load_catalogue()
    assert "jobs@contoso.com" in cat.get("smtp-auth-disabled-mailbox").fix("microsoft", "jobs@contoso.com")
    # no google text for this one: the generic text, never an empty string
    assert cat.get("connection-refused").fix("google") == cat.get("connection-refused").remediation["generic"]


def test_every_cause_a_check_names_exists() -> None:
    cat = load_catalogue()
    registry = Registry.from_entry_points()
    assert registry.names == ["google", "microsoft"]
    for provider in registry.all():
        seen: set[str] = set()
        for check in provider.checks():
            assert check.cause is None or check.cause in cat, (check.id, check.cause)
            assert check.id not in seen, f"duplicate check id {check.id}"
            seen.add(check.id)
