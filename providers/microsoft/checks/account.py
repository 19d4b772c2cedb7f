"""The address and its account: does it exist, is it shared, an alias, allowed to sign in, licensed?"""

from __future__ import annotations

from typing import Any

from preflight.checks import Context, Outcome, check, detached, failed, passed, skipped, unknown, warned
from preflight.model import Method, Severity
from preflight.snapshot import Unavailable

from ..resources import GraphUser, Mailbox, MailboxPermissions, UserLookup, UserRefItem
from .principals import full_access
from .values import KIND_READS, data, for_existing, mailbox_kind, not_found, same, smtp_addresses

SIGNS_IN_AS_USER = (Method.BASIC, Method.OAUTH_DELEGATED)


@check("ms.mailbox-exists", "Address exists", severity=Severity.CRITICAL, cause="mailbox-not-found", order=10,
       reads=("user", "userLookup", "mailbox"))
def mailbox_exists(ctx: Context) -> Outcome:
    try:
        user = ctx.mailbox_as("user", GraphUser)
    except Unavailable as exc:
        if not not_found(exc):
            raise
        return _not_a_user(ctx, exc)
    return passed(f"{ctx.subject} exists: Entra ID user {user.userPrincipalName}.",
                  {"user.id": user.id, "user.userPrincipalName": user.userPrincipalName})


def _not_a_user(ctx: Context, graph_404: Unavailable) -> Outcome:
    """Graph has no user by that name. Missing only if the alias lookup found none, or Exchange agrees."""
    evidence: dict[str, Any] = {"user.error": graph_404.error}
    try:
        exchange = ctx.mailbox_as("mailbox", Mailbox)
    except Unavailable as exc:
        exchange_404 = not_found(exc)
        evidence["mailbox.error"] = exc.error
    else:
        return unknown(f"Microsoft Graph returned 404 for {ctx.subject}, but Exchange Get-Mailbox found "
                       f"{exchange.UserPrincipalName or exchange.Identity}: the address may be an "
                       "alias the user lookup did not resolve.", evidence)
    matches: list[UserRefItem] | None
    try:
        matches = ctx.mailbox_as("userLookup", UserLookup).root
        lookup_error: Unavailable | None = None
        evidence["userLookup"] = [m.model_dump() for m in matches]
    except Unavailable as exc:
        matches, lookup_error = None, detached(exc)
    if exchange_404 or matches == []:
        where = "Exchange Get-Mailbox did not find it either" if exchange_404 else \
            "no user has it as a proxy address or mail"
        return failed(f"{ctx.subject} does not exist in this tenant: Microsoft Graph returned 404 for the user "
                      f"({graph_404.reason}) and {where}.", evidence)
    if lookup_error is not None:
        raise lookup_error  # the alias lookup and Get-Mailbox are both unreadable: cannot tell
    return unknown(f"Microsoft Graph returned 404 for {ctx.subject}, but {len(matches or [])} users have it as a "
                   "proxy address or mail: re-collect the snapshot for this address.", evidence)


NO_SIGN_IN = ("shared", "resource")  # mailbox kinds whose account is disabled by design and needs no licence
KIND_NAME = {"shared": "a shared mailbox", "resource": "a resource (room, equipment or scheduling) mailbox"}


def _account_enabled(ctx: Context) -> bool:
    return ctx.mailbox_as("user", GraphUser).accountEnabled


@for_existing
@check("ms.shared-mailbox", "Shared or resource mailbox", severity=Severity.CRITICAL, cause="shared-mailbox",
       order=12, reads=(*KIND_READS, "mailboxPermissions", "user"))
def shared(ctx: Context) -> Outcome:
    """Shared and resource mailboxes have no sign-in of their own by design, but an admin can enable the
    account and set a password (Prowler exchange_shared_mailbox_sign_in_disabled exists because this is
    common): then accountEnabled decides, and Microsoft's terms say it is not meant for direct sign-in."""
    kind, evidence = mailbox_kind(ctx)
    (field, value), = evidence.items()
    if kind == "user":
        return passed(f"{ctx.subject} is a user mailbox ({field}: {value}).", evidence)
    if kind is None:
        return unknown(f"{ctx.subject} is a {value} ({field}), a mailbox type preflight does not know what to "
                       "make of.", evidence)
    if kind == "other":
        return unknown(f"{ctx.subject} is a {value} ({field}), not a mailbox anyone signs in to or sends SMTP as; "
                       "preflight does not evaluate it.", evidence)
    what = f"{ctx.subject} is {KIND_NAME[kind]} ({field}: {value})"
    if ctx.method is Method.OAUTH_APP:
        return passed(f"{what}; that is fine for app-only OAuth, which sends with FullAccess instead of signing in "
                      "as the mailbox.", evidence)
    enabled = _account_enabled(ctx)
    evidence["user.accountEnabled"] = enabled
    if enabled:
        return warned(f"{what}, yet its sign-in is enabled (accountEnabled: true), so a {ctx.method.value} sign-in "
                      "with its own password can work. Microsoft says such a mailbox is not meant for direct "
                      "sign-in and should stay blocked; the licence check says what signing in as it asks for.",
                      evidence)
    delegates = _full_access_users(ctx) if ctx.method is Method.OAUTH_DELEGATED else []
    if delegates:
        # Microsoft's XOAUTH2 doc: a user with access signs in and names the shared mailbox in user=.
        return warned(f"{what} and cannot sign in itself (accountEnabled: false); {', '.join(delegates)} has "
                      f"FullAccess on it, so the service can sign in as that user with delegated OAuth and put "
                      f"{ctx.subject} in the XOAUTH2 user= field. That user's own account was not checked: add it "
                      "to the mailboxes to check.", {**evidence, "mailboxPermissions[FullAccess users]": delegates})
    return failed(f"{what} with sign-in blocked (accountEnabled: false): it has no sign-in of its own, so a "
                  f"{ctx.method.value} SMTP sign-in as it cannot work.", evidence)


def _full_access_users(ctx: Context) -> list[str]:
    """Users (shown by their sign-in name) with FullAccess on the mailbox, other than the mailbox itself."""
    try:
        entries = ctx.mailbox_as("mailboxPermissions", MailboxPermissions).root
    except Unavailable:
        return []
    users = {e.User for e in entries if "@" in e.User and not same(e.User, ctx.subject)}
    return sorted({e.User for e in full_access(entries, users)})


@for_existing
@check("ms.alias-address", "Address is the sign-in name", severity=Severity.HIGH, cause="alias-address",
       methods=SIGNS_IN_AS_USER, order=14, reads=("user",))
def alias(ctx: Context) -> Outcome:
    user = ctx.mailbox_as("user", GraphUser)
    upn, mail = user.userPrincipalName, user.mail
    evidence: dict[str, Any] = {"user.userPrincipalName": upn, "user.mail": mail}
    if same(ctx.subject, upn):
        return passed(f"{ctx.subject} is the user principal name, the name SMTP signs in with.", evidence)
    if same(ctx.subject, mail):
        return passed(f"{ctx.subject} is the primary address of {upn}; sign in with the user principal name {upn}.",
                      evidence)
    proxies = user.proxyAddresses
    evidence["user.proxyAddresses"] = proxies
    if str(ctx.subject).lower() in smtp_addresses(proxies):
        return failed(f"{ctx.subject} is an alias (proxyAddresses) of {upn}: SMTP must sign in as {upn}, and can "
                      f"send from the alias once signed in.", evidence)
    return unknown(f"{ctx.subject} is not the user principal name, mail or a proxy address of the user Graph "
                   f"returned ({upn}); re-collect the snapshot for this address.", evidence)


@for_existing
@check("ms.sign-in-enabled", "Sign-in allowed", severity=Severity.CRITICAL, cause="account-disabled", order=16,
       reads=("user", *KIND_READS))
def sign_in_enabled(ctx: Context) -> Outcome:
    enabled = _account_enabled(ctx)
    evidence: dict[str, Any] = {"user.accountEnabled": enabled}
    if enabled:
        return passed(f"Sign-in is allowed for {ctx.subject} (accountEnabled: true).", evidence)
    try:
        kind, evidence_kind = mailbox_kind(ctx)
    except Unavailable:
        if ctx.method is Method.OAUTH_APP:
            raise  # app-only sending from a blocked account is fine only for a shared mailbox: need the type
        kind, evidence_kind = "user", {}
    if kind in ("other", None) and ctx.method is Method.OAUTH_APP:
        return unknown(f"Sign-in is blocked for {ctx.subject} (accountEnabled: false), which is not a user, shared or "
                       "resource mailbox: preflight does not evaluate app-only sending from it.",
                       {**evidence, **evidence_kind})
    if kind in NO_SIGN_IN and ctx.method is Method.OAUTH_APP:
        return passed(f"Sign-in is blocked for {ctx.subject} (accountEnabled: false), as it should be for "
                      f"{KIND_NAME[kind]}; app-only OAuth does not sign in as it.", {**evidence, **evidence_kind})
    if kind in NO_SIGN_IN:
        return skipped(f"{ctx.subject} is {KIND_NAME[kind]}, whose sign-in is blocked by design (see "
                       "ms.shared-mailbox).")
    return failed(f"Sign-in is blocked for {ctx.subject} (Entra ID accountEnabled: false).", evidence)


@for_existing
@check("ms.exchange-licence", "Exchange Online licence", severity=Severity.CRITICAL, cause="no-mailbox-license",
       order=18, reads=("user", *KIND_READS))
def licence(ctx: Context) -> Outcome:
    """An Exchange Online plan that gives a mailbox (not Exchange Foundation, which ships with EMS, Power BI
    and Microsoft 365 Apps: data/wellknown.toml). Shared and resource mailboxes need none, unless something
    signs in as them: Microsoft's terms say everyone who accesses a shared mailbox needs a licence [I: an
    account that signs in as the mailbox is such a user]."""
    known = data("wellknown")["mailbox"]
    kind_unknown: Unavailable | None = None
    kind_evidence: dict[str, Any] = {}
    try:
        kind, kind_evidence = mailbox_kind(ctx)
        if kind in ("other", None):
            return unknown(f"{ctx.subject} is not a user, shared or resource mailbox ({kind_evidence}): preflight "
                           "does not evaluate its licence.", kind_evidence)
        if kind in NO_SIGN_IN and (ctx.method is Method.OAUTH_APP or not _account_enabled(ctx)):
            return passed(f"{ctx.subject} is {KIND_NAME[kind]}, which needs no licence.", kind_evidence)
    except Unavailable as exc:
        kind, kind_unknown = "user", detached(exc)
    exchange = [p for p in ctx.mailbox_as("user", GraphUser).assignedPlans if p.service == known["exchange_service"]]
    foundation = [p for p in exchange if p.servicePlanId in known["no_mailbox_plans"]]
    plans = [p for p in exchange if p not in foundation]
    evidence: dict[str, Any] = {**kind_evidence, "user.assignedPlans[service=exchange]": [
        {"servicePlanId": p.servicePlanId, "capabilityStatus": p.capabilityStatus} for p in exchange]}
    statuses = sorted({p.capabilityStatus for p in plans})
    if any(p.capabilityStatus in known["licence_ok"] for p in plans):
        return passed(f"{ctx.subject} has an Exchange Online plan (assignedPlans service exchange, "
                      "capabilityStatus Enabled).", evidence)
    if any(p.capabilityStatus in known["licence_grace"] for p in plans):
        return warned(f"The Exchange Online plan of {ctx.subject} is in its grace period (capabilityStatus "
                      "Warning): the mailbox stops working when it ends.", evidence)
    if kind_unknown is not None:
        raise kind_unknown  # unlicensed is fine for a shared mailbox, and its type could not be read
    if kind in NO_SIGN_IN:
        return warned(f"{ctx.subject} is {KIND_NAME[kind]} with sign-in enabled and no Exchange Online plan: "
                      "signing in as it directly goes beyond what an unlicensed one is for (Microsoft: everyone who "
                      "accesses a shared mailbox needs a licence). Assign one, or send with app-only OAuth.", evidence)
    if foundation and not plans:
        names = ", ".join(sorted({known["no_mailbox_plans"][p.servicePlanId] for p in foundation}))
        return failed(f"{ctx.subject} has no Exchange Online mailbox plan: its only Exchange plans ({names}) give no "
                      "mailbox.", evidence)
    if plans:
        return failed(f"{ctx.subject} has no working Exchange Online plan (assignedPlans service exchange, "
                      f"capabilityStatus {', '.join(statuses)}).", evidence)
    return failed(f"{ctx.subject} has no Exchange Online licence: no assignedPlans entry has service exchange.",
                  evidence)
