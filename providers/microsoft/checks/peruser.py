"""Legacy per-user MFA (Graph beta /users/{id}/authentication/requirements, perUserMfaState).

Microsoft's table (learn.microsoft.com/entra/identity/authentication/howto-mfa-userstates, "Microsoft Entra
multifactor authentication user states"): Disabled affects nothing; Enabled does not affect legacy
authentication ("Legacy authentication continues to work until the registration process is completed", and a
user who registers is moved to Enforced automatically); Enforced affects legacy authentication ("Apps require
app passwords"). Values: disabled, enabled, enforced (api-reference/beta/resources/strongauthenticationrequirements.md).
"""

from __future__ import annotations

from preflight.checks import Context, Outcome, check, failed, passed, unknown, warned
from preflight.model import Method, Severity

from ..resources import AuthenticationRequirements, GraphUser
from .values import for_existing

# App passwords are allowed or not in the legacy MFA service settings, which Graph does not show.
APP_PASSWORDS = ("an app password works instead of the account password only if the tenant allows users to "
                 "create app passwords (legacy MFA service settings, not readable through Microsoft Graph)")


@for_existing
@check("ms.per-user-mfa", "Per-user (legacy) MFA", severity=Severity.HIGH, cause="mfa-required",
       methods=(Method.BASIC,), order=37, reads=("authenticationRequirements", "user"))
def per_user_mfa(ctx: Context) -> Outcome:
    ctx.mailbox_as("user", GraphUser)  # asked by user id: an unreadable user is why the state is missing
    state = ctx.mailbox_as("authenticationRequirements", AuthenticationRequirements).perUserMfaState
    evidence = {"authenticationRequirements.perUserMfaState": state}
    if state == "disabled":
        return passed(f"Per-user MFA is disabled for {ctx.subject} (perUserMfaState: disabled).", evidence)
    if state == "enabled":
        return warned(f"Per-user MFA is enabled (not yet enforced) for {ctx.subject}: a password-only SMTP AUTH "
                      "sign-in works until the user registers an MFA method, which moves the state to enforced "
                      f"and stops it; then {APP_PASSWORDS}.", evidence)
    if state == "enforced":
        return failed(f"Per-user MFA is enforced for {ctx.subject} (perUserMfaState: enforced): legacy clients "
                      f"such as SMTP AUTH cannot sign in with the account password; {APP_PASSWORDS}. Use OAuth, "
                      "or move the user to Conditional Access based MFA with an exclusion that fits.", evidence)
    return unknown(f"perUserMfaState is {state!r}, a value Microsoft added after these checks were written.",
                   evidence)
