"""Reading a Google snapshot for the checks: the user an address resolves to, its memberships, effective policy.

Everything here is pure; an unreadable resource raises `Unavailable` (the engine's `unknown`), and an effective
value that depends on something unreadable raises `Undetermined`, which `for_users` turns into `unknown`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any

from preflight.checks import CheckFunc, Context, Outcome, unknown
from preflight.snapshot import Unavailable, describe_error, error_of

from .facts import facts
from .policy import Effective, Membership, Undetermined, reduce

User = Mapping[str, Any]
UserCheck = Callable[[Context, User], Outcome | None]


def subject(ctx: Context) -> str:
    if ctx.subject is None:
        raise RuntimeError("a mailbox check ran without a mailbox")
    return ctx.subject


def is_not_found(exc: Unavailable) -> bool:
    return bool(exc.error) and (exc.error or {}).get("status") in facts().not_found_statuses


def workspace_domains(ctx: Context) -> set[str] | None:
    """This Workspace's domains and domain aliases (domains.list); None when they could not be read."""
    try:
        domains = ctx.org("domains")
    except Unavailable:
        return None
    if not isinstance(domains, list):
        return None
    names = {str(d.get("domainName", "")).lower() for d in domains if isinstance(d, Mapping)}
    for d in domains:
        for alias in (d.get("domainAliases") or []) if isinstance(d, Mapping) else []:
            names.add(str(alias.get("domainAliasName", "")).lower())
    return names - {""}


def foreign(ctx: Context, exc: Unavailable) -> str | None:
    """The address's domain, when users.get was refused (403) because the domain is not this Workspace's:
    Google answers "Not Authorized to access this resource/api" then, and domains.list proves it."""
    domain = subject(ctx).rpartition("@")[2].lower()
    owned = workspace_domains(ctx)
    status = (exc.error or {}).get("status")
    if status in facts().foreign_domain_statuses and owned and domain not in owned:
        return domain
    return None


def user_or_none(ctx: Context) -> User | None:
    """The Directory user the address resolves to (its owner for an alias); None when the Directory says 404,
    or refuses an address whose domain is not this Workspace's (google.address reports both)."""
    try:
        user = ctx.mailbox("user")
    except Unavailable as exc:
        if is_not_found(exc) or foreign(ctx, exc):
            return None
        raise
    if not isinstance(user, Mapping):
        raise TypeError("the user resource is not an object")
    return user


def for_users(func: UserCheck) -> CheckFunc:
    """Run a per-user check on the address's user; not applicable (no finding) to groups and unknown
    addresses, which google.address reports. An undetermined effective policy becomes `unknown`."""

    @wraps(func)
    def run(ctx: Context) -> Outcome | None:
        user = user_or_none(ctx)
        if user is None:
            return None
        try:
            return func(ctx, user)
        except Undetermined as exc:
            return unknown(
                f"The effective {exc.setting} for {account_name(ctx, user)} cannot be determined: {exc.reason}.",
                {"setting": exc.setting, "reason": exc.reason},
            )

    return run


def primary(user: User) -> str:
    return str(user["primaryEmail"]).lower()


def account_name(ctx: Context, user: User) -> str:
    """The account a finding is about: the address, or for an alias its owner (whose record users.get gave)."""
    address, owner = subject(ctx), primary(user)
    return address if owner == address else f"{owner} (the owner of {address})"


def bool_field(user: User, name: str) -> bool | None:
    """A Directory boolean; None when absent. A non-boolean is a shape error (the check becomes unknown)."""
    value = user.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise TypeError(f"user.{name} is {value!r}, not a boolean")


def _ancestors(path: str) -> list[str]:
    """'/a/b' -> ['/a/b', '/a']; the root '/' is handled apart."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[:i]) for i in range(len(parts), 0, -1)]


def membership(ctx: Context, user: User) -> tuple[Membership, dict[str, Unavailable]]:
    """What policy queries can test about the user, and the optional resources that could not be read."""
    org_units = ctx.org("orgUnits")
    if not isinstance(org_units, list):
        raise TypeError("orgUnits is not a list")
    by_path: dict[str, str] = {}
    labels: dict[str, str] = {}
    root: str | None = None
    for ou in org_units:
        ou_id = str(ou["orgUnitId"]).removeprefix("id:")
        path = str(ou["orgUnitPath"])
        by_path[path.casefold()] = ou_id
        labels[f"orgUnits/{ou_id}"] = path
        if path == "/":
            root = ou_id
        elif ou.get("parentOrgUnitPath") == "/" and ou.get("parentOrgUnitId") and root is None:
            root = str(ou["parentOrgUnitId"]).removeprefix("id:")
    if root is not None:
        labels.setdefault(f"orgUnits/{root}", "/")
    user_path = str(user["orgUnitPath"])
    chain: set[str] = set()
    for path in _ancestors(user_path):
        if path.casefold() not in by_path:
            raise Undetermined(
                "policy", f"the user's org unit {path} is not among the {len(org_units)} org units read"
            )
        chain.add(by_path[path.casefold()])
    if root is not None:
        chain.add(root)

    missing: dict[str, Unavailable] = {}
    group_ids: frozenset[str] | None = None
    try:
        groups = ctx.mailbox("userGroups")
        if not isinstance(groups, list):
            raise TypeError("userGroups is not a list")
        group_ids = frozenset(str(g["id"]) for g in groups)
        labels.update({f"groups/{g['id']}": str(g.get("email") or g["id"]) for g in groups})
    except Unavailable as exc:
        missing["userGroups"] = exc

    nested: dict[str, bool] = {}
    try:
        looked_up = ctx.mailbox("groupMembership")
        if not isinstance(looked_up, Mapping):
            raise TypeError("groupMembership is not an object")
        # An entry that could not be read (its own {"error": ...}) stays out: that group is undecided.
        nested = {str(g): r["isMember"] for g, r in looked_up.items()
                  if isinstance(r, Mapping) and isinstance(r.get("isMember"), bool)}
    except Unavailable as exc:
        missing["groupMembership"] = exc

    licences: frozenset[str] | None = None
    try:
        assignments = ctx.mailbox("licenses")
        if isinstance(assignments, list):
            licences = frozenset(f"/product/{a['productId']}/sku/{a['skuId']}" for a in assignments)
    except Unavailable as exc:
        missing["licenses"] = exc
    unread = unread_products(ctx) if licences is not None else {}

    m = Membership(
        org_unit_ids=frozenset(chain),
        known_org_unit_ids=frozenset(by_path.values()),
        root_org_unit_id=root,
        group_ids=group_ids,
        nested=nested,
        licences=licences,
        unread_products=unread,
        labels=labels,
    )
    return m, missing


def unread_products(ctx: Context) -> dict[str, str]:
    """Products whose licence assignments could not be read (org.licenseErrors), and why."""
    try:
        errors = ctx.org("licenseErrors")
    except Unavailable:
        return {}  # not recorded: every product was read, skipped as absent, or licences were not collected
    if not isinstance(errors, Mapping):
        raise TypeError("licenseErrors is not an object")
    return {str(p): describe_error(error_of(e) or {}) for p, e in errors.items()}


def effective(ctx: Context, user: User, setting: str) -> Effective:
    """The user's effective value of a Policy API setting (`policies` unreadable -> Unavailable -> unknown).

    Reading a field that a policy of undecided applicability would change raises Undetermined, or, when a
    resource that was not read would decide it, that resource's Unavailable (which names what to grant)."""
    policies = ctx.org("policies")
    if not isinstance(policies, list):
        raise TypeError("policies is not a list")
    m, missing = membership(ctx, user)
    return reduce(policies, facts().setting(setting), m, missing)
