"""`check microsoft` and `audit` against admin APIs that misbehave after a good sign-in: Graph and Exchange quoting
the bearer token and the client secret (in errors and in payloads), bodies that are not JSON or stop halfway, every
call throttled with an HTTP-date Retry-After an hour ahead, and a sign-in service quoting a certificate's
passphrase. No output, report or snapshot shows a secret in any encoding, nothing is a traceback, nothing waits,
and every folder and file preflight creates for it is owner-only."""

from __future__ import annotations

import email.utils
import json
import os
import stat
import time
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import load_pem_x509_certificate

from tests.conftest import run_cli as run
from tests.jwts import claims_of
from tests.leaks import assert_clean_run, assert_no_leak, files_text
from tests.microsoft.conftest import CLIENT_ID, SECRET, audit_inventory, load_fixture, tenant_for
from tests.microsoft.fake import EXCHANGE_AUDIENCE, GRAPH_AUDIENCE, Call, FakeMicrosoft, Reply
from tests.microsoft.test_collect_auth import make_cert
from tests.microsoft.test_hostile_login import _Recording
from tests.microsoft.test_hostile_signin import check

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("isolated", "secret_env")]
PASSPHRASE = "Pfx-S3NTINEL/pass+phrase=é"


def _tenant(microsoft_fake: FakeMicrosoft, **app: object) -> str:
    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot, **app))
    return str(snapshot["tenant"]["domain"])


def _outputs(tmp_path: Path, fmt: str) -> list[str]:
    return ["--format", fmt, "--output", str(tmp_path / "out" / f"report.{fmt}"), "--save-snapshot",
            str(tmp_path / "out" / "snapshot.json")]


@pytest.mark.parametrize("fmt", ["json", "html"])
def test_admin_apis_quoting_the_token_and_secret_leak_into_no_report_or_snapshot(
        fmt: str, microsoft_fake: FakeMicrosoft, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every other Graph and Exchange call is refused with an error quoting the bearer token (raw, JSON-escaped,
    base64) and the client secret; the others answer a payload whose display name quotes them."""
    domain = _tenant(microsoft_fake)
    import base64

    def echo(call: Call) -> Reply | None:
        # The token this call carries (its API's audience): not one issued to another thread a moment ago,
        # which its client has not even received yet.
        audience = GRAPH_AUDIENCE if call.api == "graph" else EXCHANGE_AUDIENCE
        carried = [t for t in microsoft_fake.issued if claims_of(t).get("aud") == audience]
        if call.api not in ("graph", "exchange") or not carried:
            return None
        token = carried[-1]
        said = f"token {token} ({base64.b64encode(token.encode()).decode()}) with secret {SECRET}"
        if len(microsoft_fake.calls(call.api)) % 2:
            return Reply(403, {"error": {"code": "Forbidden", "message": said}})
        if call.api == "graph" and call.path.startswith("/users/") and call.path.count("/") == 2:
            return Reply(200, {"id": str(uuid.uuid4()), "userPrincipalName": f"jobs@{domain}",
                               "displayName": said, "accountEnabled": True})
        return None

    microsoft_fake.fault = echo
    code, out, err = run([*check(domain, "--debug"), *_outputs(tmp_path, fmt)], capsys)
    assert code in (1, 3), err
    written = files_text(tmp_path / "out")
    assert "Forbidden" in written, "the refusals are still reported"
    assert_clean_run(out, err, [SECRET, *microsoft_fake.issued])
    assert_no_leak(written, [SECRET, *microsoft_fake.issued])
    snapshot = tmp_path / "out" / "snapshot.json"
    assert stat.S_IMODE(snapshot.stat().st_mode) == 0o600  # it lists the tenant's users and addresses


SOON = {"Retry-After": "0"}  # retried at once: the shapes are under test here, not the waits
BODIES = {
    "html-200": Reply(200, b"<html><body>Service Unavailable</body></html>", {"Content-Type": "text/html", **SOON}),
    "truncated-200": Reply(200, b'{"value": [{"id": "0a1b2c3d", "displayName": "Trunc', SOON),
    "not-json-403": Reply(403, b"Forbidden by the proxy", {"Content-Type": "text/plain", **SOON}),
    "empty-502": Reply(502, b"", SOON),
    "json-string-200": Reply(200, b'"just a string"', SOON),
}


@pytest.mark.parametrize("case", sorted(BODIES))
def test_admin_api_bodies_of_any_shape_are_unknown_never_a_traceback(
        case: str, microsoft_fake: FakeMicrosoft, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    domain = _tenant(microsoft_fake)
    microsoft_fake.fault = lambda call: BODIES[case] if call.api in ("graph", "exchange") else None
    code, out, err = run([*check(domain), *_outputs(tmp_path, "json")], capsys)
    assert code in (3, 4), err
    assert_clean_run(out, err, [SECRET, *microsoft_fake.issued])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    findings = report["targets"][0]["findings"]
    decided = {f["check"]: f["status"] for f in findings if f["status"] in ("pass", "fail")}
    assert findings and not decided, decided  # nothing read, nothing passed or failed on a guess


def test_an_http_date_retry_after_an_hour_ahead_is_not_waited_for(
        microsoft_fake: FakeMicrosoft, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    domain = _tenant(microsoft_fake)
    later = email.utils.formatdate(time.time() + 3600, usegmt=True)

    def throttled(call: Call) -> Reply | None:
        if call.api not in ("graph", "exchange"):
            return None
        return Reply(429, {"error": {"code": "TooManyRequests", "message": "Too many requests"}},
                     {"Retry-After": later})

    microsoft_fake.fault = throttled
    started = time.process_time()
    code, out, err = run([*check(domain), *_outputs(tmp_path, "json")], capsys)
    assert time.process_time() - started < 60
    assert code in (3, 4), err
    findings = json.loads((tmp_path / "out" / "report.json").read_text())["targets"][0]["findings"]
    assert any("asked to retry after" in f["message"] for f in findings), [f["message"] for f in findings]
    assert microsoft_fake.http_requests("graph") + microsoft_fake.http_requests("exchange") < 60  # none waited for
    assert_clean_run(out, err, [SECRET, *microsoft_fake.issued])


def _pfx(tmp_path: Path) -> tuple[Path, bytes]:
    pem, _pfx, cert_pem, key = make_cert(tmp_path)
    path = tmp_path / "app.pfx"
    path.write_bytes(pkcs12.serialize_key_and_certificates(
        b"app", key, load_pem_x509_certificate(cert_pem), None,
        serialization.BestAvailableEncryption(PASSPHRASE.encode())))
    pem.unlink()
    return path, cert_pem


@pytest.mark.parametrize("command", ["check", "login", "auth-check"])
def test_a_certificate_passphrase_is_a_run_secret(
        command: str, microsoft_fake: FakeMicrosoft, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The sign-in service quotes the passphrase back (as Entra quotes a wrong client secret): masked, because
    reading it added it to the run's registry."""
    pfx, cert_pem = _pfx(tmp_path)
    domain = _tenant(microsoft_fake, secret=None, certificate_pem=cert_pem)
    monkeypatch.setenv("PF_PFX_PASSPHRASE", PASSPHRASE)
    recording = _Recording(monkeypatch)

    def echo(call: Call) -> Reply | None:
        if call.api == "token":
            return Reply(401, {"error": "invalid_client", "error_description":
                               f"AADSTS700027: the certificate protected by '{PASSPHRASE}' is not registered."})
        return None

    microsoft_fake.fault = echo
    args = [command, "microsoft", "--tenant", domain, "--client-id", CLIENT_ID, "--auth", "certificate",
            "--certificate", str(pfx), "--certificate-password-env", "PF_PFX_PASSPHRASE", "--cloud", "fake"]
    if command == "check":
        args += ["--mailbox", f"jobs@{domain}", *_outputs(tmp_path, "json")]
    code, out, err = run(["--debug", *args], capsys)
    assert code == 4, err
    assert "AADSTS700027" in err
    assert recording.knows(PASSPHRASE)
    assert_clean_run(out, err, [PASSPHRASE])
    assert_no_leak(files_text(tmp_path, skip="xdg"), [PASSPHRASE])



def test_an_app_only_audit_creates_only_owner_only_folders(
        microsoft_fake: FakeMicrosoft, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Under the usual umask 022, the audit's per-customer cache folders (`tenants/<provider>/<customer>-<hash>`,
    which name customers) are 0700 and the caches 0600, from the cache root down."""
    domain = _tenant(microsoft_fake)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "fresh" / "cache"))  # nothing of it exists yet
    (tmp_path / "inventory.toml").write_text(audit_inventory(domain))
    old = os.umask(0o022)
    try:
        code, _out, err = run(["audit", str(tmp_path / "inventory.toml"), "--output-dir", str(tmp_path / "out")],
                              capsys)
    finally:
        os.umask(old)
    assert code in (0, 1, 3), err
    created = list((tmp_path / "fresh").rglob("*"))
    assert any(p.is_file() for p in created) and any("tenants" in p.parts for p in created), created
    for path in [tmp_path / "fresh", *created]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"
    assert stat.S_IMODE((tmp_path / "out" / "alpha" / "snapshot.json").stat().st_mode) == 0o600


@pytest.mark.parametrize("where", ["option", "inventory"])
def test_an_audit_past_its_deadline_still_writes_every_report_with_unknowns(
        where: str, microsoft_fake: FakeMicrosoft, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import threading

    domain = _tenant(microsoft_fake)
    release = threading.Event()

    def slow(call: Call) -> Reply | None:  # sign-in is quick; each admin API call takes 1.5 s
        if call.api in ("graph", "exchange") and not call.sub:
            release.wait(1.5)
        return None

    microsoft_fake.fault = slow
    inventory = audit_inventory(domain)
    if where == "inventory":
        inventory += "deadline = 3\n"
    (tmp_path / "inventory.toml").write_text(inventory)
    args = ["audit", str(tmp_path / "inventory.toml"), "--output-dir", str(tmp_path / "out"),
            *(["--deadline", "3"] if where == "option" else [])]
    box: dict[str, tuple[int, str, str]] = {}
    worker = threading.Thread(target=lambda: box.update(r=run(args, capsys)), daemon=True)
    worker.start()
    worker.join(120)  # generous: the deadline is 3 s
    release.set()
    assert not worker.is_alive(), "the audit did not end"
    code, out, err = box["r"]
    assert code == 3, err
    report = json.loads((tmp_path / "out" / "alpha" / "report.json").read_text())
    findings = report["targets"][0]["findings"]
    assert any(f["status"] == "unknown" and "not read before the deadline" in f["message"] for f in findings), \
        [f["message"] for f in findings if f["status"] == "unknown"]
    assert (tmp_path / "out" / "report.html").exists()
    assert_clean_run(out, err, [SECRET, *microsoft_fake.issued])


@pytest.mark.parametrize("api", ["token", "oidc"])
def test_a_sign_in_service_that_never_answers_is_cut_at_the_deadline(
        api: str, microsoft_fake: FakeMicrosoft, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """msal's requests go through a session bounded in total and by the tenant's deadline: a token endpoint (or
    OpenID discovery) holding its reply ends the run at the deadline with one line, exit 4."""
    import threading

    domain = _tenant(microsoft_fake)
    release = threading.Event()

    def stall(call: Call) -> Reply | None:
        if call.api == api:
            release.wait(60)
        return None

    microsoft_fake.fault = stall
    args = check(domain)
    args[args.index("--deadline") + 1] = "2"
    box: dict[str, tuple[int, str, str]] = {}
    worker = threading.Thread(target=lambda: box.update(r=run(args, capsys)), daemon=True)
    worker.start()
    worker.join(45)  # generous: the deadline is 2 s, the held reply 60 s
    release.set()
    assert not worker.is_alive(), "the sign-in did not end"
    code, out, err = box["r"]
    assert code == 4, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("preflight: sign-in failed: "), err
    assert_clean_run(out, err, [SECRET, *microsoft_fake.issued])
