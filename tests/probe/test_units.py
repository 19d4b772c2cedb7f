"""The probe's pure parts: target parsing, the bounded reply reader, the token linter, masking, planning."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preflight.errors import InputError
from preflight.probe.options import ProbeOptions, plan
from preflight.probe.result import Phase
from preflight.probe.secrets import Secret, token_from_file
from preflight.probe.session import auth_mechanisms
from preflight.probe.target import Target, TlsMode, resolve_target, split_host_port
from preflight.probe.token import lint
from preflight.probe.transcript import Transcript
from preflight.probe.wire import Closed, Limits, ProtocolError, Reply, Wire, WireError
from tests.jwts import unsigned_jwt
from tests.probe import tokens

# --- target --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("smtp.office365.com", ("smtp.office365.com", None)),
        ("smtp.gmail.com:465", ("smtp.gmail.com", 465)),
        ("[2001:db8::25]:587", ("2001:db8::25", 587)),
        ("[2001:db8::25]", ("2001:db8::25", None)),
        ("2001:db8::25", ("2001:db8::25", None)),
    ],
)
def test_split_host_port(text: str, expected: tuple[str, int | None]) -> None:
    assert split_host_port(text) == expected


def test_known_hosts_get_their_defaults() -> None:
    ms = resolve_target("smtp.office365.com")
    assert (ms.port, ms.tls, ms.provider, ms.known) == (587, TlsMode.STARTTLS, "microsoft", True)
    assert ms.basic_auth_warning == "basic-auth-retirement"
    gmail = resolve_target("smtp.gmail.com:465")
    assert (gmail.tls, gmail.provider, gmail.basic_auth_warning) == (TlsMode.IMPLICIT, "google", None)
    relay = resolve_target("SMTP-RELAY.gmail.com")
    assert (relay.port, relay.tls, relay.provider) == (587, TlsMode.STARTTLS, "google")


def test_unknown_hosts_follow_the_port_convention_and_explicit_options_win() -> None:
    assert resolve_target("mail.example.org:465").tls is TlsMode.IMPLICIT
    assert resolve_target("mail.example.org").port == 587
    assert resolve_target("mail.example.org:2525").tls is TlsMode.STARTTLS
    assert resolve_target("mail.example.org:465", tls=TlsMode.STARTTLS).tls is TlsMode.STARTTLS
    assert resolve_target("eur.mail.protection.outlook.com:25").provider == "microsoft"
    assert resolve_target("mail.example.org").provider is None


@pytest.mark.parametrize(
    ("text", "port", "fragment"),
    [
        ("", None, "no host"),
        ("host:0", None, "out of range"),
        ("host:65536", None, "out of range"),
        ("host:25x", None, "not a number"),
        ("host:25", 587, "port given twice"),
        ("bad host", None, "not a valid host name"),
        ("bad_host\r\nMAIL", None, "not a valid host name"),
        ("[::1", None, "missing ']'"),
    ],
)
def test_bad_targets(text: str, port: int | None, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        resolve_target(text, port)


# --- wire ----------------------------------------------------------------------------------------------


def _wire(data: bytes, limits: Limits | None = None) -> tuple[Wire, Transcript]:
    server, client = socket.socketpair()
    server.sendall(data)
    server.close()
    transcript = Transcript()
    return Wire(client, limits or Limits(timeout=2), transcript), transcript


def test_multiline_reply_and_enhanced_code() -> None:
    wire, transcript = _wire(b"535-5.7.8 Username and Password not accepted.\r\n535 5.7.8  https://x - gsmtp\r\n")
    reply = wire.read_reply(wire.deadline())
    assert reply.code == 535 and reply.enhanced == "5.7.8" and len(reply.raw) == 2
    assert [e.direction for e in transcript.entries] == ["recv", "recv"]


def test_bare_code_and_lf_only_lines() -> None:
    wire, _ = _wire(b"250\n")
    assert wire.read_reply(wire.deadline()) == Reply(250, [""], ["250"])


@pytest.mark.parametrize(
    ("data", "error", "fragment"),
    [
        (b"250-a\r\n251 b\r\n", ProtocolError, "code changed"),
        (b"hello there\r\n", ProtocolError, "not an SMTP reply"),
        (b"250-a\r\n", Closed, "closed"),
        (b"", Closed, "closed"),
        (b"250 " + b"x" * 300 + b"\r\n", ProtocolError, "longer than 256 bytes"),
        (b"250-x\r\n" * 20, ProtocolError, "longer than 10 lines"),
        (b"250-" + b"y" * 200 + b"\r\n" + b"250-" + b"y" * 200 + b"\r\n" * 3, ProtocolError, "larger than 300"),
    ],
)
def test_bad_replies(data: bytes, error: type[WireError], fragment: str) -> None:
    wire, _ = _wire(data, Limits(timeout=2, max_line=256, max_lines=10, max_reply=300))
    with pytest.raises(error, match=fragment):
        wire.read_reply(wire.deadline())


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=4096))
def test_any_byte_stream_gives_a_reply_or_a_wire_error(data: bytes) -> None:
    wire, transcript = _wire(data, Limits(timeout=2, max_line=512, max_lines=20, max_reply=2048))
    try:
        reply = wire.read_reply(wire.deadline())
    except WireError:
        pass
    else:
        assert 200 <= reply.code <= 599 and 1 <= len(reply.raw) <= 20
    for entry in transcript.entries:
        assert entry.text.isprintable()  # a hostile server cannot drive the terminal


def test_transcript_escapes_control_characters() -> None:
    wire, transcript = _wire(b"220 evil\x1b[2J\x07 banner\r\n")
    wire.read_reply(wire.deadline())
    assert transcript.lines() == ["<-  220 evil\\x1b[2J\\x07 banner"]


# --- capabilities and planning -------------------------------------------------------------------------


def test_auth_mechanisms_from_ehlo_lines() -> None:
    caps = ["SIZE 35882577", "AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH", "AUTH=LOGIN PLAIN"]
    assert auth_mechanisms(caps) == ["LOGIN", "PLAIN", "XOAUTH2", "PLAIN-CLIENTTOKEN", "OAUTHBEARER", "XOAUTH"]
    assert auth_mechanisms(["STARTTLS", "AUTHX"]) == []


def _opts(tls: TlsMode = TlsMode.STARTTLS, **kw: object) -> ProbeOptions:
    return ProbeOptions(Target("mail.example.org", 587, tls, None, False), **kw)  # type: ignore[arg-type]


def test_plan_follows_the_options() -> None:
    assert plan(_opts()) == [Phase.CONNECT, Phase.BANNER, Phase.EHLO, Phase.STARTTLS, Phase.EHLO_TLS]
    assert plan(_opts(TlsMode.IMPLICIT))[:3] == [Phase.CONNECT, Phase.TLS, Phase.BANNER]
    full = plan(_opts(mechanism="LOGIN", mail_from="a@b.c", rcpt_to=("d@e.f",), send=True))
    assert full[-5:] == [Phase.AUTH, Phase.MAIL, Phase.RCPT, Phase.DATA, Phase.MESSAGE]
    assert plan(_opts(mail_from="a@b.c", rcpt_to=("d@e.f",), quit_after="mail"))[-1] is Phase.MAIL
    assert plan(_opts(quit_after="tls"))[-1] is Phase.EHLO_TLS
    assert plan(_opts(TlsMode.IMPLICIT, quit_after="tls"))[-1] is Phase.EHLO
    assert plan(_opts(quit_after="connect")) == [Phase.CONNECT]
    assert plan(_opts(quit_after="auth"))[-1] is Phase.EHLO_TLS  # nothing to authenticate: up to AUTH


# --- token lint ----------------------------------------------------------------------------------------


def test_clean_delegated_and_app_tokens() -> None:
    delegated = lint(tokens.delegated("jobs@contoso.com"), "jobs@contoso.com", "microsoft", datetime.now(UTC))
    assert delegated.kind == "jwt" and delegated.provider == "microsoft" and delegated.problems == []
    assert delegated.claims["scp"] == "SMTP.Send User.Read"
    app = lint(tokens.app_only(), "jobs@contoso.com", None, datetime.now(UTC))
    assert app.provider == "microsoft" and app.problems == []  # the issuer says Microsoft


def test_v2_audience_guid_is_accepted() -> None:
    token = tokens.app_only(aud="00000002-0000-0ff1-ce00-000000000000")
    assert lint(token, "jobs@contoso.com", "microsoft", datetime.now(UTC)).problems == []


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: tokens.delegated("jobs@contoso.com", aud="https://graph.microsoft.com"), "Microsoft Graph"),
        (lambda: tokens.delegated("jobs@contoso.com", scp="Mail.Send"), "lacks SMTP.Send"),
        (lambda: tokens.app_only(roles=["Mail.Send"]), "lack SMTP.SendAsApp"),
        (lambda: tokens.app_only(roles=[]), "roles (none)"),
        (lambda: tokens.delegated("jobs@contoso.com", exp_in=-120), "expired"),
        (lambda: tokens.delegated("someone@contoso.com"), "issued to someone@contoso.com"),
    ],
)
def test_token_problems(make: Callable[[], str], fragment: str) -> None:
    token = make()
    result = lint(token, "jobs@contoso.com", "microsoft", datetime.now(UTC))
    assert len([p for p in result.problems if not p.unknown]) == 1, result.problems  # only the planted one
    messages = " ".join(p.message for p in result.problems if not p.unknown)
    assert fragment in messages
    assert token not in str(result.to_dict())


def test_future_nbf_points_at_the_clock() -> None:
    now = datetime.now(UTC)
    token = unsigned_jwt({"aud": "https://outlook.office365.com", "iss": "https://sts.windows.net/x/",
                        "roles": ["SMTP.SendAsApp"], "nbf": (now + timedelta(hours=1)).timestamp(),
                        "exp": (now + timedelta(hours=2)).timestamp()})
    assert "clock" in lint(token, None, None, now).problems[0].message


def test_google_tokens() -> None:
    opaque = lint("ya29.a0AfB_byC" + "x" * 60, "jobs@fabrikam.example", "google", datetime.now(UTC))
    assert opaque.kind == "google-opaque" and opaque.problems == [] and "opaque" in opaque.notes[0]
    id_token = unsigned_jwt({"iss": "https://accounts.google.com", "aud": "1234.apps.googleusercontent.com",
                           "email": "jobs@fabrikam.example", "exp": datetime.now(UTC).timestamp() + 600})
    assert "ID token" in lint(id_token, None, "google", datetime.now(UTC)).problems[0].message


def test_unreadable_tokens_are_unknown_not_judged() -> None:
    for token in ("EwBwA8l6BAAUO9chh8cJscQLmU+LSWpbnr0vmwwAAQ", "a.b.c", "e30.e30"):
        result = lint(token, None, "microsoft", datetime.now(UTC))
        assert result.problems and all(p.unknown for p in result.problems), token


# --- secrets -------------------------------------------------------------------------------------------


def test_secret_never_prints_itself() -> None:
    secret = Secret("S3ntinel")
    assert "S3ntinel" not in repr(secret) and "S3ntinel" not in str(secret) and "S3ntinel" not in f"{secret}"
    assert secret.reveal() == "S3ntinel"


def test_token_file_forms(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.write_text("ya29.token\n")
    assert token_from_file(bare).reveal() == "ya29.token"
    response = tmp_path / "response.json"
    response.write_text('{"token_type": "Bearer", "expires_in": 3599, "access_token": "eyJ0.e30.sig"}')
    assert token_from_file(response).reveal() == "eyJ0.e30.sig"
    broken = tmp_path / "broken.json"
    broken.write_text('{"token_type": "Bearer"}')
    with pytest.raises(InputError, match="without an access_token"):
        token_from_file(broken)
    injected = tmp_path / "injected"
    injected.write_text("abc\r\nMAIL FROM:<x@y>")
    with pytest.raises(InputError, match="line break"):
        token_from_file(injected)


# --- data files ----------------------------------------------------------------------------------------


def test_every_cause_the_probe_names_is_in_the_catalogue() -> None:
    import re
    import tomllib

    from preflight.causes import load_catalogue
    from preflight.probe.rules import load_rules
    from preflight.probe.target import HostTable

    catalogue = load_catalogue()
    rules = load_rules()
    named = set(rules.connect.values()) | {rules.xoauth2["generic_cause"], rules.xoauth2["token_cause"]}
    named |= set(rules.xoauth2["clean_token_cause"].values())
    named |= {p["basic_auth_warning"] for p in HostTable.load().providers.values() if "basic_auth_warning" in p}
    source = Path(__file__).parents[2] / "preflight" / "probe"
    for path in source.glob("*.py"):
        named |= set(re.findall(r'"([a-z]+(?:-[a-z0-9]+)+)"', path.read_text()))
    known_non_causes = {"ehlo-tls", "google-opaque", "preflight-resolve", "utf-8"}
    missing = {n for n in named - known_non_causes if n not in catalogue}
    assert not missing, f"not in causes.toml: {sorted(missing)}"
    hosts = tomllib.loads((source.parent / "data" / "smtp_hosts.toml").read_text())
    for host in hosts["host"]:
        assert host["tls"] in ("starttls", "implicit", "none") and host["provider"] in ("microsoft", "google")


def test_token_mechanism_follows_what_the_server_offers() -> None:
    from preflight.probe.auth import choose

    assert choose(["LOGIN", "XOAUTH2", "OAUTHBEARER"], password=False, explicit=None) == "XOAUTH2"
    assert choose(["OAUTHBEARER"], password=False, explicit=None) == "OAUTHBEARER"
    assert choose([], password=False, explicit=None) == "XOAUTH2"


def test_token_from_settings_are_checked_before_any_network() -> None:
    import pytest

    from preflight.errors import InputError
    from preflight.probe.tokenfrom import token_request
    from preflight.providers import Registry, TokenOptions
    from preflight_providers.microsoft import provider as microsoft

    class Plugin:  # the Microsoft source's own options, and a token endpoint that must never be asked
        name = "microsoft"

        def smtp_token_options(self) -> TokenOptions:
            return microsoft.smtp_token_options()

        def smtp_token(self, settings: object, user: str) -> str:
            raise AssertionError("no token may be requested")

    with pytest.raises(InputError, match="needs --client-id"):
        token_request("microsoft", "a@contoso.com", {"tenant": "contoso.com"}, {},
                      registry=lambda: Registry([Plugin()]))  # type: ignore[list-item]
