"""Exchange Online layers: the authentication policy, the SMTP AUTH switch, and Basic auth's retirement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from preflight.checks import Context, Outcome, check, failed, passed, unknown, warned
from preflight.model import Method, Severity

from ..resources import (
    AuthenticationPolicies,
    AuthenticationPolicy,
    CasMailbox,
    ExchangeUser,
    OrganizationConfig,
    TransportConfig,
)
from .values import data, for_existing, same


def _policy_named(policies: Sequence[AuthenticationPolicy], ref: str) -> AuthenticationPolicy | None:
    """Get-User / Get-OrganizationConfig name the policy by name, identity, GUID or distinguished name."""
    cn = ref.split(",")[0].removeprefix("CN=") if ref.upper().startswith("CN=") else None
    for policy in policies:
        keys = (policy.Name, policy.Identity, policy.DistinguishedName, policy.Guid, policy.ExchangeObjectId)
        if any(same(ref, k) for k in keys) or (cn is not None and same(cn, policy.Name)):
            return policy
    return None


@for_existing
@check("ms.auth-policy-basic-smtp", "Authentication policy allows Basic SMTP", severity=Severity.HIGH,
       cause="basic-auth-policy-block", methods=(Method.BASIC,), order=50,
       reads=("exchangeUser", "organizationConfig", "authenticationPolicies"))
def auth_policy(ctx: Context) -> Outcome:
    # The user's own policy wins; without one the organisation's default applies; without both, nothing blocks.
    name = ctx.mailbox_as("exchangeUser", ExchangeUser).AuthenticationPolicy
    source = "Get-User AuthenticationPolicy"
    if name is None:
        name = ctx.org_as("organizationConfig", OrganizationConfig).DefaultAuthenticationPolicy
        source = "Get-OrganizationConfig DefaultAuthenticationPolicy"
    if name is None:
        return passed(f"No authentication policy applies to {ctx.subject} (Get-User AuthenticationPolicy and "
                      "Get-OrganizationConfig DefaultAuthenticationPolicy are empty): this layer allows Basic SMTP.",
                      {"exchangeUser.AuthenticationPolicy": None,
                       "organizationConfig.DefaultAuthenticationPolicy": None})
    policy = _policy_named(ctx.org_as("authenticationPolicies", AuthenticationPolicies).root, name)
    evidence: dict[str, Any] = {source: name}
    if policy is None:
        return unknown(f"Authentication policy '{name}' ({source}) is not among the policies "
                       "Get-AuthenticationPolicy returned.", evidence)
    allow = policy.AllowBasicAuthSmtp
    evidence[f"authenticationPolicies['{name}'].AllowBasicAuthSmtp"] = allow
    if allow:
        return passed(f"Authentication policy '{name}' ({source}) allows Basic auth for SMTP "
                      "(AllowBasicAuthSmtp: True).", evidence)
    return failed(f"Authentication policy '{name}' ({source}) blocks Basic auth for SMTP for {ctx.subject} "
                  "(AllowBasicAuthSmtp: False).", evidence)


@for_existing
@check("ms.smtp-auth-enabled", "SMTP AUTH enabled (effective)", severity=Severity.CRITICAL,
       cause="smtp-auth-disabled-mailbox", order=52, reads=("casMailbox", "transportConfig"))
def smtp_auth(ctx: Context) -> Outcome:
    # The mailbox value wins when set; null means "inherit the organisation's". Gates Basic and OAuth alike.
    mailbox = ctx.mailbox_as("casMailbox", CasMailbox).SmtpClientAuthenticationDisabled
    evidence: dict[str, Any] = {"casMailbox.SmtpClientAuthenticationDisabled": mailbox}
    if mailbox is True:
        return failed(f"SMTP AUTH is turned off for {ctx.subject} (Get-CASMailbox SmtpClientAuthenticationDisabled: "
                      "True), which overrides the organisation setting.", evidence)
    if mailbox is False:
        return passed(f"SMTP AUTH is turned on for {ctx.subject} (Get-CASMailbox SmtpClientAuthenticationDisabled: "
                      "False), whatever the organisation setting.", evidence)
    org = ctx.org_as("transportConfig", TransportConfig).SmtpClientAuthenticationDisabled
    evidence["transportConfig.SmtpClientAuthenticationDisabled"] = org
    if org:
        return failed(f"SMTP AUTH is turned off for the organisation (Get-TransportConfig "
                      f"SmtpClientAuthenticationDisabled: True) and {ctx.subject} inherits it (Get-CASMailbox "
                      "SmtpClientAuthenticationDisabled: null).", evidence, cause="smtp-auth-disabled-tenant")
    return passed(f"SMTP AUTH is on: {ctx.subject} inherits the organisation setting (Get-TransportConfig "
                  "SmtpClientAuthenticationDisabled: False).", evidence)


@check("ms.basic-auth-retirement", "Basic auth retirement for SMTP AUTH", severity=Severity.MEDIUM,
       cause="basic-auth-retirement", scope="tenant", methods=(Method.BASIC,), order=54)
def basic_retirement(ctx: Context) -> Outcome:
    """MC786329 as updated on 2026-01-27 (data/retirement.toml): Basic SMTP AUTH stays until the end of
    December 2026, is then disabled by default for existing tenants, and an administrator may turn it back
    on until a final removal date Microsoft announces in the second half of 2027. No documented setting or
    API shows whether an administrator did, so after the date the answer is unknown, not a failure."""
    timeline = data("retirement")
    off_after, month = timeline["disabled_by_default"], timeline["disabled_by_default_month"]
    when = timeline["announced_as"]
    removal = timeline.get("removal")
    today = ctx.now.date()
    evidence = {"disabled_by_default": off_after.isoformat(), "announced_as": when,
                "removal": removal.isoformat() if removal else "not announced", "source": timeline["source"],
                "message_center": timeline["message_center"], "today": today.isoformat()}
    if removal is not None and today >= removal:
        return failed(f"Microsoft removed Basic authentication for SMTP AUTH client submission on "
                      f"{removal.isoformat()}: password sign-in is rejected (550 5.7.30).", evidence)
    if today > off_after:
        evidence["re-enable setting"] = f"not documented by Microsoft (checked {timeline['setting_checked']})"
        return unknown(f"Microsoft disabled Basic authentication for SMTP AUTH by default for existing tenants at "
                       f"{when} (MC786329), and administrators may turn it back on until its final removal. "
                       "Whether this tenant's administrator did cannot be read: Microsoft documents no setting or "
                       "API that shows it. A password sign-in settles it (preflight probe smtp.office365.com --user "
                       "<mailbox> --password-prompt): '550 5.7.30 Basic authentication is not supported for Client "
                       "Submission' means it is off. OAuth avoids the question.", evidence)
    if today >= month:
        return warned(f"Microsoft disables Basic authentication for SMTP AUTH by default for existing tenants at "
                      f"{when} (no exact day announced; {off_after.isoformat()} at the latest), so it can stop any "
                      "day now unless an administrator turns it back on; its final removal is announced later. "
                      "Move this integration to OAuth.", evidence)
    return warned(f"Microsoft disables Basic authentication for SMTP AUTH by default for existing tenants at {when} "
                  f"({off_after.isoformat()} at the latest; an administrator can turn it back on until its final "
                  "removal, announced later): move this integration to OAuth.", evidence)
