"""Send-as: when the From address is not the mailbox, the mailbox signing in needs SendAs on it (app-only too)."""

from __future__ import annotations

from typing import Any

from preflight.checks import Context, Outcome, check, failed, passed, unknown
from preflight.model import Method, Severity
from preflight.snapshot import Unavailable

from ..resources import GraphUser, Mailbox, OrganizationConfig, RecipientPermission, RecipientPermissions
from .principals import APP_NAME_READS, app_names
from .principals import send_as as send_as_grants
from .values import for_existing, same, smtp_addresses


def _names(ctx: Context) -> set[str]:
    """The ways Get-RecipientPermission may name the signed-in mailbox as Trustee."""
    user = ctx.mailbox_as("user", GraphUser)
    names = {str(ctx.subject), user.userPrincipalName, user.mail or ""}
    try:
        m = ctx.mailbox_as("mailbox", Mailbox)
        # Not DisplayName: it is not unique, and a namesake's right is not this mailbox's.
        names |= {n or "" for n in (m.Identity, m.Name, m.Alias, m.UserPrincipalName, m.PrimarySmtpAddress)}
    except Unavailable:
        pass
    return {n for n in names if n}


def _rights_on(ctx: Context, sender: str) -> list[RecipientPermission] | None:
    """Get-RecipientPermission -Identity <From>: read for this mailbox's --from, or as a mailbox of its own."""
    try:
        return ctx.mailbox_as("fromRecipientPermissions", RecipientPermissions).root
    except Unavailable as exc:
        if exc.reason != "not collected":
            raise
    try:
        return ctx.other_mailbox_as(sender, "recipientPermissions", RecipientPermissions).root
    except Unavailable as exc:
        if exc.reason != "not collected":
            raise
    return None


@for_existing
@check("ms.send-as", "Send as the From address", severity=Severity.HIGH, cause="send-as-denied", order=90,
       reads=("user", "mailbox", "fromRecipientPermissions", "recipientPermissions", "organizationConfig",
              *APP_NAME_READS))
def send_as(ctx: Context) -> Outcome | None:
    sender = ctx.options.from_addresses.get(str(ctx.subject))
    if not sender:
        return None  # no --from for this mailbox: it sends as itself
    evidence: dict[str, Any] = {"options.from": sender}
    if same(sender, ctx.subject):
        return passed(f"The From address is {ctx.subject} itself.", evidence)
    if sender.lower() in smtp_addresses(ctx.mailbox_as("user", GraphUser).proxyAddresses):
        try:
            rewrite = ctx.org_as("organizationConfig", OrganizationConfig).SendFromAliasEnabled
        except Unavailable:
            rewrite = None
        evidence["organizationConfig.SendFromAliasEnabled"] = rewrite
        note = ("" if rewrite else " Unless SendFromAliasEnabled is True (Set-OrganizationConfig), Exchange rewrites "
                "it to the primary address.")
        return passed(f"{sender} is an alias of {ctx.subject}, so no send-as right is needed.{note}", evidence)
    permissions = _rights_on(ctx, sender)
    if permissions is None:
        return unknown(f"The send-as rights on {sender} were not collected: re-collect with --from, or include "
                       f"{sender} among the mailboxes to check.", evidence)
    names = _names(ctx)
    grants = send_as_grants(permissions, names)
    evidence[f"recipientPermissions of {sender}[SendAs]"] = [p.Trustee for p in permissions if "SendAs" in p.rights]
    if grants:
        return passed(f"{ctx.subject} has SendAs on {sender} (Get-RecipientPermission Trustee "
                      f"{grants[0].Trustee}).", evidence)
    if ctx.method is Method.OAUTH_APP and ctx.options.app_id:
        app_grants = send_as_grants(permissions, app_names(ctx, ctx.options.app_id)[0])
        if app_grants:
            # App-only SMTP submits as the XOAUTH2 user= mailbox: notifuse/notifuse#250 saw SendAsDenied with SendAs
            # granted to the app's service principal only, until the authenticated mailbox had it; Microsoft's
            # note ("grant SendAs permissions to the sender") does not say whose right counts.
            return unknown(f"Only the app (Trustee {app_grants[0].Trustee}) has SendAs on {sender}, not "
                           f"{ctx.subject}, the mailbox it signs in as: a reported case (notifuse/notifuse#250) got "
                           "SendAsDenied until the authenticated mailbox had SendAs, and Microsoft does not document "
                           f"that the app's right suffices. Grant SendAs on {sender} to {ctx.subject} to make it "
                           "certain.", evidence)
    return failed(f"{ctx.subject} has no SendAs right on the From address {sender} (Get-RecipientPermission lists "
                  "no matching trustee): Exchange rejects the message with 5.7.60 SendAsDenied.", evidence)
