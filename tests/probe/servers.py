"""Real SMTP servers on loopback for the probe tests: aiosmtpd speaking like Exchange Online or Gmail,
with trustme certificates, and raw socket servers that misbehave (silent, endless, closed).

Reply texts are the providers' own, as quoted in the reference notes (shared/reference/microsoft.md §6,
google.md §8); only the session ids and timestamps are made up.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import json
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

# --- provider reply texts -----------------------------------------------------------------------------

MICROSOFT_HOST = "BN9PR03CA0716.outlook.office365.com"
MICROSOFT_SUFFIX = "[BN9PR03CA0716.namprd03.prod.outlook.com 2026-11-26T10:00:00.000Z 08DD0C1A2B3C4D5E]"
MICROSOFT_SECURITY_DEFAULTS = (
    "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy. "
    f"Contact your administrator. {MICROSOFT_SUFFIX}"
)
MICROSOFT_SMTP_AUTH_DISABLED = (
    f"535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. {MICROSOFT_SUFFIX}"
)
MICROSOFT_XOAUTH2_FAILED = "535 5.7.3 Authentication unsuccessful [SN4PR0201CA0046.namprd02.prod.outlook.com]"
GMAIL_ID = "d9443c01a7336-21c2d3dc4e5sm12345678b3.99 - gsmtp"
GMAIL_BAD_CREDENTIALS = (
    "535-5.7.8 Username and Password not accepted. For more information, go to\r\n"
    f"535 5.7.8  https://support.google.com/mail/?p=BadCredentials {GMAIL_ID}"
)
GMAIL_STARTTLS_FIRST = f"530 5.7.0 Must issue a STARTTLS command first. {GMAIL_ID}"
GMAIL_AUTH_REQUIRED = (
    "530-5.7.0 Authentication Required. For more information, go to\r\n"
    f"530 5.7.0  https://support.google.com/mail/?p=WantAuthError {GMAIL_ID}"
)
# The usual live XOAUTH2 error challenge (google.md §8).
GMAIL_CHALLENGE = base64.b64encode(
    json.dumps({"status": "400", "schemes": "Bearer", "scope": "https://mail.google.com/"},
               separators=(",", ":")).encode()
).decode()


@dataclass(frozen=True)
class Flavour:
    banner_host: str
    banner_ident: str
    greeting: str  # first EHLO line after the code
    extensions_plain: list[str]  # EHLO lines before STARTTLS (without AUTH)
    extensions_tls: list[str]  # EHLO lines inside TLS
    starttls_reply: str
    auth_ok: str
    quit_reply: str
    mail_ok: str
    rcpt_ok: str


MICROSOFT = Flavour(
    banner_host=MICROSOFT_HOST,
    banner_ident="Microsoft ESMTP MAIL Service ready at Thu, 26 Nov 2026 10:00:00 +0000 [08DE2A6028D26C22]",
    greeting=f"{MICROSOFT_HOST} Hello [127.0.0.1]",
    extensions_plain=["SIZE 157286400", "PIPELINING", "DSN", "ENHANCEDSTATUSCODES", "STARTTLS", "8BITMIME",
                      "BINARYMIME", "CHUNKING", "SMTPUTF8"],
    extensions_tls=["SIZE 157286400", "PIPELINING", "DSN", "ENHANCEDSTATUSCODES", "AUTH LOGIN XOAUTH2", "8BITMIME",
                    "BINARYMIME", "CHUNKING", "SMTPUTF8"],
    starttls_reply="220 2.0.0 SMTP server ready",
    auth_ok="235 2.7.0 Authentication successful",
    quit_reply="221 2.0.0 Service closing transmission channel",
    mail_ok="250 2.1.0 Sender OK",
    rcpt_ok="250 2.1.5 Recipient OK",
)

GMAIL = Flavour(
    banner_host="smtp.gmail.com",
    banner_ident=f"ESMTP {GMAIL_ID}",
    greeting="smtp.gmail.com at your service, [127.0.0.1]",
    extensions_plain=["SIZE 35882577", "8BITMIME", "STARTTLS", "ENHANCEDSTATUSCODES", "PIPELINING", "CHUNKING",
                      "SMTPUTF8"],
    extensions_tls=["SIZE 35882577", "8BITMIME", "AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH",
                    "ENHANCEDSTATUSCODES", "PIPELINING", "CHUNKING", "SMTPUTF8"],
    starttls_reply="220 2.0.0 Ready to start TLS",
    auth_ok="235 2.7.0 Accepted",
    quit_reply=f"221 2.0.0 closing connection {GMAIL_ID}",
    mail_ok=f"250 2.1.0 OK {GMAIL_ID}",
    rcpt_ok=f"250 2.1.5 OK {GMAIL_ID}",
)


# --- certificates -------------------------------------------------------------------------------------

@dataclass
class Pki:
    ca: trustme.CA
    ca_file: Path
    good: trustme.LeafCert
    expired: trustme.LeafCert
    wrong_name: trustme.LeafCert

    def server_context(self, leaf: trustme.LeafCert, tls10_only: bool = False) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if tls10_only:
            _tls10(ctx)
        leaf.configure_cert(ctx)
        return ctx


def _tls10(ctx: ssl.SSLContext) -> None:
    # OpenSSL 3 refuses TLS 1.0 above security level 0; Python warns that TLSv1 is deprecated, which is the point.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1


def make_pki(directory: Path) -> Pki:
    ca = trustme.CA()
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    now = datetime.now(UTC)
    good = ca.issue_cert("localhost", "127.0.0.1")
    expired = ca.issue_cert("localhost", "127.0.0.1", not_before=now - timedelta(days=60),
                            not_after=now - timedelta(days=3))
    wrong_name = ca.issue_cert("mail.example.test")
    return Pki(ca, ca_file, good, expired, wrong_name)


def tls10_supported(pki: Pki) -> str | None:
    """None when this OpenSSL can still do a TLS 1.0 handshake, else the reason it cannot."""
    server_ctx = pki.server_context(pki.good, tls10_only=True)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _tls10(client)
    pki.ca.configure_trust(client)
    a, b = socket.socketpair()
    errors: list[str] = []

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(a, server_side=True) as s:
                s.recv(1)
        except (ssl.SSLError, OSError) as exc:
            errors.append(str(exc))

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with client.wrap_socket(b, server_hostname="localhost") as c:
            c.sendall(b"x")
            version = c.version()
    except (ssl.SSLError, OSError) as exc:
        return f"this OpenSSL refuses TLS 1.0 even at security level 0 ({exc})"
    finally:
        t.join(2)
    return None if version == "TLSv1" else f"negotiated {version}, not TLSv1"


# --- aiosmtpd servers ----------------------------------------------------------------------------------

@dataclass
class Accounts:
    """Who may sign in, and how others are turned away."""

    users: dict[str, str] = field(default_factory=dict)  # login -> password
    tokens: dict[str, str] = field(default_factory=dict)  # token -> user
    rejections: dict[str, str] = field(default_factory=dict)  # login -> the exact reply for it
    default_rejection: str = "535 5.7.8 Authentication credentials invalid"
    token_rejection: str | None = None  # None: Gmail's error challenge, then default_rejection
    attempts: list[tuple[str, str]] = field(default_factory=list)  # (mechanism, login) as received
    challenge_answers: list[bytes] = field(default_factory=list)  # the client's reply to an error challenge
    bearer_fields: list[dict[str, str]] = field(default_factory=list)  # OAUTHBEARER key=value pairs, no token


def _secure(server: SMTP, session: Session) -> bool:
    transport = server.transport
    return session.ssl is not None or (transport is not None and transport.get_extra_info("sslcontext") is not None)


class Handler:
    def __init__(self, flavour: Flavour, accounts: Accounts, require_tls_for_mail: bool,
                 require_auth_for_mail: bool, offer_auth: bool) -> None:
        self.flavour = flavour
        self.accounts = accounts
        self.require_tls_for_mail = require_tls_for_mail
        self.require_auth_for_mail = require_auth_for_mail
        self.offer_auth = offer_auth
        self.messages: list[Envelope] = []
        self.commands: list[str] = []

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        secure = _secure(server, session)
        if secure:
            ext = list(self.flavour.extensions_tls)
        else:
            ext = list(self.flavour.extensions_plain)
            if server.tls_context is None:  # implicit TLS or plain server: no STARTTLS to offer
                ext = [e for e in ext if e != "STARTTLS"]
        if not self.offer_auth:
            ext = [e for e in ext if not e.startswith("AUTH")]
        lines = [self.flavour.greeting, *ext]
        return [f"250-{line}" for line in lines[:-1]] + [f"250 {lines[-1]}"]

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        self.commands.append(f"MAIL {address}")
        if self.require_tls_for_mail and not _secure(server, session):
            return GMAIL_STARTTLS_FIRST
        if self.require_auth_for_mail and not session.authenticated:
            return GMAIL_AUTH_REQUIRED
        envelope.mail_from = address
        return self.flavour.mail_ok

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        self.commands.append(f"RCPT {address}")
        if address.startswith("nobody@"):
            return "550 5.1.1 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
        if envelope.mail_from and envelope.mail_from.startswith("other@"):
            # Postfix reject_sender_login_mismatch: the sender is judged at RCPT (smtpd_delay_reject).
            return (f"553 5.7.1 <{envelope.mail_from}>: Sender address rejected: not owned by user "
                    f"{session.auth_data}")
        envelope.rcpt_tos.append(address)
        return self.flavour.rcpt_ok

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if envelope.mail_from and envelope.mail_from.startswith("noreply@"):
            # Exchange checks Send As when it submits the message, i.e. only after DATA (microsoft.md §6).
            return (f"554 5.2.252 SendAsDenied; {session.auth_data} not allowed to send as {envelope.mail_from}; "
                    "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to "
                    "process message due to a permanent exception with message [BeginDiagnosticData]Cannot "
                    "submit message.")
        self.messages.append(envelope)
        host = "DM6PR11MB4609.namprd11.prod.outlook.com"
        return f"250 2.0.0 OK <{host}> [Hostname={host}]"

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.commands.append("RSET")
        return "250 2.0.0 Resetting"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.commands.append("QUIT")
        return self.flavour.quit_reply

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._bearer(server, args, "XOAUTH2", _parse_xoauth2)

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._bearer(server, args, "OAUTHBEARER", self._parse_oauthbearer)

    def _parse_oauthbearer(self, text: str) -> tuple[str, str]:
        """RFC 7628 §3.1: `n,a=user,` then ^A-separated key=value pairs ending in ^A^A."""
        gs2, _, rest = text.partition("\x01")
        if not gs2.startswith("n,a=") or not rest.endswith("\x01\x01"):
            raise ValueError("not an OAUTHBEARER initial response")
        fields = dict(part.split("=", 1) for part in rest.split("\x01") if part)
        self.accounts.bearer_fields.append({k: v for k, v in fields.items() if k != "auth"})
        auth = fields["auth"]
        if not auth.startswith("Bearer "):
            raise ValueError("no bearer token")
        return gs2[4:].rstrip(","), auth[len("Bearer "):]

    async def _bearer(self, server: SMTP, args: list[str], mechanism: str, parse: Any) -> AuthResult:
        if len(args) < 2:
            return AuthResult(success=False, handled=False, message="501 5.5.2 Cannot Decode response")
        try:
            user, token = parse(base64.b64decode(args[1], validate=True).decode())
        except (ValueError, KeyError):
            return AuthResult(success=False, handled=False, message="501 5.5.2 Cannot Decode response")
        self.accounts.attempts.append((mechanism, user))
        if self.accounts.tokens.get(token) == user:
            return AuthResult(success=True, auth_data=user, message=self.flavour.auth_ok)
        if self.accounts.token_rejection is not None:
            return AuthResult(success=False, handled=False, message=self.accounts.token_rejection)
        # Gmail: an error challenge; the client answers (XOAUTH2: empty; OAUTHBEARER: ^A), then the final reply.
        answer = await server.challenge_auth(GMAIL_CHALLENGE, encode_to_b64=False)
        if isinstance(answer, bytes):
            self.accounts.challenge_answers.append(answer)
        return AuthResult(success=False, handled=False, message=self.accounts.default_rejection)


def _parse_xoauth2(text: str) -> tuple[str, str]:
    fields = dict(part.split("=", 1) for part in text.split("\x01") if part)
    auth = fields["auth"]
    if not auth.startswith("Bearer "):
        raise ValueError("no bearer token")
    return fields["user"], auth[len("Bearer "):]


class _Smtp(SMTP):
    # Exchange and Gmail send the classic LOGIN prompts.
    AuthLoginUsernameChallenge = "Username:"
    AuthLoginPasswordChallenge = "Password:"
    line_length_limit = 12288 + 2

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # RFC 4954 §4: an AUTH line may be 12288 octets; a JWT in an XOAUTH2 initial response needs it.
        self.command_size_limits = collections.defaultdict(lambda: SMTP.command_size_limit)
        self.command_size_limits["AUTH"] = 12288

    async def smtp_STARTTLS(self, arg: str) -> None:
        # The provider's reply text instead of aiosmtpd's "220 Ready to start TLS".
        original = self.push
        flavour: Flavour = self.event_handler.flavour

        async def push(status: Any) -> None:
            if status == "220 Ready to start TLS":
                status = flavour.starttls_reply
            await original(status)

        self.push = push  # type: ignore[method-assign]
        try:
            await super().smtp_STARTTLS(arg)
        finally:
            self.push = original  # type: ignore[method-assign]


class _Controller(Controller):
    """Binds port 0 and learns the real port before aiosmtpd's own readiness check connects."""

    def factory(self) -> SMTP:
        return _Smtp(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        server: Any = self.server
        self.port = server.sockets[0].getsockname()[1]
        # A plain TCP connect is enough for asyncio to build the protocol; aiosmtpd's own trigger would
        # attempt a modern TLS handshake, which a TLS 1.0-only server refuses.
        with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
            pass


def _authenticator(accounts: Accounts, flavour: Flavour) -> Any:
    def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login, password = data.login.decode(), data.password.decode()
        accounts.attempts.append((mechanism, login))
        if accounts.users.get(login) == password:
            return AuthResult(success=True, auth_data=login, message=flavour.auth_ok)
        message = accounts.rejections.get(login, accounts.default_rejection)
        return AuthResult(success=False, handled=False, message=message)

    return check


@dataclass
class Running:
    port: int
    handler: Handler
    accounts: Accounts


@contextlib.contextmanager
def smtp_server(pki: Pki | None, *, flavour: Flavour = MICROSOFT, accounts: Accounts | None = None,
                implicit: bool = False, leaf: trustme.LeafCert | None = None, tls10_only: bool = False,
                mechanisms: tuple[str, ...] = ("LOGIN", "PLAIN", "XOAUTH2"), require_tls_for_mail: bool = False,
                require_auth_for_mail: bool = False, offer_auth: bool = True) -> Iterator[Running]:
    """An aiosmtpd server on 127.0.0.1: STARTTLS (default), implicit TLS, or plain when pki is None."""
    accounts = accounts or Accounts()
    handler = Handler(flavour, accounts, require_tls_for_mail, require_auth_for_mail, offer_auth)
    ctx = pki.server_context(leaf or pki.good, tls10_only) if pki is not None else None
    kwargs: dict[str, Any] = {
        "hostname": "127.0.0.1",
        "port": 0,
        "server_hostname": flavour.banner_host,
        "ident": flavour.banner_ident,
        "authenticator": _authenticator(accounts, flavour),
        "auth_exclude_mechanism": [m for m in ("LOGIN", "PLAIN", "XOAUTH2") if m not in mechanisms],
        "ready_timeout": 5.0,
    }
    if implicit:
        kwargs["ssl_context"] = ctx
        kwargs["auth_require_tls"] = False  # aiosmtpd only knows STARTTLS as "TLS"; the socket is TLS already
    else:
        kwargs["tls_context"] = ctx
        kwargs["auth_require_tls"] = ctx is not None
    controller = _Controller(handler, **kwargs)
    controller.start()
    try:
        yield Running(controller.port, handler, accounts)
    finally:
        controller.stop()


# --- misbehaving raw servers --------------------------------------------------------------------------

@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """Accepts TCP (the kernel completes the handshake from the backlog) and never says a word."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@contextlib.contextmanager
def scripted_server(script: Any) -> Iterator[int]:
    """Runs `script(conn)` for each connection in a thread; the script talks raw bytes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    script(conn, stop)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def endless_reply(conn: socket.socket, stop: threading.Event) -> None:
    """A banner that never ends: `220-` continuation lines until the client hangs up."""
    while not stop.is_set():
        conn.sendall(b"220-smtp.example.test still greeting you\r\n" * 50)


def endless_line(conn: socket.socket, stop: threading.Event) -> None:
    """One banner line that never reaches its CRLF."""
    conn.sendall(b"220 ")
    while not stop.is_set():
        conn.sendall(b"x" * 1024)


def implicit_tls_script(ctx: ssl.SSLContext) -> Any:
    """An implicit-TLS server on a blocking OpenSSL socket: a refused handshake ends with OpenSSL's alert
    (as Postfix or Exchange send it), where asyncio's TLS server just drops the connection."""

    def script(conn: socket.socket, stop: threading.Event) -> None:
        with ctx.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"220 legacy.example.test ESMTP\r\n")
            tls.recv(1024)

    return script


def closed_port() -> int:
    """A port nothing listens on: bound once to pick it, then released."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port
