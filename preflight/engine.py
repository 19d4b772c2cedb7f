"""Evaluate: run checks over a snapshot, give each mailbox and sign-in method a verdict. Pure."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from preflight.causes import Catalogue
from preflight.checks import Check, Context, Outcome, Uninterpretable, detached, unreadable
from preflight.model import Finding, MailboxVerdict, Method, Status, TargetResult, Verdict
from preflight.resources import Resources, Schema
from preflight.snapshot import Snapshot, Unavailable

log = logging.getLogger(__name__)

# The members the engine tests per finding and per verdict, read from their classes once: on Python 3.11 reading
# a member from an enum class (Status.FAIL) goes through EnumType.__getattr__'s slot hook and costs about 0.4 µs,
# as much as making the finding; a few of them per finding were a tenth of an evaluation's CPU.
_FAIL, _WARN, _UNKNOWN = Status.FAIL, Status.WARN, Status.UNKNOWN
_REMEDIED = frozenset((Status.FAIL, Status.WARN))  # the statuses a remediation is given for
_CAUSELESS = frozenset((Status.PASS, Status.SKIPPED))  # the statuses that name no cause
_BLOCKED, _INCOMPLETE, _AT_RISK, _READY = Verdict.BLOCKED, Verdict.INCOMPLETE, Verdict.AT_RISK, Verdict.READY


@dataclass(frozen=True)
class Exception_:
    """An accepted exception: a check id or cause id, optionally for one mailbox, with a reason and an expiry."""

    match: str
    reason: str
    subject: str | None = None
    expires: date | None = None

    def applies(self, f: Finding, today: date) -> bool:
        if self.expires is not None and today > self.expires:
            return False
        # A mailbox's exception never covers a tenant-wide finding: that would hide it for every mailbox.
        if self.subject is not None and self.subject.lower() != f.subject:
            return False
        return self.match in (f.check, f.cause)


def _failed(check: Check, ctx: Context, permissions: Mapping[str, str], exc: Exception) -> Outcome:
    """What a check that raised `exc` gives; called in the engine's `except` clause (the traceback is still there)."""
    if isinstance(exc, Unavailable):
        return unreadable(exc, permissions.get(exc.resource.split(" of ")[0]))
    if isinstance(exc, Uninterpretable):
        return Outcome(
            Status.UNKNOWN,
            f"A value this check reads cannot be interpreted ({exc}).",
            {"error": str(exc)[:200]},
        )
    # Resources were parsed against their models before the check saw them, so anything else (a KeyError,
    # TypeError, AttributeError, a stray ValueError) is a defect in preflight, not in the payload: still
    # `unknown` (never a guess), but said out loud. The tests fail on this record; --debug shows the traceback.
    where = f" for {ctx.subject}" if ctx.subject else ""
    log.error("internal error in check %s%s (%s): %s: %s", check.id, where, ctx.method.value,
              type(exc).__name__, exc)
    log.debug("traceback of the internal error in check %s", check.id, exc_info=True)
    return Outcome(
        Status.UNKNOWN,
        f"preflight could not evaluate this check: internal error ({type(exc).__name__}). Please report it.",
        {"internal error": f"{type(exc).__name__}: {str(exc)[:200]}"},
    )


def _finding(
    check: Check,
    out: Outcome,
    subject: str | None,
    method: Method | None,
    catalogue: Catalogue,
    provider: str,
) -> Finding:
    cause = out.cause or check.cause
    remediation: str | None = None
    status = out.status
    if status in _REMEDIED and cause is not None and cause in catalogue:
        remediation = catalogue.get(cause).fix(provider, subject, out.evidence)
    elif status is _UNKNOWN and out.evidence.get("grant"):
        remediation = f"Grant {out.evidence['grant']} to the account preflight signs in with, then re-run."
    # Positional, in the order of Finding's fields: with ten keywords the call took twice as long.
    return Finding(
        check.id,  # check
        check.title,  # title
        status,
        out.severity or check.severity,  # severity
        None if status in _CAUSELESS else cause,  # cause
        subject,
        out.message,  # message
        dict(out.evidence),  # evidence
        remediation,
        method,
    )


def _check_findings(
    check: Check,
    subjects: Sequence[str | None],
    parsed: Resources,
    now: datetime,
    catalogue: Catalogue,
    permissions: Mapping[str, str],
    configured: Mapping[tuple[str | None, Method], MailboxVerdict] | None,
    found: list[Finding],
) -> None:
    """Run `check` for each subject and each of the snapshot's methods it covers; append its findings to `found`.
    Runs a few hundred checks per tenant: what it calls per run is inlined (the check's call, its context's flag)."""
    snap = parsed.snapshot
    provider = snap.provider
    func = check.func
    asked = snap.options.methods
    methods = [m for m in asked if m in check.methods]  # in the snapshot's order
    every = len(methods) == len(asked)  # the check covers every method the snapshot asks about
    for subject in subjects:
        present: list[tuple[Method, Outcome]] = []
        for m in methods:
            reads = [False]  # Context.method's flag, shared with the contexts the check derives from this one
            ctx = Context(snap, subject, m, now, parsed, configured.get((subject, m)) if configured else None, reads)
            try:
                out = func(ctx)  # what check.run does, without its call
            except Exception as exc:
                out = _failed(check, ctx, permissions, exc)
                detached(exc)  # a check may hold it in a variable: its traceback would hold that frame in a cycle
            if not reads[0]:  # the answer for this method is the answer for every method (the check is pure)
                if out is None:
                    pass
                elif every:
                    found.append(_finding(check, out, subject, None, catalogue, provider))
                else:  # a loop, not a comprehension: on Python 3.11 each comprehension is a call of its own
                    for method in methods:
                        found.append(_finding(check, out, subject, method, catalogue, provider))
                present.clear()  # what the methods before it gave is not looked at
                break
            if out is not None:
                present.append((m, out))
        if not present:
            continue
        # One finding when every requested method got the same answer; one per method otherwise.
        first = present[0][1]
        if every and len(present) == len(methods) and all(o == first for _, o in present):
            found.append(_finding(check, first, subject, None, catalogue, provider))
        else:
            for m, o in present:
                found.append(_finding(check, o, subject, m, catalogue, provider))


Tally = dict[Method, tuple[list[Finding], set[Status]]]


def tally(findings: Iterable[Finding], methods: Sequence[Method], into: dict[str | None, Tally]) -> None:
    """Add findings to `into`: per subject (None: tenant-wide) and method, the failing findings bearing on it (in
    the findings' order) and the statuses of all of them. Accepted findings bear on nothing."""
    for f in findings:
        if f.accepted:
            continue
        per_method = into.get(f.subject)
        if per_method is None:
            per_method = into[f.subject] = {m: ([], set()) for m in methods}
        status = f.status
        for method in methods if f.method is None else (f.method,):
            got = per_method.get(method)
            if got is not None:
                got[1].add(status)
                if status is _FAIL:
                    got[0].append(f)


def verdicts(
    tallied: Mapping[str | None, Tally], mailboxes: Iterable[str], methods: Sequence[Method], order: Mapping[str, int]
) -> list[MailboxVerdict]:
    """Each mailbox's verdict per method, from its tallied findings and the tenant-wide ones."""
    nothing: Tally = {m: ([], set()) for m in methods}
    tenant = tallied.get(None, nothing)
    result = []

    def by_order(f: Finding) -> int:  # one function for every verdict, not a lambda made per blocked verdict
        return order.get(f.check, 100)

    for address in mailboxes:
        own = tallied.get(address, nothing)
        for method in methods:
            (tenant_fails, tenant_statuses), (own_fails, own_statuses) = tenant[method], own[method]
            fails = tenant_fails + own_fails
            if fails:
                fails.sort(key=by_order)
                verdict = _BLOCKED
            elif _UNKNOWN in tenant_statuses or _UNKNOWN in own_statuses:
                verdict = _INCOMPLETE
            elif _WARN in tenant_statuses or _WARN in own_statuses:
                verdict = _AT_RISK
            else:
                verdict = _READY
            blocking = list(dict.fromkeys(f.cause or f.check for f in fails)) if fails else []
            result.append(MailboxVerdict(address, method, verdict, blocking))
    return result


def evaluate(
    snap: Snapshot,
    checks: Sequence[Check],
    catalogue: Catalogue,
    now: datetime,
    permissions: Mapping[str, str] | None = None,
    name: str | None = None,
    exceptions: Sequence[Exception_] = (),
    *,
    resources: Schema,
) -> TargetResult:
    """`resources`: the provider's models (Provider.resources()); a check reading anything else is a defect."""
    perms = permissions or {}
    parsed = Resources(snap, resources)
    order = {c.id: c.order for c in checks}

    def run(phase: Sequence[Check], configured: Mapping[tuple[str | None, Method], MailboxVerdict] | None = None,
            ) -> list[Finding]:
        found: list[Finding] = []
        mailboxes: list[str | None] = list(snap.mailboxes)
        for check in phase:
            subjects = [None] if check.scope == "tenant" else mailboxes
            _check_findings(check, subjects, parsed, now, catalogue, perms, configured, found)
        return [_accept(f, exceptions, now.date()) for f in found] if exceptions else found

    methods = snap.options.methods
    findings = run([c for c in checks if not c.evidence])
    tallied: dict[str | None, Tally] = {}
    tally(findings, methods, tallied)
    evidence = [c for c in checks if c.evidence]
    if evidence:
        configured = verdicts(tallied, snap.mailboxes, methods, order)
        more = run(evidence, {(v.address, v.method): v for v in configured})
        tally(more, methods, tallied)  # the configuration's findings are tallied once, not again with the evidence
        findings += more
    return TargetResult(
        name=name or snap.tenant_label,
        provider=snap.provider,
        tenant=snap.tenant_label,
        mailboxes=verdicts(tallied, snap.mailboxes, methods, order),
        findings=findings,
    )


def _accept(f: Finding, exceptions: Sequence[Exception_], today: date) -> Finding:
    if f.status not in _REMEDIED:
        return f
    for exc in exceptions:
        if exc.applies(f, today):
            until = f" until {exc.expires.isoformat()}" if exc.expires else ""
            return Finding(**{**f.__dict__, "accepted": f"{exc.reason}{until}"})
    return f
