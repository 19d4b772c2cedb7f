"""Sign-in evidence for app-only OAuth (opt-in, --sign-ins with --app-id and the oauth-app method): the sending
app's service-principal sign-ins to Office 365 Exchange Online, the resource whose app-only tokens XOAUTH2
presents (Graph beta signIn, providers/microsoft/signins.py). A sign-in here is a token grant: it proves the app
can get a token for Exchange, not that SMTP accepted it, and the log does not say which protocol used it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from preflight.checks import Context, Outcome, check, passed, warned
from preflight.model import Method, Severity
from preflight.snapshot import Unavailable

from ..resources import AppSignIns, SignInWindow
from ..signins import APP, WINDOW
from .signins import cause_of, ip_list


@check("ms.app-sign-ins", "Sign-in log: the app's app-only sign-ins to Exchange Online", severity=Severity.MEDIUM,
       cause="oauth-token-invalid", scope="tenant", methods=(Method.OAUTH_APP,), order=85, reads=(APP, WINDOW),
       evidence=True)
def app_sign_ins(ctx: Context) -> Outcome | None:
    try:
        records = ctx.org_as(APP, AppSignIns).root
    except Unavailable as exc:
        if exc.reason == "not collected":
            return None  # opt-in: --sign-ins with --app-id
        raise
    window = ctx.org_as(WINDOW, SignInWindow)
    days = window.days
    cut = " (the log was read only up to its page limit)" if window.appTruncated else ""
    app = ctx.options.app_id
    ok = [r for r in records if r.status.errorCode == 0]
    last_ok = max((r.createdDateTime for r in ok), default="")
    since_ok = [r for r in records if r.status.errorCode != 0 and r.createdDateTime > last_ok]
    codes = Counter(r.status.errorCode for r in records if r.status.errorCode != 0)
    evidence: dict[str, Any] = {
        "smtpSignInWindow": {"since": window.since, "days": days}, "appId": app, "successes": len(ok),
        "failures": sum(codes.values()), "lastSuccess": last_ok or None,
        "failureCodes": {str(c): {"count": n, "cause": cause_of(c)} for c, n in codes.items()}}
    senders = ctx.options.sender_ips
    if since_ok:
        latest = max(since_ok, key=lambda r: r.createdDateTime)
        code = latest.status.errorCode
        before = f"; the last success was on {last_ok}" if last_ok else "; none succeeded"
        return warned(f"App {app} fails to get app-only tokens for Exchange Online: {len(since_ok)} failed "
                      f"sign-in(s) in the last {days} days{cut}{before}, the latest on {latest.createdDateTime} "
                      f"from {ip_list([latest], senders)} with AADSTS{code} "
                      f"({cause_of(code) or 'no catalogue cause'}).", evidence, cause=cause_of(code))
    if ok:
        return passed(f"App {app} got {len(ok)} app-only token(s) for Exchange Online in the last {days} days{cut}, "
                      f"the last on {last_ok} from {ip_list(ok, senders)}; the log does not show which protocol "
                      "used them.", evidence)
    return passed(f"App {app} did not sign in to Exchange Online with an app-only token in the last {days} days"
                  f"{cut}: nothing in the log for or against app-only SMTP.", evidence)
