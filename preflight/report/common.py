"""What the human-readable formats share: ordering, grouping, labels and text hygiene.

Renderers only arrange what the engine decided; nothing here re-derives a verdict.
"""

from __future__ import annotations

import json
import re
from _json import encode_basestring, make_encoder
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from functools import lru_cache
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from preflight.causes import Catalogue, load_catalogue
from preflight.model import Finding, MailboxVerdict, Method, Report, Severity, Status, TargetResult, Verdict

if TYPE_CHECKING:
    from preflight.providers import Registry

STATUS_RANK = {Status.FAIL: 0, Status.UNKNOWN: 1, Status.WARN: 2, Status.PASS: 3, Status.SKIPPED: 4}
SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}
VERDICT_ORDER = (Verdict.BLOCKED, Verdict.INCOMPLETE, Verdict.AT_RISK, Verdict.READY)
_VERDICT_VALUES = tuple(v.value for v in VERDICT_ORDER)
ISSUE_STATUSES = frozenset({Status.FAIL, Status.WARN, Status.UNKNOWN})

# C0 controls except tab and newline, DEL and C1 controls: a payload value carrying ESC could drive the
# reader's terminal, and most of these are not even legal in XML 1.0.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
EVIDENCE_VALUE_MAX = 240


def clean(value: object) -> str:
    text = value if type(value) is str else str(value)
    if text.isprintable():  # no control character, no CR (most text): nothing to change
        return text
    return _CONTROL.sub("\ufffd", text.replace("\r\n", "\n"))


def one_line(value: object) -> str:
    text = value if type(value) is str else str(value)
    # Most text (keys, ids, addresses) is one line already: printable (no control character, no whitespace but
    # the ASCII space), and no space to fold.
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text
    return " ".join(clean(text).split())


class Entry(NamedTuple):
    """One finding as the human formats show it: findings identical but for their sign-in method are one
    entry listing the methods, in Method order (none listed: the finding holds for all methods). A named tuple,
    not a frozen dataclass: a page makes one per finding, and a tuple is made five times as fast."""

    finding: Finding
    methods: tuple[Method, ...] = ()


def method_label(method: Method | Entry | None) -> str:
    listed = method.methods if isinstance(method, Entry) else (method,) if method is not None else ()
    return ", ".join(listed) or "all methods"  # a Method is the str of its value


# Every field of a finding but its method: what two findings merged() folds into one entry have in common.
_but_method = attrgetter(*(f.name for f in fields(Finding) if f.name != "method"))


def merged(findings: Iterable[Finding]) -> list[Entry]:
    """The findings in their order, each one identical to an earlier one but for its method folded into it."""
    entries: list[Entry] = []
    alike: dict[tuple[object, ...], list[int]] = {}  # by a hashable part of the finding, to compare few
    for f in findings:
        if not f.method:  # folds into no entry, and none folds into it
            entries.append(Entry(f))
            continue
        candidates = alike.get(key := (f.check, f.subject, f.status, f.message))
        if candidates is None:  # the first of its kind (most are)
            alike[key] = [len(entries)]
            entries.append(Entry(f, (f.method,)))
            continue
        for i in candidates:
            first = entries[i]
            if first.methods and _but_method(first.finding) == _but_method(f):
                listed = (*first.methods, f.method)
                entries[i] = Entry(first.finding, tuple(m for m in Method if m in listed))
                break
        else:
            candidates.append(len(entries))
            entries.append(Entry(f, (f.method,)))
    return entries


def status_label(f: Finding) -> str:
    """An accepted exception is shown as accepted, never as failed."""
    return "accepted" if f.accepted else f.status._value_


def is_issue(f: Finding) -> bool:
    return f.status in ISSUE_STATUSES


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(
        findings, key=lambda f: (bool(f.accepted), STATUS_RANK[f.status], SEVERITY_RANK[f.severity])
    )


def subjects(target: TargetResult) -> list[str]:
    """Mailboxes in the order the target lists them, then any that only appear in findings."""
    seen = dict.fromkeys([mv.address for mv in target.mailboxes])
    seen.update(dict.fromkeys([f.subject for f in target.findings if f.subject is not None]))
    return list(seen)


def methods(target: TargetResult) -> list[Method]:
    present = {mv.method for mv in target.mailboxes}
    return [m for m in Method if m in present]


def grouped(target: TargetResult, issues_only: bool = True) -> list[tuple[str | None, list[Entry]]]:
    """(subject, entries) with tenant-wide findings first, each group worst first and merged(); empty groups
    left out."""
    by_subject: dict[str | None, list[Finding]] = {}  # in one pass, in their order
    for f in target.findings:
        if not issues_only or f.status in ISSUE_STATUSES:
            by_subject.setdefault(f.subject, []).append(f)
    groups: list[tuple[str | None, list[Entry]]] = []
    for subject in [None, *subjects(target)]:
        chosen = by_subject.get(subject)
        if chosen:
            groups.append((subject, merged(sort_findings(chosen))))
    return groups


def relevant(target: TargetResult, mv: MailboxVerdict) -> list[Finding]:
    """The findings that bear on one mailbox and method (the same selection the engine's verdict made)."""
    return [f for f in target.findings if f.subject in (None, mv.address) and f.method in (None, mv.method)]


def relevance(target: TargetResult, verdicts: Iterable[MailboxVerdict] | None = None) -> dict[int, list[Finding]]:
    """relevant() of every verdict (or of `verdicts`, the target's own), by id(verdict), in one pass over the
    findings (not one per verdict)."""
    by_subject: dict[str | None, list[tuple[int, Finding]]] = {}
    for n, f in enumerate(target.findings):
        by_subject.setdefault(f.subject, []).append((n, f))
    tenant = by_subject.get(None, [])
    ordered: dict[str, list[Finding]] = {}  # a mailbox's and the tenant's findings in their order: once per mailbox
    out = {}
    for mv in target.mailboxes if verdicts is None else verdicts:
        mine = ordered.get(mv.address)
        if mine is None:
            # (position, finding) pairs: sorted by position alone, as positions differ
            mine = ordered[mv.address] = [f for _, f in sorted(tenant + by_subject.get(mv.address, []))]
        out[id(mv)] = [f for f in mine if f.method is None or f.method == mv.method]
    return out


def verdict_counts(targets: Iterable[TargetResult]) -> dict[str, int]:
    """Mailbox x method pairs per verdict, worst first (VERDICT_ORDER), zeros included."""
    counts = dict.fromkeys(_VERDICT_VALUES, 0)
    for t in targets:
        for mv in t.mailboxes:
            counts[mv.verdict._value_] += 1  # _value_: the value, without the property's cost (one per verdict)
    return counts


def occurring_verdicts(target: TargetResult) -> dict[str, int]:
    """One target's verdict counts, worst first, only the verdicts that occur."""
    return {v: n for v, n in verdict_counts([target]).items() if n}


def verdict_text(counts: Mapping[str, int]) -> str:
    """"2 blocked, 1 ready" (or "no mailboxes"): the one way verdict counts are written in a line."""
    return ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "no mailboxes"


# json.dumps(value, ensure_ascii=False, default=str), without building an encoder per value; keeping no record of
# the containers it is in, it holds no state (threads render at once) and is faster (_value_text).
_ENCODE = make_encoder(None, str, encode_basestring, None, ": ", ", ", False, False, True)


def _value_text(value: Any) -> str:
    try:
        return "".join(_ENCODE(value, 0))
    except RecursionError:  # too deep, or holding itself: json.dumps tells which (RecursionError, ValueError)
        json.dumps(value, ensure_ascii=False, default=str)
        raise


def evidence_pairs(evidence: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs = []
    for key, value in evidence.items():
        text = value if isinstance(value, str) else _value_text(value)
        text = one_line(text)
        if len(text) > EVIDENCE_VALUE_MAX:
            text = text[: EVIDENCE_VALUE_MAX - 1] + "…"
        pairs.append((one_line(key), text))
    return pairs


def target_heading(t: TargetResult) -> str:
    if t.tenant and t.tenant != t.name:
        return f"{one_line(t.name)} ({t.provider}, {one_line(t.tenant)})"
    return f"{one_line(t.name)} ({t.provider})"


@dataclass
class Labels:
    """Human titles for cause ids, falling back to the finding's own title, then the bare id; and for
    providers (their `title` hook), falling back to the name a snapshot gives."""

    catalogue: Catalogue
    titles: Mapping[str, str] = field(default_factory=dict)
    _docs: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, registry: Registry, catalogue: Catalogue) -> Labels:
        return cls(catalogue, {name: registry.title(name) for name in registry.names})

    @classmethod
    def load(cls) -> Labels:
        """From the installed providers: that reads every distribution's entry points (milliseconds), so what
        renders many reports (an audit's worker) builds its Labels once with `of` and passes them in."""
        from preflight.providers import Registry

        return cls.of(Registry.from_entry_points(), load_catalogue())

    def provider(self, name: str) -> str:
        return self.titles.get(name, name)

    def cause(self, cause_id: str, target: TargetResult | None = None) -> str:
        if cause_id in self.catalogue:
            return self.catalogue.get(cause_id).title
        for f in target.findings if target else []:
            if cause_id in (f.cause, f.check):
                return f.title
        return cause_id

    def docs(self, cause_id: str | None, provider: str) -> list[str]:
        """Documentation links for a cause, those on the provider's own sites first choice."""
        if cause_id is None or cause_id not in self.catalogue:
            return []
        known = self._docs.get((cause_id, provider))
        if known is None:  # the same for every finding of the cause: worked out once
            links = [u for u in self.catalogue.get(cause_id).docs if urlsplit(u).scheme == "https"]
            own = [u for u in links if provider and provider in (urlsplit(u).hostname or "")]
            known = self._docs[(cause_id, provider)] = tuple(own or links)
        return list(known)

    def note(self, target: TargetResult, mv: MailboxVerdict, bearing: Mapping[int, list[Finding]] | None = None,
             ) -> str:
        """Why a mailbox got its verdict: the first blocking cause, or what is unknown, or what is at risk.
        `bearing`: relevance(target), when the caller notes many verdicts (one pass, not one per verdict); of
        the verdicts incomplete or at risk at least, as only their notes read it."""
        if mv.verdict is Verdict.BLOCKED and mv.blocking:
            more = f" (+{len(mv.blocking) - 1} more)" if len(mv.blocking) > 1 else ""
            return self.cause(mv.blocking[0], target) + more
        wanted = _NOTED.get(mv.verdict)
        if wanted is None:
            return ""
        chosen = bearing[id(mv)] if bearing is not None else relevant(target, mv)
        found = [f for f in chosen if f.status is wanted and not f.accepted]
        if not found:
            return ""
        more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
        # sort_findings' first of them (of one status, none accepted): the first of the most severe
        first = min(found, key=_severity_rank)
        if wanted is Status.UNKNOWN:
            return f"unknown: {one_line(first.title)}{more}"
        return (self.cause(first.cause, target) if first.cause else one_line(first.title)) + more


def _severity_rank(f: Finding) -> int:
    return SEVERITY_RANK[f.severity]


# What a verdict's note names: an unknown for an incomplete one, a warning for one at risk.
_NOTED = {Verdict.INCOMPLETE: Status.UNKNOWN, Verdict.AT_RISK: Status.WARN}


def fix_label(f: Finding) -> str:
    return "To make this known" if f.status is Status.UNKNOWN else "Fix"


def fix_text(f: Finding) -> str | None:
    """The remediation; for an unknown without one, what to grant when the engine recorded it."""
    if f.remediation:
        return f.remediation
    if f.status is Status.UNKNOWN and f.evidence.get("grant"):
        return f"Grant {f.evidence['grant']} to the account preflight signs in with, then re-run."
    return None


@lru_cache(maxsize=64)  # an audit's pages and plans all show the time it ran: strftime once
def when(stamp: str) -> str:
    """An ISO timestamp as a reader wants it ("2026-11-26 10:00 UTC"); anything else unchanged."""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return one_line(stamp)
    if moment.utcoffset() == timedelta(0):
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.isoformat(sep=" ", timespec="minutes")


def compact_fix(f: Finding) -> str | None:
    """fix_text, left out where the message already says what to grant (the engine's unknown messages
    end with "Grant ..."): the compact formats should not say it twice."""
    grant = f.evidence.get("grant")
    if f.status is Status.UNKNOWN and isinstance(grant, str) and grant and grant in f.message:
        return None
    return fix_text(f)


def summary_line(report: Report) -> str:
    verdicts = verdict_counts(report.targets)
    v = ", ".join(f"{n} {k}" for k, n in verdicts.items() if n)
    s = ", ".join(f"{n} {k}" for k, n in report.summary().items() if n)
    accepted = sum(1 for t in report.targets for f in t.findings if f.accepted)
    if accepted:
        s += f" ({accepted} accepted as exceptions)"
    return f"Mailbox × method verdicts: {v or 'none'}. Findings: {s or 'none'}."
