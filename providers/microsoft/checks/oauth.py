"""OAuth (XOAUTH2) permissions: delegated SMTP.Send consent; app-only SMTP.SendAsApp, the Exchange service
principal and the app's right on the mailbox."""

from __future__ import annotations

from typing import Any

from preflight.checks import Context, Outcome, check, failed, passed, unknown, warned
from preflight.model import Method, Severity

from ..resources import (
    AppRoleAssignments,
    AuthorizationPolicy,
    ExchangeServicePrincipals,
    GraphUser,
    MailboxPermissions,
    PermissionGrants,
    ResourceServicePrincipal,
    ServicePrincipal,
)
from .principals import app_names, exchange_sp, full_access
from .values import data, for_existing, optional_org, same


def no_app_id(what: str) -> Outcome:
    return unknown(f"No app id was given, so preflight cannot check {what}: re-run with --app-id <the sending "
                   "app's application (client) id>.", {"options.app_id": None})


@for_existing
@check("ms.oauth-delegated-consent", "Delegated SMTP.Send consent", severity=Severity.HIGH,
       cause="oauth-app-not-authorized", methods=(Method.OAUTH_DELEGATED,), order=70,
       reads=("servicePrincipal", "oauth2PermissionGrants", "authorizationPolicy", "user"))
def delegated_consent(ctx: Context) -> Outcome:
    app_id = ctx.options.app_id
    if not app_id:
        return no_app_id("whether the sending app has SMTP.Send consent")
    known = data("wellknown")
    scope = known["permissions"]["delegated_smtp"]
    sp = optional_org(ctx, "servicePrincipal", ServicePrincipal)
    grants = [] if sp is None else [
        g for g in ctx.org_as("oauth2PermissionGrants", PermissionGrants).root
        if scope in (g.scope or "").split() and g.clientId == sp.id]
    evidence: dict[str, Any] = {"options.app_id": app_id, "servicePrincipal.id": sp and sp.id,
                                f"oauth2PermissionGrants[{scope}]": [g.model_dump() for g in grants]}
    if any(g.consentType == "AllPrincipals" for g in grants):
        return passed(f"An admin consented to {scope} for app {app_id} on behalf of all users "
                      "(oauth2PermissionGrant consentType AllPrincipals).", evidence)
    if grants and any(g.consentType == "Principal" and g.principalId == ctx.mailbox_as("user", GraphUser).id
                      for g in grants):
        return passed(f"{ctx.subject} consented to {scope} for app {app_id} (consentType Principal).", evidence)
    # No consent yet: it now depends on whether users may consent for themselves.
    assigned = ctx.org_as("authorizationPolicy", AuthorizationPolicy).defaultUserRolePermissions \
        .permissionGrantPoliciesAssigned
    evidence["authorizationPolicy.defaultUserRolePermissions.permissionGrantPoliciesAssigned"] = assigned
    own = [p for p in assigned if p.startswith(known["consent"]["self_prefix"])]
    where = ("has no service principal in this tenant yet" if sp is None
             else f"has no {scope} consent that covers {ctx.subject}")
    if not own:
        return failed(f"App {app_id} {where}, and users may not consent to apps (no ManagePermissionGrantsForSelf "
                      "policy in the authorization policy): an admin must grant consent.", evidence,
                      cause="third-party-apps-blocked")
    if any(p in known["consent"]["any_app"] for p in own):
        return warned(f"App {app_id} {where}; users may consent to apps ({', '.join(own)}), so {ctx.subject} is "
                      f"asked to consent to {scope} at the first sign-in. Admin consent avoids the prompt.", evidence)
    return unknown(f"App {app_id} {where}, and user consent is limited by {', '.join(own)}: whether it covers "
                   f"{scope} for this app depends on its publisher verification and permission classifications. "
                   "Grant admin consent to make it certain.", evidence)


@check("ms.oauth-app-role", "SMTP.SendAsApp granted to the app", severity=Severity.CRITICAL,
       cause="oauth-app-not-authorized", scope="tenant", methods=(Method.OAUTH_APP,), order=72,
       reads=("servicePrincipal", "servicePrincipalAppRoles", "exchangeOnlineServicePrincipal"))
def app_role(ctx: Context) -> Outcome:
    app_id = ctx.options.app_id
    if not app_id:
        return no_app_id("whether the sending app holds SMTP.SendAsApp")
    role = data("wellknown")["permissions"]["app_smtp"]
    sp = optional_org(ctx, "servicePrincipal", ServicePrincipal)
    if sp is None:
        return failed(f"App {app_id} has no service principal (enterprise application) in this tenant: no admin has "
                      f"consented to it, so it holds no {role} permission.", {"options.app_id": app_id,
                                                                               "servicePrincipal": "404"})
    exo = ctx.org_as("exchangeOnlineServicePrincipal", ResourceServicePrincipal)
    role_ids = {r.id for r in exo.appRoles if r.value == role}
    if not role_ids:
        return unknown(f"The Office 365 Exchange Online service principal lists no {role} app role, so the app's "
                       "role assignments cannot be matched.", {"exchangeOnlineServicePrincipal.id": exo.id})
    assigned = [a for a in ctx.org_as("servicePrincipalAppRoles", AppRoleAssignments).root
                if a.appRoleId in role_ids and a.resourceId == exo.id]
    evidence = {"options.app_id": app_id, "servicePrincipal.id": sp.id, f"appRoleId[{role}]": sorted(role_ids),
                "servicePrincipalAppRoles[matching]": [a.model_dump() for a in assigned]}
    if assigned:
        return passed(f"App {app_id} holds {role} on Office 365 Exchange Online (admin-consented app role "
                      "assignment).", evidence)
    return failed(f"App {app_id} has no {role} app role assignment on Office 365 Exchange Online: add the "
                  "application permission and grant admin consent.", evidence)


@check("ms.oauth-exchange-service-principal", "App registered in Exchange (New-ServicePrincipal)",
       severity=Severity.CRITICAL, cause="oauth-app-not-authorized", scope="tenant", methods=(Method.OAUTH_APP,),
       order=74, reads=("exchangeServicePrincipals", "servicePrincipal"))
def exchange_service_principal(ctx: Context) -> Outcome:
    app_id = ctx.options.app_id
    if not app_id:
        return no_app_id("whether the sending app is registered in Exchange Online")
    mine = exchange_sp(ctx, app_id)
    if mine is None:
        count = len(ctx.org_as("exchangeServicePrincipals", ExchangeServicePrincipals).root)
        return failed(f"Exchange Online has no service principal for app {app_id} (Get-ServicePrincipal returned "
                      f"{count}, none with that AppId).", {"options.app_id": app_id,
                                                          "exchangeServicePrincipals.count": count})
    # The docs have called the property ObjectId and ServiceId: accept both.
    registered = mine.ObjectId or mine.ServiceId
    evidence: dict[str, Any] = {"exchangeServicePrincipal.AppId": mine.AppId,
                                "exchangeServicePrincipal.ObjectId": registered}
    sp = optional_org(ctx, "servicePrincipal", ServicePrincipal)
    if sp is None:
        return failed(f"Exchange Online has a service principal for app {app_id}, but Entra ID has no enterprise "
                      "application for that app id.", evidence)
    evidence["servicePrincipal.id"] = sp.id
    if not same(registered, sp.id):
        return failed(f"The Exchange service principal for app {app_id} has ObjectId {registered}, but the "
                      f"enterprise application's object id is {sp.id} (the app registration's object id was "
                      "probably used): Exchange cannot match the token to it.", evidence)
    return passed(f"App {app_id} is registered in Exchange Online with the enterprise application's object id.",
                  evidence)


@for_existing
@check("ms.oauth-mailbox-permission", "App has FullAccess on the mailbox", severity=Severity.CRITICAL,
       cause="oauth-app-not-authorized", methods=(Method.OAUTH_APP,), order=76,
       reads=("mailboxPermissions", "exchangeServicePrincipals", "servicePrincipal"))
def mailbox_permission(ctx: Context) -> Outcome:
    # Microsoft's app-only SMTP setup grants FullAccess (Add-MailboxPermission); SendAs
    # (Get-RecipientPermission) is not what it asks for, so only FullAccess counts here.
    app_id = ctx.options.app_id
    if not app_id:
        return no_app_id("whether the sending app may use this mailbox")
    names, exchange_known = app_names(ctx, app_id)
    full = full_access(ctx.mailbox_as("mailboxPermissions", MailboxPermissions).root, names)
    evidence: dict[str, Any] = {"app names": sorted(names),
                                "mailboxPermissions[FullAccess]": [e.model_dump() for e in full]}
    if full:
        return passed(f"The app's service principal has FullAccess on {ctx.subject} (Get-MailboxPermission).",
                      evidence)
    if not exchange_known:
        return unknown(f"No FullAccess entry on {ctx.subject} names app {app_id} or its object id, and "
                       "Get-ServicePrincipal could not be read to learn the name Exchange shows for it.", evidence)
    return failed(f"The app's service principal has no FullAccess on {ctx.subject} (Get-MailboxPermission); "
                  "SendAs alone is not enough for app-only SMTP: run Add-MailboxPermission -Identity "
                  f"{ctx.subject} -User <service principal id> -AccessRights FullAccess.", evidence)
