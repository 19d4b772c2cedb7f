"""What a probe run was asked to do, and the phases that follows from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from preflight.probe.result import Phase
from preflight.probe.secrets import Secret
from preflight.probe.target import Target, TlsMode
from preflight.probe.tokenfrom import TokenRequest
from preflight.probe.wire import Limits

DEFAULT_DEADLINE = 120.0  # seconds for the whole probe (--deadline); each phase also has --timeout
MAX_DEADLINE = 3600.0

# --quit-after NAME: the last phase that runs.
QUIT_AFTER: dict[str, tuple[Phase, ...]] = {
    "connect": (Phase.CONNECT,),
    "banner": (Phase.BANNER,),
    "ehlo": (Phase.EHLO,),
    "tls": (Phase.EHLO_TLS, Phase.EHLO),  # STARTTLS and the EHLO after it; with implicit TLS, the EHLO
    "auth": (Phase.AUTH,),
    "mail": (Phase.MAIL,),
    "rcpt": (Phase.RCPT,),
}


@dataclass(frozen=True)
class Credentials:
    user: str
    password: Secret | None = None
    token: Secret | None = None

    @property
    def secret(self) -> Secret:
        secret = self.password or self.token
        assert secret is not None
        return secret


@dataclass(frozen=True)
class ProbeOptions:
    target: Target
    limits: Limits = field(default_factory=Limits)
    ehlo_name: str = "localhost"
    ca_file: Path | None = None
    credentials: Credentials | None = None
    mechanism: str | None = None  # --auth MECH: use / require this mechanism
    mail_from: str | None = None
    rcpt_to: tuple[str, ...] = ()
    send: bool = False
    quit_after: str | None = None
    token_request: TokenRequest | None = None  # --token-from: the credentials come from the provider
    deadline: float = DEFAULT_DEADLINE  # the whole probe: DNS, connect, TLS, every command and every read


def plan(opts: ProbeOptions) -> list[Phase]:
    phases = [Phase.TOKEN] if opts.token_request is not None else []
    phases.append(Phase.CONNECT)
    if opts.target.tls is TlsMode.IMPLICIT:
        phases.append(Phase.TLS)
    phases += [Phase.BANNER, Phase.EHLO]
    if opts.target.tls is TlsMode.STARTTLS:
        phases += [Phase.STARTTLS, Phase.EHLO_TLS]
    if opts.credentials is not None or opts.mechanism or opts.token_request is not None:
        phases.append(Phase.AUTH)
    if opts.mail_from:
        phases.append(Phase.MAIL)
    if opts.rcpt_to:
        phases.append(Phase.RCPT)
    if opts.send:
        phases += [Phase.DATA, Phase.MESSAGE]
    if opts.quit_after:
        stops = [p for p in QUIT_AFTER[opts.quit_after] if p in phases]
        if stops:
            phases = phases[: phases.index(stops[0]) + 1]
        elif opts.quit_after in ("auth", "mail", "rcpt"):
            # Quitting after a phase that was not asked for: run everything before it.
            order = list(Phase)
            limit = order.index(QUIT_AFTER[opts.quit_after][0])
            phases = [p for p in phases if order.index(p) <= limit]
    return phases
