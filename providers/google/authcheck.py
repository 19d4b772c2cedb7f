"""`preflight auth-check google`: what these credentials can and cannot read, GAM `check serviceaccount` style.

Each line is PASS, WARN, FAIL or INFO with the reason. A missing domain-wide delegation grant ends with the
admin console path and the exact client id and comma-separated scope list to paste.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from preflight.authcheck import Clock, clock_ahead, envelope, exit_code
from preflight.http import ApiError
from preflight.snapshot import describe_error

from . import settings
from .api import GoogleApi
from .auth import KeyFile, OAuthSigner, ServiceAccountSigner
from .settings import Scope

PASS, WARN, FAIL, INFO = "PASS", "WARN", "FAIL", "INFO"


@dataclass(frozen=True)
class Line:
    status: str
    item: str
    subject: str
    detail: str


@dataclass
class AuthReport:
    profile: str
    auth: str
    principal: str
    identity: dict[str, str] = field(default_factory=dict)
    lines: list[Line] = field(default_factory=list)
    grant: dict[str, str] | None = None
    signed_in: bool = True
    clock: Clock | None = None

    def add(self, status: str, item: str, subject: str, detail: str) -> None:
        self.lines.append(Line(status, item, subject, detail))

    @property
    def exit_code(self) -> int:
        return exit_code(self.signed_in, complete=not any(line.status == FAIL for line in self.lines))

    def to_dict(self) -> dict[str, Any]:
        body = {"profile": self.profile, "auth": self.auth, "principal": self.principal, "identity": self.identity,
                "lines": [asdict(x) for x in self.lines], "grant": self.grant}
        clock = self.clock or Clock(None, settings.authcheck().clock)  # an OAuth check does not compare clocks
        return envelope("google", body, clock, self.exit_code)

    def render(self, fmt: str) -> str:
        if fmt == "json":
            return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        out = [f"Google sign-in check, profile {self.profile} ({self.auth}), acting as {self.principal}"]
        out += [f"  {k}: {v}" for k, v in self.identity.items()]
        width = max((len(x.subject) for x in self.lines), default=0)
        out += [f"{x.status:<4}  {x.item:<8} {x.subject:<{width}}  {x.detail}".rstrip() for x in self.lines]
        if self.grant:
            out += ["", f"To grant the missing scopes: {self.grant['console']}", f"  ({self.grant['url']})",
                    "  Add new (or edit the existing entry for this client id):",
                    f"  Client ID: {self.grant['client_id']}",
                    f"  OAuth scopes (comma-delimited): {self.grant['scopes']}",
                    "  The entry keeps one scope list per client id: paste the whole list, granted ones included.",
                    "  New grants can take from minutes to a day to apply."]
        return "\n".join(out) + "\n"


# --- clock -------------------------------------------------------------------------------------------


def clock_skew(url: str, *, timeout: float = 10.0, verify: bool | str = True) -> float:
    """Seconds the local clock is ahead of the server's (negative: behind), from the reply's Date header."""
    import requests

    before = time.time()
    resp = requests.head(url, timeout=timeout, allow_redirects=False, verify=verify)
    ahead = clock_ahead(resp.headers.get("Date"), before, time.time())
    if ahead is None:
        raise ValueError("no usable Date header in the reply")
    return ahead


def _clock(report: AuthReport, token_uri: str, skew: Callable[[str], float]) -> None:
    cfg = settings.authcheck()
    host = token_uri.split("/")[2]
    try:
        s = skew(token_uri)
    except Exception as exc:  # any failure here only means the clock could not be compared
        report.add(WARN, "clock", host, f"could not compare clocks ({type(exc).__name__})")
        return
    report.clock = Clock(s, cfg.clock)
    status = {"pass": PASS, "warn": WARN}.get(report.clock.status, FAIL)
    fix = "" if status == PASS else "; signed assertions need an accurate clock: enable NTP time sync"
    report.add(status, "clock", host, f"{report.clock.sentence(host)}{fix}")


# --- service account ---------------------------------------------------------------------------------


def _key_lines(report: AuthReport, key: KeyFile, signer: ServiceAccountSigner, now: datetime) -> bool:
    cfg = settings.authcheck()
    err = signer.authenticate_key()
    if err is not None:
        if err.code in ("invalid_grant", "invalid_client"):
            report.add(FAIL, "key", key.private_key_id, f"Google refused the key: {err.code}: {err.message} "
                       f"(deleted or disabled? see {cfg.keys_console.format(client_email=key.client_email)})")
        else:
            report.add(FAIL, "key", key.private_key_id, f"no token for the service account: {describe(err)}")
        report.signed_in = False
        return False
    report.add(PASS, "key", key.private_key_id, "the private key signs, and Google accepts it")
    written = datetime.fromtimestamp(key.path.stat().st_mtime, UTC)
    days = max(0, (now - written).days)
    where = cfg.keys_console.format(client_email=key.client_email)
    status = WARN if days >= cfg.key_warn_days else PASS
    report.add(status, "key-age", key.private_key_id,
               f"at least {days} days old: a key file does not record when its key was created, but this file "
               f"was written {written.date().isoformat()}; the creation date is in {where}"
               + (f"; rotate keys older than {cfg.key_warn_days} days" if status == WARN else ""))
    return True


def describe(err: ApiError) -> str:
    text: str = describe_error({"status": err.status, "code": err.code, "message": err.message})
    return text


def _scope_lines(report: AuthReport, signer: Any, scopes: list[Scope], admin: str, mailbox: str | None) -> set[str]:
    """Try a token per scope; PASS when granted. Returns the keys of the granted scopes."""
    granted: set[str] = set()
    n = len(scopes)
    for i, s in enumerate(scopes, 1):
        subject = (mailbox or admin) if s.subject == "mailbox" else None
        who = subject or admin
        try:
            signer.bearer(s.url, subject)
        except ApiError as err:
            if err.code == "unauthorized_client":
                detail = f"not granted to this client for {who} ({i}/{n})"
            elif err.code == "invalid_grant":
                detail = f"Google refused to act as {who}: {err.message} ({i}/{n})"
            else:
                detail = f"{describe(err)} ({i}/{n})"
            report.add(FAIL, "scope", s.url, detail)
            continue
        granted.add(s.key)
        report.add(PASS, "scope", s.url, f"granted for {who} ({i}/{n})")
    return granted


def _reads(report: AuthReport, api: GoogleApi, granted: set[str], admin: str | None, mailbox: str | None) -> None:
    """One cheap read per granted scope: a scope can be granted while the admin lacks the role to use it.

    `admin` None (an OAuth sign-in whose account is not known): the reads about one user are left out.
    """
    customer_id: str | None = None
    probes: list[tuple[str, str, Callable[[], Any]]] = [
        ("directory.customer", "customers.get my_customer", lambda: api.customer()),
        ("directory.domain", "domains.list", lambda: api.domains()),
        ("directory.orgunit", "orgunits.list", lambda: api.org_units()),
        ("policies", "Policy API policies.list", lambda: api.policies_probe()),
        ("licensing", "licenseAssignments.listForProduct",
         lambda: api.license_probe(api.config.licensing_products[0], customer_id or "my_customer")),
        ("reports.audit", f"activities.list {api.config.delegation[0]} {api.config.delegation[1][0]}",
         lambda: api.activities("all", api.config.delegation[0], api.config.delegation[1][:1])),
    ]
    if admin:
        probes += [
            ("directory.user", f"users.get {admin}", lambda: api.user(admin)),
            ("directory.group", f"groups.list userKey={admin}", lambda: api.user_groups(admin)),
            ("directory.user.security", f"users.tokens.list {admin}", lambda: api.tokens(admin)),
        ]
    who = mailbox or admin
    if who:
        probes.append(("gmail.sendas", f"sendAs.list {who}", lambda: api.send_as(who)))
    for key, what, call in probes:
        if key not in granted:
            continue
        try:
            result = call()
        except ApiError as err:
            role = settings.scope(key).role
            report.add(FAIL, "read", what, f"{describe(err)} (needs {role})")
            continue
        if key == "directory.customer" and isinstance(result, dict):
            customer_id = str(result.get("id") or "") or None
            report.add(PASS, "read", what, f"customer {customer_id} ({result.get('customerDomain')})")
        else:
            report.add(PASS, "read", what, "readable")


def check_service_account(
    key: KeyFile,
    signer: ServiceAccountSigner,
    api: GoogleApi,
    scopes: list[Scope],
    *,
    profile: str,
    mailbox: str | None = None,
    now: datetime | None = None,
    skew: Callable[[str], float] = clock_skew,
) -> AuthReport:
    admin = signer.admin
    report = AuthReport(profile, "service-account", admin, {
        "service account": key.client_email, "client id (for domain-wide delegation)": key.client_id,
        "key file": str(key.path),
    })
    _clock(report, key.token_uri, skew)
    if not _key_lines(report, key, signer, now or datetime.now(UTC)):
        return report
    granted = _scope_lines(report, signer, scopes, admin, mailbox)
    if len(granted) < len(scopes):
        cfg = settings.authcheck()
        report.grant = {"console": cfg.dwd_console, "url": cfg.dwd_url, "client_id": key.client_id,
                        "scopes": ",".join(s.url for s in scopes)}
    _reads(report, api, granted, admin, mailbox)
    return report


def check_oauth(
    signer: OAuthSigner,
    api: GoogleApi,
    scopes: list[Scope],
    *,
    profile: str,
    token_path: Path,
    loose: bool,
    relogin: str,
) -> AuthReport:
    report = AuthReport(profile, "oauth", signer.principal, {"stored sign-in": str(token_path)})
    if loose:
        report.add(WARN, "file", str(token_path), "group or others could read the stored sign-in; its mode is now "
                   "0600 (if someone else may have copied it, run `preflight logout google` and sign in again)")
    else:
        report.add(PASS, "file", str(token_path), "readable by its owner only")
    try:
        signer.bearer(scopes[0].url)
    except ApiError as err:
        report.add(FAIL, "sign-in", signer.principal, f"{describe(err)}")
        report.signed_in = False
        return report
    report.add(PASS, "sign-in", signer.principal, "the stored refresh token works")
    have = set(signer.granted)
    granted: set[str] = set()
    for i, s in enumerate(scopes, 1):
        if s.url in have:
            granted.add(s.key)
            report.add(PASS, "scope", s.url, f"granted ({i}/{len(scopes)})")
        else:
            report.add(FAIL, "scope", s.url,
                       f"not granted at sign-in; run `{relogin}` and allow it ({i}/{len(scopes)})")
    _reads(report, api, granted, signer.account or None, None)
    return report
