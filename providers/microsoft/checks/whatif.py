"""Microsoft's own Conditional Access evaluation beside preflight's reading: a second opinion on a CA check.

Graph's What If (`POST /beta/identity/conditionalAccess/evaluate`) knows what a snapshot cannot: nested groups
and roles, the MFA trusted IPs behind `AllTrusted`, how Entra matches each condition. The collector asked it,
per mailbox and method, the questions providers/microsoft/whatif.py builds; this module reads the answers:

- Agreement with the own reading is evidence and is said so.
- Disagreement is reported with the own reading, and Microsoft's answer decides,
- except for the policies whose conditions Microsoft was not given (risk levels, device platforms and
  filters, country locations, a location condition with no sender address, a sender range of which only
  the ends were asked): for those the own reading stands, since What If leaves out a policy whose condition
  it lacks the information to evaluate (conditionalaccessroot-evaluate.md: "if your tenant has policies
  with a certain condition and sign-in details pertaining to that condition is not provided ... the what if
  tool will not be able to evaluate with respect to that condition").
- When there are no answers (not collected, 403, beta unavailable, an error for a question), the own reading
  stands and the finding says so. When answers were recorded but cannot be used (off their documented shape,
  without the question asked, a state preflight cannot interpret), the own reading stands only if it fails:
  otherwise the check is `unknown`, since the answer it lacks might have found a policy that applies. A garbled
  answer never improves a verdict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from preflight.checks import Check, Context, Outcome, noted, unreadable
from preflight.model import Method, Status
from preflight.resources import Resources
from preflight.snapshot import Unavailable, describe_error, error_of

from ..resources import (
    ConditionalAccessPolicy,
    ConditionalAccessWhatIf,
    ErrorRecord,
    GraphUser,
    ServicePrincipal,
    WhatIfItem,
)
from ..whatif import (
    describe,
    is_single_address,
    sample_addresses,
    service_principal_questions,
    user_questions,
)
from . import ca, identity, workload
from .values import data

Policy = ConditionalAccessPolicy
Kind = Callable[[Policy], bool]
STATES = {ca.ENABLED, ca.REPORT_ONLY, "disabled"}  # conditionalAccessPolicyState values with a known meaning
USER_RESOURCE = "conditionalAccessWhatIf"
APP_RESOURCE = "workloadConditionalAccessWhatIf"


@dataclasses.dataclass(frozen=True)
class Opinion:
    applying: list[Policy]  # enabled or report-only policies Microsoft says apply to some question asked
    asked: list[str]


@dataclasses.dataclass(frozen=True)
class NoOpinion:
    """Why there is no usable answer. `garbled`: answers were recorded but are off their documented shape, lack
    the question asked, or hold a value preflight cannot interpret; the own reading then cannot stand alone
    (the answer it lacks might have decided worse), so it stays only when it already fails."""

    why: str
    garbled: bool = False


def _unread(exc: Unavailable) -> NoOpinion:
    if exc.reason == "not collected":
        return NoOpinion("was not collected")
    return NoOpinion(f"could not be read ({exc.reason})", garbled=exc.error is None)


def _answer(item: WhatIfItem, question: Mapping[str, Any]) -> list[Policy] | NoOpinion:
    """The whatIfAnalysisResult collection of one answer, or why it cannot be used."""
    what = describe(dict(question))
    if isinstance(item.response, ErrorRecord):
        error = describe_error(error_of(item.response.model_dump()) or {})
        return NoOpinion(f"answered the question {what} with {error}")
    for result in item.response.value:
        if result.state not in STATES:  # partiallyEnabled, unknownFutureValue: no meaning preflight can use
            return NoOpinion(f"answered the question {what} with a result in state {result.state}, which "
                             "preflight does not interpret", garbled=True)
    return [r for r in item.response.value if r.policyApplies and r.state in (ca.ENABLED, ca.REPORT_ONLY)]


def read_opinion(recorded: ConditionalAccessWhatIf, questions: Sequence[Mapping[str, Any]]) -> Opinion | NoOpinion:
    """Microsoft's answers to exactly these questions, or why there is no usable opinion."""
    applying: dict[str, Policy] = {}
    for question in questions:
        item = next((i for i in recorded.root if i.request.model_dump(exclude_unset=True) == question), None)
        if item is None:
            return NoOpinion(f"was not asked the question {describe(dict(question))}", garbled=True)
        answer = _answer(item, question)
        if isinstance(answer, NoOpinion):
            return answer
        applying.update({p.id: p for p in answer})
    return Opinion(list(applying.values()), [describe(dict(q)) for q in questions])


def _client_types(ctx: Context) -> set[str]:
    """The client app types the own reading evaluates this method as (surely or maybe)."""
    surely, maybe, _why = identity._client_types(ctx)
    return (surely | maybe) - {"all"}


def _user_answers(ctx: Context) -> tuple[ConditionalAccessWhatIf, str] | NoOpinion:
    """The mailbox's recorded answers and its user's id, or why they cannot be read: once per mailbox, for every
    Conditional Access check and method (most snapshots hold no answers: the same NoOpinion for each)."""
    return ctx.resources.derived_of(("ms.what if answers", ctx.subject), _read_user_answers, ctx)


def _read_user_answers(ctx: Context) -> tuple[ConditionalAccessWhatIf, str] | NoOpinion:
    try:
        return ctx.mailbox_as(USER_RESOURCE, ConditionalAccessWhatIf), ctx.mailbox_as("user", GraphUser).id
    except Unavailable as exc:
        return _unread(exc)


def user_opinion(ctx: Context) -> Opinion | NoOpinion:
    """Microsoft's answers for this mailbox and method (the client app types the own reading uses)."""
    answers = _user_answers(ctx)
    if isinstance(answers, NoOpinion):
        return answers
    recorded, user_id = answers
    exchange = str(data("wellknown")["apps"]["exchange_online"])
    wanted = _client_types(ctx)
    questions = [q for q in user_questions(user_id, ctx.method.value, exchange, ctx.options.sender_ips)
                 if q["signInConditions"].get("clientAppType") in wanted]
    if not questions:
        return NoOpinion(f"has no question for the {ctx.method.value} method")
    return read_opinion(recorded, questions)


def app_opinion(ctx: Context) -> Opinion | NoOpinion:
    """Microsoft's answers for the sending app's service principal (client credentials sign-in)."""
    try:
        recorded = ctx.org_as(APP_RESOURCE, ConditionalAccessWhatIf)
        sp = ctx.org_as("servicePrincipal", ServicePrincipal)
    except Unavailable as exc:
        return _unread(exc)
    exchange = str(data("wellknown")["apps"]["exchange_online"])
    return read_opinion(recorded, service_principal_questions(sp.id, exchange, ctx.options.sender_ips))


def _blind(ctx: Context, policy: Policy) -> list[str]:
    """The conditions of this policy Microsoft was not given the information to evaluate."""
    cond = policy.conditions
    out = ca.unevaluated(cond)
    if ctx.method is Method.OAUTH_DELEGATED:
        # The delegated client's type is undecided: Microsoft's answer for one type is not this sign-in's.
        surely, maybe, why = identity._client_types(ctx)
        types = set(cond.clientAppTypes)
        if maybe and not types & surely and not maybe <= types:
            out.append(f"its client app types ({', '.join(sorted(types))}): {why}")
    if cond.servicePrincipalRiskLevels:
        out.append("servicePrincipalRiskLevels")
    if cond.clientApplications is not None and cond.clientApplications.servicePrincipalFilter is not None:
        out.append("a service principal filter")
    if cond.locations is not None and ca.narrows_by_location(cond):
        ids = [*cond.locations.includeLocations, *cond.locations.excludeLocations]
        if not ctx.options.sender_ips:
            out.append("its location condition (no --sender-ip was given)")
        elif not all(is_single_address(ip) for ip in ctx.options.sender_ips):
            out.append("its location condition for a sender range (Microsoft was asked about "
                       f"{', '.join(sample_addresses(ctx.options.sender_ips))} only)")
        else:
            named: ca.Named | None
            try:
                named = identity.named_locations(ctx)
            except Unavailable:
                named = None
            if named is None or any(i not in ("All", "AllTrusted") and not ca.is_ip_location(i, named) for i in ids):
                out.append("a country location (What If is given no country)")
    return out


def _own(check: Check, ctx: Context) -> tuple[Outcome | None, Unavailable | None]:
    """The own reading; an unreadable resource is also returned, so the engine can name what to grant."""
    try:
        return check.run(ctx), None
    except Unavailable as exc:
        return unreadable(exc), exc


def _with_policies(ctx: Context, ids: Mapping[str, Any]) -> Context:
    """The same context with only the policies of these ids (parsed afresh: the resource cache is per snapshot)."""
    raw = ctx.org("conditionalAccessPolicies")  # the payload the models were parsed from, in the same order
    kept = [r for r, p in zip(raw, identity.policies(ctx), strict=True) if p.id in ids]
    snap = dataclasses.replace(ctx.snapshot, org={**ctx.snapshot.org, "conditionalAccessPolicies": kept})
    return dataclasses.replace(ctx, snapshot=snap, resources=Resources(snap, ctx.resources.schema))


@dataclasses.dataclass(frozen=True)
class Reading:
    """What a check's kind of policy does, in words, and the cause it names."""

    kind: Kind
    effect: str  # "blocks the sign-in", ...
    cause: Callable[[list[Policy]], str | None] = lambda _p: None


def second_opinion(own: Check, reading: Reading, opinion: Callable[[Context], Opinion | NoOpinion],
                   reads: tuple[str, ...]) -> Check:
    """The own check, with Microsoft's What If answer beside it (and deciding, where Microsoft could see).
    `reads`: what `opinion` reads; deciding also reads the policies and named locations."""

    def run(ctx: Context) -> Outcome | None:
        mine, unreadable = _own(own, ctx)
        if mine is None or mine.status is Status.SKIPPED:
            return mine
        got = opinion(ctx)
        if isinstance(got, NoOpinion):
            if unreadable is not None:
                raise unreadable
            if got.garbled and mine.status is not Status.FAIL:
                return Outcome(Status.UNKNOWN, f"Microsoft's What If evaluation {got.why}, and it may have found a "
                               "policy preflight's own reading misses (nested groups, MFA trusted IPs): the own "
                               f"reading ({mine.status.value}: {mine.message}) cannot stand alone.",
                               {"whatIf": got.why, "ownReading": {"status": mine.status.value,
                                                                   "message": mine.message}})
            return noted(mine, f"Microsoft's What If evaluation {got.why}: this is preflight's own reading.",
                         {"whatIf": got.why})
        return _decide(own, reading, ctx, (mine, unreadable), got)

    return own.wrapped(run, (*reads, "conditionalAccessPolicies", "namedLocations"))


def _decide(own: Check, reading: Reading, ctx: Context, own_reading: tuple[Outcome, Unavailable | None],
            got: Opinion) -> Outcome:
    mine = own_reading[0]
    who = ctx.subject or f"app {ctx.options.app_id}"
    try:
        policies: list[Policy] | None = identity.policies(ctx)
    except Unavailable:
        policies = None
    blind: dict[str, list[str]] = {}
    for p in policies or []:
        if p.state in (ca.ENABLED, ca.REPORT_ONLY) and reading.kind(p) and (lacking := _blind(ctx, p)):
            blind[p.id] = lacking
    decided = [p for p in got.applying if reading.kind(p) and p.id not in blind]
    enforced = [p for p in decided if p.state == ca.ENABLED]
    at_risk = [p for p in decided if p.state == ca.REPORT_ONLY]
    asked = "; ".join(got.asked)
    evidence: dict[str, Any] = {
        "whatIf": {"asked": got.asked, "applying": [{"id": p.id, "displayName": p.displayName,
                                                     "state": p.state} for p in decided]},
        "ownReading": {"status": mine.status.value, "message": mine.message},
    }
    rest: Outcome | None = None
    unreadable: Unavailable | None = None
    if policies is None:
        rest, unreadable = own_reading  # which conditions Microsoft lacked cannot be told: its silence proves nothing
    elif blind:
        unseen = [p for p in policies if p.id in blind]
        rest, unreadable = _own(own, _with_policies(ctx, blind))
        evidence["whatIf"]["notEvaluable"] = {ca.name(p): blind[p.id] for p in unseen}
    if enforced:
        final = Outcome(Status.FAIL, f"Microsoft's What If evaluation: Conditional Access policy "
                        f"{', '.join(map(ca.label, enforced))} applies to {who} signing in to Exchange Online "
                        f"({asked}) and {reading.effect}.", evidence, reading.cause(enforced))
    elif rest is not None and rest.status in (Status.FAIL, Status.UNKNOWN):
        if unreadable is not None:
            raise unreadable  # the engine names what to grant
        lacked = "; ".join(f"{n}: {', '.join(w)}" for n, w in (evidence["whatIf"].get("notEvaluable") or {}).items())
        why = (f"Microsoft cannot evaluate {lacked}" if lacked
               else "the policy list could not be read to tell what Microsoft could not evaluate")
        final = dataclasses.replace(rest, message=f"{rest.message} (Microsoft's What If evaluation finds no other "
                                    f"policy that applies, but {why}: preflight's own reading stands for it.)",
                                    evidence={**rest.evidence, **evidence})
    elif at_risk or (rest is not None and rest.status is Status.WARN):
        parts = []
        if at_risk:
            parts.append(f"Microsoft's What If evaluation: report-only policy {', '.join(map(ca.label, at_risk))} "
                         f"applies to {who} ({asked}) and {reading.effect} once enforced")
        if rest is not None and rest.status is Status.WARN:
            parts.append(rest.message.rstrip("."))
        final = Outcome(Status.WARN, "; ".join(parts) + ".", evidence,
                        reading.cause(at_risk) if at_risk else rest.cause if rest else None)
    else:
        final = Outcome(Status.PASS, f"Microsoft's What If evaluation finds no enabled Conditional Access policy "
                        f"of this kind that applies to {who} signing in to Exchange Online ({asked}).", evidence)
    same = final.status is mine.status
    note = ("Preflight's own reading agrees." if same else
            f"Preflight's own reading disagreed ({mine.status.value}: {mine.message}); Microsoft's answer decides.")
    return dataclasses.replace(final, message=f"{final.message} {note}",
                               evidence={**final.evidence, "agreement": same})


def user_check(own: Check, reading: Reading) -> Check:
    return second_opinion(own, reading, user_opinion, (USER_RESOURCE, "user"))


def app_check(own: Check, reading: Reading) -> Check:
    return second_opinion(own, reading, app_opinion, (APP_RESOURCE, "servicePrincipal"))


# The CA checks Microsoft's What If second-guesses, with the kind of policy each one reads.
LEGACY = Reading(identity._blocks_everywhere, "blocks it")
LOCATION = Reading(identity._blocks_by_location, "blocks it from there")
CONTROLS = Reading(identity._needs_controls, "requires a grant control that a password-only SMTP AUTH sign-in "
                   "cannot satisfy", identity._controls_cause)
WORKLOAD = Reading(workload.blocks, "blocks the app's token")
