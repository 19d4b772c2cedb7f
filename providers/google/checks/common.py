"""Reading a Google snapshot for the checks: the user an address resolves to, its memberships, effective policy.

Everything here is pure; an unreadable resource raises `Unavailable` (the engine's `unknown`), and an effective
value that depends on something unreadable raises `Undetermined`, which `for_users` turns into `unknown`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from functools import wraps
from typing import Any

from preflight.checks import CheckFunc, Context, Guard, Outcome, detached, unknown
from preflight.model import Status
from preflight.snapshot import Unavailable, describe_error, error_of

from ..resources import (
    DirectoryUser,
    Domains,
    GroupMembership,
    HasMember,
    LicenseErrors,
    Licenses,
    OrgUnits,
    Policies,
    Policy,
    UserGroups,
)
from .facts import facts
from .policy import SETTING_PREFIX, Clause, Effective, Membership, Undetermined, reduce

User = DirectoryUser
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
        domains = ctx.org_as("domains", Domains).root
    except Unavailable:
        return None
    return {d.domainName.lower() for d in domains} | {a.domainAliasName.lower() for d in domains
                                                      for a in d.domainAliases}


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
        return ctx.mailbox_as("user", DirectoryUser)
    except Unavailable as exc:
        if is_not_found(exc) or foreign(ctx, exc):
            return None
        raise


def _not_a_user(ctx: Context) -> bool:
    return user_or_none(ctx) is None


# No user account behind the address (404, another domain's address, a group): google.address is the one
# finding about it (preflight.checks explains). It reads domains to tell another domain's address.
only_users = Guard(_not_a_user, reads=("user", "domains"))


def for_users(func: UserCheck) -> CheckFunc:
    """A per-user check given the address's user (its owner for an alias); under `only_users`, so there is one.
    An undetermined effective policy is decided when every candidate combination of the policies that may apply
    leads to the same verdict, else it is `unknown`."""

    @wraps(func)
    def run(ctx: Context) -> Outcome | None:
        user = user_or_none(ctx)
        if user is None:
            return None
        try:
            return func(ctx, user)
        except Undetermined as exc:
            return _every_combination(ctx, user, func, exc)

    return run


# Each undecided clause a check meets doubles the combinations; past this many the check stays unknown.
MAX_COMBINATIONS = 64


@dataclass(slots=True)
class Assuming(Context):
    """A check's context in one candidate combination: undecided policy clauses taken as holding or not."""

    assume: Mapping[Clause, bool] = field(default_factory=dict)


def _assuming(ctx: Context, assume: Mapping[Clause, bool]) -> Assuming:
    return Assuming(**{f.name: getattr(ctx, f.name) for f in fields(Context)}, assume=assume)


def _every_combination(ctx: Context, user: User, func: UserCheck, first: Undetermined) -> Outcome | None:
    """Evaluate the check with the undecided clauses it meets taken as holding and as not, one at a time (a
    clause is branched on only when the reading depends on it); decide when every combination gives the same
    status and cause. Otherwise (or past MAX_COMBINATIONS) unknown, naming the undecided policies."""
    leaves: list[tuple[dict[Clause, bool], Outcome | None]] = []
    whys: dict[str, None] = {first.candidate or first.reason: None}
    if first.clause is None or MAX_COMBINATIONS < 2:
        return _undecided(ctx, user, first, list(whys), leaves)
    pending: list[dict[Clause, bool]] = [{first.clause: False}, {first.clause: True}]  # the first run met it
    while pending:
        assume = pending.pop()
        try:
            leaves.append((assume, func(_assuming(ctx, assume), user)))
        except Undetermined as exc:
            whys[exc.candidate or exc.reason] = None
            if exc.clause is None or exc.clause in assume or len(leaves) + len(pending) + 2 > MAX_COMBINATIONS:
                return _undecided(ctx, user, first, list(whys), leaves)
            pending += [{**assume, exc.clause: False}, {**assume, exc.clause: True}]
    verdicts = {(o.status, o.cause) if o else None for _, o in leaves}
    decided = leaves[0][1]
    if len(verdicts) > 1 or decided is None or decided.status is Status.UNKNOWN:
        return _undecided(ctx, user, first, list(whys), leaves)
    combos = [_combination(a) for a, _ in leaves]
    return replace(decided, message=f"{decided.message} (Read assuming {combos[0]}; the verdict is the same in all "
                   f"{len(combos)} combinations of whether these apply: {'; '.join(whys)}.)",
                   evidence={**decided.evidence, "combinations evaluated": combos})


def _combination(assume: Mapping[Clause, bool]) -> str:
    return "; ".join(f"{kind} {arg if isinstance(arg, str) else ' or '.join(arg)} "
                     f"{'holds' if held else 'does not hold'}" for (kind, arg), held in assume.items()) or "none"


def _undecided(ctx: Context, user: User, first: Undetermined, whys: list[str],
               leaves: list[tuple[dict[Clause, bool], Outcome | None]]) -> Outcome:
    outcomes = {_combination(a): (o.status.value if o else "not applicable") for a, o in leaves}
    if first.unreadable is not None:
        if isinstance(first.unreadable, Unavailable):
            # The resource's own error keeps what to grant; it also says what it would have decided.
            exc = first.unreadable
            raise Unavailable(exc.resource, f"{exc.reason}; it decides whether these apply: {'; '.join(whys)}",
                              exc.error)
        raise first.unreadable
    return unknown(
        f"The effective {first.setting} for {account_name(ctx, user)} cannot be determined: {first.reason}.",
        {"setting": first.setting, "reason": first.reason, "candidates": whys,
         **({"combinations": outcomes} if outcomes else {})},
    )


def primary(user: User) -> str:
    return user.primaryEmail.lower()


def account_name(ctx: Context, user: User) -> str:
    """The account a finding is about: the address, or for an alias its owner (whose record users.get gave)."""
    address, owner = subject(ctx), primary(user)
    return address if owner == address else f"{owner} (the owner of {address})"


def _ancestors(path: str) -> list[str]:
    """'/a/b' -> ['/a/b', '/a']; the root '/' is handled apart."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[:i]) for i in range(len(parts), 0, -1)]


def membership(ctx: Context, user: User) -> tuple[Membership, dict[str, Unavailable], tuple[Any, ...]]:
    """What policy queries can test about the user, the optional resources that could not be read, and the
    membership's signature: made once per mailbox, however many checks and methods ask."""

    return ctx.resources.derived_of(("google.membership", subject(ctx), user.orgUnitPath), _signed_membership,
                                    (ctx, user))


def _signed_membership(args: tuple[Context, User]) -> tuple[Membership, dict[str, Unavailable], tuple[Any, ...]]:
    m, missing = _membership(*args)
    return m, missing, m.signature()


@dataclass(frozen=True)
class _OrgUnits:
    """The Directory's org units as memberships read them: made once per evaluation, not once per mailbox."""

    by_path: Mapping[str, str]  # casefolded orgUnitPath -> id without "id:"
    labels: Mapping[str, str]  # "orgUnits/<id>" -> orgUnitPath
    root: str | None
    known: frozenset[str]
    count: int


def _org_units(ctx: Context) -> _OrgUnits:
    return ctx.resources.derived_of(("google.org units",), _read_org_units, ctx)


def _read_org_units(ctx: Context) -> _OrgUnits:
    org_units = ctx.org_as("orgUnits", OrgUnits).root
    by_path: dict[str, str] = {}
    labels: dict[str, str] = {}
    root: str | None = None
    for ou in org_units:
        ou_id = ou.orgUnitId.removeprefix("id:")
        by_path[ou.orgUnitPath.casefold()] = ou_id
        labels[f"orgUnits/{ou_id}"] = ou.orgUnitPath
        if ou.orgUnitPath == "/":
            root = ou_id
        elif ou.parentOrgUnitPath == "/" and ou.parentOrgUnitId and root is None:
            root = ou.parentOrgUnitId.removeprefix("id:")
    if root is not None:
        labels.setdefault(f"orgUnits/{root}", "/")
    return _OrgUnits(by_path, labels, root, frozenset(by_path.values()), len(org_units))


def _membership(ctx: Context, user: User) -> tuple[Membership, dict[str, Unavailable]]:
    units = _org_units(ctx)
    by_path, root = units.by_path, units.root
    labels = dict(units.labels)
    chain: set[str] = set()
    for path in _ancestors(user.orgUnitPath):
        if path.casefold() not in by_path:
            raise Undetermined(
                "policy", f"the user's org unit {path} is not among the {units.count} org units read"
            )
        chain.add(by_path[path.casefold()])
    if root is not None:
        chain.add(root)

    # Each exception is kept without its traceback: that would hold this frame, whose `missing` holds the exception,
    # in a reference cycle, and the evaluation's objects (its callers' frames) with it until a garbage collection.
    missing: dict[str, Unavailable] = {}
    group_ids: frozenset[str] | None = None
    try:
        groups = ctx.mailbox_as("userGroups", UserGroups).root
        group_ids = frozenset(g.id for g in groups)
        labels.update({f"groups/{g.id}": g.email for g in groups})
    except Unavailable as exc:
        missing["userGroups"] = detached(exc)

    nested: dict[str, bool] = {}
    try:
        looked_up = ctx.mailbox_as("groupMembership", GroupMembership).root
        # An entry that could not be read (its own {"error": ...}) stays out: that group is undecided.
        nested = {g: r.isMember for g, r in looked_up.items() if isinstance(r, HasMember)}
    except Unavailable as exc:
        missing["groupMembership"] = detached(exc)

    licences: frozenset[str] | None = None
    try:
        assignments = ctx.mailbox_as("licenses", Licenses).root
        licences = frozenset(f"/product/{a.productId}/sku/{a.skuId}" for a in assignments)
    except Unavailable as exc:
        missing["licenses"] = detached(exc)
    unread = unread_products(ctx) if licences is not None else {}

    m = Membership(
        org_unit_ids=frozenset(chain),
        known_org_unit_ids=units.known,
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
    return dict(ctx.resources.derived_of(("google.unread products",), _unread_products, ctx))  # tenant-wide


def _unread_products(ctx: Context) -> dict[str, str]:
    try:
        errors = ctx.org_as("licenseErrors", LicenseErrors).root
    except Unavailable:
        return {}  # not recorded: every product was read, skipped as absent, or licences were not collected
    return {p: describe_error(error_of(e.model_dump()) or {}) for p, e in errors.items()}


# What `effective` reads: the policies, and what decides which apply to the user (org unit, groups, licences).
EFFECTIVE_READS = ("policies", "orgUnits", "userGroups", "groupMembership", "licenses", "licenseErrors")


def effective(ctx: Context, user: User, setting: str) -> Effective:
    """The user's effective value of a Policy API setting (`policies` unreadable -> Unavailable -> unknown).

    Reading a field that a policy of undecided applicability would change raises Undetermined, or, when a
    resource that was not read would decide it, that resource's Unavailable (which names what to grant)."""
    if isinstance(ctx, Assuming):
        return _effective(ctx, user, setting)
    # Once per mailbox and setting, however many checks read it (an exception is raised afresh to each).
    return ctx.resources.derived_of(("google.effective for", setting, subject(ctx), user.orgUnitPath),
                                    _effective_of, (ctx, user, setting))


def _effective_of(args: tuple[Context, User, str]) -> Effective:
    return _effective(*args)


def _effective(ctx: Context, user: User, setting: str) -> Effective:
    policies = of_type(ctx, setting)
    m, missing, signature = membership(ctx, user)
    if isinstance(ctx, Assuming):
        m = replace(m, assume=ctx.assume)
        signature = m.signature()
    # Reduced once for every check and method reading this setting for any user of this membership (one org unit,
    # the same groups and licences); what could not be read is the mailbox's own.
    found = ctx.resources.derived_of(("google.effective", setting, signature), _reduced, (policies, setting, m))
    if not missing:
        return found
    # replace(found, missing=dict(missing)), made directly: once per mailbox and setting.
    return Effective(found.setting, found.value, found.sources, found.applicable, found.alternatives, dict(missing),
                     found.keyed)


def _reduced(args: tuple[list[Policy], str, Membership]) -> Effective:
    policies, setting, m = args
    return reduce(policies, facts().setting(setting), m)


def of_type(ctx: Context, setting: str) -> list[Policy]:
    """The policies of one setting type (`policies` unreadable -> Unavailable), grouped once per snapshot."""
    return ctx.resources.derived_of(("google.policies by type",), _by_type, ctx).get(SETTING_PREFIX + setting, [])


def _by_type(ctx: Context) -> dict[str, list[Policy]]:
    out: dict[str, list[Policy]] = {}
    for p in ctx.org_as("policies", Policies).root:
        out.setdefault(p.setting.type, []).append(p)
    return out
