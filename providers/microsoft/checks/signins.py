"""Sign-in evidence (opt-in): what the tenant's sign-in log says Basic SMTP AUTH does, beside what the
configuration says it would do. Records: Graph signIn (createdDateTime, userPrincipalName, ipAddress,
clientAppUsed 'Authenticated SMTP', status.errorCode: 0 is success), collected by providers/microsoft/signins.py.
A failure's error code is mapped to a cause through the catalogue, as `preflight explain AADSTS<code>` would.
These are evidence checks: they run after the configuration checks, whose verdict ms.smtp-sign-ins-agree
compares with what the log shows.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Sequence
from typing import Any

from preflight.causes import load_catalogue
from preflight.checks import Context, Outcome, check, passed, warned
from preflight.explain import explain
from preflight.model import Method, Severity, Verdict
from preflight.snapshot import Unavailable

from ..resources import AppSignIn, SignIn, SignIns, SignInWindow
from ..signins import RESOURCE, WINDOW
from .values import data, for_existing


def cause_of(code: int) -> str | None:
    matches = explain(f"AADSTS{code}", load_catalogue()).matches
    return matches[0].cause if matches else None


def still_on_basic(accounts: list[dict[str, Any]]) -> dict[str, Any]:
    """The evidence an audit rolls up across customers (preflight/report/plan.py `still_on_basic`): who still
    signs in with Basic SMTP AUTH, and the day Microsoft disables it by default (data/retirement.toml)."""
    retire = data("retirement")
    return {"accounts": accounts, "retiresOn": retire["disabled_by_default"].isoformat(),
            "retirement": retire["announced_as"]}


def _listed(ip: str, senders: tuple[str, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
        return any(addr in ipaddress.ip_network(s, strict=False) for s in senders)
    except ValueError:
        return False


def ip_list(records: Sequence[SignIn | AppSignIn], senders: tuple[str, ...]) -> str:
    ips = Counter(r.ipAddress or "unknown" for r in records)
    shown = [f"{ip}{'' if not senders or _listed(ip, senders) else ' (not a --sender-ip)'}"
             for ip, _ in ips.most_common(5)]
    return ", ".join(shown) + (f" and {len(ips) - 5} more" if len(ips) > 5 else "")


@for_existing
@check("ms.smtp-sign-ins", "Sign-in log: Basic SMTP AUTH sign-ins", severity=Severity.MEDIUM,
       cause="basic-auth-retirement", methods=(Method.BASIC,), order=89, reads=(RESOURCE, WINDOW, "user"),
       evidence=True)
def smtp_sign_ins(ctx: Context) -> Outcome | None:
    try:
        records = ctx.mailbox_as(RESOURCE, SignIns).root
    except Unavailable as exc:
        if exc.reason == "not collected":
            return None  # opt-in (--sign-ins): not asked for
        raise
    window = ctx.org_as(WINDOW, SignInWindow)
    days, since = window.days, window.since
    cut = " (the log was read only up to its page limit)" if window.truncated else ""
    ok = [r for r in records if r.status.errorCode == 0]
    bad = [r for r in records if r.status.errorCode != 0]
    senders = ctx.options.sender_ips
    evidence: dict[str, Any] = {"smtpSignInWindow": {"since": since, "days": days}, "successes": len(ok),
                                "failures": len(bad)}
    failures = ""
    if bad:
        codes = Counter(r.status.errorCode for r in bad)
        evidence["failureCodes"] = {str(c): {"count": n, "cause": cause_of(c)} for c, n in codes.items()}
        latest = max(bad, key=lambda r: r.createdDateTime)
        kinds = ", ".join(f"{n} x AADSTS{c} ({cause_of(c) or 'no catalogue cause'})" for c, n in codes.most_common())
        failures = f"; {len(bad)} failed ({kinds}), last on {latest.createdDateTime} from {ip_list(bad, senders)}"
    if ok:
        last = max(ok, key=lambda r: r.createdDateTime)
        if bad and _when(bad) > last.createdDateTime:
            failures += " (after the last success)"
        retire = data("retirement")
        evidence["stillOnBasic"] = still_on_basic(
            [{"account": ctx.subject, "checked": True, "successes": len(ok), "lastSuccess": last.createdDateTime}])
        return warned(f"{ctx.subject} still signs in with Basic SMTP AUTH: {len(ok)} successful sign-in(s) in the "
                      f"last {days} days{cut}, last on {last.createdDateTime}, from {ip_list(ok, senders)}"
                      f"{failures}. Microsoft disables Basic SMTP AUTH by default at {retire['announced_as']}: "
                      "move this sender to OAuth.", evidence)
    if bad:
        latest = max(bad, key=lambda r: r.createdDateTime)
        return warned(f"Basic SMTP AUTH sign-ins of {ctx.subject} fail: none succeeded in the last {days} days"
                      f"{cut}{failures}.", evidence, cause=cause_of(latest.status.errorCode))
    return passed(f"No Basic SMTP AUTH sign-in of {ctx.subject} in the sign-in log of the last {days} days{cut}.",
                  evidence)


def _when(records: Sequence[SignIn]) -> str:
    return max(r.createdDateTime for r in records)


@for_existing
@check("ms.smtp-sign-ins-agree", "Sign-in log against the configuration verdict", severity=Severity.MEDIUM,
       cause="sign-in-log-disagrees", methods=(Method.BASIC,), order=88, reads=(RESOURCE, WINDOW, "user"),
       evidence=True)
def log_vs_configuration(ctx: Context) -> Outcome | None:
    """Both sides, when they disagree: the configuration says *ready* (or at risk) but the latest Basic SMTP
    sign-ins failed, or it says *blocked* yet sign-ins succeeded in the window. Nothing to compare (no verdict
    yet, no sign-in in the window, the log unreadable: ms.smtp-sign-ins says so) gives no finding."""
    configured = ctx.configured
    if configured is None or configured.verdict is Verdict.INCOMPLETE:
        return None
    try:
        records = ctx.mailbox_as(RESOURCE, SignIns).root
    except Unavailable:
        return None
    if not records:
        return None
    days = ctx.org_as(WINDOW, SignInWindow).days
    ok = [r for r in records if r.status.errorCode == 0]
    last_ok = _when(ok) if ok else ""
    # Failures after the last success: what a sender meets now. Earlier ones were followed by a success.
    since_ok = [r for r in records if r.status.errorCode != 0 and r.createdDateTime > last_ok]
    said = configured.verdict.value + (f" ({', '.join(configured.blocking)})" if configured.blocking else "")
    evidence: dict[str, Any] = {
        "configuration": {"verdict": configured.verdict.value, "blocking": list(configured.blocking)},
        "signInLog": {"days": days, "successes": len(ok), "failures": len(records) - len(ok),
                      "lastSuccess": last_ok or None, "failuresSinceLastSuccess": len(since_ok)}}
    blocked = configured.verdict is Verdict.BLOCKED
    if blocked and ok:
        evidence["signInLog"]["lastSuccessFrom"] = ip_list([r for r in ok if r.createdDateTime == last_ok], ())
        since = ""
        if since_ok:
            latest = max(since_ok, key=lambda r: r.createdDateTime)
            since = (f"; {len(since_ok)} failed since, the latest on {latest.createdDateTime} with "
                     f"AADSTS{latest.status.errorCode}, as if the setting took effect after the last success")
        return warned(f"The configuration says Basic SMTP AUTH is {said} for {ctx.subject}, but the sign-in log "
                      f"shows {len(ok)} successful Basic SMTP sign-in(s) in the last {days} days, the last on "
                      f"{last_ok} from {evidence['signInLog']['lastSuccessFrom']}{since}.", evidence)
    if not blocked and since_ok:
        latest = max(since_ok, key=lambda r: r.createdDateTime)
        code = latest.status.errorCode
        cause = cause_of(code)
        evidence["signInLog"]["latestFailure"] = {"at": latest.createdDateTime, "errorCode": code,
                                                  "cause": cause, "ipAddress": latest.ipAddress}
        after = f", after the last success on {last_ok}" if last_ok else ", and none succeeded"
        return warned(f"The configuration says Basic SMTP AUTH is {said} for {ctx.subject}, but the sign-in log "
                      f"shows {len(since_ok)} failed Basic SMTP sign-in(s) in the last {days} days{after}; the "
                      f"latest on {latest.createdDateTime} from {latest.ipAddress or 'an unknown address'} "
                      f"failed with AADSTS{code} ({cause or 'no catalogue cause'}).", evidence, cause=cause)
    side = (f"all {len(records)} Basic SMTP sign-in(s) of the last {days} days failed" if blocked
            else f"the latest Basic SMTP sign-in, on {last_ok}, succeeded")
    return passed(f"The sign-in log agrees with the configuration ({said}) for {ctx.subject}: {side}.", evidence)
