"""What a probe saw, phase by phase, and the exit code each phase fails with."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from preflight.probe.codes import ExitCode
from preflight.probe.target import Target
from preflight.probe.tls import TlsFailure, TlsInfo
from preflight.probe.token import TokenLint
from preflight.probe.transcript import Transcript
from preflight.probe.wire import Reply


class Phase(StrEnum):
    TOKEN = "token"  # --token-from: the sending service's own sign-in, before anything talks SMTP
    CONNECT = "connect"
    TLS = "tls"  # implicit TLS: the handshake right after connect
    BANNER = "banner"
    EHLO = "ehlo"
    STARTTLS = "starttls"  # the STARTTLS command and its handshake
    EHLO_TLS = "ehlo-tls"  # EHLO again inside TLS
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"
    MESSAGE = "message"  # the reply after the message body
    QUIT = "quit"


PHASE_EXIT: dict[Phase, ExitCode] = {
    Phase.TOKEN: ExitCode.TOKEN,
    Phase.CONNECT: ExitCode.CONNECT,
    Phase.TLS: ExitCode.TLS,
    Phase.BANNER: ExitCode.BANNER,
    Phase.EHLO: ExitCode.EHLO,
    Phase.STARTTLS: ExitCode.TLS,
    Phase.EHLO_TLS: ExitCode.EHLO_TLS,
    Phase.AUTH: ExitCode.AUTH,
    Phase.MAIL: ExitCode.MAIL,
    Phase.RCPT: ExitCode.RCPT,
    Phase.DATA: ExitCode.DATA,
    Phase.MESSAGE: ExitCode.MESSAGE,
}

class PhaseStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"  # the server said no, or did not answer in time
    UNKNOWN = "unknown"  # no usable answer: connection dropped, malformed or oversized reply


@dataclass
class PhaseResult:
    phase: Phase
    status: PhaseStatus
    elapsed_ms: float
    replies: list[Reply] = field(default_factory=list)
    error: str | None = None  # exactly what went wrong, one sentence
    cause: str | None = None  # known without reading a reply (refused, timeout, TLS); else from the reply
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def reply(self) -> Reply | None:
        return self.replies[-1] if self.replies else None

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase.value, "status": self.status.value, "elapsed_ms": round(self.elapsed_ms, 1),
                "replies": [r.to_dict() for r in self.replies], "error": self.error, "cause": self.cause,
                "detail": self.detail}


@dataclass
class AuthInfo:
    offered: list[str] = field(default_factory=list)
    needed: str | None = None  # the mechanism the sign-in needs (given, or chosen from the credentials)
    user: str | None = None
    method: str | None = None  # basic or oauth, when credentials were given
    challenge: dict[str, Any] | None = None  # a decoded XOAUTH2 error challenge

    def to_dict(self) -> dict[str, Any]:
        return {"offered": self.offered, "needed": self.needed, "user": self.user, "method": self.method,
                "challenge": self.challenge}


@dataclass
class ProbeResult:
    target: Target
    planned: list[Phase]
    transcript: Transcript
    addresses: list[str] = field(default_factory=list)
    phases: list[PhaseResult] = field(default_factory=list)
    tls: TlsInfo | None = None
    tls_failure: TlsFailure | None = None
    capabilities_before: list[str] | None = None
    capabilities_after: list[str] | None = None
    auth: AuthInfo = field(default_factory=AuthInfo)
    token: TokenLint | None = None

    def phase(self, phase: Phase) -> PhaseResult | None:
        return next((p for p in self.phases if p.phase is phase), None)

    @property
    def first_failure(self) -> PhaseResult | None:
        return next((p for p in self.phases if p.status is not PhaseStatus.OK and p.phase in PHASE_EXIT), None)

    @property
    def exit_code(self) -> int:
        failure = self.first_failure
        return int(PHASE_EXIT[failure.phase]) if failure else int(ExitCode.OK)
