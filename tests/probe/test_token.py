"""`preflight probe --token-from microsoft|google`: the token the sending service would get, end to end.

Real components: msal against the Entra ID fake (tests/microsoft/fake.py, HTTPS from trustme), google-auth
against the Google fake's token endpoint (service-account JWT flow, signature checked), and an aiosmtpd
server (tests/probe/servers.py) that accepts only a token the fake issued, for the right mailbox, with
SMTP's permission — as Exchange Online and Gmail would. Every run goes through `preflight.cli.main`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import requests
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from preflight.cli import main
from preflight_providers.microsoft.clouds import EXTRA_CLOUDS_ENV
from tests.google.fake import FakeGoogle, Workspace, sample_snapshot, secrets_of
from tests.jwts import claims_of
from tests.leaks import assert_no_leak
from tests.microsoft.fake import GRAPH_AUDIENCE, App, FakeMicrosoft, FakeTenant
from tests.probe.run import Run
from tests.probe.servers import (
    GMAIL,
    GMAIL_BAD_CREDENTIALS,
    MICROSOFT,
    MICROSOFT_XOAUTH2_FAILED,
    Accounts,
    Pki,
    closed_port,
    make_pki,
    smtp_server,
)

pytestmark = pytest.mark.slow

MAILBOX = "jobs@contoso.com"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "3f6b1c2d-4e5a-4b7c-8d9e-0a1b2c3d4e5f"  # the sending service's app, not preflight's
SECRET = "Qx8~smtp.sender-secret_VALUE-0987654321"
SECRET_ENV = "PF_TEST_SENDER_SECRET"
EXCHANGE = "https://outlook.office365.com"  # the real Exchange Online resource: what SMTP accepts
GMAIL_USER = "jobs@acme.example"
SA_CLIENT_ID = "104857600000000000001"
SMTP_SCOPE = "https://mail.google.com/"
FAST = "2"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _probe(capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    with pytest.raises(SystemExit) as exc:
        main(["probe", *args])
    out, err = capsys.readouterr()
    return Run(int(exc.value.code or 0), out, err)


def _assert_hidden(secret: str, text: str, user: str) -> None:
    """Neither the token nor any encoding of it that a SASL exchange would put on the wire."""
    forms = {secret, base64.b64encode(f"user={user}\x01auth=Bearer {secret}\x01\x01".encode()).decode()}
    forms |= {part for part in secret.split(".") if len(part) > 8}
    for form in forms:
        assert form not in text, "a token leaked into the output"


# --- Microsoft: app-only client credentials ----------------------------------------------------------


class ExchangeOnlineFake(FakeMicrosoft):
    """The Entra ID fake, also issuing tokens for the real Exchange Online resource (as Entra does)."""

    def _resource_of(self, scopes: list[str]) -> tuple[str | None, list[str]]:
        if scopes == [f"{EXCHANGE}/.default"]:
            return EXCHANGE, [".default"]
        return super()._resource_of(scopes)


class ExchangeTokens(dict[str, str]):
    """What Exchange Online checks of an XOAUTH2 bearer token: issued by this tenant's Entra ID, for
    Exchange Online, with the SMTP.SendAsApp application role; then the mailbox (FullAccess) must match."""

    def __init__(self, fake: FakeMicrosoft, mailbox: str) -> None:
        super().__init__()
        self.fake, self.mailbox = fake, mailbox

    def get(self, token: str, default: Any = None) -> Any:
        claims = claims_of(token)
        if (token in self.fake.issued and claims.get("aud") == EXCHANGE and claims.get("tid") == TENANT_ID
                and "SMTP.SendAsApp" in (claims.get("roles") or [])):
            return self.mailbox
        return default


@pytest.fixture
def entra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ExchangeOnlineFake]:
    ca = trustme.CA()
    ca_file = tmp_path / "entra-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    fake = ExchangeOnlineFake(tls=ca)
    fake.start()
    fake.add_tenant(FakeTenant(TENANT_ID, ("contoso.com",), {}, {
        CLIENT_ID: App(CLIENT_ID, secret=SECRET, exchange_roles=("SMTP.SendAsApp",))}))
    clouds = tmp_path / "clouds.toml"
    clouds.write_text(
        f'[fake]\nlogin = "{fake.host}"\ngraph = "{fake.host}"\nexchange = "{fake.host}"\n'
        f'graph_scope = "{GRAPH_AUDIENCE}/.default"\nexchange_scope = "{EXCHANGE}/.default"\n'
        "instance_discovery = false\n", encoding="utf-8")
    monkeypatch.setenv(EXTRA_CLOUDS_ENV, str(clouds))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    monkeypatch.setenv(SECRET_ENV, SECRET)
    try:
        yield fake
    finally:
        fake.stop()


def _microsoft_args(port: int, pki: Pki, *extra: str) -> list[str]:
    return [f"localhost:{port}", "--ca-file", str(pki.ca_file), "--user", MAILBOX, "--auth", "xoauth2",
            "--token-from", "microsoft", "--tenant", "contoso.com", "--client-id", CLIENT_ID, "--cloud", "fake",
            "--timeout", FAST, *extra]


def _no_leak(run: Run, fake: FakeMicrosoft) -> None:
    text = run.out + run.err
    assert SECRET not in text
    for token in fake.issued:
        _assert_hidden(token, text, MAILBOX)


def test_microsoft_client_secret_token_signs_in_and_is_never_shown(
        entra: ExchangeOnlineFake, pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    accounts = Accounts(tokens=ExchangeTokens(entra, MAILBOX), token_rejection=MICROSOFT_XOAUTH2_FAILED)
    with smtp_server(pki, flavour=MICROSOFT, accounts=accounts) as srv:
        run = _probe(capsys, *_microsoft_args(srv.port, pki, "--client-secret-env", SECRET_ENV, "--format", "json"))
    assert run.code == 0, run.out + run.err
    assert accounts.attempts == [("XOAUTH2", MAILBOX)]
    assert entra.issued, "the token came from the fake's token endpoint"
    _no_leak(run, entra)
    grant = entra.calls("token")[-1].parameters
    assert (grant["grant_type"], grant["scope"]) == ("client_credentials", f"{EXCHANGE}/.default")
    assert run.json["planned"][:2] == ["token", "connect"]
    assert run.finding("probe.token.issue")["status"] == "pass"
    assert run.finding("probe.token")["status"] == "pass"  # audience and SMTP.SendAsApp role read from the JWT
    assert run.json["token"]["claims"]["roles"] == ["SMTP.SendAsApp"]
    assert run.finding("probe.auth")["status"] == "pass"
    texts = [e["text"] for e in run.json["transcript"]]
    assert f"AUTH XOAUTH2 [user {MAILBOX}, bearer token hidden]" in texts
    assert any(t.startswith("Requesting an SMTP token from microsoft for jobs@contoso.com") and SECRET_ENV in t
               for t in texts)


def test_microsoft_refused_client_secret_is_exit_40_client_credential_without_auth(
        entra: ExchangeOnlineFake, pki: Pki, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "Zz9~not.the-secret_VALUE-1111111111"
    monkeypatch.setenv(SECRET_ENV, wrong)
    accounts = Accounts(tokens=ExchangeTokens(entra, MAILBOX), token_rejection=MICROSOFT_XOAUTH2_FAILED)
    with smtp_server(pki, flavour=MICROSOFT, accounts=accounts) as srv:
        run = _probe(capsys, *_microsoft_args(srv.port, pki, "--client-secret-env", SECRET_ENV, "--format", "json"))
    assert run.code == 40
    assert run.json["exit_phase"] == "token"
    assert wrong not in run.out + run.err
    issue = run.finding("probe.token.issue")
    assert issue["status"] == "fail" and issue["cause"] == "oauth-client-credential-invalid"
    assert "AADSTS7000215" in issue["message"] and "Trace ID" not in issue["message"]
    assert "client secret" in issue["remediation"]
    # The network phases still ran; the sign-in was not attempted, and nothing pretends it was judged.
    assert run.finding("probe.tls")["status"] == "pass"
    assert run.finding("probe.auth.offered")["status"] == "pass"
    auth = run.finding("probe.auth")
    assert auth["status"] == "unknown" and "no token" in auth["message"]
    assert accounts.attempts == []


def test_microsoft_refusal_in_the_table_and_its_exit_code_in_help(
        entra: ExchangeOnlineFake, pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    entra.tenants["contoso.com"].apps.clear()  # the sending app is not registered in this tenant
    with smtp_server(pki, flavour=MICROSOFT) as srv:
        run = _probe(capsys, *_microsoft_args(srv.port, pki, "--client-secret-env", SECRET_ENV))
    assert run.code == 40
    assert "*** microsoft refused the token request: unauthorized_client: AADSTS700016" in run.out
    assert "cause: oauth-app-not-found" in run.out
    assert "Result: stopped at token (exit 40)." in run.out
    with pytest.raises(SystemExit):
        main(["probe", "--help"])
    assert "40 no token from --token-from" in " ".join(capsys.readouterr().out.split())


def test_microsoft_token_without_smtp_role_is_linted_and_refused_by_the_server(
        entra: ExchangeOnlineFake, pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    entra.tenants["contoso.com"].apps[CLIENT_ID].exchange_roles = ()  # consent for SMTP.SendAsApp missing
    accounts = Accounts(tokens=ExchangeTokens(entra, MAILBOX), token_rejection=MICROSOFT_XOAUTH2_FAILED)
    with smtp_server(pki, flavour=MICROSOFT, accounts=accounts) as srv:
        run = _probe(capsys, *_microsoft_args(srv.port, pki, "--client-secret-env", SECRET_ENV, "--format", "json"))
    assert run.code == 28
    assert run.finding("probe.token.issue")["status"] == "pass"
    lint = run.finding("probe.token")
    assert lint["status"] == "warn" and "SMTP.SendAsApp" in lint["message"]
    assert run.finding("probe.auth")["cause"] == "oauth-token-invalid"
    _no_leak(run, entra)


def _certificate(directory: Path) -> tuple[Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "contoso-ats")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    path = directory / "sender.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()) + cert_pem)
    return path, cert_pem


def test_microsoft_certificate_client_assertion(entra: ExchangeOnlineFake, pki: Pki, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path, cert_pem = _certificate(tmp_path)
    app = entra.tenants["contoso.com"].apps[CLIENT_ID]
    app.secret, app.certificate_pem = None, cert_pem
    accounts = Accounts(tokens=ExchangeTokens(entra, MAILBOX), token_rejection=MICROSOFT_XOAUTH2_FAILED)
    with smtp_server(pki, flavour=MICROSOFT, accounts=accounts) as srv:
        run = _probe(capsys, *_microsoft_args(srv.port, pki, "--certificate", str(path), "--format", "json"))
    assert run.code == 0, run.out
    assert "client_assertion" in entra.calls("token")[-1].parameters  # signed with the key, checked by the fake
    assert run.finding("probe.auth")["status"] == "pass"
    key_body = [line for line in path.read_text().splitlines() if line and not line.startswith("-----")]
    assert not any(line in run.out + run.err for line in key_body)


def test_microsoft_unreachable_sign_in_is_unknown_not_a_verdict(pki: Pki, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    host = f"127.0.0.1:{closed_port()}"
    clouds = tmp_path / "clouds.toml"
    clouds.write_text(f'[down]\nlogin = "{host}"\ngraph = "{host}"\nexchange = "{host}"\n'
                      f'graph_scope = "{GRAPH_AUDIENCE}/.default"\nexchange_scope = "{EXCHANGE}/.default"\n'
                      "instance_discovery = false\n", encoding="utf-8")
    monkeypatch.setenv(EXTRA_CLOUDS_ENV, str(clouds))
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with smtp_server(pki, flavour=MICROSOFT) as srv:
        args = _microsoft_args(srv.port, pki, "--client-secret-env", SECRET_ENV, "--format", "json")
        args[args.index("fake")] = "down"
        run = _probe(capsys, *args)
    assert run.code == 40
    issue = run.finding("probe.token.issue")
    assert issue["status"] == "unknown" and issue["cause"] is None and "cannot reach" in issue["message"]
    assert run.finding("probe.auth")["status"] == "unknown"


@pytest.mark.parametrize(("extra", "message"), [
    (["--client-secret-env", "PF_TEST_UNSET_SECRET"], "PF_TEST_UNSET_SECRET"),
    (["--client-secret-env", SECRET_ENV, "--key-file", "sa.json"], "does not take --key-file"),
    (["--client-secret-env", SECRET_ENV, "--token-env", SECRET_ENV], "give one secret"),
    (["--client-secret-env", SECRET_ENV, "--tenant", "not a tenant"], "--tenant"),
    (["--client-secret-env", SECRET_ENV, "--auth", "PLAIN"], "does not take a token"),
    (["--client-secret-env", SECRET_ENV, "--cloud", "nowhere"], "unknown cloud"),
])
def test_microsoft_bad_input_is_one_line_exit_2_before_any_token_request(
        entra: ExchangeOnlineFake, pki: Pki, capsys: pytest.CaptureFixture[str], extra: list[str],
        message: str) -> None:
    args = _microsoft_args(closed_port(), pki)
    if "--auth" in extra:
        i = args.index("--auth")
        del args[i:i + 2]
    if "--tenant" in extra:
        i = args.index("--tenant")
        del args[i:i + 2]
    run = _probe(capsys, *args, *extra)
    assert run.code == 2, run.out + run.err
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert entra.calls("token") == []


def test_token_from_options_need_token_from(capsys: pytest.CaptureFixture[str]) -> None:
    run = _probe(capsys, "localhost:25", "--tenant", "contoso.com")
    assert run.code == 2 and "only with --token-from" in run.err


# --- Google: service account with domain-wide delegation ---------------------------------------------


class GmailTokens(dict[str, str]):
    """What Gmail checks of an XOAUTH2 bearer token: valid at Google for this mailbox, with the
    https://mail.google.com/ scope. Asked of the fake's Gmail API with the token itself."""

    def __init__(self, fake: FakeGoogle) -> None:
        super().__init__()
        self.fake = fake

    def get(self, token: str, default: Any = None) -> Any:
        path = f"/gmail/v1/users/{GMAIL_USER}/settings/sendAs"
        reply = requests.get(self.fake.url + path, headers={"Authorization": f"Bearer {token}"},
                             verify=str(self.fake.ca_file), timeout=5)
        seen = self.fake.seen(path)
        if reply.status_code == 200 and seen and SMTP_SCOPE in seen[-1].scopes:
            return seen[-1].subject
        return default


@pytest.fixture
def google(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeGoogle, Workspace]]:
    ws = Workspace.from_snapshot(sample_snapshot())
    with FakeGoogle([ws], tmp_path) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_file))
        yield fake, ws


def _gmail_run(fake: FakeGoogle, pki: Pki, capsys: pytest.CaptureFixture[str], key: Path,
               user: str = GMAIL_USER) -> tuple[Run, Accounts]:
    accounts = Accounts(tokens=GmailTokens(fake), default_rejection=GMAIL_BAD_CREDENTIALS)
    with smtp_server(pki, flavour=GMAIL, accounts=accounts) as srv:
        run = _probe(capsys, f"localhost:{srv.port}", "--ca-file", str(pki.ca_file), "--user", user,
                     "--auth", "XOAUTH2", "--token-from", "google", "--key-file", str(key), "--timeout", FAST,
                     "--format", "json")
    assert_no_leak(run.out + run.err, secrets_of(fake, [key]))
    return run, accounts


def test_google_service_account_token_signs_in(google: tuple[FakeGoogle, Workspace], pki: Pki, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    fake, ws = google
    ws.grant(SA_CLIENT_ID, {SMTP_SCOPE})
    key = fake.key_file(tmp_path)
    run, accounts = _gmail_run(fake, pki, capsys, key)
    assert run.code == 0, run.out
    assert accounts.attempts == [("XOAUTH2", GMAIL_USER)]
    assert run.json["target"]["provider"] == "google"
    assert run.finding("probe.token.issue")["status"] == "pass"
    assert run.finding("probe.token")["status"] == "skipped"  # ya29. tokens are opaque
    assert run.finding("probe.auth")["status"] == "pass"
    assert accounts.challenge_answers == []


def test_google_missing_delegation_names_oauth_app_not_authorized(
        google: tuple[FakeGoogle, Workspace], pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake, ws = google
    ws.grant(SA_CLIENT_ID, {"https://www.googleapis.com/auth/gmail.readonly"})  # delegated, but not for SMTP
    key = fake.key_file(tmp_path)
    run, accounts = _gmail_run(fake, pki, capsys, key)
    assert run.code == 40
    issue = run.finding("probe.token.issue")
    assert issue["status"] == "fail" and issue["cause"] == "oauth-app-not-authorized"
    assert "unauthorized_client" in issue["message"]
    assert "Domain-wide delegation" in issue["remediation"] and GMAIL_USER in issue["remediation"]
    assert accounts.attempts == []
    assert run.finding("probe.auth")["status"] == "unknown"


def test_google_unknown_mailbox_names_mailbox_not_found(
        google: tuple[FakeGoogle, Workspace], pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake, ws = google
    ws.grant(SA_CLIENT_ID, {SMTP_SCOPE})
    key = fake.key_file(tmp_path)
    run, _ = _gmail_run(fake, pki, capsys, key, user="nobody@acme.example")
    assert run.code == 40
    assert run.finding("probe.token.issue")["cause"] == "mailbox-not-found"


def test_google_bad_key_file_is_exit_2(google: tuple[FakeGoogle, Workspace], pki: Pki, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    fake, _ = google
    bad = tmp_path / "client_secret.json"
    bad.write_text(json.dumps({"installed": {"client_id": "x"}}))
    run = _probe(capsys, f"localhost:{closed_port()}", "--user", GMAIL_USER, "--token-from", "google",
                 "--key-file", str(bad))
    assert run.code == 2 and "not a service account key file" in run.err
    assert fake.seen("/token") == []


# --- the plugin contract -----------------------------------------------------------------------------


def test_a_provider_without_smtp_token_is_refused_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    from preflight.probe.run import ProbeArgs, options
    from preflight.providers import Registry

    class Bare:
        name, title = "bare", "Bare"

    registry: Callable[[], Registry] = lambda: Registry([cast(Any, Bare())])  # noqa: E731
    from preflight.errors import InputError

    with pytest.raises(InputError, match="cannot obtain SMTP tokens"):
        options(ProbeArgs("localhost:25", user=MAILBOX, token_from="bare"), registry)
    with pytest.raises(InputError, match="unknown provider 'nope'"):
        options(ProbeArgs("localhost:25", user=MAILBOX, token_from="nope"), registry)
