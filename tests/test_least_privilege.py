"""Least privilege: every scope and permission preflight can request is read-only, or a documented opt-in."""

from __future__ import annotations

import re
import tomllib
from importlib.resources import files
from pathlib import Path

import pytest

from preflight_providers.google.settings import scopes

ROOT = Path(__file__).resolve().parent.parent
GOOGLE_SCOPE = re.compile(r"https://www\.googleapis\.com/auth/[a-z0-9._-]+")
MAIL_SCOPE = "https://mail.google.com/"
MAIL_SCOPE_ANY = re.compile(r"https?://mail\.google\.com")
# Identity scopes read only who signed in.
IDENTITY = {"openid", "https://www.googleapis.com/auth/userinfo.email"}
# Read-only in effect but not named so by Google: a documented opt-in each (scopes.toml says why).
GOOGLE_OPT_IN_EXCEPTIONS = {
    "https://www.googleapis.com/auth/apps.licensing": "--with-licenses",
    "https://www.googleapis.com/auth/admin.directory.user.security": "--with-tokens",
    "https://www.googleapis.com/auth/gmail.readonly": "--with-sendas",
    # Read-only, but the audit log says more than preflight needs: requested only when asked for.
    "https://www.googleapis.com/auth/admin.reports.audit.readonly": "--with-audit-log",
}
MICROSOFT_READ = re.compile(r"^[A-Za-z]+(\.[A-Za-z]+)*\.Read(\.[A-Za-z]+)*$")
# Exchange admin REST has no read-only permission; the admin's view-only role (Global Reader) keeps it
# read-only, and the client refuses any cmdlet but Get-* (providers/microsoft/exchange.py).
MICROSOFT_EXCEPTIONS = {"Exchange.Manage", "Exchange.ManageAsApp"}


def test_every_google_scope_is_read_only_or_an_opt_in() -> None:
    listed = scopes()
    assert listed
    for scope in listed:
        if scope.url in IDENTITY:
            continue
        if scope.url in GOOGLE_OPT_IN_EXCEPTIONS:
            assert scope.opt_in == GOOGLE_OPT_IN_EXCEPTIONS[scope.url], scope
            continue
        assert scope.read_only and scope.url.endswith(".readonly") and scope.opt_in is None, scope


def test_no_google_scope_is_requested_outside_the_list() -> None:
    listed = {s.url for s in scopes()}
    code = [p for p in (ROOT / "providers" / "google").rglob("*.py") if "checks" not in p.parts]
    for path in code:
        for url in GOOGLE_SCOPE.findall(path.read_text(encoding="utf-8")):
            assert url in listed, f"{path}: {url} is not in scopes.toml"


def test_the_send_scope_is_requested_only_for_an_explicit_probe() -> None:
    """https://mail.google.com/ (full Gmail, which SMTP needs) is never a collection scope. Only the probe's
    --token-from google asks for it, with the sending service's own key (docs/security.md, docs/probe.md);
    the checks only name it (what the sending service needs)."""
    assert MAIL_SCOPE not in {s.url for s in scopes()}
    smtptoken = ROOT / "providers" / "google" / "smtptoken.py"
    assert MAIL_SCOPE in smtptoken.read_text(encoding="utf-8")
    assert GOOGLE_SCOPE.findall(smtptoken.read_text(encoding="utf-8")) == []  # and nothing else
    for path in (ROOT / "providers" / "google").rglob("*.py"):
        if path == smtptoken or "checks" in path.parts:
            continue
        assert MAIL_SCOPE_ANY.search(path.read_text(encoding="utf-8")) is None, f"{path} names {MAIL_SCOPE}"
    for doc in ("security.md", "probe.md"):
        assert MAIL_SCOPE in (ROOT / "docs" / doc).read_text(encoding="utf-8"), doc


def _toml(name: str) -> dict[str, object]:
    return tomllib.loads(files("preflight_providers.microsoft").joinpath(f"data/{name}").read_text(encoding="utf-8"))


def test_microsoft_delegated_permissions_are_read_only() -> None:
    delegated = _toml("signin.toml")["delegated"]
    assert isinstance(delegated, dict)
    for api, permissions in delegated.items():
        for permission in permissions:
            assert MICROSOFT_READ.match(permission) or permission in MICROSOFT_EXCEPTIONS, (api, permission)


def test_microsoft_app_only_tokens_ask_only_for_what_the_admin_granted() -> None:
    for cloud, entry in _toml("clouds.toml").items():
        assert isinstance(entry, dict)
        for key in ("graph_scope", "exchange_scope"):
            assert str(entry[key]).endswith("/.default"), (cloud, key)


def test_the_documented_app_permissions_are_read_only() -> None:
    doc = (ROOT / "docs" / "microsoft-setup.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([A-Z][A-Za-z]+(?:\.[A-Za-z]+)+)`", doc))
    permissions = {p for p in named if re.search(r"\.(Read|Manage|ManageAsApp|ReadWrite|Send)\b", p)}
    assert {"Policy.Read.All", "Exchange.ManageAsApp"} <= permissions
    # SMTP.Send / SMTP.SendAsApp are what the *sending service* needs; preflight never requests them.
    for p in permissions - {"SMTP.Send", "SMTP.SendAsApp"}:
        assert MICROSOFT_READ.match(p) or p in MICROSOFT_EXCEPTIONS, p


@pytest.mark.parametrize("cmdlet", ["Set-CASMailbox", "New-ServicePrincipal", "Add-MailboxPermission"])
def test_the_exchange_client_refuses_anything_but_get(cmdlet: str) -> None:
    from preflight.http import Http
    from preflight_providers.microsoft.exchange import Exchange

    client = Exchange(Http(), "https://127.0.0.1:9", "contoso.com", "admin@contoso.com")
    with pytest.raises(ValueError, match="preflight only reads"):
        client.invoke(cmdlet, {"Identity": "jobs@contoso.com"})


def test_every_cmdlet_the_code_names_is_a_get() -> None:
    pattern = re.compile(r"\"((?:Get|Set|New|Add|Remove|Enable|Disable|Update|Grant|Revoke)-[A-Za-z]+)\"")
    for path in (ROOT / "providers" / "microsoft").rglob("*.py"):
        for cmdlet in pattern.findall(path.read_text(encoding="utf-8")):
            assert cmdlet.startswith("Get-"), f"{path}: {cmdlet}"


def test_microsoft_public_client_scopes_are_read_only() -> None:
    """Without an app registration Graph gets named read-only scopes (never /.default, which would carry
    whatever anyone consented to for Microsoft's shared app); the Exchange PowerShell client's /.default
    is Exchange.Manage, kept read-only like the delegated one (Get-only client, view-only role)."""
    public = _toml("signin.toml")["public"]
    assert isinstance(public, dict)
    assert public["graph"] and all(MICROSOFT_READ.match(p) for p in public["graph"]), public["graph"]
    assert public["exchange"] == [".default"]
