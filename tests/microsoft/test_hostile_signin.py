"""A token endpoint that misbehaves: every failure is one line naming the sign-in service and the status,
exit 4, no traceback, and neither the client secret nor any token it sent back appears anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.jwts import unsigned_jwt
from tests.leaks import assert_clean_run, assert_no_leak, files_text
from tests.microsoft.conftest import CLIENT_ID, SECRET, SECRET_ENV, load_fixture, tenant_for
from tests.microsoft.fake import Call, FakeMicrosoft, Reply

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("isolated", "secret_env")]
JWT = unsigned_jwt({"aud": "https://graph.fake.test", "sentinel": "S3NT1NEL-JWT-CLAIM", "tid": "x"})
OPAQUE = "opaqueSENTINELtoken4f9a8b7c6d5e3f2a1b0c"
TRUNCATED = JWT[:120]  # what a truncated reply holds of the token: as secret as the whole of it
SECRETS = [SECRET, JWT, TRUNCATED, OPAQUE]
HTML = b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"


def check(domain: str, *extra: str) -> list[str]:
    return [*extra, "check", "microsoft", "--tenant", domain, "--client-id", CLIENT_ID, "--auth", "secret",
            "--client-secret-env", SECRET_ENV, "--cloud", "fake", "--mailbox", f"jobs@{domain}", "--deadline", "30"]


def on(api: str, reply: Reply) -> object:
    def hook(call: Call) -> Reply | None:
        return reply if call.api == api else None
    return hook


CASES = {
    "truncated-json": ("token", Reply(200, b'{"token_type": "Bearer", "expires_in": 3599, "access_token": "'
                                      + TRUNCATED.encode()), "HTTP 200"),
    "not-json": ("token", Reply(200, f"access_token={OPAQUE}&expires_in=3599".encode(),
                                {"Content-Type": "text/plain"}), "HTTP 200 with a text/plain body"),
    "html-502": ("token", Reply(502, HTML, {"Content-Type": "text/html"}), "HTTP 502 with a text/html body"),
    "empty-500": ("token", Reply(500, b""), "HTTP 500"),
    "429-json": ("token", Reply(429, {"error": "temporarily_unavailable", "error_description":
                                      "AADSTS50196: The server terminated an operation because it encountered a "
                                      "client request loop."}, {"Retry-After": "120"}), "HTTP 429"),
    "429-text": ("token", Reply(429, b"Too Many Requests", {"Retry-After": "120", "Content-Type": "text/plain"}),
                 "HTTP 429"),
    "echoed-secret": ("token", Reply(401, {"error": "invalid_client", "error_description":
                                           f"AADSTS7000215: Invalid client secret provided: '{SECRET}'. Trace ID: 1"}),
                      "invalid_client"),
    "echoed-token": ("token", Reply(400, {"error": "invalid_request", "error_description":
                                          f"AADSTS9000: you sent {JWT} with the secret {SECRET}"}), "invalid_request"),
    "discovery-502": ("oidc", Reply(502, HTML, {"Content-Type": "text/html"}), "HTTP 502 with a text/html body"),
    "discovery-not-json": ("oidc", Reply(200, b'{"token_endpoint": "https://', {"Content-Type": "application/json"}),
                           "HTTP 200"),
}


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_misbehaving_token_endpoint_is_one_clean_line(case: str, debug: bool, microsoft_fake: FakeMicrosoft,
                                                        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    api, reply, shown = CASES[case]
    microsoft_fake.fault = on(api, reply)  # type: ignore[assignment]
    domain = snapshot["tenant"]["domain"]
    code, out, err = run_cli(check(domain, *(["--debug"] if debug else [])), capsys)
    assert code == 4, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("preflight: sign-in failed: ") and shown in last, err
    if reply.status >= 429 or reply.status == 200:
        assert "Microsoft sign-in service" in last
    if not debug:
        assert err.count("\n") <= 3, err  # "Signing in to …", the plain-cache note and the failure
    assert "{'" not in err, "no Python dict repr"
    assert_clean_run(out, err, SECRETS + microsoft_fake.issued)
    assert_no_leak(files_text(tmp_path, skip="xdg"), SECRETS + microsoft_fake.issued)


def test_the_issued_tokens_never_appear_even_in_debug_logs(
        microsoft_fake: FakeMicrosoft, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """msal logs at debug level; urllib3 too. Every token it was issued is masked in all of it."""
    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    out_file = tmp_path / "report.json"
    code, out, err = run_cli([*check(snapshot["tenant"]["domain"], "--debug"), "--format", "json", "--output",
                              str(out_file), "--save-snapshot", str(tmp_path / "snap.json")], capsys)
    assert code in (0, 1, 3), err
    assert microsoft_fake.issued, "the fake issued tokens"
    assert "debug: " in err
    assert_clean_run(out, err, [SECRET, *microsoft_fake.issued])
    assert_no_leak(files_text(tmp_path, skip="xdg"), [SECRET, *microsoft_fake.issued])



def test_every_cache_folder_preflight_creates_is_owner_only(
        microsoft_fake: FakeMicrosoft, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Under the usual umask 022, the cache root, the cloud and tenant folders (which name customers) are 0700
    and the cache file 0600: other local users cannot even list which tenants this machine signs in to."""
    import os
    import stat

    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "fresh" / "cache"))  # nothing of it exists yet
    old = os.umask(0o022)
    try:
        code, _out, err = run_cli(check(snapshot["tenant"]["domain"]), capsys)
    finally:
        os.umask(old)
    assert code in (0, 1, 3), err
    created = [p for p in (tmp_path / "fresh").rglob("*")]
    assert any(p.is_file() for p in created)
    for path in [tmp_path / "fresh", *created]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"


def test_a_run_past_its_deadline_still_writes_the_report_with_unknowns(
        microsoft_fake: FakeMicrosoft, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import threading
    import time

    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    def slow(call: Call) -> Reply | None:  # sign-in is quick; each admin API call takes 1.5 s
        if call.api in ("graph", "exchange") and not call.sub:
            time.sleep(1.5)
        return None

    microsoft_fake.fault = slow
    report = tmp_path / "report.json"
    args = [*check(snapshot["tenant"]["domain"]), "--deadline", "3", "--format", "json", "--output", str(report)]
    box: dict[str, tuple[int, str, str]] = {}
    worker = threading.Thread(target=lambda: box.update(r=run_cli(args, capsys)), daemon=True)
    worker.start()
    worker.join(120)  # generous: the deadline is 3 s
    assert not worker.is_alive(), "the run did not end"
    code, out, err = box["r"]
    assert code == 3, err
    findings = json.loads(report.read_text())["targets"][0]["findings"]
    late = [f for f in findings if f["status"] == "unknown" and "not read before the deadline" in f["message"]]
    assert late, "; ".join(f["message"] for f in findings if f["status"] == "unknown")
    assert_clean_run(out, err, [SECRET, *microsoft_fake.issued])


def test_retry_after_120_on_every_call_ends_at_once_with_unknowns(
        microsoft_fake: FakeMicrosoft, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))

    def throttled(call: Call) -> Reply | None:
        if call.api not in ("graph", "exchange"):
            return None
        return Reply(429, {"error": {"code": "TooManyRequests", "message": "Too many requests"}},
                     {"Retry-After": "120"})

    microsoft_fake.fault = throttled
    report = tmp_path / "report.json"
    code, _out, err = run_cli([*check(snapshot["tenant"]["domain"]), "--format", "json", "--output", str(report)],
                              capsys)
    assert code in (3, 4), err
    findings = json.loads(report.read_text())["targets"][0]["findings"]
    assert any("asked to retry after 120 s" in f["message"] for f in findings), [f["message"] for f in findings]
    # no retry was waited for
    assert microsoft_fake.http_requests("graph") + microsoft_fake.http_requests("exchange") < 60


AUDIT = """
[customer.alpha]
provider = "microsoft"
tenant = "alpha.example"
auth = "secret"
client_id = "{client_id}"
client_secret_env = "{env}"
cloud = "fake"
mailboxes = ["jobs@contoso.com"]
deadline = 30

[customer.beta]
provider = "microsoft"
tenant = "beta.example"
auth = "secret"
client_id = "{client_id}"
client_secret_env = "{env}"
cloud = "fake"
mailboxes = ["jobs@contoso.com"]
"""


def test_an_audit_against_echoing_services_leaks_nothing(
        microsoft_fake: FakeMicrosoft, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """alpha's token endpoint quotes the secret back; beta's admin APIs quote the bearer token back. Neither
    appears in the audit's output folder, its terminal output or its --debug log, in any encoding."""
    import uuid

    for i, domain in enumerate(["alpha.example", "beta.example"]):
        snap = load_fixture("oauth-app-ready")
        snap["tenant"] = {**snap["tenant"], "id": str(uuid.UUID(int=i + 1)), "domain": domain}
        microsoft_fake.add_tenant(tenant_for(snap))

    def echo(call: Call) -> Reply | None:
        if call.api == "token" and call.tenant in (str(uuid.UUID(int=1)), "alpha.example"):
            return Reply(401, {"error": "invalid_client", "error_description":
                               f"AADSTS7000215: Invalid client secret provided: '{SECRET}'."})
        if call.api in ("graph", "exchange") and microsoft_fake.issued:
            token = microsoft_fake.issued[-1]
            return Reply(403, {"error": {"code": "Forbidden", "message": f"token {token} lacks a role"}})
        return None

    microsoft_fake.fault = echo
    inv = tmp_path / "inventory.toml"
    inv.write_text(AUDIT.format(client_id=CLIENT_ID, env=SECRET_ENV))
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(["--debug", "audit", str(inv), "--output-dir", str(out), "--deadline", "60"], capsys)
    assert code in (3, 4), stderr[-2000:]
    assert_clean_run(stdout, stderr, [SECRET, *microsoft_fake.issued])
    assert_no_leak(files_text(out), [SECRET, *microsoft_fake.issued])
    assert "alpha" in stderr and "could not audit" in stderr
