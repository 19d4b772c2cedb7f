"""Exchange RBAC for Applications: app-only SMTP authorised by an 'Application SMTP.SendAsApp' role assignment.

Microsoft's "SMTP Onboarding to App RBAC Overview" (MicrosoftDocs/office-developer-exchange-docs,
docs/legacy-protocols/smtp-app-rbac-onboarding.md, 2025-10-17): SMTP supports RBAC for Applications; the admin
assigns the role 'Application SMTP.SendAsApp' to the app's Exchange service principal over a management scope
(New-ManagementRoleAssignment -Role 'Application SMTP.SendAsApp' -App <app id> -CustomResourceScope <scope>);
"RBAC does not require mailbox permissions"; the app should hold no Entra permission, as "including the
SMTP.SendAsApp claim would trigger an unnecessary check for mailbox permissions". So without the Entra app role
and without FullAccess, app-only SMTP can still work, for the mailboxes in the assignment's scope.

Application access policies do not scope SMTP: the permissions they govern are Graph Mail.*, MailboxSettings.*,
Calendars.*, Contacts.* and EWS full_access_as_app (microsoft-graph-docs-contrib
concepts/auth-limit-mailbox-access.md), not SMTP.SendAsApp; preflight does not read them.

The assignments come from Get-ManagementRoleAssignment -RoleAssigneeType ServicePrincipal (as peers' RBAC for
Applications scripts list them). Whether a scoped assignment covers a mailbox takes
Test-ServicePrincipalAuthorization, which preflight does not run (it runs Get- cmdlets only): unknown then.
"""

from __future__ import annotations

from preflight.checks import Check, Context, Outcome, noted, passed, unknown
from preflight.model import Status
from preflight.snapshot import Unavailable

from ..resources import ManagementRoleAssignment, ManagementRoleAssignments
from .principals import APP_NAME_READS, app_names
from .values import same

ROLE = "Application SMTP.SendAsApp"
RBAC_READS = ("applicationRoleAssignments", *APP_NAME_READS)


def smtp_grants(ctx: Context, app_id: str) -> list[ManagementRoleAssignment] | None:
    """The app's enabled 'Application SMTP.SendAsApp' assignments; None when they were not collected."""
    try:
        assignments = ctx.org_as("applicationRoleAssignments", ManagementRoleAssignments).root
    except Unavailable as exc:
        if exc.reason == "not collected":
            return None
        raise
    names = app_names(ctx, app_id)[0]
    return [a for a in assignments if same(a.Role, ROLE)
            and any(same(who, n) for who in (a.RoleAssignee, a.RoleAssigneeName) for n in names)
            and a.Enabled is not False]


def _scopes(grants: list[ManagementRoleAssignment]) -> list[str | None]:
    return [g.CustomResourceScope for g in grants]


def with_rbac(own: Check, *, entra_role: Check | None = None) -> Check:
    """An app-only permission check that also accepts an RBAC for Applications grant. For the mailbox check pass
    `entra_role`: when the app holds the Entra SMTP.SendAsApp role, Exchange checks mailbox permissions anyway."""

    def run(ctx: Context) -> Outcome | None:
        out = own.run(ctx)
        app_id = ctx.options.app_id
        if out is None or out.status is not Status.FAIL or not app_id:
            return out
        grants = smtp_grants(ctx, app_id)
        if grants is None:
            return noted(out, f"RBAC for Applications role assignments were not collected: an '{ROLE}' assignment "
                              "would authorise the app without this")
        evidence = {"applicationRoleAssignments[app]": [
            {"Name": g.Name, "Role": g.Role, "CustomResourceScope": s}
            for g, s in zip(grants, _scopes(grants), strict=True)]}
        if not grants:
            return noted(out, f"no '{ROLE}' RBAC for Applications assignment names the app either", evidence)
        if entra_role is None:
            return passed(f"App {app_id} holds '{ROLE}' through Exchange RBAC for Applications (role assignment "
                          f"{grants[0].Name}): app-only SMTP needs no Entra SMTP.SendAsApp permission then "
                          "(Microsoft's SMTP App RBAC onboarding).", evidence)
        role = entra_role.run(ctx)
        if role is not None and role.status is Status.PASS:
            return noted(out, f"the app also holds '{ROLE}' through RBAC for Applications, but with the Entra "
                              "SMTP.SendAsApp permission in its token Exchange checks mailbox permissions anyway "
                              "(Microsoft's SMTP App RBAC onboarding)", evidence)
        if None in _scopes(grants):
            return passed(f"App {app_id} holds '{ROLE}' through Exchange RBAC for Applications for the whole "
                          f"organisation, which covers {ctx.subject} without a mailbox permission.", evidence)
        return unknown(f"App {app_id} holds '{ROLE}' through Exchange RBAC for Applications scoped to "
                       f"{', '.join(str(s) for s in _scopes(grants))}; whether {ctx.subject} is in scope needs "
                       f"Test-ServicePrincipalAuthorization -Identity {app_id} -Resource {ctx.subject}, which "
                       "preflight does not run.", evidence)

    return own.wrapped(run, (*RBAC_READS, *(entra_role.reads if entra_role else ())))
