"""Account state: suspended or archived, a pending password change, and whether Gmail is on for the user."""

from __future__ import annotations

from functools import cache
from typing import Any

from preflight.checks import Context, Outcome, check, failed, passed, unknown, warned
from preflight.model import Method, Severity
from preflight.snapshot import Unavailable

from ..resources import Licenses
from .common import EFFECTIVE_READS, User, account_name, effective, for_users, only_users, unread_products
from .facts import Licence, facts


@only_users
@check(
    "google.account-state",
    "Account is active (not suspended or archived)",
    severity=Severity.CRITICAL,
    cause="account-disabled",
    order=20,
    reads=("user",),
)
@for_users
def account_state(ctx: Context, user: User) -> Outcome:
    who = account_name(ctx, user)
    suspended, archived = user.suspended, user.archived
    evidence: dict[str, Any] = {"user.suspended": suspended, "user.archived": archived}
    if suspended:
        reason = user.suspensionReason
        evidence["user.suspensionReason"] = reason
        by = f" (suspensionReason {reason})" if reason else ""
        return failed(f"{who} is suspended{by}: a suspended user cannot sign in to smtp.gmail.com.", evidence)
    if archived:
        return failed(
            f"{who} is archived (user.archived true): an archived user cannot sign in or use Gmail.", evidence
        )
    return passed(f"{who} is active (suspended false, archived false).", evidence)


@only_users
@check(
    "google.password-change",
    "No password change pending at next sign-in",
    severity=Severity.MEDIUM,
    cause="web-login-required",
    methods=(Method.BASIC, Method.OAUTH_DELEGATED),
    order=25,
    reads=("user",),
)
@for_users
def password_change(ctx: Context, user: User) -> Outcome:
    who = account_name(ctx, user)
    pending = user.changePasswordAtNextLogin
    evidence = {"user.changePasswordAtNextLogin": pending}
    if pending:
        return warned(
            f"{who} must change its password at next sign-in (changePasswordAtNextLogin true): until "
            "the user signs in on the web and changes it, Google can refuse other sign-ins (often 534 5.7.14), "
            "and a new password revokes existing app passwords.",
            evidence,
        )
    return passed(f"No password change is pending for {who}.", evidence)


@cache
def _no_gmail(licences: tuple[Licence, ...]) -> tuple[frozenset[tuple[str, str]], frozenset[str]]:
    """The editions without Gmail as sets: (productId, skuId) pairs, and the products meant with every SKU ("*")."""
    return frozenset((x.product, x.sku) for x in licences), frozenset(x.product for x in licences if x.sku == "*")


def _licence_note(ctx: Context) -> tuple[str | None, dict[str, Any]]:
    """A definite 'no Gmail licence' reason from Licensing assignments, when they were collected."""
    try:
        assignments = ctx.mailbox_as("licenses", Licenses).root
    except Unavailable:
        return None, {}
    held = [f"{a.skuName or a.skuId} ({a.productId}/{a.skuId})" for a in assignments]
    evidence: dict[str, Any] = {"licenses": held}
    unread = unread_products(ctx)
    if unread:
        # The user may also hold a licence of a product that could not be listed: "every licence" is unknown.
        evidence["licence products not read"] = unread
    pairs, every_sku = _no_gmail(facts().no_gmail_licences)
    # What any(lic.matches(a.productId, a.skuId) for lic in no_gmail) says, as two set lookups per assignment.
    if assignments and not unread and all(
        (a.productId, a.skuId) in pairs or a.productId in every_sku for a in assignments
    ):
        return f"every licence it holds ({', '.join(held)}) is an edition without Gmail", evidence
    return None, evidence


@only_users
@check(
    "google.gmail-service",
    "Gmail is on for the user",
    severity=Severity.CRITICAL,
    cause="no-mailbox-license",
    order=30,
    reads=("user", *EFFECTIVE_READS),
)
@for_users
def gmail_service(ctx: Context, user: User) -> Outcome:
    who = account_name(ctx, user)
    setup = user.isMailboxSetup
    licence_reason, evidence = _licence_note(ctx)
    evidence["user.isMailboxSetup"] = setup
    if setup is False:
        return failed(
            f"{who} has no Gmail mailbox (isMailboxSetup false): the user has no Gmail licence, or the mailbox "
            "is still being created (up to 24 hours after licensing).",
            evidence,
        )
    if licence_reason:
        return failed(f"{who} cannot use Gmail: {licence_reason}.", evidence)
    eff = effective(ctx, user, "gmail.service_status")
    evidence.update(eff.evidence("serviceState"))
    state = eff.settle("serviceState", facts().enum("serviceState").meaning)
    src = eff.source("serviceState")
    if state == "disabled" and src is not None and src.policy is None and setup is True:
        # Google's "no policy means not subscribed" contradicts a mailbox that exists: do not guess.
        applies = "is known to apply" if eff.undecided else "applies"
        others = f" (another may: {eff.undecided[0]})" if eff.undecided else ""
        return unknown(
            f"No gmail.service_status policy {applies} to {who}{others}, which would mean Gmail is off, yet its "
            "mailbox exists (isMailboxSetup true); check Apps > Google Workspace > Gmail > Service status.",
            evidence,
        )
    if state == "disabled":
        return failed(f"Gmail is OFF for {who}: serviceState DISABLED {eff.origin('serviceState')}.", evidence)
    if state == "enabled":
        return passed(f"Gmail is on for {who}: serviceState ENABLED {eff.origin('serviceState')}.", evidence)
    return unknown(
        f"gmail.service_status has an unrecognised serviceState {eff.value.get('serviceState')!r} for {who}.",
        evidence,
    )
