"""Drift between two audits: what got fixed, what regressed, what is new, per tenant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from preflight.errors import InputError
from preflight.model import Finding, Report, Status, TargetResult
from preflight.report.common import one_line

Key = tuple[str, str | None, str | None]  # check, subject, method


@dataclass(frozen=True)
class Change:
    """One finding that changed, once, with the sign-in methods it changed for (empty: not per method)."""

    before: Finding | None
    after: Finding
    methods: tuple[str, ...] = ()


@dataclass
class TenantDrift:
    tenant: str
    fixed: list[Change] = field(default_factory=list)
    regressed: list[Change] = field(default_factory=list)
    became_unknown: list[Change] = field(default_factory=list)
    became_known: list[Change] = field(default_factory=list)
    gone: list[Change] = field(default_factory=list)  # after: the finding no longer reported
    added_tenant: bool = False
    removed_tenant: bool = False

    @property
    def changed(self) -> bool:
        return any((self.fixed, self.regressed, self.became_unknown, self.became_known, self.gone,
                    self.added_tenant, self.removed_tenant))


_RANK = {Status.FAIL: 2, Status.WARN: 1}


def _by_key(target: TargetResult | None) -> dict[Key, Finding]:
    """Findings by (check, subject, method). A finding for every method (method null) counts for each
    method the target was evaluated for, so a change that splits it per method still lines up."""
    if target is None:
        return {}
    methods: list[str | None] = [*sorted({m.method.value for m in target.mailboxes})] or [None]
    keyed: dict[Key, Finding] = {}
    for f in target.findings:
        for method in [f.method.value] if f.method else methods:
            keyed[(f.check, f.subject, method)] = f
    return keyed


def _rank(f: Finding | None) -> int:
    """How bad: 2 fail, 1 warn, 0 anything else (an accepted exception counts as resolved)."""
    return 0 if f is None or f.accepted else _RANK.get(f.status, 0)


class _Collector:
    """Changes found per key, folded so that one finding's change is listed once with all its methods."""

    def __init__(self) -> None:
        self.items: dict[tuple[int, int], Change] = {}

    def add(self, key: Key, before: Finding | None, after: Finding) -> None:
        ident = (id(before), id(after))
        known = self.items.get(ident)
        methods = (*known.methods, key[2]) if known else (key[2],)
        self.items[ident] = Change(before, after, tuple(m for m in methods if m))

    def changes(self) -> list[Change]:
        return list(self.items.values())


def diff_targets(old: TargetResult | None, new: TargetResult | None) -> TenantDrift:
    name = (new or old).name if (new or old) else "?"  # type: ignore[union-attr]
    drift = TenantDrift(name, added_tenant=old is None, removed_tenant=new is None)
    before, after = _by_key(old), _by_key(new)
    found = {label: _Collector() for label in ("fixed", "regressed", "became_unknown", "became_known", "gone")}
    for key, now in after.items():
        was = before.get(key)
        if was is not None and was.status is not now.status and Status.UNKNOWN in (was.status, now.status):
            found["became_unknown" if now.status is Status.UNKNOWN else "became_known"].add(key, was, now)
        elif _rank(now) > _rank(was) and not drift.added_tenant:
            found["regressed"].add(key, was, now)
        elif _rank(now) < _rank(was):
            found["fixed"].add(key, was, now)
    for key, was in before.items():
        if key not in after and _rank(was):
            found["gone"].add(key, None, was)
    for label, collector in found.items():
        setattr(drift, label, collector.changes())
    return drift


def _tenant_key(t: TargetResult) -> tuple[str, str]:
    # A tenant is the same tenant under another display name (an audit names it, evaluate does not).
    return (t.provider, t.tenant.lower())


def diff_reports(old: Report, new: Report) -> list[TenantDrift]:
    """Drift per tenant. InputError when both reports hold tenants but none in common: that compares two
    unrelated audits, which would read as everything new and nothing fixed."""
    o = {_tenant_key(t): t for t in old.targets}
    n = {_tenant_key(t): t for t in new.targets}
    if o and n and not set(o) & set(n):
        def names(r: dict[tuple[str, str], TargetResult]) -> str:
            return ", ".join(sorted(t.tenant for t in r.values()))
        raise InputError(f"the two reports share no tenant (earlier: {names(o)}; later: {names(n)}); "
                         "compare two audits of the same customers")
    return [diff_targets(o.get(key), n.get(key)) for key in dict.fromkeys([*o, *n])]


def has_regressions(drifts: Sequence[TenantDrift]) -> bool:
    return any(d.regressed for d in drifts)


def _line(c: Change) -> str:
    f = c.after
    where = f.subject or "tenant-wide"
    methods = f" [{', '.join(c.methods)}]" if c.methods else ""
    before = f"{c.before.status.value} -> " if c.before is not None else ""
    now = "accepted" if f.accepted else f.status.value
    return one_line(f"{f.check} — {where}{methods} ({before}{now}): {f.message}")


def render_text(drifts: Sequence[TenantDrift]) -> str:
    out: list[str] = []
    for d in drifts:
        if not d.changed:
            out.append(f"{one_line(d.tenant)}: no change")
            continue
        out.append(f"{one_line(d.tenant)}:" + (" (new in this audit)" if d.added_tenant else "")
                   + (" (not in this audit)" if d.removed_tenant else ""))
        for label, changes in (("fixed", d.fixed), ("regressed", d.regressed),
                               ("now unknown", d.became_unknown), ("now known", d.became_known),
                               ("no longer checked", d.gone)):
            out += [f"  {label}: {_line(c)}" for c in changes]
    return "\n".join(out) + "\n"


def to_dict(drifts: Sequence[TenantDrift]) -> dict[str, Any]:
    def items(changes: Sequence[Change]) -> list[dict[str, Any]]:
        return [{"before": c.before.status.value if c.before else None, "methods": list(c.methods),
                 "after": c.after.to_dict()} for c in changes]

    return {
        "schema": "preflight.diff/v1",
        "regressions": has_regressions(drifts),
        "tenants": [
            {"tenant": d.tenant, "added": d.added_tenant, "removed": d.removed_tenant,
             "fixed": items(d.fixed), "regressed": items(d.regressed),
             "became_unknown": items(d.became_unknown), "became_known": items(d.became_known),
             "gone": [{"methods": list(c.methods), **c.after.to_dict()} for c in d.gone]}
            for d in drifts
        ],
    }
