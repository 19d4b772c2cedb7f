"""Send-as: when the From address is not the mailbox, the mailbox (or the app) needs SendAs on it."""

from __future__ import annotations

from typing import Any

from preflight.checks import Context, Outcome, check, failed, passed, unknown
from preflight.model import Method, Severity
from preflight.snapshot import Unavailable
from providers.microsoft.checks.principals import app_names, granted
from providers.microsoft.checks.values import as_bool, for_existing, same, smtp_addresses

P = "microsoft"


def _names(ctx: Context) -> set[str]:
    """The ways Get-RecipientPermission may name the signed-in mailbox as Trustee."""
    user = ctx.mailbox("user")
    names = {str(ctx.subject), user["userPrincipalName"], user.get("mail") or ""}
    try:
        mailbox = ctx.mailbox("mailbox")
        # Not DisplayName: it is not unique, and a namesake's right is not this mailbox's.
        names |= {str(mailbox[k]) for k in ("Identity", "Name", "Alias", "UserPrincipalName", "PrimarySmtpAddress")
                  if mailbox.get(k)}
    except Unavailable:
        pass
    if ctx.method is Method.OAUTH_APP and ctx.options.app_id:
        names |= app_names(ctx, ctx.options.app_id)[0]
    return {n for n in names if n}


def _rights_on(ctx: Context, sender: str) -> list[dict[str, Any]] | None:
    """Get-RecipientPermission -Identity <From>: read for this mailbox's --from, or as a mailbox of its own."""
    try:
        rights: list[dict[str, Any]] = ctx.mailbox("fromRecipientPermissions")
        return rights
    except Unavailable as exc:
        if exc.reason != "not collected":
            raise
    try:
        rights = ctx.other_mailbox(sender, "recipientPermissions")
        return rights
    except Unavailable as exc:
        if exc.reason != "not collected":
            raise
    return None


@check("ms.send-as", "Send as the From address", severity=Severity.HIGH, cause="send-as-denied", order=90,
       reads=("user", "mailbox", "fromRecipientPermissions", "recipientPermissions", "organizationConfig"), provider=P)
@for_existing
def send_as(ctx: Context) -> Outcome | None:
    sender = ctx.options.from_addresses.get(str(ctx.subject))
    if not sender:
        return None  # no --from for this mailbox: it sends as itself
    evidence: dict[str, Any] = {"options.from": sender}
    if same(sender, ctx.subject):
        return passed(f"The From address is {ctx.subject} itself.", evidence)
    user = ctx.mailbox("user")
    if sender.lower() in smtp_addresses(user.get("proxyAddresses") or []):
        try:
            rewrite = as_bool(ctx.org("organizationConfig").get("SendFromAliasEnabled"), "SendFromAliasEnabled")
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
    grants = granted(permissions, "Trustee", "SendAs", names)
    evidence[f"recipientPermissions of {sender}[SendAs]"] = [p.get("Trustee") for p in permissions
                                                             if "SendAs" in str(p.get("AccessRights"))]
    if grants:
        return passed(f"{ctx.subject} has SendAs on {sender} (Get-RecipientPermission Trustee "
                      f"{grants[0].get('Trustee')}).", evidence)
    return failed(f"{ctx.subject} has no SendAs right on the From address {sender} (Get-RecipientPermission lists "
                  "no matching trustee): Exchange rejects the message with 5.7.60 SendAsDenied.", evidence)
