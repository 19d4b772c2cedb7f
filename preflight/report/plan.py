"""The action plan: the changes a customer makes, not the findings preflight made.

One change is a cause at its scope: every failing (or at-risk) finding of one cause whose fix differs only in
the mailbox it names. Each change lists the mailbox × method verdicts it unblocks and those it alone turns
ready; changes are ordered by that. Where several causes block only Basic sign-in, moving the service to
OAuth resolves them all at once: that move is one entry, and the Basic-only changes become its alternative.
Renderers only arrange this; nothing here re-derives a verdict.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache

from preflight.causes import Catalogue
from preflight.datafiles import load_toml
from preflight.model import Finding, MailboxVerdict, Method, Severity, Status, TargetResult, Verdict
from preflight.report.common import SEVERITY_RANK
from preflight.report.fixtext import Segment, segments

Pair = tuple[str, Method]  # a mailbox and a sign-in method: one verdict


@dataclass(frozen=True)
class Change:
    cause: str  # the cause id, or the check id of a finding without one
    title: str  # the problem, as the catalogue names it
    status: Status  # FAIL (blocks) or WARN (at risk)
    severity: Severity
    subjects: tuple[str, ...]  # the mailboxes it names; empty: tenant-wide
    unblocks: tuple[Pair, ...]  # the verdicts it blocks or puts at risk
    ready: tuple[Pair, ...]  # the verdicts this change alone turns ready
    fix: tuple[Segment, ...]
    findings: tuple[Finding, ...]
    basic_only: bool = False


@dataclass(frozen=True)
class OAuthMove:
    title: str
    resolves: tuple[Change, ...]  # the Basic-only changes it makes unnecessary
    mailboxes: tuple[str, ...]
    ready: tuple[Pair, ...]  # OAuth verdicts of those mailboxes that are ready now
    fix: tuple[Segment, ...]
    others: tuple[MailboxVerdict, ...] = ()  # their OAuth verdicts that are not ready yet


Step = Change | OAuthMove


@dataclass(frozen=True)
class Grant:
    """What preflight could not read, and what to grant so the next run can."""

    text: str
    checks: int


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    grants: tuple[Grant, ...] = ()
    undecided: int = 0  # unknown findings with nothing to grant (see their evidence)
    numbers: dict[int, int] = field(default_factory=dict)  # id(finding) -> its step's number

    def step_of(self, f: Finding) -> int | None:
        return self.numbers.get(id(f))


@cache
def _oauth_text() -> dict[str, object]:
    data: dict[str, object] = load_toml("preflight.report", "data/plan.toml")["oauth"]
    return data


def joined(items: Sequence[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


def expand(text: str, subjects: Sequence[str]) -> tuple[Segment, ...]:
    """A fix written for one mailbox ({subject}) made for several: the prose names them all, a command line
    that names the mailbox is repeated for each."""
    out = []
    for seg in segments(text):
        if not subjects:
            out.append(seg)
        elif seg.command:
            lines = [line.replace("{subject}", s) for line in seg.text.split("\n")
                     for s in (subjects if "{subject}" in line else subjects[:1])]
            out.append(Segment(True, "\n".join(dict.fromkeys(lines))))
        else:
            out.append(Segment(False, seg.text.replace("{subject}", joined(list(subjects)))))
    return tuple(out)


def _template(f: Finding) -> str:
    text = f.remediation or f.message
    return text.replace(f.subject, "{subject}") if f.subject else text


_OPEN = frozenset({Status.FAIL, Status.WARN, Status.UNKNOWN})  # what an accepted exception does not cover


def build(target: TargetResult, catalogue: Catalogue) -> Plan:
    # One pass over the findings: the open ones by the mailbox they name, the failing and at-risk ones grouped
    # into changes, and what the unknown ones need granted.
    groups: dict[tuple[str, Status, str], list[Finding]] = {}
    open_by_subject: dict[str | None, list[Finding]] = {}
    grants: dict[str, int] = {}
    undecided = 0
    for f in target.findings:
        if f.accepted or f.status not in _OPEN:
            continue
        open_by_subject.setdefault(f.subject, []).append(f)
        if f.status is not Status.UNKNOWN:
            groups.setdefault((f.cause or f.check, f.status, _template(f)), []).append(f)
            continue
        grant = f.evidence.get("grant")
        if isinstance(grant, str) and grant:
            grants[grant] = grants.get(grant, 0) + 1
        else:
            undecided += 1
    oauth_methods = {mv.method for mv in target.mailboxes} - {Method.BASIC}
    # Each verdict's open findings (of those relevance() selects), selected once: per change they are read again
    # (quadratic in large tenants). A change's findings are open: it touches the verdicts among whose open
    # findings one of them is, and alone turns ready those whose open findings are all its own.
    tenant_wide = open_by_subject.get(None, [])
    opened = [(mv, {id(f) for f in (*tenant_wide, *open_by_subject.get(mv.address, ()))
                    if f.method is None or f.method == mv.method}) for mv in target.mailboxes]
    changes = []
    for (cause, status, template), found in groups.items():
        subjects = tuple(dict.fromkeys(f.subject for f in found if f.subject))
        mine = {id(f) for f in found}
        touched = [mv for mv, ids in opened if not mine.isdisjoint(ids)]
        ready = [(mv.address, mv.method) for mv, ids in opened if ids and ids <= mine]
        title = catalogue.get(cause).title if cause in catalogue else found[0].title
        changes.append(Change(
            cause, title, status, min((f.severity for f in found), key=SEVERITY_RANK.__getitem__),
            () if any(f.subject is None for f in found) else subjects,
            tuple((mv.address, mv.method) for mv in touched), tuple(ready),
            expand(template, () if any(f.subject is None for f in found) else subjects), tuple(found),
            basic_only=status is Status.FAIL and bool(oauth_methods) and bool(touched)
            and all(mv.method is Method.BASIC for mv in touched),
        ))
    steps: list[Step] = list(changes)
    basic_only = [c for c in changes if c.basic_only]
    if len({c.cause for c in basic_only}) >= 2:
        steps = [c for c in changes if not c.basic_only]
        steps.append(_oauth_move(target, basic_only))
    steps.sort(key=_rank)
    numbers = {}
    for n, step in enumerate(steps, 1):
        for change in step.resolves if isinstance(step, OAuthMove) else (step,):
            numbers.update({id(f): n for f in change.findings})
    return Plan(tuple(steps), tuple(Grant(g, n) for g, n in grants.items()), undecided, numbers)


def _oauth_move(target: TargetResult, basic_only: Sequence[Change]) -> OAuthMove:
    every = [mv.address for mv in target.mailboxes if mv.method is Method.BASIC]
    boxes = tuple(dict.fromkeys(a for c in basic_only for a in (c.subjects or every)))
    ready = tuple((mv.address, mv.method) for mv in target.mailboxes
                  if mv.address in boxes and mv.method is not Method.BASIC and mv.verdict is Verdict.READY)
    texts = _oauth_text()
    fixes = texts["fix"]
    assert isinstance(fixes, dict)
    text = str(fixes.get(target.provider) or fixes["generic"])
    others = tuple(mv for mv in target.mailboxes
                   if mv.address in boxes and mv.method is not Method.BASIC and mv.verdict is not Verdict.READY)
    return OAuthMove(str(texts["title"]), tuple(basic_only), boxes, ready, expand(text, boxes), others)


def _rank(step: Step) -> tuple[int, int, int, int, str]:
    if isinstance(step, OAuthMove):
        # It lets every mailbox it names send (over OAuth); it resolves as many verdicts as its changes block.
        return (0, -len({a for a, _ in step.ready}), -len({p for c in step.resolves for p in c.unblocks}), 0,
                step.title)
    return (step.status is Status.WARN, -len(step.ready), -len(step.unblocks), SEVERITY_RANK[step.severity],
            step.title)


def pairs_label(pairs: Sequence[Pair], all_methods: bool = False) -> str:
    """ "a@x (basic, oauth-app), b@x (basic)": the mailboxes, each with its methods."""
    by_box: dict[str, list[str]] = {}
    for address, method in pairs:
        by_box.setdefault(address, []).append(method._value_)
    return ", ".join(f"{a} ({', '.join(m)})" if not all_methods else a for a, m in by_box.items())


@dataclass(frozen=True)
class BasicAccount:
    """A mailbox or integration the sign-in log shows still signing in with Basic SMTP AUTH."""

    account: str
    checked: bool  # one of the mailboxes checked; False: found only by the tenant-wide read
    successes: int
    last_success: str | None


@dataclass(frozen=True)
class StillOnBasic:
    accounts: tuple[BasicAccount, ...]
    retires_on: date | None  # the provider's date for turning Basic SMTP AUTH off (from the finding's evidence)
    retirement: str | None  # how the provider announced it

    def days_left(self, today: date) -> int | None:
        return (self.retires_on - today).days if self.retires_on else None


def still_on_basic(target: TargetResult) -> StillOnBasic:
    """Every account a sign-in evidence finding names under evidence["stillOnBasic"], once, with the largest
    count and latest success any finding gives it. Evidence of another shape is left out, never guessed at."""
    found: dict[str, BasicAccount] = {}
    retires: date | None = None
    announced: str | None = None
    for f in target.findings:
        if f.status is not Status.WARN:
            continue
        block = f.evidence.get("stillOnBasic")
        if not isinstance(block, dict) or not isinstance(block.get("accounts"), list):
            continue
        with contextlib.suppress(ValueError):  # an unreadable date is left out, not guessed at
            retires = date.fromisoformat(str(block["retiresOn"])) if block.get("retiresOn") else retires
        announced = str(block["retirement"]) if block.get("retirement") else announced
        for a in block["accounts"]:
            if not isinstance(a, dict) or not isinstance(a.get("account"), str) or not isinstance(
                    a.get("successes"), int):
                continue
            key = a["account"].lower()
            last = a.get("lastSuccess") if isinstance(a.get("lastSuccess"), str) else None
            had = found.get(key)
            found[key] = BasicAccount(
                key, bool(a.get("checked")) or (had is not None and had.checked),
                max(a["successes"], had.successes if had else 0),
                max(filter(None, (last, had.last_success if had else None)), default=None))
    accounts = sorted(found.values(), key=lambda a: (a.checked, -a.successes, a.account))
    return StillOnBasic(tuple(accounts), retires, announced)
