"""Conditional Access for workload identities: can a policy block the sending app's own (app-only) token?

User-targeted policies do not evaluate a client credentials token; policies whose
`conditions.clientApplications.includeServicePrincipals` holds the app's service principal id or
`ServicePrincipalsInMyTenant` (minus `excludeServicePrincipals`) do (Graph conditionalAccessClientApplications).
They can only block, by location or by service principal risk. Microsoft's docs
(learn.microsoft.com/entra/identity/conditional-access/workload-identity): "Policy can be applied to single
tenant service principals that are registered in your tenant. Third party SaaS and multi-tenanted apps are out
of scope." So the app's registration decides first: servicePrincipal.appOwnerOrganizationId (the tenant the app
is registered in) and signInAudience (AzureADMyOrg: single tenant).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from preflight.checks import Context, Outcome, check, failed, passed, skipped, unknown, warned
from preflight.model import Method, Severity

from ..resources import ConditionalAccessPolicy, NamedLocation, ServicePrincipal
from . import ca
from .identity import named_locations, policies, senders_of
from .oauth import no_app_id
from .values import data, optional_org

Policy = ConditionalAccessPolicy
ALL_IN_TENANT = "ServicePrincipalsInMyTenant"
SINGLE_TENANT = "AzureADMyOrg"


def targets_app(policy: Policy, sp_id: str) -> bool:
    apps = policy.conditions.clientApplications
    if apps is None:
        return False
    include = apps.includeServicePrincipals
    return (sp_id in include or ALL_IN_TENANT in include) and sp_id not in apps.excludeServicePrincipals


def blocks(policy: Policy) -> bool:
    """A workload-identity policy that blocks (the only grant control these policies take)."""
    grant, apps = policy.grantControls, policy.conditions.clientApplications
    return grant is not None and "block" in grant.builtInControls and apps is not None \
        and bool(apps.includeServicePrincipals)


def _registration(ctx: Context, sp: ServicePrincipal) -> tuple[bool | None, str]:
    """Is the app a single-tenant app registered in this tenant (in scope), not one (out), or unknown?"""
    audience, owner = sp.signInAudience, sp.appOwnerOrganizationId
    tenant = ctx.snapshot.tenant.get("id")
    if audience is not None and audience != SINGLE_TENANT:
        return False, f"its signInAudience is {audience} (a multi-tenant app)"
    if owner and tenant and str(owner).lower() != str(tenant).lower():
        return False, f"it is registered in another tenant (appOwnerOrganizationId {owner})"
    if owner and tenant and audience == SINGLE_TENANT:
        return True, "it is a single-tenant app registered in this tenant"
    return None, ("whether it is a single-tenant app registered in this tenant is not known (servicePrincipal "
                  "without signInAudience or appOwnerOrganizationId, or no tenant id)")


@check("ms.ca-workload-identity", "Conditional Access for workload identities", severity=Severity.HIGH,
       cause="ca-location-block", scope="tenant", methods=(Method.OAUTH_APP,), order=35,
       reads=("conditionalAccessPolicies", "namedLocations", "servicePrincipal"))
def workload_identity(ctx: Context) -> Outcome:
    app_id = ctx.options.app_id
    if not app_id:
        return no_app_id("Conditional Access for the sending app's token")
    sp = optional_org(ctx, "servicePrincipal", ServicePrincipal)
    if sp is None:
        return skipped(f"App {app_id} has no service principal in this tenant (see ms.oauth-app-role).")
    known = data("wellknown")
    targets = [*known["apps"]["ca_targets"], known["apps"]["exchange_online"]]
    hits = [p for p in policies(ctx)
            if p.state in (ca.ENABLED, ca.REPORT_ONLY) and blocks(p) and targets_app(p, sp.id)
            and ca.app_in_scope(p.conditions.applications, targets)]
    evidence: dict[str, Any] = {"servicePrincipal.id": sp.id, "conditionalAccessPolicies": [
        {"id": p.id, "displayName": p.displayName, "state": p.state,
         "clientApplications": _dumped(p.conditions.clientApplications)} for p in hits]}
    if not hits:
        return passed(f"No enabled Conditional Access policy for workload identities covers app {app_id}'s token "
                      "for Exchange Online.", evidence)
    in_scope, why = _registration(ctx, sp)
    evidence.update({"servicePrincipal.signInAudience": sp.signInAudience,
                     "servicePrincipal.appOwnerOrganizationId": sp.appOwnerOrganizationId,
                     "tenant.id": ctx.snapshot.tenant.get("id")})
    names = ", ".join(map(ca.label, hits))
    if in_scope is False:
        return passed(f"Policy {names} targets workload identities, but {why}: Conditional Access for workload "
                      "identities covers only single-tenant apps registered in this tenant.", evidence)
    if in_scope is None:
        return unknown(f"Policy {names} would block app {app_id}'s token, but {why}.", evidence)
    return _by_location(ctx, hits, evidence, app_id)


def _dumped(apps: BaseModel | None) -> dict[str, Any] | None:
    return apps.model_dump(mode="json", by_alias=True) if apps is not None else None


def _by_location(ctx: Context, hits: list[Policy], evidence: dict[str, Any], app_id: str) -> Outcome:
    enforced, risky, cannot_tell = [], [], []
    detail: dict[str, str] = {}
    senders = senders_of(ctx)
    if isinstance(senders, Outcome):
        return senders
    named: dict[str, NamedLocation] | None = None
    for policy in hits:
        cond = policy.conditions
        narrowed = [*ca.unevaluated(cond)]
        if cond.servicePrincipalRiskLevels:
            narrowed.append(f"servicePrincipalRiskLevels {', '.join(cond.servicePrincipalRiskLevels)}")
        if cond.clientApplications is not None and cond.clientApplications.servicePrincipalFilter is not None:
            narrowed.append("a service principal filter")
        if cond.locations is not None and ca.narrows_by_location(cond):
            if not senders:
                cannot_tell.append(policy)
                detail[ca.name(policy)] = "no --sender-ip given"
                continue
            if named is None:
                named = named_locations(ctx)
            results = [ca.location_applies(cond.locations, s, named) for s in senders]
            detail.update({f"{ca.name(policy)} / {s}": why
                           for s, (_, why) in zip(senders, results, strict=True)})
            wheres = {w for w, _ in results}
            if ca.Where.IN not in wheres:
                if ca.Where.UNKNOWN in wheres:
                    cannot_tell.append(policy)
                continue
        if policy.state == ca.ENABLED and not narrowed:
            enforced.append(policy)
        else:
            risky.append(policy)
    evidence = {**evidence, "options.sender_ips": list(ctx.options.sender_ips), "locations": detail}
    if enforced:
        return failed(f"Conditional Access policy {', '.join(map(ca.label, enforced))} for workload identities blocks "
                      f"app {app_id}'s token for Exchange Online"
                      f"{' from the sender IPs' if senders else ''}: SMTP AUTH with an app-only token is refused.",
                      evidence)
    if cannot_tell:
        return unknown(f"Policy {', '.join(map(ca.label, cannot_tell))} blocks app {app_id}'s token by location, and "
                       "which side of it the sender is on cannot be told: pass --sender-ip CIDR with the sending "
                       "service's outbound ranges (as IP named locations) to evaluate it.", evidence)
    if risky:
        return warned(f"App {app_id}'s token is not blocked now, but policy {', '.join(map(ca.label, risky))} blocks "
                      "it once enforced or when its risk or filter condition matches.", evidence)
    return passed(f"The sender IPs are outside every location that a workload-identity policy blocks for app "
                  f"{app_id}.", evidence)
