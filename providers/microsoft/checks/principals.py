"""Who is who in Exchange permission lists: the names the app may appear under, and matching grants."""

from __future__ import annotations

from typing import Any

from preflight.checks import Context
from preflight.snapshot import Unavailable

from .values import as_bool, as_list, optional_org, same


def exchange_sp(ctx: Context, app_id: str) -> dict[str, Any] | None:
    """The app's entry in Get-ServicePrincipal output (matched on AppId), if registered."""
    return next((s for s in ctx.org("exchangeServicePrincipals") if same(s.get("AppId"), app_id)), None)


APP_NAME_READS = ("servicePrincipal", "exchangeServicePrincipals")  # what app_names reads


def app_names(ctx: Context, app_id: str) -> tuple[set[str], bool]:
    """Every name Exchange may show for the app as a trustee, and whether the Exchange side was readable."""
    names = {app_id}
    try:
        sp = optional_org(ctx, "servicePrincipal")
        if sp is not None:
            names.add(sp["id"])
    except Unavailable:
        pass
    try:
        mine = exchange_sp(ctx, app_id)
    except Unavailable:
        return names, False
    if mine is not None:
        names |= {str(mine[k]) for k in ("Identity", "Name", "DisplayName", "ObjectId", "ServiceId") if mine.get(k)}
    return names, True


def granted(entries: list[dict[str, Any]], who_key: str, right: str, names: set[str]) -> list[dict[str, Any]]:
    """Allow entries of Get-MailboxPermission (User) / Get-RecipientPermission (Trustee) giving `right` to a name."""
    return [e for e in entries if right in as_list(e.get("AccessRights"))
            and any(same(e.get(who_key), n) for n in names)
            and not as_bool(e.get("Deny"), "Deny") and e.get("AccessControlType", "Allow") == "Allow"]
