"""Basic sign-in on Google: the account password is retired, so only an app password can work.

An app password needs 2-Step Verification enrolled (isEnrolledIn2Sv) and is unavailable when enrolment is
not allowed, when security keys only are enforced ("Enforcing security keys disables App passwords",
support.google.com/a/answer/9176599), or under Advanced Protection (support.google.com/accounts/answer/185833).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from preflight.checks import Context, Outcome, check, failed, passed, skipped, unknown, warned
from preflight.model import Method, Severity
from preflight.snapshot import Unavailable

from ..resources import Activities, Asps
from .auditlog import events
from .common import (
    EFFECTIVE_READS,
    Assuming,
    User,
    account_name,
    effective,
    for_users,
    only_users,
    primary,
    subject,
)
from .facts import facts
from .policy import Undetermined

APP_PASSWORDS_URL = "https://myaccount.google.com/apppasswords"


@dataclass
class AppPasswordPolicy:
    """What the effective policy says about app passwords for one user."""

    blockers: list[str] = field(default_factory=list)  # app passwords certainly unavailable
    risks: list[str] = field(default_factory=list)  # could be unavailable; not readable per user
    evidence: dict[str, Any] = field(default_factory=dict)
    unrecognised: str | None = None


def app_password_policy(ctx: Context, user: User) -> AppPasswordPolicy:
    """Policy-level reasons app passwords are unavailable. Raises Unavailable/Undetermined when unreadable.
    Made once per mailbox (google.password-sign-in and google.app-passwords both read it; neither changes it),
    except in a candidate combination of undecided policies, which reads them afresh."""
    if isinstance(ctx, Assuming):
        return _app_password_policy(ctx, user)
    return ctx.resources.derived_of(("google.app password policy", subject(ctx), user.orgUnitPath),
                                    _app_password_policy_of, (ctx, user))


def _app_password_policy_of(args: tuple[Context, User]) -> AppPasswordPolicy:
    return _app_password_policy(*args)


def _app_password_policy(ctx: Context, user: User) -> AppPasswordPolicy:
    out = AppPasswordPolicy()
    enforced = user.isEnforcedIn2Sv
    factor = effective(ctx, user, "security.two_step_verification_enforcement_factor")
    out.evidence.update(factor.evidence("allowedSignInFactorSet"))
    out.evidence["user.isEnforcedIn2Sv"] = enforced
    meaning = factor.settle("allowedSignInFactorSet", facts().enum("allowedSignInFactorSet").meaning)
    value = factor.value.get("allowedSignInFactorSet")
    if meaning is None:
        out.unrecognised = f"allowedSignInFactorSet {value!r} is not a value preflight knows"
    elif meaning == "security_key_only":
        origin = factor.origin("allowedSignInFactorSet")
        if enforced:
            out.blockers.append(
                f"2-Step Verification is enforced for the user with security keys only "
                f"(allowedSignInFactorSet {value} {origin}), and enforcing security keys disables app passwords"
            )
        else:
            out.risks.append(
                f"the user's org unit allows security keys only (allowedSignInFactorSet {value} {origin}); once "
                "2-Step Verification is enforced for the user, app passwords stop working"
            )
    enrolled, logged = _advanced_protection(ctx, out)
    if enrolled:
        out.blockers.append(enrolled)
    app = effective(ctx, user, "security.advanced_protection_program")
    out.evidence.update(app.evidence("enableAdvancedProtectionSelfEnrollment"))
    # Only true lets users enrol; false and no value (no documented default) both leave it to the admin.
    if not enrolled and app.settle("enableAdvancedProtectionSelfEnrollment", lambda v: v is True):
        out.risks.append(
            "users may enrol themselves in Advanced Protection "
            f"(enableAdvancedProtectionSelfEnrollment true {app.origin('enableAdvancedProtectionSelfEnrollment')}), "
            f"which removes app passwords; {logged}"
        )
    return out


def _advanced_protection(ctx: Context, out: AppPasswordPolicy) -> tuple[str | None, str]:
    """(why the user is in Advanced Protection, or None; what the audit log says otherwise), from the Reports API
    user_accounts log (opt-in, --with-audit-log), which keeps events for a limited time."""
    log = facts().audit_log
    try:
        activities = ctx.mailbox_as("advancedProtectionEvents", Activities).root
    except Unavailable:
        return None, "no Google API shows whether this user did (--with-audit-log reads the recent audit log)"
    changes = events(activities, (log["advanced_protection_enroll"], log["advanced_protection_unenroll"]))
    out.evidence["audit log (Advanced Protection)"] = [f"{e.time} {e.name}" for e in changes]
    last = changes[-1] if changes else None
    if last is not None and last.name == log["advanced_protection_enroll"]:
        return (f"the user enrolled in Advanced Protection on {last.time} (audit log {last.name}, no unenrolment "
                "since), and Advanced Protection removes app passwords"), ""
    if last is not None:
        return None, f"the audit log shows the user left Advanced Protection on {last.time} ({last.name})"
    return None, (f"the audit log shows no enrolment within its retention ({log['retention']}); an older one is "
                  "not shown")


def _when(epoch_ms: str | None) -> str | None:
    """A Directory ASP time (Unix epoch milliseconds as text; "0" = unknown or never, as GAM reads it)."""
    ms = int(epoch_ms or "0")
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC") if ms > 0 else None


def _app_passwords(ctx: Context, who: str) -> tuple[str, dict[str, Any]]:
    """What users.asps.list (opt-in, --with-tokens) says about the user's existing app passwords."""
    try:
        asps = ctx.mailbox_as("asps", Asps).root
    except Unavailable:
        return "", {}
    if not asps:
        return f" {who} has no app password yet (Directory users.asps.list): one must be created.", {
            "app passwords": []}
    shown = []
    for asp in asps:
        used = _when(asp.lastTimeUsed)
        created = _when(asp.creationTime)
        shown.append(f"{asp.name or asp.codeId!s} (created {created or 'at an unknown time'}, "
                     f"{'last used ' + used if used else 'never used'})")
    return (f" {who} has {len(asps)} app password(s) (Directory users.asps.list): {'; '.join(shown)}; the service "
            "needs one of them, or a new one."), {"app passwords": shown}


def _retired(ctx: Context) -> bool:
    return ctx.now.date() >= facts().password_retired_on


@only_users
@check(
    "google.password-sign-in",
    "Password sign-in (less secure apps retired): an app password is the only basic option",
    severity=Severity.HIGH,
    cause="password-login-retired",
    methods=(Method.BASIC,),
    order=40,
    reads=("user", *EFFECTIVE_READS, "advancedProtectionEvents", "asps"),
)
@for_users
def password_sign_in(ctx: Context, user: User) -> Outcome:
    who = account_name(ctx, user)
    f = facts()
    when = f.password_retired_on.isoformat()
    enrolled = user.isEnrolledIn2Sv
    evidence: dict[str, Any] = {
        "user.primaryEmail": primary(user),  # the account that signs in (an alias's owner): its fix names it
        "user.isEnrolledIn2Sv": enrolled,
        "password sign-in retired on": when,
        "source": f.password_retired_source,
    }
    if not _retired(ctx):
        return warned(
            f"Google retires password sign-in for SMTP on {when}; after that {who} can only use an app "
            "password (with 2-Step Verification) or OAuth.",
            evidence,
        )
    if not enrolled:
        return failed(
            f"Google refuses the account password for SMTP since {when} (less secure apps retired), and {who} "
            "is not enrolled in 2-Step Verification (isEnrolledIn2Sv false), so it has no app password to use "
            "instead: a basic sign-in gets 535 5.7.8 BadCredentials.",
            evidence,
        )
    policy = app_password_policy(ctx, user)
    evidence.update(policy.evidence)
    if policy.blockers:
        return failed(
            f"Google refuses the account password for SMTP since {when}, and {who} cannot use an app password "
            f"instead: {'; '.join(policy.blockers)}.",
            evidence,
        )
    if policy.unrecognised:
        return unknown(f"Whether {who} can use an app password is unknown: {policy.unrecognised}.", evidence)
    risk = f" Note: {'; '.join(policy.risks)}." if policy.risks else ""
    existing, asp_evidence = _app_passwords(ctx, who)
    evidence.update(asp_evidence)
    # A warning, not a pass: the account password the admin would naturally paste fails (534 5.7.9), an app
    # password must be created first, it breaks silently at the next password change, and Google itself
    # discourages app passwords. Basic works, but it is at risk: exactly DESIGN's `warn`.
    return warned(
        f"Google refuses the account password for SMTP since {when}; {who} is enrolled in 2-Step Verification, "
        f"so the service must be given an app password ({APP_PASSWORDS_URL}), not the account password.{existing} "
        f"App passwords are revoked whenever the account password changes; OAuth (XOAUTH2) avoids that.{risk}",
        evidence,
        cause="app-password-required",
        severity=Severity.MEDIUM,
    )


@only_users
@check(
    "google.2sv",
    "2-Step Verification enrolled (app passwords need it)",
    severity=Severity.HIGH,
    cause="app-passwords-unavailable",
    methods=(Method.BASIC,),
    order=50,
    reads=("user", *EFFECTIVE_READS),
)
@for_users
def two_step(ctx: Context, user: User) -> Outcome:
    who = account_name(ctx, user)
    enrolled, enforced = user.isEnrolledIn2Sv, user.isEnforcedIn2Sv
    evidence: dict[str, Any] = {"user.isEnrolledIn2Sv": enrolled, "user.isEnforcedIn2Sv": enforced}
    # The enrolment policy only explains the remedy: the user record alone decides the verdict.
    allowed: bool | None = None
    origin = ""
    try:
        eff = effective(ctx, user, "security.two_step_verification_enrollment")
        evidence.update(eff.evidence("allowEnrollment"))
        allowed, origin = eff.get("allowEnrollment"), eff.origin("allowEnrollment")
    except (Unavailable, Undetermined) as exc:
        evidence["security.two_step_verification_enrollment"] = f"not readable: {exc}"
    if enrolled:
        state = "enforced" if enforced else "not enforced"
        return passed(f"{who} is enrolled in 2-Step Verification (isEnrolledIn2Sv true; {state}).", evidence)
    # Not enrolled is one root cause: google.password-sign-in names it (what a basic sign-in meets first, with
    # the fix). This check adds a cause only when the user cannot simply enrol.
    pointer = "google.password-sign-in reports it with the fix"
    if allowed is False:
        return failed(
            f"{who} is not enrolled in 2-Step Verification (isEnrolledIn2Sv false) and the effective policy does "
            f"not let users turn it on (allowEnrollment false {origin}), so it cannot get an app password: allow "
            "enrolment for the user's org unit or group first.",
            evidence,
        )
    if allowed is True:
        return skipped(
            f"{who} is not enrolled in 2-Step Verification (isEnrolledIn2Sv false; {pointer}); enrolment is "
            f"allowed (allowEnrollment true {origin}), so the user can turn it on at "
            "https://myaccount.google.com/signinoptions/two-step-verification and then create an app password.",
            evidence,
        )
    return unknown(
        f"{who} is not enrolled in 2-Step Verification (isEnrolledIn2Sv false; {pointer}), and whether the policy "
        "lets the user enrol could not be read.",
        evidence,
    )


@only_users
@check(
    "google.app-passwords",
    "App passwords allowed by policy (no security-key-only enforcement, Advanced Protection)",
    severity=Severity.HIGH,
    cause="app-passwords-unavailable",
    methods=(Method.BASIC,),
    order=60,
    reads=("user", *EFFECTIVE_READS, "advancedProtectionEvents"),
)
@for_users
def app_passwords(ctx: Context, user: User) -> Outcome:
    who = account_name(ctx, user)
    policy = app_password_policy(ctx, user)
    if policy.blockers:
        return failed(f"App passwords are unavailable to {who}: {'; '.join(policy.blockers)}.", policy.evidence)
    if policy.unrecognised:
        return unknown(f"Whether {who} may use app passwords is unknown: {policy.unrecognised}.", policy.evidence)
    if policy.risks:
        return warned(f"App passwords are allowed for {who} today, but {'; '.join(policy.risks)}.", policy.evidence)
    return passed(
        f"The effective policy lets {who} use app passwords (no security-key-only method, no Advanced "
        "Protection self-enrolment).",
        policy.evidence,
    )
