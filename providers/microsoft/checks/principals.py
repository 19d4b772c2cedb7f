"""Who is who in Exchange permission lists: the names the app may appear under, and matching grants."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from preflight.checks import Context
from preflight.snapshot import Unavailable

from ..resources import (
    ExchangeServicePrincipal,
    ExchangeServicePrincipals,
    MailboxPermission,
    RecipientPermission,
    ServicePrincipal,
)
from .values import optional_org, same

APP_NAME_READS = ("servicePrincipal", "exchangeServicePrincipals")  # what app_names reads


def exchange_sp(ctx: Context, app_id: str) -> ExchangeServicePrincipal | None:
    """The app's entry in Get-ServicePrincipal output (matched on AppId), if registered."""
    registered = ctx.org_as("exchangeServicePrincipals", ExchangeServicePrincipals).root
    return next((s for s in registered if same(s.AppId, app_id)), None)


def app_names(ctx: Context, app_id: str) -> tuple[set[str], bool]:
    """Every name Exchange may show for the app as a trustee, and whether the Exchange side was readable."""
    return ctx.resources.derived_of(("ms.app names", app_id), _app_names, (ctx, app_id))  # once, not per mailbox


def _app_names(args: tuple[Context, str]) -> tuple[set[str], bool]:
    ctx, app_id = args
    names = {app_id}
    try:
        sp = optional_org(ctx, "servicePrincipal", ServicePrincipal)
        if sp is not None:
            names.add(sp.id)
    except Unavailable:
        pass
    try:
        mine = exchange_sp(ctx, app_id)
    except Unavailable:
        return names, False
    if mine is not None:
        names |= {n for n in (mine.Identity, mine.Name, mine.DisplayName, mine.ObjectId, mine.ServiceId) if n}
    return names, True


def _named(who: str, names: Iterable[str]) -> bool:
    return any(same(who, n) for n in names)


def full_access(entries: Sequence[MailboxPermission], names: set[str]) -> list[MailboxPermission]:
    """Get-MailboxPermission entries giving FullAccess (not denied) to one of the names."""
    return [e for e in entries if "FullAccess" in e.AccessRights and not e.Deny and _named(e.User, names)]


def send_as(entries: Sequence[RecipientPermission], names: set[str]) -> list[RecipientPermission]:
    """Get-RecipientPermission Allow entries giving SendAs to one of the names."""
    return [e for e in entries if e.AccessControlType == "Allow" and "SendAs" in e.rights and _named(e.Trustee, names)]
