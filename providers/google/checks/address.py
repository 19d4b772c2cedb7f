"""Address type: is the address a user that can sign in, or a group, an alias, or nothing in this Workspace?

Follows GAM's `whatis`: users.get by the address (an alias returns its owner, whose primaryEmail differs),
and only when that is 404, groups.get (a group, or a group alias when its email differs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from preflight.checks import Context, Outcome, check, failed, passed
from preflight.model import Severity
from preflight.snapshot import Unavailable

from ..resources import DirectoryGroup, DirectoryUser
from .common import foreign, is_not_found, subject, workspace_domains
from .facts import facts


def _domain_note(ctx: Context, address: str) -> tuple[str, dict[str, Any]]:
    """Whether the address's domain belongs to the Workspace, when the domain list was collected."""
    domain = address.rpartition("@")[2]
    names = workspace_domains(ctx)
    if names is None:
        return "", {}
    if domain in names:
        return "", {"domains": sorted(names)}
    return f" {domain} is not one of this Workspace's domains or domain aliases.", {"domains": sorted(names)}


def _not_a_user(ctx: Context, address: str, user_error: Mapping[str, Any]) -> Outcome:
    try:
        group = ctx.mailbox_as("group", DirectoryGroup)
    except Unavailable as exc:
        if not is_not_found(exc):
            raise
        note, extra = _domain_note(ctx, address)
        return failed(
            f"{address} is neither a user nor a group in this Workspace (Directory users.get and groups.get "
            f"both answered 404).{note}",
            {"user": dict(user_error), "group": exc.error, **extra},
        )
    email = group.email.lower()
    evidence = {
        "group.email": group.email,
        "group.name": group.name,
        "group.directMembersCount": group.directMembersCount,
        "group.id": group.id,
    }
    if email == address:
        count = "?" if group.directMembersCount is None else group.directMembersCount
        return failed(
            f"{address} is a Google group ({group.name or email}, "
            f"{count} direct members), possibly a collaborative inbox: a group "
            "has no password and no mailbox of its own, so it cannot sign in to smtp.gmail.com.",
            evidence,
            cause="shared-mailbox",
        )
    return failed(
        f"{address} is an alias of the Google group {email}: a group cannot sign in to smtp.gmail.com.",
        evidence,
        cause="shared-mailbox",
    )


@check(
    "google.address",
    "Address is a Workspace user (not a group, alias or unknown address)",
    severity=Severity.CRITICAL,
    cause="mailbox-not-found",
    order=10,
    reads=("user", "group", "domains"),
)
def address_type(ctx: Context) -> Outcome:
    address = subject(ctx)
    try:
        user = ctx.mailbox_as("user", DirectoryUser)
    except Unavailable as exc:
        error = exc.error or {}
        if is_not_found(exc):
            return _not_a_user(ctx, address, error)
        outside = foreign(ctx, exc)
        if outside:
            return failed(
                f"{address} is not in this Workspace: its domain {outside} is not one of the Workspace's domains or "
                f"domain aliases (domains.list), and Directory users.get answered {error.get('status')} "
                f"{error.get('message')!r} for it.",
                {"user": dict(error), "domains": sorted(workspace_domains(ctx) or ())},
            )
        message = str(error.get("message") or "").lower()
        if any(p in message for p in facts().domain_not_found_patterns):
            return failed(
                f"{address} is not in this Workspace: Directory users.get answered "
                f"{error.get('status')} {error.get('message')!r} for its domain.",
                {"user": dict(error)},
            )
        raise
    primary = user.primaryEmail.lower()
    evidence: dict[str, Any] = {
        "user.primaryEmail": user.primaryEmail,
        "user.id": user.id,
        "user.orgUnitPath": user.orgUnitPath,
    }
    if primary == address:
        return passed(f"{address} is a user of this Workspace (primaryEmail).", evidence)
    aliases = [a.lower() for a in [*user.aliases, *user.nonEditableAliases]]
    evidence["user.aliases"] = user.aliases
    evidence["user.nonEditableAliases"] = user.nonEditableAliases
    listed = "listed in its aliases" if address in aliases else "resolved by users.get"
    return failed(
        f"{address} is an alias of the user {primary} ({listed}): SMTP must sign in as {primary}, and "
        f"sending from {address} needs it as a verified send-as address of {primary}.",
        evidence,
        cause="alias-address",
    )
