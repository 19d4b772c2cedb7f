"""A user's effective value of a Cloud Identity Policy API setting: Google's documented reduction. Pure.

https://cloud.google.com/identity/docs/concepts/policy-api-concepts ("Reduction process"):
1. keep the policies of the setting type that apply to the user: their query's org unit, group and
   licence clauses hold for the user (an org unit clause holds for the unit and everything below it);
2. apply the setting's reducer, ordering by `policyQuery.sortOrder` (greater wins):
   Max (every field from the greatest applicable policy), Merge (each field from the greatest policy
   that sets it; arrays concatenated), MaxMap (array entries keyed by a primary key, each key from the
   greatest policy that has it);
3. fields no applicable policy sets take Google's defaults (from data).

sortOrder is only ever compared, never matched against constants: Google renumbers SYSTEM policies
(from 1 September 2026 their integer part drops by one) and that must not change any verdict.

A policy whose applicability cannot be decided (a query form not parsed here, a group clause when the
user's groups were not read, a licence clause when the user's licences were not read: Google's own SYSTEM
policies and root ADMIN policies carry licence clauses, as in ScubaGoggles' policyapi_reducer1.json, or an org
unit id orgunits.list did not return) is set aside, and the value each field would take if it did apply is kept
as an alternative. Reading a field compares the alternatives: `get` by raw value, `settle` by what the value
means to the caller (UNSPECIFIED_UBER_BLOCK and an absent accessLevel both mean "allow"). When they differ,
`Undetermined` is raised instead of guessing, naming the undecided clause that would settle it. One policy at a
time is enough for every field a check reads: the greatest applicable policy (Max), the greatest that sets a
field (Merge) or has a key (MaxMap) is always one of them.

A check reads several fields, often of several settings, and undecided policies of different settings share
their clauses (the same licence). `Membership.assume` fixes undecided clauses as holding or not: one candidate
combination. `common.for_users` evaluates a check under every combination the clauses it meets allow and decides
when all of them lead to the same verdict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import Enum
from functools import cached_property, lru_cache
from typing import Any, TypeVar

from pydantic import ValidationError

from ..resources import Policy, PolicyQuery
from .facts import SettingSpec

SETTING_PREFIX = "settings/"
T = TypeVar("T")


Clause = tuple[str, Any]  # ("ou", id) | ("group", id) | ("licence", (sku path, ...)) | ("other", text) | ...


class Undetermined(Exception):
    """The effective value depends on something preflight could not read or evaluate."""

    def __init__(self, setting: str, reason: str, needs: str | None = None, clause: Clause | None = None,
                 unreadable: Exception | None = None, candidate: str | None = None) -> None:
        super().__init__(f"{setting}: {reason}")
        self.setting = setting
        self.reason = reason
        self.needs = needs  # the snapshot resource that would decide it, when one would
        self.clause = clause  # an undecided query clause that, once assumed either way, changes the reading
        self.unreadable = unreadable  # the `needs` resource's own error, when it could not be read
        self.candidate = candidate  # the undecided policy and what it would change, for messages


class Applies(Enum):
    YES = "yes"
    NO = "no"
    MAYBE = "maybe"


@dataclass(frozen=True)
class Membership:
    """What a policy query can test about one user."""

    org_unit_ids: frozenset[str]  # the user's org unit and its ancestors, ids without "id:"
    known_org_unit_ids: frozenset[str] = frozenset()  # every org unit the Directory listed
    root_org_unit_id: str | None = None
    group_ids: frozenset[str] | None = None  # the user's direct groups; None: not read
    # Nested membership in groups the user is not directly in (Directory members.hasMember): group id -> isMember.
    # A group with no entry was not read: a policy targeting it may apply through a nested group.
    nested: Mapping[str, bool] = field(default_factory=dict)
    licences: frozenset[str] | None = None  # "/product/{productId}/sku/{skuId}"; None: not read
    # productId -> why its assignments could not be read: the user may hold one of its SKUs
    unread_products: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)  # "orgUnits/<id>" | "groups/<id>" -> name
    # Undecided clauses taken as holding (True) or not: one candidate combination (see common.for_users).
    assume: Mapping[Clause, bool] = field(default_factory=dict)

    def signature(self) -> tuple[Any, ...]:
        """Every field, hashable: two memberships with one signature give every setting the same effective value
        (users of one org unit and the same groups), so it is reduced once."""
        out = []
        for name in _MEMBERSHIP_FIELDS:
            v = getattr(self, name)
            kind = type(v)
            # The plain types first: isinstance(v, Mapping) asks the ABC, slowly, and a dict, a frozenset or None
            # is the answer for almost every field.
            if kind is dict or (kind is not frozenset and v is not None and isinstance(v, Mapping)):
                v = frozenset(v.items())
            out.append(v)
        return tuple(out)

    def org_unit(self, ou_id: str) -> Applies:
        """Whether a clause for this org unit holds: the user's unit or an ancestor, another listed unit, or a
        unit orgunits.list did not return (a deleted unit's lingering policy, or the root when it was not
        listed), which could be either."""
        if ou_id in self.org_unit_ids:
            return Applies.YES
        if ou_id in self.known_org_unit_ids or ou_id == self.root_org_unit_id:
            return Applies.NO
        return Applies.MAYBE


_MEMBERSHIP_FIELDS = tuple(f.name for f in fields(Membership))  # dataclasses.fields() is slow for every signature


@dataclass(frozen=True)
class Target:
    applies: Applies
    label: str  # whom the policy targets, for messages: "org unit /Sales", "group x@y"
    why: str = ""  # for MAYBE: what could not be decided
    needs: str | None = None
    open: tuple[Clause, ...] = ()  # for MAYBE: the clauses left undecided


def exact(number: Any) -> str:
    """A sortOrder as the API wrote it (201.00162, 202), never rounded."""
    return json.dumps(number) if isinstance(number, int | float) and not isinstance(number, bool) else str(number)


@dataclass(frozen=True)
class Source:
    """Where one field of an effective value came from."""

    policy: str | None  # the policy's name; None for a default
    kind: str  # "ADMIN", "SYSTEM" or "default"
    target: str
    sort_order: Any = None  # the policy's policyQuery.sortOrder as the API gave it

    @cached_property
    def description(self) -> str:  # made once: an effective value, and its sources, serve every check reading it
        if self.policy is None:
            return f"default ({self.target})"
        return f"{self.kind} policy {self.policy} for {self.target} (sortOrder {exact(self.sort_order)})"


@dataclass(frozen=True)
class Alternative:
    """A value a field would take if a policy whose applicability is undecided did apply."""

    value: Any
    source: Source
    why: str  # why it may apply
    needs: str | None = None  # the snapshot resource that would decide it
    open: tuple[Clause, ...] = ()  # the undecided clauses of the policy


@dataclass(frozen=True)
class Effective:
    setting: str
    value: Mapping[str, Any]  # from the policies that surely apply, and defaults
    sources: Mapping[str, Source]  # field (or "field[key]" for MaxMap entries) -> source
    applicable: int  # how many policies of this type surely apply to the user
    # field (or "field[key]") -> the other values it takes if an undecided policy applies
    alternatives: Mapping[str, tuple[Alternative, ...]] = field(default_factory=dict)
    # resource -> why it could not be read; an alternative needing it is reported as that resource's error
    missing: Mapping[str, Exception] = field(default_factory=dict)
    keyed: Mapping[str, Any] = field(default_factory=dict)  # MaxMap entries by "field[key]"

    @property
    def undecided(self) -> tuple[str, ...]:
        """Why policies that may apply were set aside (they change none of the fields read)."""
        return tuple(dict.fromkeys(a.why for alts in self.alternatives.values() for a in alts))

    def get(self, name: str) -> Any:
        """The field's value; Undetermined when a policy that may apply would give it another value."""
        return self.settle(name, lambda v: v)

    def settle(self, name: str, meaning: Callable[[Any], T]) -> T:
        """What the field's value means (`meaning` of it); Undetermined when a policy that may apply would give
        it a value that means something else. Values that differ but mean the same decide."""
        value = self.keyed[name] if name in self.keyed else self.value.get(name)
        sure = meaning(value)
        for alt in self.alternatives.get(name, ()):
            if meaning(alt.value) != sure:
                raise Undetermined(
                    self.setting,
                    f"policy {alt.source.policy} may apply to the user and would change the result ({name} "
                    f"{alt.value!r} instead of {value!r}): {alt.why}",
                    alt.needs,
                    alt.open[0] if alt.open else None,
                    self.missing.get(alt.needs) if alt.needs is not None else None,
                    f"{alt.source.description}, which would make {name} {alt.value!r} instead of {value!r}",
                )
        return sure

    def entry(self, name: str, key: str, meaning: Callable[[Any], T]) -> T:
        """What the MaxMap entry of `name` with primary key `key` means (None when absent), settled likewise."""
        return self.settle(f"{name}[{key}]", meaning)

    def source(self, name: str) -> Source | None:
        return self.sources.get(name)

    def evidence(self, *names: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in names:
            out[f"{self.setting}.{name}"] = self.value.get(name)
            src = self.sources.get(name)
            out[f"{self.setting}.{name} source"] = src.description if src else "no policy and no documented default"
            alts = self.alternatives.get(name, ())
            if alts:
                out[f"{self.setting}.{name} if other policies apply"] = [
                    f"{a.value!r} from {a.source.description}: {a.why}" for a in alts]
        return out

    def origin(self, name: str) -> str:
        """Where a field's value came from, in parentheses, for messages."""
        src = self.sources.get(name)
        if src is None:
            return "(no policy sets it and Google documents no default)"
        if src.policy is None:
            inferred = src.target.startswith("inferred")
            return "(no policy sets it: " + ("the default preflight infers" if inferred else "Google's default") + ")"
        return f"(from {src.description})"


# --- query evaluation ------------------------------------------------------------------------------------

_OU = re.compile(
    r"""entity\.org_units\.exists\(\s*(\w+)\s*,\s*\1\.org_unit_id\s*==\s*orgUnitId\(\s*(['"])([^'"]+)\2\s*\)\s*\)"""
)
_GROUP = re.compile(
    r"""entity\.groups\.exists\(\s*(\w+)\s*,\s*\1\.group_id\s*==\s*groupId\(\s*(['"])([^'"]+)\2\s*\)\s*\)"""
)
_LICENCE = re.compile(r"entity\.licenses\.exists\(\s*(\w+)\s*,\s*\1\s+in\s+\[([^\]]*)\]\s*\)")
_STRING = re.compile(r"""['"]([^'"]*)['"]""")
_NEGATION = re.compile(r"!(?!=)")  # compiled on import (before an audit forks), not on first use in each worker


def _strip_parens(text: str) -> str:
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def _ou_clause(ou_id: str, m: Membership) -> Target:
    label = f"org unit {m.labels.get(f'orgUnits/{ou_id}', ou_id)}"
    applies = m.org_unit(ou_id)
    if applies is Applies.MAYBE:
        # ScubaGoggles drops such policies as a deleted unit's leftovers; preflight does not guess either way.
        return Target(applies, label, why=f"it targets org unit id {ou_id}, which is not among the org units "
                      "orgunits.list returned (a deleted org unit's lingering policy?)")
    return Target(applies, label)


def _group_clause(group_id: str, m: Membership) -> Target:
    label = f"group {m.labels.get(f'groups/{group_id}', group_id)}"
    if m.group_ids is None:
        return Target(Applies.MAYBE, label, why=f"it targets {label} and the user's groups were not read",
                      needs="userGroups")
    if group_id in m.group_ids:
        return Target(Applies.YES, label)
    nested = m.nested.get(group_id)
    if nested is not None:
        return Target(Applies.YES if nested else Applies.NO, label)
    return Target(Applies.MAYBE, label, why=f"it targets {label}, which the user is not directly in, and whether the "
                  "user is in it through a nested group was not read", needs="groupMembership")


def _licence_clause(skus: tuple[str, ...], m: Membership) -> Target:
    label = "licence " + " or ".join(skus)
    if m.licences is None:
        return Target(Applies.MAYBE, label, why=f"it targets {label} and the user's licences were not collected "
                      "(--with-licenses)", needs="licenses")
    if m.licences.intersection(skus):
        return Target(Applies.YES, label)
    unread = [p for p in dict.fromkeys(_product(s) for s in skus) if p in m.unread_products]
    if unread:
        return Target(Applies.MAYBE, label, why=f"it targets {label} and the assignments of product {unread[0]} "
                      f"could not be read ({m.unread_products[unread[0]]})", needs="licenseErrors")
    return Target(Applies.NO, label)


def _product(sku_path: str) -> str:
    """'/product/Google-Apps/sku/1010020028' -> 'Google-Apps'."""
    parts = sku_path.split("/")
    return parts[2] if len(parts) > 2 and parts[1] == "product" else sku_path


@lru_cache(maxsize=4096)
def parse_query(query: str) -> tuple[Clause, ...] | None:
    """The && clauses of a policy query; None when it uses || or !, which are not evaluated here.
    Cached: a tenant has few distinct queries and every mailbox and check asks about the same ones."""
    if "||" in query or _NEGATION.search(query):
        return None
    clauses: list[Clause] = []
    for part in query.split("&&"):
        text = _strip_parens(part)
        if ok := _OU.fullmatch(text):
            clauses.append(("ou", ok.group(3)))
        elif ok := _GROUP.fullmatch(text):
            clauses.append(("group", ok.group(3)))
        elif ok := _LICENCE.fullmatch(text):
            clauses.append(("licence", tuple(_STRING.findall(ok.group(2)))))
        else:
            clauses.append(("other", text))
    return tuple(clauses)


def targeted_groups(policies: Iterable[Any]) -> set[str]:
    """The ids of the groups policies target (query clauses and the `group` helper field), for the collector,
    which reads the payload before any check: a policy off its documented shape names no group to look up (the
    checks then refuse the whole list)."""
    out: set[str] = set()
    for p in policies:
        try:
            pq = PolicyQuery.model_validate(p["policyQuery"])
        except (TypeError, KeyError, IndexError, ValidationError):
            continue
        group = pq.group or ""
        if group.startswith("groups/"):
            out.add(group.removeprefix("groups/"))
        out.update(arg for kind, arg in parse_query(pq.query or "") or () if kind == "group")
    return out


def _clause(clause: Clause, m: Membership) -> Target:
    kind, arg = clause
    if kind == "ou":
        found = _ou_clause(arg, m)
    elif kind == "group":
        found = _group_clause(arg, m)
    elif kind == "licence":
        found = _licence_clause(arg, m)
    elif kind == "query":
        found = Target(Applies.MAYBE, "a query", why=f"its query {arg!r} uses || or !, which preflight does not "
                       "evaluate")
    elif kind == "helper":
        # Google returns values outside its documented form, e.g. WORKSPACE_ALL_ADMIN_GROUP (ScubaGoggles).
        found = Target(Applies.MAYBE, f"group {arg}", why=f"it targets {arg!r}, which is not a group id")
    else:
        found = Target(Applies.MAYBE, "a query", why=f"its query clause {arg!r} is not a form preflight evaluates")
    if found.applies is not Applies.MAYBE:
        return found
    if clause in m.assume:
        return Target(Applies.YES if m.assume[clause] else Applies.NO, found.label)
    return Target(found.applies, found.label, found.why, found.needs, (clause,))


def _combine(parts: Sequence[Target]) -> Target:
    label = ", ".join(p.label for p in parts if not p.label.startswith("licence")) or "the whole customer"
    if any(p.applies is Applies.NO for p in parts):
        return Target(Applies.NO, label)
    maybe = [p for p in parts if p.applies is Applies.MAYBE]
    if maybe:
        return Target(Applies.MAYBE, label, "; ".join(p.why for p in maybe),
                      next((p.needs for p in maybe if p.needs), None), tuple(c for p in maybe for c in p.open))
    return Target(Applies.YES, label)


def _surely_not(policy: Policy, m: Membership) -> bool:
    """A cheap first pass: True when an org unit clause excludes the user (most policies, on a large tenant)."""
    pq = policy.policyQuery
    query = (pq.query or "").strip()
    clauses = parse_query(query) if query else ((("ou", pq.orgUnit.removeprefix("orgUnits/")),) if pq.orgUnit else ())
    return any(kind == "ou" and m.org_unit(arg) is Applies.NO for kind, arg in clauses or ())


def target(policy: Policy, m: Membership) -> Target:
    """Whether a policy applies to the user. The CEL query is authoritative; orgUnit/group are helpers."""
    pq = policy.policyQuery
    query = (pq.query or "").strip()
    if query:
        clauses = parse_query(query)
        return _combine([_clause(c, m) for c in clauses or (("query", query),)])
    parts: list[Clause] = []
    if pq.orgUnit:
        parts.append(("ou", pq.orgUnit.removeprefix("orgUnits/")))
    group = pq.group or ""
    if group.startswith("groups/"):
        parts.append(("group", group.removeprefix("groups/")))
    elif group:
        parts.append(("helper", group))
    return _combine([_clause(c, m) for c in parts])


# --- reduction -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    policy: Policy
    target: Target
    sort_order: float
    value: Mapping[str, Any]

    def source(self) -> Source:
        return Source(self.policy.name, self.policy.type or "ADMIN", self.target.label,
                      self.policy.policyQuery.sortOrder)


def _candidates(policies: Iterable[Policy], spec: SettingSpec, m: Membership) -> list[_Candidate]:
    wanted = SETTING_PREFIX + spec.type
    out = []
    for p in policies:
        if p.setting.type != wanted or _surely_not(p, m):
            continue
        out.append(_Candidate(p, target(p, m), float(p.policyQuery.sortOrder), p.setting.value))
    # Greatest sortOrder first; sorted() is stable, so the API's order breaks (undocumented) ties.
    return sorted(out, key=lambda c: -c.sort_order)


def _reduce(cands: Sequence[_Candidate], spec: SettingSpec) -> tuple[dict[str, Any], dict[str, Source]]:
    value: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    if not cands:
        return value, sources
    if spec.reducer == "Max":
        top = cands[0]
        return dict(top.value), {k: top.source() for k in top.value}
    for c in cands:
        for name, v in c.value.items():
            if spec.reducer == "MaxMap" and isinstance(v, list):
                _merge_keyed(value, sources, name, v, c, spec.key or "")
            elif name not in value:
                value[name], sources[name] = (list(v) if isinstance(v, list) else v), c.source()
            elif spec.reducer == "Merge" and isinstance(v, list) and isinstance(value[name], list):
                value[name] = value[name] + list(v)
            # MaxMap scalar fields and Merge scalars: the greatest sortOrder already won.
    return value, sources


def _merge_keyed(
    value: dict[str, Any], sources: dict[str, Source], name: str, entries: list[Any], c: _Candidate, key: str
) -> None:
    current: list[Any] = value.setdefault(name, [])
    seen = {e.get(key) for e in current if isinstance(e, Mapping)}
    sources.setdefault(name, c.source())
    for entry in entries:
        if not isinstance(entry, Mapping) or key not in entry:
            raise TypeError(f"{c.policy.name}: an entry of {name} has no {key}")
        if entry[key] not in seen:
            seen.add(entry[key])
            current.append(dict(entry))
            sources[f"{name}[{entry[key]}]"] = c.source()


def _with_defaults(
    value: dict[str, Any], sources: dict[str, Source], spec: SettingSpec
) -> tuple[dict[str, Any], dict[str, Source]]:
    for name, default in spec.defaults.items():
        if name not in value:
            value[name] = list(default) if isinstance(default, list) else default
            sources[name] = Source(None, "default", spec.defaults_source)
    return value, sources


def _views(value: Mapping[str, Any], spec: SettingSpec) -> dict[str, Any]:
    """Every field, and for MaxMap each keyed entry as "field[key]" too: what alternatives are compared on."""
    out = dict(value)
    if spec.reducer == "MaxMap":
        for name, v in value.items():
            if isinstance(v, list):
                out.update({f"{name}[{e[spec.key]}]": e for e in v if isinstance(e, Mapping) and spec.key in e})
    return out


def reduce(
    policies: Iterable[Policy], spec: SettingSpec, m: Membership, missing: Mapping[str, Exception] | None = None
) -> Effective:
    """The user's effective value of one setting, with what each undecided policy would change.

    Each undecided policy is tried alone on top of the ones that surely apply: the field's value then is the
    one it has whenever that policy is the greatest applicable one setting the field (or key). Merge arrays,
    which concatenate, also get the reading with every undecided policy at once."""
    cands = _candidates(policies, spec, m)
    sure = [c for c in cands if c.target.applies is Applies.YES]
    maybe = [c for c in cands if c.target.applies is Applies.MAYBE]
    value, sources = _with_defaults(*_reduce(sure, spec), spec)
    base = _views(value, spec)
    alternatives: dict[str, list[Alternative]] = {}

    def note(world: Sequence[_Candidate], by: _Candidate) -> None:
        other = _views(_with_defaults(*_reduce(sorted(world, key=lambda c: -c.sort_order), spec), spec)[0], spec)
        for name in sorted(set(base) | set(other)):
            if other.get(name) != base.get(name):
                alternatives.setdefault(name, []).append(
                    Alternative(other.get(name), by.source(), by.target.why, by.target.needs, by.target.open))

    for c in maybe:
        note([*sure, c], c)
    if maybe and spec.reducer == "Merge" and any(isinstance(v, list) for c in maybe for v in c.value.values()):
        note([*sure, *maybe], maybe[0])
    return Effective(spec.type, value, sources, len(sure), {k: tuple(v) for k, v in alternatives.items()},
                     dict(missing or {}), {k: v for k, v in base.items() if k not in value})
