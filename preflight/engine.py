"""Evaluate: run checks over a snapshot, give each mailbox and sign-in method a verdict. Pure."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from preflight.causes import Catalogue
from preflight.checks import Check, Context, Outcome, Uninterpretable, unreadable
from preflight.model import Finding, MailboxVerdict, Method, Status, TargetResult, Verdict
from preflight.resources import Resources, Schema
from preflight.snapshot import Snapshot, Unavailable

log = logging.getLogger(__name__)


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


def _run(check: Check, ctx: Context, permissions: Mapping[str, str]) -> Outcome | None:
    try:
        return check.run(ctx)
    except Unavailable as exc:
        return unreadable(exc, permissions.get(exc.resource.split(" of ")[0]))
    except Uninterpretable as exc:
        return Outcome(
            Status.UNKNOWN,
            f"A value this check reads cannot be interpreted ({exc}).",
            {"error": str(exc)[:200]},
        )
    except Exception as exc:
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
    if out.status in (Status.FAIL, Status.WARN) and cause is not None and cause in catalogue:
        remediation = catalogue.get(cause).fix(provider, subject, out.evidence)
    elif out.status is Status.UNKNOWN and out.evidence.get("grant"):
        remediation = f"Grant {out.evidence['grant']} to the account preflight signs in with, then re-run."
    return Finding(
        check=check.id,
        title=check.title,
        status=out.status,
        severity=out.severity or check.severity,
        cause=cause if out.status is not Status.PASS and out.status is not Status.SKIPPED else None,
        subject=subject,
        message=out.message,
        evidence=dict(out.evidence),
        remediation=remediation,
        method=method,
    )


def _findings_for(
    check: Check,
    methods: Sequence[Method],
    parsed: Resources,
    subject: str | None,
    now: datetime,
    catalogue: Catalogue,
    permissions: Mapping[str, str],
    configured: Mapping[tuple[str | None, Method], MailboxVerdict] | None = None,
) -> list[Finding]:
    """`methods`: the snapshot's methods this check covers, in the snapshot's order."""
    snap = parsed.snapshot
    present = []
    same = False
    for m in methods:
        ctx = Context(snap, subject, m, now, parsed, configured.get((subject, m)) if configured else None)
        out = _run(check, ctx, permissions)
        if ctx.method_blind:  # the answer for this method is the answer for every method (the check is pure)
            present, same = ([(m, out) for m in methods] if out is not None else []), True
            break
        if out is not None:
            present.append((m, out))
    if not present:
        return []
    # One finding when every requested method got the same answer; one per method otherwise.
    first = present[0][1]
    if len(present) == len(snap.options.methods) and (same or all(o == first for _, o in present)):
        return [_finding(check, first, subject, None, catalogue, snap.provider)]
    return [_finding(check, o, subject, m, catalogue, snap.provider) for m, o in present]


def verdicts(
    findings: Sequence[Finding], mailboxes: Iterable[str], methods: Sequence[Method], order: Mapping[str, int]
) -> list[MailboxVerdict]:
    by_subject: dict[str | None, list[Finding]] = {}
    for f in findings:
        if not f.accepted:
            by_subject.setdefault(f.subject, []).append(f)
    # The tenant-wide findings bearing on each method, tallied once (not once per mailbox); a mailbox's own follow.
    tenant = _tally(by_subject.get(None, []), methods)
    result = []
    for address in mailboxes:
        own = _tally(by_subject.get(address, []), methods)
        for method in methods:
            (tenant_fails, tenant_statuses), (own_fails, own_statuses) = tenant[method], own[method]
            fails = tenant_fails + own_fails
            if fails:
                fails.sort(key=lambda f: order.get(f.check, 100))
                verdict = Verdict.BLOCKED
            elif Status.UNKNOWN in tenant_statuses or Status.UNKNOWN in own_statuses:
                verdict = Verdict.INCOMPLETE
            elif Status.WARN in tenant_statuses or Status.WARN in own_statuses:
                verdict = Verdict.AT_RISK
            else:
                verdict = Verdict.READY
            blocking = list(dict.fromkeys(f.cause or f.check for f in fails)) if fails else []
            result.append(MailboxVerdict(address, method, verdict, blocking))
    return result


def _tally(findings: list[Finding], methods: Sequence[Method]) -> dict[Method, tuple[list[Finding], set[Status]]]:
    """Per method: the failing findings bearing on it (in the findings' order) and the statuses of all of them."""
    out: dict[Method, tuple[list[Finding], set[Status]]] = {m: ([], set()) for m in methods}
    for f in findings:
        for method in methods if f.method is None else (f.method,):
            if method in out:
                fails, statuses = out[method]
                statuses.add(f.status)
                if f.status is Status.FAIL:
                    fails.append(f)
    return out


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
            methods = [m for m in snap.options.methods if m in check.methods]
            for subject in [None] if check.scope == "tenant" else mailboxes:
                found.extend(_findings_for(check, methods, parsed, subject, now, catalogue, perms, configured))
        return [_accept(f, exceptions, now.date()) for f in found] if exceptions else found

    findings = run([c for c in checks if not c.evidence])
    evidence = [c for c in checks if c.evidence]
    if evidence:
        configured = verdicts(findings, snap.mailboxes, snap.options.methods, order)
        findings += run(evidence, {(v.address, v.method): v for v in configured})
    return TargetResult(
        name=name or snap.tenant_label,
        provider=snap.provider,
        tenant=snap.tenant_label,
        mailboxes=verdicts(findings, snap.mailboxes, snap.options.methods, order),
        findings=findings,
    )


def _accept(f: Finding, exceptions: Sequence[Exception_], today: date) -> Finding:
    if f.status not in (Status.FAIL, Status.WARN):
        return f
    for exc in exceptions:
        if exc.applies(f, today):
            until = f" until {exc.expires.isoformat()}" if exc.expires else ""
            return Finding(**{**f.__dict__, "accepted": f"{exc.reason}{until}"})
    return f
