"""Small pure helpers the Microsoft checks share: data files, Exchange value normalisation, missing mailboxes."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any, TypeVar

from pydantic import BaseModel

from preflight.checks import Context, Guard
from preflight.datafiles import load_toml
from preflight.snapshot import Unavailable

from ..resources import GraphUser, Mailbox, MailboxSettings

M = TypeVar("M", bound=BaseModel)


@cache  # read lazily, once: checks run per mailbox and method, and parsing dominated evaluation. Read-only.
def data(name: str) -> dict[str, Any]:
    """One of providers/microsoft/data/*.toml (facts that change live there, not in code)."""
    return load_toml(__name__.rsplit(".", 2)[0], f"data/{name}.toml")


def same(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.strip().lower() == b.strip().lower()


def smtp_addresses(values: Iterable[Any]) -> set[str]:
    """Addresses from proxyAddresses / EmailAddresses ("SMTP:primary", "smtp:alias"), lower-cased."""
    out = set()
    for v in values:
        text = str(v)
        if text.lower().startswith("smtp:"):
            out.add(text[5:].strip().lower())
    return out


def not_found(exc: Unavailable) -> bool:
    """The read was answered 404: the object does not exist (a user, the app's service principal)."""
    return exc.error is not None and exc.error.get("status") == 404


def optional_org(ctx: Context, name: str, model: type[M]) -> M | None:
    """An org resource whose 404 means "does not exist" (the app's service principal): None then."""
    try:
        return ctx.org_as(name, model)
    except Unavailable as exc:
        if not_found(exc):
            return None
        raise


def user_or_missing(ctx: Context) -> GraphUser | None:
    """The Graph user, or None when Graph said 404: the address does not exist in the tenant."""
    try:
        return ctx.mailbox_as("user", GraphUser)
    except Unavailable as exc:
        if not_found(exc):
            return None
        raise


def _missing(ctx: Context) -> bool:
    try:
        return user_or_missing(ctx) is None
    except Unavailable:
        return False  # unreadable is not missing: the check runs and names what could not be read


# Graph has no such user: ms.mailbox-exists is the one finding about the address (preflight.checks explains).
for_existing = Guard(_missing, reads=("user",))


KINDS = ("user", "shared", "resource", "other")
KIND_READS = ("mailbox", "mailboxSettings")  # what mailbox_kind reads


def mailbox_kind(ctx: Context) -> tuple[str | None, dict[str, Any]]:
    """What the mailbox is (one of KINDS, see data/wellknown.toml [mailbox]) and the evidence: Get-Mailbox
    RecipientTypeDetails, else Graph userPurpose. None: a documented value preflight does not sort (a
    MailUser, a Remote* mailbox, unknownFutureValue), which the callers report as unknown."""
    known = data("wellknown")["mailbox"]
    value: str
    try:
        value = ctx.mailbox_as("mailbox", Mailbox).RecipientTypeDetails
        field, suffix = "mailbox.RecipientTypeDetails", "recipient_types"
    except Unavailable as first:
        try:
            value = ctx.mailbox_as("mailboxSettings", MailboxSettings).userPurpose
        except Unavailable:
            raise first from None
        field, suffix = "mailboxSettings.userPurpose", "purposes"
    return next((k for k in KINDS if value in known[f"{k}_{suffix}"]), None), {field: value}
