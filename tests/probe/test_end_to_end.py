"""`preflight probe` end to end against real SMTP servers on loopback (aiosmtpd + trustme certificates).

Every run goes through `preflight.cli.main`, so options, the exit code and stdout/stderr are the user's.
Secrets are sentinels; every test that signs in asserts they never reach any output.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from preflight.cli import main
from tests.probe import tokens
from tests.probe.run import Run
from tests.probe.servers import (
    GMAIL,
    GMAIL_BAD_CREDENTIALS,
    MICROSOFT,
    MICROSOFT_SECURITY_DEFAULTS,
    MICROSOFT_XOAUTH2_FAILED,
    Accounts,
    Pki,
    closed_port,
    endless_line,
    endless_reply,
    implicit_tls_script,
    make_pki,
    scripted_server,
    silent_server,
    smtp_server,
    tls10_supported,
)

pytestmark = pytest.mark.slow

PASSWORD = "S3ntinel-pw-5f2c"
USER = "jobs@contoso.com"
GMAIL_USER = "jobs@fabrikam.example"
ENV = "PREFLIGHT_TEST_SMTP_PASSWORD"
TOKEN_ENV = "PREFLIGHT_TEST_SMTP_TOKEN"
FAST = "0.5"  # seconds: every reply on loopback arrives in milliseconds; the silent server waits this long


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def probe(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    secrets: list[str] = []

    def run(*args: str, secret: str | None = None, token: str | None = None) -> Run:
        if secret is not None:
            monkeypatch.setenv(ENV, secret)
            secrets.append(secret)
        if token is not None:
            monkeypatch.setenv(TOKEN_ENV, token)
            secrets.append(token)
        with pytest.raises(SystemExit) as exc:
            main(["probe", *args])
        out, err = capsys.readouterr()
        result = Run(int(exc.value.code or 0), out, err)
        for s in secrets:
            _assert_hidden(s, out + err)
        return result

    yield run


def _assert_hidden(secret: str, text: str) -> None:
    """Neither the secret nor any encoding of it a SASL exchange would put on the wire."""
    forms = {secret, base64.b64encode(secret.encode()).decode()}
    if "." in secret:  # a JWT: each segment alone would leak the claims or the signature
        forms |= {part for part in secret.split(".") if len(part) > 8}
    for user in (USER, GMAIL_USER):
        forms.add(base64.b64encode(f"\0{user}\0{secret}".encode()).decode())
        forms.add(base64.b64encode(f"user={user}\x01auth=Bearer {secret}\x01\x01".encode()).decode())
    for form in forms:
        assert form not in text, "a secret leaked into the output"


def _ca(pki: Pki) -> list[str]:
    return ["--ca-file", str(pki.ca_file)]


# --- sign-in -------------------------------------------------------------------------------------------

def test_starttls_login_success_transcript_masks_password_and_warns_basic_retirement(pki: Pki, probe: Any) -> None:
    accounts = Accounts(users={USER: PASSWORD})
    with smtp_server(pki, accounts=accounts) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--provider", "microsoft", "--user", USER,
                    "--password-env", ENV, "--timeout", FAST, secret=PASSWORD)
    assert run.code == 0, run.out
    lines = run.out.splitlines()
    # swaks markers: plain before STARTTLS, tilde inside TLS.
    assert " -> STARTTLS" in lines
    assert "<-  220 2.0.0 SMTP server ready" in lines
    assert any(line.startswith(" ~> EHLO ") for line in lines)
    assert "<~  250-AUTH LOGIN XOAUTH2" in lines
    assert " ~> AUTH LOGIN" in lines
    assert "<~  334 VXNlcm5hbWU6" in lines
    assert " ~> [password hidden]" in lines
    assert "<~  235 2.7.0 Authentication successful" in lines
    assert " ~> QUIT" in lines
    assert accounts.attempts == [("LOGIN", USER)]
    assert "WARN" in run.out and "basic-auth-retirement" in run.out
    assert "Result: every phase that ran succeeded (exit 0)." in run.out


def test_security_defaults_reply_names_the_cause(pki: Pki, probe: Any) -> None:
    accounts = Accounts(rejections={USER: MICROSOFT_SECURITY_DEFAULTS})
    with smtp_server(pki, accounts=accounts) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--provider", "microsoft", "--user", USER,
                    "--password-env", ENV, "--format", "json", "--timeout", FAST, secret=PASSWORD)
    assert run.code == 28
    data = run.json
    assert data["exit_code"] == 28 and data["exit_phase"] == "auth"
    auth = run.finding("probe.auth")
    assert auth["status"] == "fail" and auth["cause"] == "security-defaults"
    assert "security defaults" in auth["remediation"].lower()
    assert auth["evidence"]["replies"][-1][0].startswith("535 5.7.139")
    assert "probe.auth.basic" not in [f["check"] for f in data["findings"]]  # it did not work, so no "at risk"
    sent = [e["text"] for e in data["transcript"] if e["dir"] == "sent"]
    assert "[password hidden]" in sent and all(e["tls"] for e in data["transcript"][-6:])


def test_gmail_multiline_535_with_plain_is_wrong_credentials(pki: Pki, probe: Any) -> None:
    accounts = Accounts(default_rejection=GMAIL_BAD_CREDENTIALS)
    with smtp_server(pki, flavour=GMAIL, accounts=accounts) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--provider", "google", "--user", GMAIL_USER,
                    "--password-env", ENV, "--format", "json", "--timeout", FAST, secret=PASSWORD)
    assert run.code == 28
    auth = next(p for p in run.json["phases"] if p["phase"] == "auth")
    assert auth["replies"][-1]["lines"] == GMAIL_BAD_CREDENTIALS.split("\r\n")  # one reply, two lines
    assert auth["replies"][-1]["enhanced"] == "5.7.8"
    assert run.finding("probe.auth")["cause"] == "wrong-credentials"
    assert accounts.attempts == [("PLAIN", GMAIL_USER)]  # PLAIN preferred when offered: one round trip
    sent = [e["text"] for e in run.json["transcript"] if e["dir"] == "sent"]
    assert f"AUTH PLAIN [user {GMAIL_USER}, password hidden]" in sent


def test_gmail_xoauth2_error_challenge_is_decoded_answered_and_explained(pki: Pki, probe: Any) -> None:
    token = "ya29.a0AfB_byC-S3ntinel-token-" + "x" * 40
    accounts = Accounts(default_rejection=GMAIL_BAD_CREDENTIALS)
    with smtp_server(pki, flavour=GMAIL, accounts=accounts) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--provider", "google", "--user", GMAIL_USER,
                    "--token-env", TOKEN_ENV, "--format", "json", "--timeout", FAST, token=token)
    assert run.code == 28
    data = run.json
    assert data["auth"]["challenge"] == {"status": "400", "schemes": "Bearer", "scope": "https://mail.google.com/"}
    sent = [e["text"] for e in data["transcript"] if e["dir"] == "sent"]
    assert f"AUTH XOAUTH2 [user {GMAIL_USER}, bearer token hidden]" in sent
    assert "(response to the error challenge)" in sent
    assert accounts.challenge_answers == [b""]  # XOAUTH2 answers the error challenge with an empty line
    auth = next(p for p in data["phases"] if p["phase"] == "auth")
    assert [r["code"] for r in auth["replies"]] == [334, 535]
    assert run.finding("probe.auth")["cause"] == "oauth-token-invalid"
    lint = run.finding("probe.token")
    assert lint["status"] == "skipped" and "opaque" in lint["message"]


def test_oauthbearer_on_gmail(pki: Pki, probe: Any) -> None:
    good, bad = "ya29.good-" + "g" * 40, "ya29.S3ntinel-bad-" + "b" * 40
    accounts = Accounts(tokens={good: GMAIL_USER}, default_rejection=GMAIL_BAD_CREDENTIALS)
    with smtp_server(pki, flavour=GMAIL, accounts=accounts) as srv:
        ok = probe(f"localhost:{srv.port}", *_ca(pki), "--user", GMAIL_USER, "--token-env", TOKEN_ENV,
                   "--auth", "OAUTHBEARER", "--timeout", FAST, token=good)
        refused = probe(f"localhost:{srv.port}", *_ca(pki), "--user", GMAIL_USER, "--token-env", TOKEN_ENV,
                        "--auth", "OAUTHBEARER", "--format", "json", "--timeout", FAST, token=bad)
    assert ok.code == 0, ok.out
    assert accounts.bearer_fields[0] == {"host": "localhost", "port": str(srv.port)}
    assert refused.code == 28
    assert accounts.challenge_answers == [b"\x01"]  # RFC 7628: a single ^A ends the failed exchange
    assert refused.finding("probe.auth")["cause"] == "oauth-token-invalid"


def test_microsoft_xoauth2_app_only_token_signs_in(pki: Pki, probe: Any) -> None:
    token = tokens.app_only(marker="S3ntinel")
    accounts = Accounts(tokens={token: USER}, token_rejection=MICROSOFT_XOAUTH2_FAILED)
    with smtp_server(pki, accounts=accounts) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--provider", "microsoft", "--user", USER,
                    "--token-env", TOKEN_ENV, "--format", "json", "--timeout", FAST, token=token)
    assert run.code == 0, run.out
    assert run.finding("probe.auth")["status"] == "pass"
    assert run.finding("probe.token")["status"] == "pass"
    assert run.json["token"]["claims"]["roles"] == ["SMTP.SendAsApp"]
    assert "probe.auth.basic" not in [f["check"] for f in run.json["findings"]]


def test_graph_token_is_linted_and_the_535_blames_the_token(pki: Pki, probe: Any, tmp_path: Path) -> None:
    token = tokens.delegated(USER, aud="https://graph.microsoft.com", scp="Mail.Send User.Read")
    token_file = tmp_path / "token.json"
    token_file.write_text(json.dumps({"token_type": "Bearer", "expires_in": 3599, "access_token": token}))
    accounts = Accounts(token_rejection=MICROSOFT_XOAUTH2_FAILED)
    with smtp_server(pki, accounts=accounts) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--provider", "microsoft", "--user", USER,
                    "--token-file", str(token_file), "--format", "json", "--timeout", FAST)
    _assert_hidden(token, run.out + run.err)
    assert run.code == 28
    lint = run.finding("probe.token")
    assert lint["status"] == "warn" and lint["cause"] == "oauth-token-invalid"
    assert "Microsoft Graph" in lint["message"] and "SMTP.Send" in lint["message"]
    assert run.finding("probe.auth")["cause"] == "oauth-token-invalid"


def test_clean_token_refused_by_exchange_points_at_the_app_setup(pki: Pki, probe: Any) -> None:
    token = tokens.app_only()
    accounts = Accounts(token_rejection=MICROSOFT_XOAUTH2_FAILED)  # the token is not in the accepted list
    with smtp_server(pki, accounts=accounts) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--provider", "microsoft", "--user", USER,
                    "--token-env", TOKEN_ENV, "--format", "json", "--timeout", FAST, token=token)
    assert run.code == 28
    auth = run.finding("probe.auth")
    assert auth["cause"] == "oauth-app-not-authorized"
    assert "New-ServicePrincipal" in auth["remediation"]
    assert {"cause": "wrong-credentials", "confidence": 0.75} in auth["evidence"]["explain"]


def test_expired_token_is_flagged_before_use(pki: Pki, probe: Any) -> None:
    token = tokens.delegated(USER, exp_in=-600)
    with smtp_server(pki, accounts=Accounts(token_rejection=MICROSOFT_XOAUTH2_FAILED)) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--provider", "microsoft", "--user", USER,
                    "--token-env", TOKEN_ENV, "--format", "json", "--timeout", FAST, token=token)
    lint = run.finding("probe.token")
    assert lint["status"] == "warn" and "expired" in lint["message"]
    assert run.finding("probe.auth")["cause"] == "oauth-token-invalid"


def test_implicit_tls_plain_sign_in(pki: Pki, probe: Any) -> None:
    with smtp_server(pki, flavour=GMAIL, implicit=True, accounts=Accounts(users={GMAIL_USER: PASSWORD})) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--tls", "implicit", "--user", GMAIL_USER,
                    "--password-env", ENV, "--format", "json", "--timeout", FAST, secret=PASSWORD)
    assert run.code == 0, run.out
    data = run.json
    assert data["tls"]["mode"] == "implicit" and data["tls"]["version"] in ("TLSv1.2", "TLSv1.3")
    assert data["tls"]["certificate"]["days_left"] > 300
    assert data["capabilities"]["after_tls"] is None
    assert "AUTH" in " ".join(data["capabilities"]["before_tls"])
    received = [e for e in data["transcript"] if e["dir"] == "recv"]
    assert received and all(e["tls"] for e in received)  # the banner already arrives inside TLS
    assert [p["phase"] for p in data["phases"]] == ["connect", "tls", "banner", "ehlo", "auth"]


# --- mechanisms ----------------------------------------------------------------------------------------

def test_xoauth2_withheld_fails_before_sending_the_token(pki: Pki, probe: Any) -> None:
    token = tokens.delegated(USER)
    flavour = MICROSOFT.__class__(**{**MICROSOFT.__dict__, "extensions_tls": [
        e if not e.startswith("AUTH") else "AUTH LOGIN" for e in MICROSOFT.extensions_tls]})
    accounts = Accounts(tokens={token: USER})
    with smtp_server(pki, flavour=flavour, accounts=accounts, mechanisms=("LOGIN",)) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--user", USER, "--token-env", TOKEN_ENV,
                    "--format", "json", "--timeout", FAST, token=token)
    assert run.code == 28
    offered = run.finding("probe.auth.offered")
    assert offered["status"] == "fail" and offered["cause"] == "auth-not-offered"
    assert "XOAUTH2" in offered["message"]
    assert accounts.attempts == []
    assert not any(e["text"].startswith("AUTH") for e in run.json["transcript"] if e["dir"] == "sent")


def test_auth_option_without_credentials_only_checks_the_mechanism(pki: Pki, probe: Any) -> None:
    with smtp_server(pki) as srv:
        ok = probe(f"localhost:{srv.port}", *_ca(pki), "--auth", "XOAUTH2", "--format", "json", "--timeout", FAST)
        missing = probe(f"localhost:{srv.port}", *_ca(pki), "--auth", "PLAIN", "--format", "json",
                        "--timeout", FAST)
    assert ok.code == 0 and ok.finding("probe.auth.offered")["status"] == "pass"
    assert missing.code == 28 and missing.finding("probe.auth.offered")["cause"] == "auth-not-offered"


def test_no_auth_offered_is_a_warning_without_credentials(pki: Pki, probe: Any) -> None:
    with smtp_server(pki, offer_auth=False) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--format", "json", "--timeout", FAST)
    assert run.code == 0
    offered = run.finding("probe.auth.offered")
    assert offered["status"] == "warn" and offered["cause"] == "auth-not-offered"


# --- network -------------------------------------------------------------------------------------------

def test_server_that_never_answers_times_out_at_the_banner(probe: Any) -> None:
    with silent_server() as port:
        started = time.monotonic()
        run = probe(f"127.0.0.1:{port}", "--timeout", "0.3", "--format", "json")
        elapsed = time.monotonic() - started
    assert run.code == 21
    assert elapsed < 2.5
    banner = run.finding("probe.banner")
    assert banner["status"] == "fail" and banner["cause"] == "connection-timeout"
    assert "0.3 s" in banner["message"]
    assert run.finding("probe.tls")["status"] == "unknown"  # never reached: not a pass, not a fail


def test_closed_port_is_refused(probe: Any) -> None:
    run = probe(f"127.0.0.1:{closed_port()}", "--timeout", FAST, "--format", "json")
    assert run.code == 20
    tcp = run.finding("probe.tcp")
    assert tcp["status"] == "fail" and tcp["cause"] == "connection-refused"
    assert "Connection refused" in tcp["message"]


def test_endless_reply_is_cut_off(probe: Any) -> None:
    with scripted_server(endless_reply) as port:
        run = probe(f"127.0.0.1:{port}", "--timeout", "5", "--format", "json")
    assert run.code == 21
    banner = run.finding("probe.banner")
    assert banner["status"] == "unknown" and banner["cause"] is None
    assert "longer than 100 lines" in banner["message"]


def test_endless_line_is_cut_off(probe: Any) -> None:
    with scripted_server(endless_line) as port:
        run = probe(f"127.0.0.1:{port}", "--timeout", "5", "--format", "json")
    assert run.code == 21
    assert "longer than 4096 bytes" in run.finding("probe.banner")["message"]


def test_starttls_response_injection_stops_the_probe(probe: Any) -> None:
    def script(conn: Any, stop: Any) -> None:
        conn.sendall(b"220 smtp.example.test ESMTP\r\n")
        conn.recv(1024)  # EHLO
        conn.sendall(b"250-smtp.example.test\r\n250 STARTTLS\r\n")
        conn.recv(1024)  # STARTTLS
        conn.sendall(b"220 2.0.0 Ready to start TLS\r\n250 injected before the handshake\r\n")
        conn.recv(1024)

    with scripted_server(script) as port:
        run = probe(f"127.0.0.1:{port}", "--timeout", FAST, "--format", "json")
    assert run.code == 29
    tls = run.finding("probe.tls")
    assert tls["status"] == "unknown" and "injection" in tls["message"]


# --- TLS -----------------------------------------------------------------------------------------------

def test_expired_certificate(pki: Pki, probe: Any) -> None:
    with smtp_server(pki, leaf=pki.expired) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--format", "json", "--timeout", FAST)
    assert run.code == 29
    tls = run.finding("probe.tls")
    assert tls["status"] == "fail" and tls["cause"] == "tls-certificate-invalid"
    assert "certificate has expired" in tls["message"]
    assert run.json["tls_error"]["verify_code"] == 10
    # Nothing after the failed handshake is judged: AUTH was never offered to this client, not "missing".
    assert "probe.auth.offered" not in [f["check"] for f in run.json["findings"]]
    assert run.finding("probe.ehlo-tls")["status"] == "unknown"


def test_wrong_name_certificate(pki: Pki, probe: Any) -> None:
    with smtp_server(pki, leaf=pki.wrong_name) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--format", "json", "--timeout", FAST)
    assert run.code == 29
    tls = run.finding("probe.tls")
    assert tls["cause"] == "tls-certificate-invalid"
    assert "Hostname mismatch" in tls["message"] and "localhost" in tls["message"]


def test_untrusted_ca_without_ca_file_is_not_silently_accepted(pki: Pki, probe: Any) -> None:
    with smtp_server(pki) as srv:
        run = probe(f"localhost:{srv.port}", "--format", "json", "--timeout", FAST)
    assert run.code == 29
    tls = run.finding("probe.tls")
    assert tls["cause"] == "tls-certificate-invalid"
    assert "unable to get local issuer certificate" in tls["message"] or "self-signed" in tls["message"]


def test_tls10_only_server(pki: Pki, probe: Any) -> None:
    reason = tls10_supported(pki)
    if reason is not None:
        pytest.skip(reason)
    with scripted_server(implicit_tls_script(pki.server_context(pki.good, tls10_only=True))) as port:
        run = probe(f"localhost:{port}", *_ca(pki), "--tls", "implicit", "--format", "json", "--timeout", FAST)
    assert run.code == 29
    tls = run.finding("probe.tls")
    assert tls["status"] == "fail" and tls["cause"] == "tls-version-unsupported"
    assert run.json["tls_error"]["reason"] == "TLSV1_ALERT_PROTOCOL_VERSION"


def test_server_dropping_the_handshake_is_unknown_not_a_guess(pki: Pki, probe: Any) -> None:
    # asyncio's TLS server closes without an alert when no version matches: nothing says why.
    with smtp_server(pki, implicit=True, tls10_only=True) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--tls", "implicit", "--format", "json", "--timeout", FAST)
    assert run.code == 29
    tls = run.finding("probe.tls")
    assert tls["status"] == "unknown" and tls["cause"] is None
    assert "closed the connection during the TLS handshake" in tls["message"]


def test_implicit_tls_against_a_starttls_port(pki: Pki, probe: Any) -> None:
    with smtp_server(pki) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--tls", "implicit", "--format", "json", "--timeout", FAST)
    assert run.code == 29
    tls = run.finding("probe.tls")
    assert tls["cause"] == "tls-mode-mismatch" and "--tls starttls" in tls["message"]


def test_server_demanding_starttls(pki: Pki, probe: Any) -> None:
    with smtp_server(pki, flavour=GMAIL, require_tls_for_mail=True) as srv:
        run = probe(f"localhost:{srv.port}", "--tls", "none", "--mail-from", GMAIL_USER, "--format", "json",
                    "--timeout", FAST)
    assert run.code == 23
    mail = run.finding("probe.mail")
    assert mail["status"] == "fail" and mail["cause"] == "starttls-required"
    assert "530 5.7.0 Must issue a STARTTLS command first" in mail["message"]


# --- envelope ------------------------------------------------------------------------------------------

def test_mail_rcpt_then_rset_and_never_data(pki: Pki, probe: Any) -> None:
    with smtp_server(pki, accounts=Accounts(users={USER: PASSWORD})) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--user", USER, "--password-env", ENV,
                    "--mail-from", USER, "--rcpt-to", "candidate@example.org", "--timeout", FAST, secret=PASSWORD)
        commands = list(srv.handler.commands)
        messages = list(srv.handler.messages)
    assert run.code == 0, run.out
    assert commands == [f"MAIL {USER}", "RCPT candidate@example.org", "RSET", "QUIT"]
    assert messages == []
    assert " ~> DATA" not in run.out


def test_send_delivers_one_message(pki: Pki, probe: Any) -> None:
    with smtp_server(pki, accounts=Accounts(users={USER: PASSWORD})) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--user", USER, "--password-env", ENV,
                    "--mail-from", USER, "--rcpt-to", "candidate@example.org", "--send", "--timeout", FAST,
                    secret=PASSWORD)
        messages = list(srv.handler.messages)
    assert run.code == 0, run.out
    assert len(messages) == 1 and messages[0].rcpt_tos == ["candidate@example.org"]
    assert b"Subject: preflight SMTP test" in messages[0].content  # type: ignore[operator]


def test_send_as_denied_after_data(pki: Pki, probe: Any) -> None:
    with smtp_server(pki, accounts=Accounts(users={USER: PASSWORD})) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--provider", "microsoft", "--user", USER,
                    "--password-env", ENV, "--mail-from", "noreply@contoso.com", "--rcpt-to", "candidate@example.org",
                    "--send", "--format", "json", "--timeout", FAST, secret=PASSWORD)
        messages = list(srv.handler.messages)
    assert run.code == 26
    assert messages == []
    message = run.finding("probe.message")
    assert message["status"] == "fail" and message["cause"] == "send-as-denied"
    assert "Add-RecipientPermission" in message["remediation"]


def test_rejected_recipient(pki: Pki, probe: Any) -> None:
    with smtp_server(pki) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--mail-from", USER, "--rcpt-to", "candidate@example.org",
                    "--rcpt-to", "nobody@contoso.com", "--format", "json", "--timeout", FAST)
    assert run.code == 24
    rcpt = run.finding("probe.rcpt")
    assert rcpt["status"] == "fail" and rcpt["cause"] == "recipient-not-found"
    assert rcpt["evidence"]["accepted"] == 1


def test_mail_without_auth_on_gmail_needs_authentication(pki: Pki, probe: Any) -> None:
    with smtp_server(pki, flavour=GMAIL, require_auth_for_mail=True) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--mail-from", GMAIL_USER, "--format", "json",
                    "--timeout", FAST)
    assert run.code == 23
    assert run.finding("probe.mail")["cause"] == "auth-required"


def test_quit_after_ehlo_skips_starttls(pki: Pki, probe: Any) -> None:
    with smtp_server(pki) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--quit-after", "ehlo", "--format", "json",
                    "--timeout", FAST)
    assert run.code == 0
    data = run.json
    assert [p["phase"] for p in data["phases"]] == ["connect", "banner", "ehlo"]
    assert data["planned"] == ["connect", "banner", "ehlo"]
    assert "STARTTLS" in data["capabilities"]["before_tls"] and data["capabilities"]["after_tls"] is None
    assert [e["text"] for e in data["transcript"] if e["dir"] == "sent"][-1] == "QUIT"
    assert run.finding("probe.auth.offered")["status"] == "skipped"  # AUTH comes after STARTTLS, not a problem


def test_output_file_gets_the_report(pki: Pki, probe: Any, tmp_path: Path) -> None:
    target = tmp_path / "probe.txt"
    with smtp_server(pki) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--output", str(target), "--timeout", FAST)
    assert run.code == 0 and run.out == ""
    text = target.read_text()
    assert " -> STARTTLS" in text and "Findings for localhost" in text


# --- bad input: one line, exit 2 -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["no-such-host.invalid"], "does not resolve"),
        (["localhost:70000"], "out of range"),
        (["localhost:smtp"], "is not a number"),
        (["localhost", "--user", USER, "--password-env", "PREFLIGHT_TEST_UNSET_VAR"], "is not set"),
        (["localhost", "--user", USER], "needs a secret"),
        (["localhost", "--user", USER, "--password-prompt"], "needs a terminal"),
        (["localhost", "--user", USER, "--password-env", ENV, "--token-env", ENV], "give one secret"),
        (["localhost", "--user", USER, "--password-env", ENV, "--auth", "XOAUTH2"], "does not take a password"),
        (["localhost", "--password-env", ENV], "needs --user"),
        (["localhost", "--rcpt-to", "a@example.org"], "needs --mail-from"),
        (["localhost", "--send", "--mail-from", "a@example.org"], "--send needs"),
        (["localhost", "--mail-from", "a@example.org\r\nRCPT TO:<x@y>"], "not usable on an SMTP command line"),
        (["localhost", "--tls", "none", "--user", USER, "--password-env", ENV], "without TLS"),
        (["localhost", "--auth", "CRAM-MD5"], "not one of"),
        (["localhost", "--quit-after", "data"], "not one of"),
        (["localhost", "--timeout", "0"], "--timeout"),
        (["localhost", "--ca-file", "/nonexistent/ca.pem"], "no such file"),
        (["localhost", "--user", USER, "--token-file", "/nonexistent/token"], "cannot read file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(probe: Any, monkeypatch: pytest.MonkeyPatch, args: list[str],
                                          fragment: str) -> None:
    monkeypatch.setenv(ENV, PASSWORD)
    monkeypatch.delenv("PREFLIGHT_TEST_UNSET_VAR", raising=False)
    run = probe(*args, "--timeout", "2") if "--timeout" not in args else probe(*args)
    assert run.code == 2
    assert run.out == ""
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("preflight: error:"), run.err
    assert fragment in lines[0]
    assert PASSWORD not in run.err


# --- the real program ----------------------------------------------------------------------------------

def _subprocess(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "preflight", "probe", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def test_subprocess_help_documents_the_exit_codes() -> None:
    proc = _subprocess("--help", env={"COLUMNS": "200"})
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())  # the help is wrapped to the terminal width
    for fragment in ("20 TCP connect", "21 banner", "22 EHLO", "28 AUTH", "29 TLS", "23 MAIL FROM", "24 RCPT TO"):
        assert fragment in text


def test_subprocess_end_to_end_auth_failure(pki: Pki) -> None:
    accounts = Accounts(rejections={USER: MICROSOFT_SECURITY_DEFAULTS})
    with smtp_server(pki, accounts=accounts) as srv:
        proc = _subprocess(f"localhost:{srv.port}", *_ca(pki), "--provider", "microsoft", "--user", USER,
                           "--password-env", ENV, "--timeout", "5", env={ENV: PASSWORD, "NO_COLOR": "1"})
    assert proc.returncode == 28, proc.stderr
    assert "security-defaults" in proc.stdout
    _assert_hidden(PASSWORD, proc.stdout + proc.stderr)


# --- issue 18: the right cause, said plainly ---------------------------------------------------------


@pytest.fixture
def quick_silence(monkeypatch: pytest.MonkeyPatch) -> None:
    """The silent-port check after 0.2 s instead of the shipped 3 s, so the test does not wait."""
    from dataclasses import replace

    from preflight.probe import session
    from preflight.probe.rules import load_rules

    rules = load_rules()
    quick = replace(rules, tls={**rules.tls, "silent_port_check_seconds": 0.2, "peek_timeout_seconds": 1.0})
    monkeypatch.setattr(session, "load_rules", lambda: quick)


def test_silence_on_an_implicit_tls_port_suggests_tls_implicit(pki: Pki, probe: Any, quick_silence: None) -> None:
    with smtp_server(pki, implicit=True) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--tls", "starttls", "--format", "json", "--timeout", "3")
    assert run.code == 21
    banner = run.finding("probe.banner")
    assert banner["status"] == "fail" and banner["cause"] == "tls-mode-mismatch"
    assert "--tls implicit" in banner["message"] and "TLS handshake" in banner["message"]
    assert run.finding("probe.tls")["status"] == "unknown"


def test_a_silent_port_that_speaks_no_tls_stays_a_timeout(probe: Any, quick_silence: None) -> None:
    with silent_server() as port:
        run = probe(f"127.0.0.1:{port}", "--tls", "starttls", "--format", "json", "--timeout", "1")
    assert run.code == 21
    banner = run.finding("probe.banner")
    assert banner["cause"] == "connection-timeout" and "--tls implicit" not in banner["message"]


def test_untrusted_certificate_is_shown_and_a_private_ca_gets_ca_file(pki: Pki, probe: Any) -> None:
    with smtp_server(pki) as srv:
        run = probe(f"localhost:{srv.port}", "--format", "json", "--timeout", FAST)
    assert run.code == 29
    tls = run.finding("probe.tls")
    assert tls["cause"] == "tls-certificate-invalid" and "--ca-file" in tls["message"]
    shown = run.json["tls"]
    assert shown["verified"] is False and shown["version"] is None  # displayed, never trusted
    assert "DNS:localhost" in shown["certificate"]["names"] and shown["certificate"]["issuer"]
    assert shown["certificate"]["issuer"] in tls["message"]
    assert run.json["tls_error"]["certificate"] == shown["certificate"]


def test_expired_and_wrong_name_certificates_say_what_was_presented(pki: Pki, probe: Any) -> None:
    with smtp_server(pki, leaf=pki.expired) as srv:
        expired = probe(f"localhost:{srv.port}", *_ca(pki), "--format", "json", "--timeout", FAST)
    with smtp_server(pki, leaf=pki.wrong_name) as srv:
        wrong = probe(f"localhost:{srv.port}", *_ca(pki), "--timeout", FAST)
    assert "It expired" in expired.finding("probe.tls")["message"]
    assert expired.json["tls"]["certificate"]["days_left"] < 0
    assert wrong.code == 29 and "Connect by one of those names" in " ".join(wrong.out.split())
    assert "Presented certificate (not trusted)" in wrong.out


def test_no_auth_and_no_starttls_are_two_facts_and_no_start_tls_advice(probe: Any) -> None:
    with smtp_server(None, offer_auth=False) as srv:
        run = probe(f"localhost:{srv.port}", "--tls", "none", "--auth", "PLAIN", "--format", "json",
                    "--timeout", FAST)
    assert run.code == 28
    auth = run.finding("probe.auth.offered")
    starttls = run.finding("probe.tls.offered")
    assert auth["status"] == "fail" and auth["cause"] == "auth-not-offered"
    assert "offers no AUTH" in auth["message"] and "STARTTLS" not in auth["message"]
    assert "Start TLS" not in auth["remediation"] and "neither AUTH nor STARTTLS" in auth["remediation"]
    assert starttls["status"] == "warn" and "does not offer STARTTLS" in starttls["message"]


def test_no_auth_inside_tls_does_not_say_start_tls(pki: Pki, probe: Any) -> None:
    with smtp_server(pki, offer_auth=False) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--format", "json", "--timeout", FAST)
    offered = run.finding("probe.auth.offered")
    assert offered["status"] == "warn" and "even inside TLS" in offered["remediation"]
    assert "probe.tls.offered" not in [f["check"] for f in run.json["findings"]]


def test_send_as_refused_at_rcpt_is_named_send_as(pki: Pki, probe: Any) -> None:
    with smtp_server(pki, accounts=Accounts(users={USER: PASSWORD})) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--user", USER, "--password-env", ENV,
                    "--mail-from", "other@contoso.com", "--rcpt-to", "candidate@example.org", "--format", "json",
                    "--timeout", FAST, secret=PASSWORD)
    assert run.code == 24
    rcpt = run.finding("probe.rcpt")
    assert rcpt["cause"] == "send-as-denied"
    assert rcpt["message"].startswith(f"Send-as refused at RCPT TO: {USER} may not send as other@contoso.com")


def test_mail_from_without_rcpt_to_says_send_as_needs_a_recipient(pki: Pki, probe: Any) -> None:
    with smtp_server(pki, accounts=Accounts(users={USER: PASSWORD})) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--user", USER, "--password-env", ENV,
                    "--mail-from", "other@contoso.com", "--timeout", FAST, secret=PASSWORD)
    assert run.code == 0
    assert "every phase that ran succeeded, but send-as was not tested: it needs --rcpt-to" in " ".join(run.out.split())
    assert "A send-as test needs a recipient" in " ".join(run.out.split())


def test_no_rset_after_a_refused_mail_from(pki: Pki, probe: Any) -> None:
    with smtp_server(pki, flavour=GMAIL, require_auth_for_mail=True) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--mail-from", GMAIL_USER, "--timeout", FAST)
        commands = list(srv.handler.commands)
    assert run.code == 23
    assert commands == [f"MAIL {GMAIL_USER}", "QUIT"]


def test_refused_message_wording_and_unknown_reply(pki: Pki, probe: Any) -> None:
    with smtp_server(pki, accounts=Accounts(users={USER: PASSWORD})) as srv:
        run = probe(f"localhost:{srv.port}", *_ca(pki), "--user", USER, "--password-env", ENV,
                    "--mail-from", "noreply@contoso.com", "--rcpt-to", "candidate@example.org", "--send",
                    "--format", "json", "--timeout", FAST, secret=PASSWORD)
    message = run.finding("probe.message")
    assert "Message accepted failed" not in message["message"]
    assert message["message"].startswith("Send-as refused after DATA:")
    assert "closest ones" not in run.out
