"""`preflight check|login|logout|auth-check microsoft` end to end against the fake, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from preflight.errors import SignInError
from preflight.model import Method
from preflight.providers import CollectRequest
from preflight_providers.microsoft import provider
from tests.conftest import run_cli
from tests.microsoft.conftest import CLIENT_ID, SECRET, SECRET_ENV, load_fixture, tenant_for
from tests.microsoft.fake import FakeMicrosoft, throttle

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("isolated", "secret_env")]


def sign_in_args(snapshot: dict[str, Any]) -> list[str]:
    return ["--tenant", snapshot["tenant"]["domain"], "--client-id", CLIENT_ID, "--auth", "secret",
            "--client-secret-env", SECRET_ENV, "--cloud", "fake"]


def check_args(snapshot: dict[str, Any]) -> list[str]:
    args = ["check", "microsoft", *sign_in_args(snapshot)]
    options = snapshot["options"]
    for address in snapshot["mailboxes"]:
        args += ["--mailbox", address]
    for method in options["methods"]:
        args += ["--method", method]
    for ip in options["sender_ips"]:
        args += ["--sender-ip", ip]
    if options["app_id"]:
        args += ["--app-id", options["app_id"]]
    for mailbox, sender in options["from_addresses"].items():
        args += ["--from", f"{mailbox}={sender}"]
    return args


def targets(report: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(report)["targets"]
    return data


@pytest.mark.parametrize("name", ["oauth-app-ready", "security-defaults", "accounts", "send-as", "forbidden",
                                  "ca-location-outside"])
def test_check_reports_what_evaluate_reports_for_the_saved_snapshot(
        name: str, microsoft_fake: FakeMicrosoft, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = load_fixture(name)
    microsoft_fake.add_tenant(tenant_for(snapshot))
    saved = tmp_path / "snap.json"
    code, out, err = run_cli([*check_args(snapshot), "--save-snapshot", str(saved), "--format", "json"], capsys)
    assert f"Snapshot written to {saved}" in err
    offline_code, offline, _ = run_cli(["evaluate", str(saved), "--format", "json"], capsys)
    assert targets(out) == targets(offline)
    assert code == offline_code
    assert targets(out)[0]["findings"], "the provider's checks ran"


def test_check_with_a_device_code_sign_in(microsoft_fake: FakeMicrosoft, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = load_fixture("oauth-delegated")
    tenant = microsoft_fake.add_tenant(tenant_for(snapshot))
    args = check_args(snapshot)
    args[args.index("secret")] = "device-code"
    saved = tmp_path / "snap.json"
    code, out, err = run_cli([*args, "--save-snapshot", str(saved), "--format", "json"], capsys)
    assert "enter the code FAKE" in err and f"Signed in as {tenant.device_user}" in err
    offline_code, offline, _ = run_cli(["evaluate", str(saved), "--format", "json"], capsys)
    assert (code, targets(out)) == (offline_code, targets(offline))
    anchors = {h.get("X-AnchorMailbox") for api, h in microsoft_fake.headers_seen if api == "exchange"}
    assert anchors == {f"UPN:{tenant.device_user}"}  # Exchange routes a delegated call by the admin's mailbox
    boxes = json.loads(saved.read_text())["mailboxes"]
    assert boxes and not any("mailboxSettings" in box for box in boxes.values())  # an app-only permission


def test_a_delegated_audit_uses_the_sign_in_that_preflight_login_cached(
        microsoft_fake: FakeMicrosoft, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = load_fixture("oauth-delegated")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    tenant = snapshot["tenant"]["domain"]
    request = CollectRequest(settings={"tenant": tenant, "client_id": CLIENT_ID, "auth": "device-code",
                                       "cloud": "fake"},
                             mailboxes=list(snapshot["mailboxes"]), methods=[Method.OAUTH_DELEGATED],
                             app_id=snapshot["options"]["app_id"], cache_dir=tmp_path / "customer-cache")
    login = f"preflight login microsoft --tenant {tenant} --client-id {CLIENT_ID} --cloud fake"
    with pytest.raises(SignInError) as info:
        provider.collect(request)  # nobody signed in yet, and an audit never prompts
    assert f"run `{login}` first" in str(info.value)
    code, _out, err = run_cli(login.split()[1:], capsys)
    assert code == 0 and "enter the code FAKE" in err
    got = provider.collect(request)
    assert sorted(got["mailboxes"]) == sorted(snapshot["mailboxes"])
    assert got["mailboxes"]["alice@contoso.com"]["user"] == snapshot["mailboxes"]["alice@contoso.com"]["user"]
    assert not (tmp_path / "customer-cache").exists()  # app-only audits keep their own folder; this one did not


def test_every_resource_forbidden_makes_every_dependent_check_unknown(
        microsoft_fake: FakeMicrosoft, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = load_fixture("forbidden")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    code, out, _err = run_cli([*check_args(snapshot), "--format", "json"], capsys)
    assert code == 3
    reads = {c.id: c.reads for c in provider.checks()}
    findings = targets(out)[0]["findings"]
    dependent = [f for f in findings if reads[f["check"]]]
    assert dependent and all(f["status"] in ("unknown", "skipped") for f in dependent), [
        (f["check"], f["status"]) for f in dependent if f["status"] not in ("unknown", "skipped")]
    assert all(v["verdict"] == "incomplete" for v in targets(out)[0]["mailboxes"])
    unknown = [f for f in dependent if f["status"] == "unknown"]
    assert all(f["remediation"] and f["remediation"].startswith("Grant ") for f in unknown)


def test_no_secret_or_token_reaches_logs_reports_or_snapshots(
        microsoft_fake: FakeMicrosoft, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    saved, report = tmp_path / "snap.json", tmp_path / "report.html"
    code, out, err = run_cli([*check_args(snapshot), "--save-snapshot", str(saved), "--format", "html", "--output",
                              str(report), "--debug"], capsys)
    assert code == 0, err
    assert "debug: preflight.http: POST https://" in err  # the HTTP calls are logged...
    secrets_seen = [SECRET, *microsoft_fake.issued]
    assert len(secrets_seen) >= 3
    for text in (out, err, saved.read_text(), report.read_text()):
        assert not any(s in text for s in secrets_seen)  # ...but never a token or the secret
    cache = next((tmp_path / "xdg").rglob("app-*.json"))
    assert oct(cache.stat().st_mode & 0o777) == "0o600"


def test_login_caches_the_token_for_the_next_check(microsoft_fake: FakeMicrosoft, capsys: pytest.CaptureFixture[str]
                                                   ) -> None:
    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    code, out, err = run_cli(["login", "microsoft", *sign_in_args(snapshot)], capsys)
    assert code == 0 and out == ""
    assert f"Signed in to contoso.com as app {CLIENT_ID}." in err and "(plain file, mode 0600)" in err
    graph_tokens = len(microsoft_fake.calls("token"))
    code, _out, _err = run_cli(check_args(snapshot), capsys)
    assert code == 0
    assert len(microsoft_fake.calls("token")) == graph_tokens + 1  # only the Exchange token was new

    code, _out, err = run_cli(["logout", "microsoft", "--tenant", "contoso.com", "--cloud", "fake"], capsys)
    assert code == 0 and "Removed 1 token cache(s)." in err
    code, _out, err = run_cli(["logout", "microsoft", "--tenant", "contoso.com", "--cloud", "fake"], capsys)
    assert "No cached sign-in found." in err


@pytest.mark.parametrize(("change", "message"), [
    ({"--client-id": "not-a-guid"}, "--client-id: 'not-a-guid' is not a GUID"),
    ({"--tenant": "con toso"}, "--tenant: 'con toso' is not a tenant id"),
    ({"--mailbox": "jobs(at)contoso.com"}, "--mailbox: 'jobs(at)contoso.com' is not an email address"),
    ({"--sender-ip": "203.0.113.0/40"}, "--sender-ip: '203.0.113.0/40' is not an IP address or CIDR range"),
    ({"--app-id": "x"}, "--app-id: 'x' is not a GUID"),
    ({"--cloud": "mars"}, "--cloud: unknown cloud 'mars'"),
    ({"--auth": "certificate"}, "--auth certificate needs --certificate PATH"),
    ({"--client-secret-env": "PF_UNSET_VARIABLE"}, "--client-secret-env PF_UNSET_VARIABLE: that environment"),
    ({"--method": "carrier-pigeon"}, "Invalid value for '--method'"),
])
def test_bad_input_is_one_line_and_exit_2(change: dict[str, str], message: str, microsoft_fake: FakeMicrosoft,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    args = [*check_args(snapshot), "--sender-ip", "198.51.100.0/24"]
    for option, value in change.items():
        if option in args:
            args[args.index(option) + 1] = value
        else:
            args += [option, value]
    code, out, err = run_cli(args, capsys)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1, err


def test_a_refused_sign_in_exits_4(microsoft_fake: FakeMicrosoft, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    monkeypatch.setenv(SECRET_ENV, "a-wrong-secret-value")
    code, out, err = run_cli(check_args(snapshot), capsys)
    assert code == 4 and out == ""
    assert "preflight: sign-in failed: contoso.com: invalid_client: AADSTS7000215" in err
    assert "a-wrong-secret-value" not in err


def test_auth_check_shows_what_can_be_read(microsoft_fake: FakeMicrosoft, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    code, out, err = run_cli(["auth-check", "microsoft", *sign_in_args(snapshot), "--mailbox", "jobs@contoso.com",
                              "--app-id", snapshot["options"]["app_id"], "--format", "json"], capsys)
    assert code == 0, out
    report = json.loads(out)
    assert report["all_readable"] is True
    probed = {p["resource"] for p in report["probes"]}
    assert probed >= {"securityDefaults", "conditionalAccessPolicies", "user", "memberOf", "servicePrincipal",
                      "servicePrincipalAppRoles", "transportConfig", "casMailbox", "mailboxPermissions"}
    graph, exchange = report["tokens"]
    assert graph["audience"] == "https://graph.fake.test" and "Policy.Read.All" in graph["roles"]
    assert exchange["roles"] == ["Exchange.ManageAsApp"] and exchange["expires"].endswith("Z")
    assert abs(report["clock"]["ahead_seconds"]) < 5 and report["clock"]["status"] == "pass"
    assert (report["schema"], report["provider"], report["exit_code"]) == ("preflight.auth-check/v1", "microsoft", 0)
    assert not any(token in out + err for token in microsoft_fake.issued)


def test_auth_check_retries_a_throttled_probe(microsoft_fake: FakeMicrosoft,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    microsoft_fake.fault = throttle(lambda c: c.sub and c.path == "/identity/conditionalAccess/policies", times=1)
    code, out, _err = run_cli(["auth-check", "microsoft", *sign_in_args(snapshot), "--mailbox", "jobs@contoso.com",
                               "--format", "json"], capsys)
    probe = next(p for p in json.loads(out)["probes"] if p["resource"] == "conditionalAccessPolicies")
    assert (code, probe["readable"]) == (0, True), probe
    asked = [c for c in microsoft_fake.calls("graph", sub=True) if c.path == "/identity/conditionalAccess/policies"]
    assert len(asked) == 2  # the 429 was retried after its Retry-After


def test_auth_check_names_what_to_grant(microsoft_fake: FakeMicrosoft, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = load_fixture("forbidden")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    code, out, _err = run_cli(["auth-check", "microsoft", *sign_in_args(snapshot), "--mailbox", "jobs@contoso.com"],
                              capsys)
    assert code == 3
    assert "securityDefaults" in out and "NO  403 Authorization_RequestDenied" in out
    assert "grant: Microsoft Graph Policy.Read.All" in out
    assert "transportConfig" in out and "User is not allowed to call Get-TransportConfig" in out
    assert "Some resources are not readable" in out
