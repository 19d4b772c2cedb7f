"""Signing in without an app registration: Microsoft's public Graph and Exchange PowerShell clients, the
real msal against the fake over TLS, one device-code experience and one token cache, and every refusal
as one line with its cause and fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from preflight.cli import main
from preflight.errors import SignInError
from preflight_providers.microsoft.auth import MicrosoftSignIn, TokenError, public_settings, signin_data
from preflight_providers.microsoft.clouds import Cloud
from tests.microsoft.conftest import load_fixture
from tests.microsoft.fake import GRAPH_AUDIENCE, App, Call, FakeMicrosoft, FakeTenant, Reply, token_error

pytestmark = pytest.mark.slow

PUBLIC = signin_data()["public"]
GRAPH_CLI = PUBLIC["graph_client_id"]
EXO_PS = PUBLIC["exchange_client_id"]
READ = ("Policy.Read.All", "Directory.Read.All")


def public_tenant(graph: tuple[str, ...] = READ, exchange: tuple[str, ...] = ("Exchange.Manage",)) -> FakeTenant:
    snapshot = load_fixture("oauth-delegated")
    apps = {GRAPH_CLI: App(GRAPH_CLI, delegated={"graph": graph}),
            EXO_PS: App(EXO_PS, delegated={"exchange": exchange})}
    return FakeTenant(id=snapshot["tenant"]["id"], domains=(snapshot["tenant"]["domain"],), snapshot=snapshot,
                      apps=apps)


def sign_in(cloud: Cloud, tenant: FakeTenant, cache: Path, out: list[str], **kw: Any) -> MicrosoftSignIn:
    settings = public_settings(tenant.domains[0], cloud, cache_dir=cache, **kw)
    return MicrosoftSignIn(settings, persistence=None, out=out.append)


def test_both_public_clients_sign_in_once_into_one_cache(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                         tmp_path: Path) -> None:
    tenant = microsoft_fake.add_tenant(public_tenant())
    out: list[str] = []
    cache = tmp_path / "cache"
    first = sign_in(microsoft_cloud, tenant, cache, out)
    first.sign_in()
    assert first.token("exchange")
    codes = microsoft_fake.calls("devicecode")
    assert [c.parameters["client_id"] for c in codes] == [GRAPH_CLI, EXO_PS]
    # Graph: the named read-only scopes, never /.default; Exchange: the PowerShell client's /.default.
    assert set(codes[0].parameters["scope"].split()) >= {f"{GRAPH_AUDIENCE}/{s}" for s in READ}
    assert f"{GRAPH_AUDIENCE}/.default" not in codes[0].parameters["scope"]
    assert codes[1].parameters["scope"].split()[0].endswith("/.default")
    assert "[Graph] To sign in" in "\n".join(out) and "[Exchange admin API] To sign in" in "\n".join(out)
    assert "no app registration is needed" in out[0].lower()
    assert sorted(p.name for p in cache.iterdir()) == [f"{tenant.device_user}.json"]  # one cache

    again = sign_in(microsoft_cloud, tenant, cache, [], interactive=False)
    again.sign_in()
    assert again.token("exchange") and len(microsoft_fake.calls("devicecode")) == 2  # both silent from the cache
    # The fake refuses a refresh token presented by another client: Exchange rode its own sign-in.
    assert all(c.parameters["client_id"] == EXO_PS for c in microsoft_fake.calls("token")
               if "outlook" in c.parameters.get("scope", ""))


def test_no_consent_for_graph_is_one_line_with_its_cause(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                         tmp_path: Path) -> None:
    tenant = microsoft_fake.add_tenant(public_tenant(graph=()))
    with pytest.raises(SignInError) as info:
        sign_in(microsoft_cloud, tenant, tmp_path, []).sign_in()
    text = str(info.value)
    assert "AADSTS65001" in text and "[admin-consent-required]" in text and "Consent on behalf" in text
    assert "\n" not in text.split(" [admin-consent-required]")[1]
    assert microsoft_fake.calls("devicecode")[-1].parameters["client_id"] == GRAPH_CLI  # Exchange was never asked


def refuse(client: str, aadsts: str, text: str) -> Any:
    def hook(call: Call) -> Reply | None:
        if call.api == "token" and call.parameters.get("client_id") == client and \
                call.parameters.get("grant_type", "").endswith("device_code"):
            return token_error(400, "invalid_grant", aadsts, text)
        return None
    return hook


FAILURES = [
    ("AADSTS65001", "admin-consent-required", "The user or administrator has not consented to use the application "
     f"with ID '{GRAPH_CLI}' named 'Microsoft Graph Command Line Tools'."),
    ("AADSTS50105", "admin-app-assignment-required", "Your administrator has configured the application Microsoft "
     f"Graph Command Line Tools ('{GRAPH_CLI}') to block users unless they are specifically granted ('assigned') "
     "access to the application."),
    ("AADSTS53003", "admin-sign-in-blocked-by-ca", "Access has been blocked by Conditional Access policies. The access "
     "policy does not allow token issuance."),
    ("AADSTS7000112", "admin-app-disabled", f"Application '{GRAPH_CLI}'(Microsoft Graph Command Line Tools) is "
     "disabled."),
]


@pytest.mark.parametrize(("aadsts", "cause", "text"), FAILURES, ids=[f[0] for f in FAILURES])
def test_a_refused_graph_sign_in_names_cause_and_fix(aadsts: str, cause: str, text: str, microsoft_fake: FakeMicrosoft,
                                                     microsoft_cloud: Cloud, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = microsoft_fake.add_tenant(public_tenant())
    microsoft_fake.fault = refuse(GRAPH_CLI, aadsts, text)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with pytest.raises(SystemExit) as info:
        main(["login", "microsoft", "--tenant", tenant.domains[0], "--cloud", "fake"])
    err = capsys.readouterr().err
    line = [x for x in err.splitlines() if x.startswith("preflight: sign-in failed")]
    assert info.value.code == 4 and len(line) == 1, err
    assert aadsts in line[0] and f"[{cause}]" in line[0] and "Fix: " in line[0]
    assert "Trace ID" not in err and "Traceback" not in err


@pytest.mark.parametrize(("aadsts", "cause", "text"), FAILURES, ids=[f[0] for f in FAILURES])
def test_a_refused_exchange_sign_in_leaves_only_exchange_unknown(aadsts: str, cause: str, text: str,
                                                                 microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                                 tmp_path: Path) -> None:
    tenant = microsoft_fake.add_tenant(public_tenant())
    microsoft_fake.fault = refuse(EXO_PS, aadsts, text)
    out: list[str] = []
    signin = sign_in(microsoft_cloud, tenant, tmp_path, out)
    signin.sign_in()  # Graph still signed in
    assert signin.token("graph")
    line = [x for x in out if x.startswith("Exchange admin API:")]
    assert len(line) == 1 and aadsts in line[0] and f"[{cause}]" in line[0]
    with pytest.raises(TokenError) as info:
        signin.token("exchange")
    assert aadsts in info.value.message  # the resources behind Exchange record the real reason
    assert len(microsoft_fake.calls("devicecode")) == 2  # and nobody is asked again


def test_app_only_still_needs_your_own_app(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["login", "microsoft", "--tenant", "contoso.com", "--auth", "secret"])
    assert info.value.code == 2
    assert "--auth secret needs --client-id" in capsys.readouterr().err


def test_the_login_command_for_a_public_sign_in_names_no_client_id(microsoft_cloud: Cloud) -> None:
    settings = public_settings("contoso.com", microsoft_cloud)
    assert settings.login_command() == "preflight login microsoft --tenant contoso.com --cloud fake"
