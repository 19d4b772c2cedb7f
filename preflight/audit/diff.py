"""Drift between two audits: what got fixed, what regressed, what is new, per tenant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from preflight.model import Finding, Report, Status, TargetResult

Key = tuple[str, str | None, str | None]  # check, subject, method


@dataclass
class TenantDrift:
    tenant: str
    fixed: list[tuple[Finding | None, Finding]] = field(default_factory=list)  # (old, new)
    regressed: list[tuple[Finding | None, Finding]] = field(default_factory=list)
    became_unknown: list[tuple[Finding, Finding]] = field(default_factory=list)
    became_known: list[tuple[Finding, Finding]] = field(default_factory=list)
    gone: list[Finding] = field(default_factory=list)
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


def diff_targets(old: TargetResult | None, new: TargetResult | None) -> TenantDrift:
    name = (new or old).name if (new or old) else "?"  # type: ignore[union-attr]
    drift = TenantDrift(name, added_tenant=old is None, removed_tenant=new is None)
    before, after = _by_key(old), _by_key(new)
    for key, now in after.items():
        was = before.get(key)
        if was is not None and was.status is not now.status and Status.UNKNOWN in (was.status, now.status):
            (drift.became_unknown if now.status is Status.UNKNOWN else drift.became_known).append((was, now))
        elif _rank(now) > _rank(was) and not drift.added_tenant:
            drift.regressed.append((was, now))
        elif _rank(now) < _rank(was):
            drift.fixed.append((was, now))
    drift.gone = [f for k, f in before.items() if k not in after and _rank(f)]
    return drift


def diff_reports(old: Report, new: Report) -> list[TenantDrift]:
    # A tenant is the same tenant under another display name (an audit names it, evaluate does not).
    def by_tenant(r: Report) -> dict[tuple[str, str], TargetResult]:
        return {(t.provider, t.tenant.lower()): t for t in r.targets}

    o, n = by_tenant(old), by_tenant(new)
    return [diff_targets(o.get(key), n.get(key)) for key in dict.fromkeys([*o, *n])]


def has_regressions(drifts: Sequence[TenantDrift]) -> bool:
    return any(d.regressed for d in drifts)


def _line(f: Finding) -> str:
    where = f.subject or "tenant-wide"
    method = f" [{f.method.value}]" if f.method else ""
    return f"{f.check} — {where}{method}: {f.message}"


def render_text(drifts: Sequence[TenantDrift]) -> str:
    out: list[str] = []
    for d in drifts:
        if not d.changed:
            out.append(f"{d.tenant}: no change")
            continue
        out.append(f"{d.tenant}:" + (" (new in this audit)" if d.added_tenant else "")
                   + (" (not in this audit)" if d.removed_tenant else ""))
        for label, pairs in (("fixed", d.fixed), ("regressed", d.regressed),
                             ("now unknown", d.became_unknown), ("now known", d.became_known)):
            out += [f"  {label}: {_line(new)}" for _, new in pairs]
        out += [f"  no longer checked: {_line(f)}" for f in d.gone]
    return "\n".join(out) + "\n"


def to_dict(drifts: Sequence[TenantDrift]) -> dict[str, Any]:
    def pairs(items: Sequence[tuple[Finding | None, Finding]]) -> list[dict[str, Any]]:
        return [{"before": o.status.value if o else None, "after": n.to_dict()} for o, n in items]

    return {
        "schema": "preflight.diff/v1",
        "regressions": has_regressions(drifts),
        "tenants": [
            {"tenant": d.tenant, "added": d.added_tenant, "removed": d.removed_tenant,
             "fixed": pairs(d.fixed), "regressed": pairs(d.regressed),
             "became_unknown": pairs(d.became_unknown), "became_known": pairs(d.became_known),
             "gone": [f.to_dict() for f in d.gone]}
            for d in drifts
        ],
    }
