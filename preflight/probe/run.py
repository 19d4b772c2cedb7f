"""`preflight probe`: check the options, read the secret, run the session, render, return the exit code.

Every bad input ends here with an InputError (one line, exit 2) before anything touches the network.
"""

from __future__ import annotations

import re
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from preflight.errors import InputError
from preflight.probe.auth import MECHANISMS, PASSWORD_MECHANISMS, TOKEN_MECHANISMS
from preflight.probe.net import Resolver, resolve
from preflight.probe.options import DEFAULT_DEADLINE, MAX_DEADLINE, QUIT_AFTER, Credentials, ProbeOptions
from preflight.probe.secrets import Secret, from_env, prompt_password, token_from_file
from preflight.probe.session import run_probe
from preflight.probe.target import TlsMode, resolve_target
from preflight.probe.tokenfrom import TokenRequest, flag, token_request
from preflight.probe.transcript import Entry, Transcript
from preflight.probe.wire import Limits

if TYPE_CHECKING:
    from preflight.providers import Registry

# What may go on an SMTP command line from the user: no spaces, no angle brackets, no control characters
# (a CR/LF in an address would smuggle a second command onto the wire).
_WIRE_SAFE = re.compile(r"[^\s<>\x00-\x1f\x7f]{1,320}")
MAX_TIMEOUT = 600.0


@dataclass(frozen=True)
class ProbeArgs:
    target: str
    port: int | None = None
    tls: str | None = None
    provider: str | None = None
    user: str | None = None
    password_env: str | None = None
    password_prompt: bool = False
    token_env: str | None = None
    token_file: Path | None = None
    auth: str | None = None
    mail_from: str | None = None
    rcpt_to: tuple[str, ...] = ()
    send: bool = False
    quit_after: str | None = None
    ehlo: str | None = None
    ca_file: Path | None = None
    timeout: float = 30.0
    deadline: float = DEFAULT_DEADLINE
    fmt: str = "table"
    output: Path | None = None
    # --token-from: the sending service's own sign-in (ids, paths and env var names, never a secret)
    token_from: str | None = None
    tenant: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    certificate: Path | None = None
    certificate_password_env: str | None = None
    cloud: str | None = None
    key_file: Path | None = None

    def token_options(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "client_id": self.client_id, "client_secret_env": self.client_secret_env,
                "certificate": str(self.certificate) if self.certificate else None,
                "certificate_password_env": self.certificate_password_env, "cloud": self.cloud,
                "key_file": str(self.key_file) if self.key_file else None}


def _choice(option: str, value: str | None, choices: tuple[str, ...], fold: bool = True) -> str | None:
    if value is None:
        return None
    key = value.lower() if fold else value.upper()
    if key not in choices:
        raise InputError(f"{option}: {value!r} is not one of {', '.join(choices)}")
    return key


def _registry(factory: Callable[[], Registry] | None) -> Registry:
    if factory is not None:
        return factory()
    from preflight.providers import Registry

    return Registry.from_entry_points()


def _wire_safe(option: str, value: str) -> str:
    if not _WIRE_SAFE.fullmatch(value):
        raise InputError(f"{option}: {value!r} is not usable on an SMTP command line (spaces, <>, control characters)")
    return value


def _address(option: str, value: str) -> str:
    value = _wire_safe(option, value)
    if value.count("@") != 1 or value.startswith("@") or value.endswith("@"):
        raise InputError(f"{option}: {value!r} is not an email address")
    return value


def _ehlo_name(value: str | None) -> str:
    if value is not None:
        return _wire_safe("--ehlo", value)
    name = socket.gethostname()
    return name if name and _WIRE_SAFE.fullmatch(name) else "localhost"


def _secret_options(args: ProbeArgs) -> list[str]:
    return [o for o, v in (("--password-env", args.password_env), ("--password-prompt", args.password_prompt),
                           ("--token-env", args.token_env), ("--token-file", args.token_file),
                           ("--token-from", args.token_from)) if v]


def _token_request(args: ProbeArgs, mechanism: str | None, registry: Callable[[], Registry] | None
                   ) -> TokenRequest | None:
    given = {k: v for k, v in args.token_options().items() if v is not None}
    if not args.token_from:
        if given:
            flags = ", ".join(flag(k) for k in given)
            raise InputError(f"{flags}: only with --token-from microsoft|google")
        return None
    if mechanism is not None and mechanism not in TOKEN_MECHANISMS:
        raise InputError(f"--auth {mechanism} does not take a token; --token-from needs XOAUTH2 or OAUTHBEARER")
    user = args.user or args.mail_from
    if not user:
        raise InputError("--token-from needs --user (the mailbox the sending service signs in as)")
    user = _address("--user", user)
    # The token request may prompt for a client secret only where a person can answer.
    from preflight.runsecrets import for_command

    # The provider adds the sending app's secret and the token it gets to the run's secrets (masking).
    extra = {"timeout": args.timeout, "interactive": sys.stdin.isatty(), "secrets": for_command()}
    if registry is None:
        return token_request(args.token_from, user, given, extra)
    return token_request(args.token_from, user, given, extra, registry)


def _credentials(args: ProbeArgs, mechanism: str | None) -> Credentials | None:
    given = [o for o in _secret_options(args) if o != "--token-from"]
    if len(given) > 1:
        raise InputError(f"give one secret, not {' and '.join(given)}")
    if not given:
        if args.user is not None:
            raise InputError("--user needs a secret: --password-env NAME, --password-prompt, --token-env NAME "
                             "or --token-file PATH")
        return None
    user = args.user or args.mail_from
    if not user:
        raise InputError(f"{given[0]} needs --user (the mailbox to sign in as)")
    user = _wire_safe("--user", user)
    oauth = given[0].startswith("--token")
    if mechanism is not None and oauth != (mechanism in TOKEN_MECHANISMS):
        kind = "a token" if oauth else "a password"
        raise InputError(f"--auth {mechanism} does not take {kind}")
    secret: Secret
    if args.password_env:
        secret = from_env(args.password_env, "--password-env")
    elif args.token_env:
        secret = from_env(args.token_env, "--token-env")
    elif args.token_file:
        secret = token_from_file(args.token_file)
    else:
        secret = prompt_password(user)
    return Credentials(user, token=secret) if oauth else Credentials(user, password=secret)


def options(args: ProbeArgs, registry: Callable[[], Registry] | None = None) -> ProbeOptions:
    """Validate everything, then read the secret (last, so a typo never costs a prompt)."""
    fmt = _choice("--format", args.fmt, ("table", "json"))
    assert fmt is not None
    tls = _choice("--tls", args.tls, tuple(m.value for m in TlsMode))
    # Installed providers are looked up only when one is named: a plain probe loads no plugin.
    installed = _registry(registry) if args.provider or args.token_from else None
    names = tuple(installed.names) if installed is not None else ()
    provider = _choice("--provider", args.provider, names)
    mechanism = _choice("--auth", args.auth, MECHANISMS, fold=False)
    quit_after = _choice("--quit-after", args.quit_after, tuple(QUIT_AFTER))
    if not 0 < args.timeout <= MAX_TIMEOUT:
        raise InputError(f"--timeout: {args.timeout:g} is not between 0 and {MAX_TIMEOUT:g} seconds")
    if not 0 < args.deadline <= MAX_DEADLINE:
        raise InputError(f"--deadline: {args.deadline:g} is not between 0 and {MAX_DEADLINE:g} seconds")
    secrets = _secret_options(args)
    if args.token_from and len(secrets) > 1:
        raise InputError(f"give one secret, not {' and '.join(secrets)}")
    # The token's issuer is whose fixes apply, unless the host or --provider says otherwise.
    issuer = (args.token_from or "").lower()
    target = resolve_target(args.target, args.port, TlsMode(tls) if tls else None,
                            provider or (issuer if issuer in names else None))
    mail_from = _address("--mail-from", args.mail_from) if args.mail_from else None
    rcpt_to = tuple(_address("--rcpt-to", r) for r in args.rcpt_to)
    if rcpt_to and not mail_from:
        raise InputError("--rcpt-to needs --mail-from (RCPT comes after MAIL FROM)")
    if args.send and not (mail_from and rcpt_to):
        raise InputError("--send needs --mail-from and --rcpt-to: it delivers a real test message")
    if args.ca_file is not None and not args.ca_file.is_file():
        raise InputError(f"--ca-file {args.ca_file}: no such file")
    secret_given = bool(secrets)
    if secret_given and target.tls is TlsMode.NONE:
        raise InputError("refusing to send credentials without TLS: drop --tls none (use starttls or implicit)")
    if mechanism in PASSWORD_MECHANISMS and (args.token_env or args.token_file):
        raise InputError(f"--auth {mechanism} takes a password, not a token")
    ehlo = _ehlo_name(args.ehlo)
    request = _token_request(args, mechanism, registry if installed is None else lambda: installed)
    if request is not None:
        return ProbeOptions(target, Limits(timeout=args.timeout), ehlo, args.ca_file, None, mechanism or "XOAUTH2",
                            mail_from, rcpt_to, args.send, quit_after, request, deadline=args.deadline)
    credentials = _credentials(args, mechanism)
    return ProbeOptions(target, Limits(timeout=args.timeout), ehlo, args.ca_file, credentials, mechanism,
                        mail_from, rcpt_to, args.send, quit_after, deadline=args.deadline)


def _stdout_line(entry: Entry) -> None:
    sys.stdout.write(entry.line() + "\n")
    sys.stdout.flush()


def run(args: ProbeArgs, resolver: Resolver = resolve, now: datetime | None = None,
        registry: Callable[[], Registry] | None = None) -> int:
    from preflight.causes import load_catalogue
    from preflight.output import color_enabled, write_text
    from preflight.probe.findings import build_findings
    from preflight.probe.render import findings_text, json_text

    opts = options(args, registry)
    # The transcript is the progress: stream it live when it goes to the terminal anyway.
    stream = args.fmt.lower() == "table" and args.output is None
    from preflight.runsecrets import for_command

    transcript = Transcript(on_entry=_stdout_line if stream else None, secrets=for_command())
    if not stream:
        sys.stderr.write(f"Probing {opts.target.display}...\n")
    result = run_probe(opts, transcript, resolver, now)
    subject = opts.credentials.user if opts.credentials else result.auth.user or opts.mail_from
    findings = build_findings(result, load_catalogue(), subject, opts.mail_from, opts.rcpt_to)
    if args.fmt.lower() == "json":
        text = json_text(result, findings, now or datetime.now(UTC))
    else:
        head = "" if stream else "\n".join(transcript.lines()) + "\n"
        color = args.output is None and color_enabled(sys.stdout)
        text = head + findings_text(result, findings, color)
    write_text(text, args.output)
    return result.exit_code
