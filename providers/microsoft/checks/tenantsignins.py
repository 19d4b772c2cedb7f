"""Tenant-wide sign-in evidence (opt-in, --sign-ins-tenant): every user's Basic SMTP AUTH sign-ins in the window
(`tenantSmtpSignIns`, providers/microsoft/signins.py), grouped per user, to find the integrations nobody listed.
It speaks for the tenant: the mailboxes checked have their own ms.smtp-sign-ins finding.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from preflight.checks import Context, Outcome, check, passed, warned
from preflight.model import Method, Severity
from preflight.snapshot import Unavailable

from ..resources import GraphUser, SignIn, SignIns, SignInWindow
from ..signins import TENANT, WINDOW
from .signins import cause_of, ip_list, still_on_basic
from .values import data

SHOWN = 10  # users named in the message; the evidence has all of them


def _listed(ctx: Context) -> set[str]:
    """The checked mailboxes' addresses and user principal names, lowercased."""
    names = set(ctx.snapshot.mailboxes)
    for address in ctx.snapshot.mailboxes:
        try:
            names.add(ctx.other_mailbox_as(address, "user", GraphUser).userPrincipalName.lower())
        except Unavailable:
            continue  # not read: that mailbox is named by its address only
    return names


def per_user(records: list[SignIn], listed: set[str], senders: tuple[str, ...]) -> dict[str, Any]:
    """Per user principal name: counts, last success, source addresses, failure codes and whether it was listed."""
    groups: dict[str, list[SignIn]] = {}
    for r in records:
        groups.setdefault((r.userPrincipalName or "unknown").lower(), []).append(r)
    users: dict[str, Any] = {}
    for upn, rows in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0])):
        ok = [r for r in rows if r.status.errorCode == 0]
        codes = Counter(r.status.errorCode for r in rows if r.status.errorCode != 0)
        users[upn] = {"listed": upn in listed, "successes": len(ok), "failures": sum(codes.values()),
                      "lastSuccess": max((r.createdDateTime for r in ok), default=None),
                      "lastSignIn": max(r.createdDateTime for r in rows),
                      "ipAddresses": ip_list(rows, senders),
                      "failureCodes": {str(c): {"count": n, "cause": cause_of(c)} for c, n in codes.items()}}
    return users


@check("ms.smtp-sign-ins-tenant", "Sign-in log: Basic SMTP AUTH across the tenant", severity=Severity.MEDIUM,
       cause="basic-auth-retirement", scope="tenant", methods=(Method.BASIC,), order=87, reads=(TENANT, WINDOW, "user"),
       evidence=True)
def tenant_sign_ins(ctx: Context) -> Outcome | None:
    try:
        records = ctx.org_as(TENANT, SignIns).root
    except Unavailable as exc:
        if exc.reason == "not collected":
            return None  # opt-in: --sign-ins-tenant
        raise
    window = ctx.org_as(WINDOW, SignInWindow)
    days = window.days
    cut = " (the log was read only up to its page limit: there may be more)" if window.tenantTruncated else ""
    users = per_user(records, _listed(ctx), ctx.options.sender_ips)
    evidence: dict[str, Any] = {"smtpSignInWindow": {"since": window.since, "days": days}, "users": users}
    if not users:
        return passed(f"No user signed in with Basic SMTP AUTH in the last {days} days{cut}.", evidence)
    unlisted = [u for u, v in users.items() if not v["listed"]]
    still = [u for u, v in users.items() if v["successes"]]
    # The mailboxes checked have their own ms.smtp-sign-ins finding: here they are only named.
    shown = "; ".join(f"{u} (not checked): {users[u]['successes']} ok, {users[u]['failures']} failed, last "
                      f"{users[u]['lastSignIn']}, from {users[u]['ipAddresses']}" for u in unlisted[:SHOWN])
    checked = [u for u in users if users[u]["listed"]]
    shown += ("; " if shown and checked else "") + (f"checked: {', '.join(checked)}" if checked else "")
    more = f"; and {len(unlisted) - SHOWN} more not checked" if len(unlisted) > SHOWN else ""
    retire = data("retirement")["announced_as"]
    summary = (f"{len(users)} user(s) used Basic SMTP AUTH in the last {days} days{cut}, {len(still)} of them "
               f"successfully, {len(unlisted)} not among the mailboxes checked: {shown}{more}.")
    if still:
        evidence["stillOnBasic"] = still_on_basic([
            {"account": u, "checked": users[u]["listed"], "successes": users[u]["successes"],
             "lastSuccess": users[u]["lastSuccess"]} for u in still])
        return warned(f"{summary} Microsoft disables Basic SMTP AUTH by default at {retire}: move these senders "
                      "to OAuth.", evidence)
    top = Counter(c for v in users.values() for c in v["failureCodes"]).most_common(1)[0][0]
    return warned(f"{summary} None succeeded.", evidence, cause=cause_of(int(top)))
