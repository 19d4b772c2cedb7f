"""Small pure helpers the Microsoft checks share: data files, Exchange value normalisation, missing mailboxes."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from functools import cache
from importlib.resources import files
from typing import Any

from preflight.checks import Context, Guard, Uninterpretable
from preflight.snapshot import Unavailable

_TRUE = {"true", "$true"}
_FALSE = {"false", "$false"}


@cache  # read lazily, once: checks run per mailbox and method, and parsing dominated evaluation. Read-only.
def data(name: str) -> dict[str, Any]:
    """One of providers/microsoft/data/*.toml (facts that change live there, not in code)."""
    text = files(__name__.rsplit(".", 2)[0]).joinpath(f"data/{name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def as_bool(value: Any, field: str) -> bool | None:
    """Exchange cmdlet booleans arrive as JSON booleans or as "True"/"False"; null means "not set"."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        if text == "":
            return None
    raise Uninterpretable(f"{field} is {value!r}, not a boolean")


def as_list(value: Any) -> list[str]:
    """A multi-valued Exchange property (AccessRights, EmailAddresses): a JSON list or "A, B" text."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [str(v) for v in value]
    raise Uninterpretable(f"expected a list, got {value!r}")


def ref_name(value: Any) -> str | None:
    """An Exchange object reference (AuthenticationPolicy, ...): plain text, or an object with a Name."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = value.get("Name") or value.get("Identity")
    text = str(value).strip() if value is not None else ""
    return text or None


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


def optional_org(ctx: Context, name: str) -> Any | None:
    """An org resource whose 404 means "does not exist" (the app's service principal): None then."""
    try:
        return ctx.org(name)
    except Unavailable as exc:
        if exc.error is not None and exc.error.get("status") == 404:
            return None
        raise


def user_or_missing(ctx: Context) -> dict[str, Any] | None:
    """The Graph user, or None when Graph said 404: the address does not exist in the tenant."""
    try:
        user: dict[str, Any] = ctx.mailbox("user")
    except Unavailable as exc:
        if exc.error is not None and exc.error.get("status") == 404:
            return None
        raise
    return user


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
    try:
        value = ctx.mailbox("mailbox")["RecipientTypeDetails"]
        field, suffix = "mailbox.RecipientTypeDetails", "recipient_types"
    except Unavailable as first:
        try:
            settings = ctx.mailbox("mailboxSettings")
        except Unavailable:
            raise first from None
        value = settings["userPurpose"]
        # The docs show userPurpose both as a plain string and as {"value": "..."}: accept both.
        if isinstance(value, Mapping):
            value = value["value"]
        field, suffix = "mailboxSettings.userPurpose", "purposes"
    return next((k for k in KINDS if value in known[f"{k}_{suffix}"]), None), {field: value}
