"""Run the probe: DNS, TCP, (TLS), banner, EHLO, STARTTLS, EHLO, AUTH, MAIL, RCPT, (DATA), RSET, QUIT.

Each phase records its replies, timing and, when it fails, the exact error; the first failure ends the
conversation (politely with QUIT when the connection is still usable). Nothing here decides causes
from reply texts: findings.py does that from the result.
"""

from __future__ import annotations

import errno
import select
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from preflight.deadline import Deadline
from preflight.errors import InputError, SignInError
from preflight.probe import auth as sasl
from preflight.probe import peek
from preflight.probe import tls as tlsmod
from preflight.probe.net import Address, Resolver, resolve
from preflight.probe.options import Credentials, ProbeOptions, plan
from preflight.probe.result import Phase, PhaseResult, PhaseStatus, ProbeResult
from preflight.probe.rules import load_rules
from preflight.probe.token import lint
from preflight.probe.transcript import Transcript
from preflight.probe.wire import DeadlinePassed, PhaseTimeout, ProtocolError, Reply, Wire, WireError
from preflight.providers import TokenRefused

MAX_ADDRESSES = 3


class Session:
    def __init__(self, opts: ProbeOptions, transcript: Transcript, now: datetime | None = None,
                 overall: Deadline | None = None) -> None:
        self.opts = opts
        self.now = now or datetime.now(UTC)
        self.overall = overall or Deadline(opts.deadline)  # --deadline: the whole probe, every wait in it
        self.result = ProbeResult(opts.target, plan(opts), transcript)
        self.transcript = transcript
        if opts.credentials is not None:
            transcript.secrets.add(opts.credentials.secret.reveal())
        self.wire: Wire | None = None
        self._usable = False  # the connection can still take a QUIT
        self._peer: tuple[int, Any] | None = None  # (family, sockaddr) of the connected address

    # -- driving ---------------------------------------------------------------------------------

    def run(self, addresses: list[Address]) -> ProbeResult:
        opts, result = self.opts, self.result
        creds = opts.credentials
        if creds is not None:
            result.auth.user = creds.user
            result.auth.method = "oauth" if creds.token else "basic"
            if creds.token is not None:
                result.token = lint(creds.token.reveal(), creds.user, opts.target.provider, self.now)
        result.auth.needed = opts.mechanism
        planned = list(result.planned)
        if planned[:1] == [Phase.TOKEN]:
            # Before connecting, as the sending service does; a refusal still lets the network phases run.
            self._token()
            planned = planned[1:]
        steps: dict[Phase, Callable[[], bool]] = {
            Phase.CONNECT: lambda: self._connect(addresses),
            Phase.TLS: self._implicit_tls,
            Phase.BANNER: self._banner,
            Phase.EHLO: lambda: self._ehlo(Phase.EHLO),
            Phase.STARTTLS: self._starttls,
            Phase.EHLO_TLS: lambda: self._ehlo(Phase.EHLO_TLS),
            Phase.AUTH: self._auth,
            Phase.MAIL: self._mail,
            Phase.RCPT: self._rcpt,
            Phase.DATA: self._data,
            Phase.MESSAGE: self._message,
        }
        try:
            for phase in planned:
                if self.overall.expired:
                    self._deadline_passed(phase, planned)
                    break
                if not steps[phase]():
                    self._name_unreached(phase, planned)
                    break
                if phase in (Phase.EHLO, Phase.EHLO_TLS):
                    self._note_mechanisms()
                if phase is Phase.AUTH and opts.token_request is not None and self.opts.credentials is None:
                    break  # no token, no sign-in: MAIL/RCPT would only meet "not authenticated"
            self._goodbye()
        finally:
            if self.wire is not None:
                self.wire.close()
                self.transcript.info("Connection closed.")
        return result

    def _deadline_passed(self, phase: Phase, planned: list[Phase]) -> None:
        """The deadline passed between phases: this one and the rest were not reached."""
        self._usable = False
        missed = ", ".join(p.value for p in planned[planned.index(phase):])
        self._record(phase, time.monotonic(), PhaseStatus.UNKNOWN, error=(
            f"the probe's deadline of {self.overall.seconds:g} s passed before {phase.value}; not reached: "
            f"{missed} (raise it with --deadline)"), deadline=self.overall.seconds, not_reached=missed.split(", "))

    def _name_unreached(self, phase: Phase, planned: list[Phase]) -> None:
        """A phase cut by the deadline: its error names what the probe did not reach."""
        last = self.result.phases[-1] if self.result.phases else None
        rest = planned[planned.index(phase) + 1:]
        if last is None or last.phase is not phase or not last.detail.get("deadline") or not rest:
            return
        last.detail["not_reached"] = [p.value for p in rest]
        last.error = f"{last.error}; not reached: {', '.join(p.value for p in rest)}"

    def _record(self, phase: Phase, started: float, status: PhaseStatus, replies: list[Reply] | None = None,
                error: str | None = None, cause: str | None = None, echo: bool = True, **detail: Any) -> bool:
        elapsed = (time.monotonic() - started) * 1000
        self.result.phases.append(PhaseResult(phase, status, elapsed, list(replies or []), error, cause, detail))
        if error and echo:
            self.transcript.error(error)
        return status is PhaseStatus.OK

    def _wire_failure(self, phase: Phase, started: float, exc: WireError, replies: list[Reply]) -> bool:
        self._usable = False
        if isinstance(exc, DeadlinePassed):
            return self._record(phase, started, PhaseStatus.FAILED, replies, f"{phase.value}: {exc}",
                                "connection-timeout", deadline=exc.seconds)
        if isinstance(exc, PhaseTimeout):
            return self._record(phase, started, PhaseStatus.FAILED, replies, f"{phase.value}: {exc}",
                                "connection-timeout")
        if isinstance(exc, ProtocolError):
            return self._record(phase, started, PhaseStatus.UNKNOWN, replies, f"{phase.value}: malformed reply: {exc}")
        return self._record(phase, started, PhaseStatus.UNKNOWN, replies, f"{phase.value}: {exc}")

    def _exchange(self, phase: Phase, line: str, expect: tuple[int, ...], shown: str | None = None) -> bool:
        assert self.wire is not None
        started = time.monotonic()
        try:
            reply = self.wire.command(line, shown)
        except WireError as exc:
            return self._wire_failure(phase, started, exc, [])
        if reply.code not in expect:
            return self._record(phase, started, PhaseStatus.FAILED, [reply])
        return self._record(phase, started, PhaseStatus.OK, [reply])

    # -- phases ----------------------------------------------------------------------------------

    def _connect(self, addresses: list[Address]) -> bool:
        target = self.opts.target
        started = time.monotonic()
        self.result.addresses = [str(a[1][0]) for a in addresses]
        errors: list[tuple[str, str]] = []
        for family, sockaddr in addresses[:MAX_ADDRESSES]:
            shown = f"[{sockaddr[0]}]:{sockaddr[1]}" if family == socket.AF_INET6 else f"{sockaddr[0]}:{sockaddr[1]}"
            self.transcript.info(f"Trying {target.host}:{target.port} ({shown})...")
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)  # fails where IPv6 is off in the kernel
            except OSError as exc:
                errors.append(("", f"{shown}: {exc.strerror or type(exc).__name__}"))
                continue
            sock.settimeout(min(self.opts.limits.timeout, self.overall.remaining()) or 0.001)
            try:
                sock.connect(sockaddr)
            except TimeoutError:
                sock.close()
                if self.overall.expired:
                    return self._wire_failure(Phase.CONNECT, started, DeadlinePassed(self.overall.seconds), [])
                # A firewall that drops one address drops them all: stop rather than wait again.
                return self._record(Phase.CONNECT, started, PhaseStatus.FAILED, error=(
                    f"connect to {shown} timed out after {self.opts.limits.timeout:g} s"),
                    cause="connection-timeout", address=shown)
            except OSError as exc:
                sock.close()
                name = errno.errorcode.get(exc.errno or 0, "")
                errors.append((name, f"{shown}: {exc.strerror or name or type(exc).__name__}"))
                self.transcript.error(f"connect to {shown} failed: {exc.strerror or name}")
                continue
            self.transcript.info(f"Connected to {target.host} ({shown}).")
            self.wire = Wire(sock, self.opts.limits, self.transcript, self.overall)
            self._peer = (family, sockaddr)
            return self._record(Phase.CONNECT, started, PhaseStatus.OK, address=shown)
        names = {n for n, _ in errors}
        causes = {load_rules().connect.get(n) for n in names}
        cause = causes.pop() if len(causes) == 1 else None
        status = PhaseStatus.FAILED
        message = "; ".join(text for _, text in errors) or "no address to connect to"
        # Each address's failure is already in the transcript; the phase keeps them all for the finding.
        return self._record(Phase.CONNECT, started, status, error=f"could not connect: {message}", cause=cause,
                            echo=not errors, errno=sorted(names))

    def _handshake(self, phase: Phase, mode: str) -> bool:
        assert self.wire is not None
        started = time.monotonic()
        target = self.opts.target
        ctx = tlsmod.client_context(self.opts.ca_file)
        try:
            sock = ctx.wrap_socket(self.wire.sock, server_hostname=target.host, do_handshake_on_connect=False)
            _handshake_within(sock, self.wire.deadline())
        except (ssl.SSLError, OSError) as exc:
            if isinstance(exc, TimeoutError) and self.overall.expired:
                return self._wire_failure(phase, started, DeadlinePassed(self.overall.seconds), [])
            failure = tlsmod.classify(exc, mode, target.port)
            if isinstance(exc, ssl.SSLCertVerificationError) and self._peer is not None:
                # Verification stays failed; a separate look only shows what was presented.
                shown = peek.presented_certificate(*self._peer, target.host, mode, self.opts.ehlo_name,
                                                   self._peek_timeout(), self.now)
                if shown is not None:
                    failure = tlsmod.with_certificate(failure, shown)
                    self.transcript.info(f"Presented certificate (not trusted): subject {shown.subject}; "
                                         f"issuer {shown.issuer}; names {', '.join(shown.names) or 'none'}; "
                                         f"expires {shown.not_after}")
            self.result.tls_failure = failure
            self._usable = False
            status = PhaseStatus.UNKNOWN if failure.unreadable else PhaseStatus.FAILED
            return self._record(phase, started, status, error=f"TLS: {failure.message}", cause=failure.cause,
                                **failure.detail)
        self.wire.sock = sock
        self.transcript.tls = True
        info = tlsmod.inspect(sock, mode, target.host, self.now)
        self.result.tls = info
        self.transcript.info(f"TLS started with {info.version}, cipher {info.cipher} ({info.bits} bits)")
        if info.peer is not None:
            self.transcript.info(f"TLS peer subject: {info.peer.subject}; issuer: {info.peer.issuer}")
            self.transcript.info(f"TLS certificate verified for {info.verified_name!r}; expires {info.peer.not_after}"
                                 f" ({info.peer.days_left} days left)")
        return self._record(phase, started, PhaseStatus.OK, version=info.version, cipher=info.cipher)

    def _implicit_tls(self) -> bool:
        return self._handshake(Phase.TLS, "implicit")

    def _peek_timeout(self) -> float:
        return max(min(self.opts.limits.timeout, float(load_rules().tls["peek_timeout_seconds"]),
                       self.overall.remaining()), 0.001)

    def _silent_tls_port(self, started: float) -> bool:
        """A plain start met silence: wait a little, then ask a second connection whether the port speaks TLS."""
        assert self.wire is not None
        quiet = float(load_rules().tls["silent_port_check_seconds"])
        if self.transcript.tls or self._peer is None or self.opts.limits.timeout <= 2 * quiet:
            return False
        try:
            self.wire.wait_readable(started + quiet)
            return False  # something arrived: read it as the greeting
        except PhaseTimeout:
            pass
        return peek.speaks_tls(*self._peer, self.opts.target.host, self._peek_timeout())

    def _banner(self) -> bool:
        assert self.wire is not None
        started = time.monotonic()
        deadline = self.wire.deadline()
        if self._silent_tls_port(started):
            quiet = float(load_rules().tls["silent_port_check_seconds"])
            self._usable = False
            return self._record(Phase.BANNER, started, PhaseStatus.FAILED, error=(
                f"banner: no greeting {quiet:g} s after the TCP connect, and the port answers a TLS handshake: "
                "it expects TLS from the first byte (implicit TLS); probe with --tls implicit"),
                cause="tls-mode-mismatch", implicit_tls=True)
        try:
            reply = self.wire.read_reply(deadline)
        except WireError as exc:
            if isinstance(exc, PhaseTimeout) and self.opts.target.port == 465 and not self.transcript.tls:
                exc = PhaseTimeout(f"{exc}; port 465 usually expects implicit TLS (--tls implicit)")
            return self._wire_failure(Phase.BANNER, started, exc, [])
        self._usable = True
        if reply.code != 220:
            return self._record(Phase.BANNER, started, PhaseStatus.FAILED, [reply])
        return self._record(Phase.BANNER, started, PhaseStatus.OK, [reply])

    def _ehlo(self, phase: Phase) -> bool:
        ok = self._exchange(phase, f"EHLO {self.opts.ehlo_name}", (250,))
        current = self.result.phases[-1]
        if ok and current.reply is not None:
            caps = current.reply.lines[1:]
            if phase is Phase.EHLO:
                self.result.capabilities_before = caps
            else:
                self.result.capabilities_after = caps
        return ok

    def _starttls(self) -> bool:
        assert self.wire is not None
        started = time.monotonic()
        if not _has(self.result.capabilities_before or [], "STARTTLS"):
            return self._record(Phase.STARTTLS, started, PhaseStatus.FAILED, error=(
                "the server does not offer STARTTLS: credentials and mail would travel unencrypted"),
                offered=False)
        try:
            reply = self.wire.command("STARTTLS")
        except WireError as exc:
            return self._wire_failure(Phase.STARTTLS, started, exc, [])
        if reply.code != 220:
            return self._record(Phase.STARTTLS, started, PhaseStatus.FAILED, [reply])
        if self.wire.pending:
            self._usable = False
            return self._record(Phase.STARTTLS, started, PhaseStatus.UNKNOWN, [reply], error=(
                "the server sent data after its STARTTLS reply, before the handshake (response injection); "
                "the probe stopped"))
        ok = self._handshake(Phase.STARTTLS, "starttls")
        # One phase, one record: fold the handshake's record into the STARTTLS command's.
        handshake = self.result.phases.pop()
        handshake.replies = [reply]
        handshake.elapsed_ms = (time.monotonic() - started) * 1000
        self.result.phases.append(handshake)
        return ok

    def _token(self) -> None:
        """--token-from: ask the provider for the sending app's token; its refusal is a finding, not a crash."""
        request = self.opts.token_request
        assert request is not None
        self.result.auth.user, self.result.auth.method = request.user, "oauth"
        self.transcript.info(request.describe() + "...")
        started = time.monotonic()
        try:
            token = request.fetch()
        except TokenRefused as exc:
            detail: dict[str, Any] = {"provider": request.provider, "code": exc.code}
            if exc.status is not None:
                detail["http_status"] = exc.status
            self._record(Phase.TOKEN, started, PhaseStatus.FAILED, error=(
                f"{request.provider} refused the token request: {self.transcript.mask(str(exc))}"), **detail)
            return
        except SignInError as exc:  # not asked at all: nothing is known about the credentials
            self._record(Phase.TOKEN, started, PhaseStatus.UNKNOWN, error=(
                f"no token from {request.provider}: {self.transcript.mask(str(exc))}"), provider=request.provider)
            return
        self.transcript.secrets.add(token.reveal())
        self.opts = replace(self.opts, credentials=Credentials(request.user, token=token))
        self.result.token = lint(token.reveal(), request.user, self.opts.target.provider, self.now)
        self.transcript.info(f"{request.provider} issued a token ({self.result.token.kind}; never shown)")
        self._record(Phase.TOKEN, started, PhaseStatus.OK, provider=request.provider)

    def _note_mechanisms(self) -> None:
        caps = self.result.capabilities_after
        if caps is None:
            caps = self.result.capabilities_before or []
        self.result.auth.offered = auth_mechanisms(caps)

    def _auth(self) -> bool:
        """Check the needed mechanism is offered; with credentials, sign in."""
        assert self.wire is not None
        started = time.monotonic()
        creds, info = self.opts.credentials, self.result.auth
        mechanism = sasl.choose(info.offered, creds is None or creds.password is not None, self.opts.mechanism)
        info.needed = mechanism
        if mechanism not in info.offered:
            return self._record(Phase.AUTH, started, PhaseStatus.FAILED, error=(
                f"the server does not offer AUTH {mechanism} (offered: {' '.join(info.offered) or 'no AUTH'})"),
                cause=_not_offered_cause(self.result), offered=False, mechanism=mechanism)
        if creds is None:
            return self._record(Phase.AUTH, started, PhaseStatus.OK, offered=True, mechanism=mechanism,
                                signed_in=False)
        self.transcript.info(f"AUTH {mechanism} as {creds.user}")
        ex = sasl.Exchange()
        try:
            ex = sasl.authenticate(self.wire, mechanism, creds.user, creds.secret, self.opts.target.host,
                                   self.opts.target.port)
        except WireError as exc:
            return self._wire_failure(Phase.AUTH, started, exc, ex.replies)
        info.challenge = ex.challenge
        status = PhaseStatus.OK if ex.final.code == 235 else PhaseStatus.FAILED
        return self._record(Phase.AUTH, started, status, ex.replies, offered=True, mechanism=mechanism,
                            signed_in=True)

    def _mail(self) -> bool:
        return self._exchange(Phase.MAIL, f"MAIL FROM:<{self.opts.mail_from}>", (250,))

    def _rcpt(self) -> bool:
        assert self.wire is not None
        started = time.monotonic()
        replies: list[Reply] = []
        for rcpt in self.opts.rcpt_to:
            try:
                replies.append(self.wire.command(f"RCPT TO:<{rcpt}>"))
            except WireError as exc:
                return self._wire_failure(Phase.RCPT, started, exc, replies)
        rejected = [r for r in replies if r.code not in (250, 251)]
        status = PhaseStatus.FAILED if rejected else PhaseStatus.OK
        return self._record(Phase.RCPT, started, status, rejected or replies, accepted=len(replies) - len(rejected))

    def _data(self) -> bool:
        return self._exchange(Phase.DATA, "DATA", (354,))

    def _message(self) -> bool:
        assert self.wire is not None and self.opts.mail_from
        started = time.monotonic()
        deadline = self.wire.deadline()
        try:
            for line in probe_message(self.opts.mail_from, self.opts.rcpt_to, self.now):
                self.wire.send(line, deadline=deadline)
            self.wire.send(".", deadline=deadline)
            reply = self.wire.read_reply(deadline)
        except WireError as exc:
            return self._wire_failure(Phase.MESSAGE, started, exc, [])
        status = PhaseStatus.OK if reply.code == 250 else PhaseStatus.FAILED
        return self._record(Phase.MESSAGE, started, status, [reply])

    def _goodbye(self) -> None:
        """RSET after a MAIL transaction that was opened and not completed, then QUIT; their failures change
        nothing."""
        if self.wire is None or not self._usable:
            return
        try:
            mail, message = self.result.phase(Phase.MAIL), self.result.phase(Phase.MESSAGE)
            # Only an open transaction needs RSET: a refused MAIL FROM opened none.
            if mail is not None and mail.status is PhaseStatus.OK and message is None:
                self.wire.command("RSET")
            self.wire.command("QUIT")
        except WireError as exc:
            self.transcript.info(f"after QUIT: {exc}")


def _handshake_within(sock: ssl.SSLSocket, ends: float) -> None:
    """The TLS handshake, ended by `ends` in total: a socket timeout bounds each read only, so a server sending
    its handshake a byte at a time would otherwise hold the probe for as long as it likes."""
    sock.setblocking(False)
    while True:
        try:
            sock.do_handshake()
            break
        except ssl.SSLWantReadError:
            reading = True
        except ssl.SSLWantWriteError:
            reading = False
        remaining = ends - time.monotonic()
        ready = select.select([sock], [], [], remaining) if reading else select.select([], [sock], [], remaining)
        if remaining <= 0 or not (ready[0] or ready[1]):
            raise TimeoutError("the TLS handshake did not finish in time")
    sock.settimeout(max(ends - time.monotonic(), 0.001))


def _has(caps: list[str], keyword: str) -> bool:
    return any(c.split(" ", 1)[0].split("=", 1)[0].upper() == keyword for c in caps)


def auth_mechanisms(caps: list[str]) -> list[str]:
    """AUTH mechanisms from EHLO lines (`AUTH LOGIN PLAIN`, and the pre-standard `AUTH=LOGIN`)."""
    found: list[str] = []
    for cap in caps:
        words = cap.replace("=", " ", 1).split() if cap.upper().startswith("AUTH=") else cap.split()
        if words and words[0].upper() == "AUTH":
            for mech in words[1:]:
                if mech.upper() not in found:
                    found.append(mech.upper())
    return found


def _not_offered_cause(result: ProbeResult) -> str:
    """AUTH missing on a plain connection that offers STARTTLS: the server wants TLS first."""
    if result.tls is None and _has(result.capabilities_before or [], "STARTTLS"):
        return "starttls-required"
    return "auth-not-offered"


def probe_message(mail_from: str, rcpt_to: tuple[str, ...], now: datetime) -> list[str]:
    """A short plain-text message for --send (lines never start with '.', so no dot-stuffing is needed)."""
    domain = mail_from.rsplit("@", 1)[-1] or "localhost"
    return [
        f"From: <{mail_from}>",
        f"To: {', '.join(f'<{r}>' for r in rcpt_to)}",
        "Subject: preflight SMTP test",
        f"Date: {format_datetime(now)}",
        f"Message-ID: <{uuid.uuid4()}@{domain}>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "This message was sent by `preflight probe --send` to test SMTP submission.",
    ]


def run_probe(opts: ProbeOptions, transcript: Transcript | None = None, resolver: Resolver = resolve,
              now: datetime | None = None) -> ProbeResult:
    transcript = transcript or Transcript()
    target = opts.target
    started = time.monotonic()
    overall = Deadline(opts.deadline)  # from here: DNS counts too
    addresses = resolver(target.host, target.port, min(opts.limits.timeout, opts.deadline))
    if not addresses:
        raise InputError(f"{target.host}: host name has no addresses [dns-failure]")
    shown = ", ".join(str(a[1][0]) for a in addresses)
    transcript.info(f"{target.host} resolves to {shown} ({(time.monotonic() - started) * 1000:.0f} ms)")
    return Session(opts, transcript, now, overall).run(addresses)

