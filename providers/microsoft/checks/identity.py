"""Entra ID layers a sign-in meets before Exchange: security defaults and Conditional Access."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from preflight.checks import Context, Outcome, Uninterpretable, check, detached, failed, passed, unknown, warned
from preflight.model import Method, Severity
from preflight.snapshot import Unavailable

from ..resources import (
    Application,
    ConditionalAccessPolicies,
    ConditionalAccessPolicy,
    GraphUser,
    MemberOf,
    MemberOfItem,
    NamedLocation,
    NamedLocations,
    SecurityDefaults,
)
from . import ca
from .values import data, for_existing, not_found

Policy = ConditionalAccessPolicy
FUTURE = "unknownFutureValue"  # Graph's stand-in for an evolvable enum's members added later


@check("ms.security-defaults", "Entra ID security defaults", severity=Severity.HIGH, cause="security-defaults",
       scope="tenant", methods=(Method.BASIC,), order=30, reads=("securityDefaults",))
def security_defaults(ctx: Context) -> Outcome:
    enabled = ctx.org_as("securityDefaults", SecurityDefaults).isEnabled
    evidence = {"securityDefaults.isEnabled": enabled}
    if enabled:
        return failed("Security defaults are on (identitySecurityDefaultsEnforcementPolicy isEnabled: true): "
                      "they block every Basic (legacy) sign-in, including SMTP AUTH with a password.", evidence)
    return passed("Security defaults are off (isEnabled: false).", evidence)


def _blocks(policy: Policy) -> bool:
    return policy.grantControls is not None and "block" in policy.grantControls.builtInControls


def _blocks_everywhere(policy: Policy) -> bool:
    return _blocks(policy) and not ca.narrows_by_location(policy.conditions)


def _blocks_by_location(policy: Policy) -> bool:
    return _blocks(policy) and ca.narrows_by_location(policy.conditions)


def _grant_controls(policy: Policy) -> list[str]:
    """What a sign-in must present to be granted (block aside). A password-only SMTP AUTH sign-in can
    present none of them: no MFA, no device or app claim, no terms-of-use acceptance, no password change."""
    grant = policy.grantControls
    if grant is None:
        return []
    controls: list[str] = [c for c in grant.builtInControls if c != "block"]
    strength = grant.authenticationStrength
    if strength is not None:
        name = strength.displayName
        controls.append(f"authenticationStrength '{name}'" if name else "authenticationStrength")
    if grant.termsOfUse:
        controls.append("termsOfUse")
    if grant.customAuthenticationFactors:
        controls.append("customAuthenticationFactors")
    return controls


def _needs_controls(policy: Policy) -> bool:
    return not _blocks(policy) and bool(_grant_controls(policy))


def _asks_mfa(policy: Policy) -> bool:
    grant = policy.grantControls
    return grant is not None and ("mfa" in grant.builtInControls or grant.authenticationStrength is not None)


def _controls_text(policy: Policy) -> str:
    joiner = " and " if policy.grantControls is not None and policy.grantControls.operator == "AND" else " or "
    return f"{ca.label(policy)} requires {joiner.join(_grant_controls(policy))}"


def _controls_cause(policies: list[Policy]) -> str:
    # mfa-required is what the user meets when MFA is asked; any other control is an indirect legacy block.
    return "mfa-required" if any(map(_asks_mfa, policies)) else "ca-legacy-auth-block"


@dataclass
class _Scan:
    """Policies of one kind that cover Exchange Online, the method's client app types and this user."""

    hits: list[Policy] = field(default_factory=list)
    # user scope needs memberOf, unreadable; or a client app type added after preflight was written
    undecided: list[Unavailable | Uninterpretable] = field(default_factory=list)
    # policy id -> why it may not cover this sign-in's client app type (the delegated client is undecided)
    client_unsure: dict[str, str] = field(default_factory=dict)


def delegated_client(ctx: Context) -> tuple[str | None, str]:
    """"public" or "browser" from the sending app's registration (data/wellknown.toml
    [conditionalAccess.delegatedClient]), or None, and why."""
    try:
        app = ctx.org_as("application", Application)
    except Unavailable as exc:
        if not_found(exc):
            return None, "the sending app is not registered in this tenant (a multi-tenant app), so its client " \
                         "type is not known"
        return None, f"the sending app's registration could not be read ({exc.reason})"
    public = bool(app.publicClient and app.publicClient.redirectUris) or app.isFallbackPublicClient is True
    browser = bool(app.web and app.web.redirectUris) or bool(app.spa and app.spa.redirectUris)
    if public != browser:
        kind = "public" if public else "browser"
        return kind, f"the sending app's registration is a {'public' if public else 'web'} client"
    both = "both public-client and web platforms" if public else "no redirect URIs"
    return None, f"the sending app's registration has {both}, so its client type is not known"


def _client_types(ctx: Context) -> tuple[set[str], set[str], str]:
    """(client app types this sign-in surely is, types it may be, why)."""
    known = data("wellknown")["conditionalAccess"]
    types = set(known["clientAppTypes"][ctx.method.value])
    if ctx.method is not Method.OAUTH_DELEGATED:
        return types, set(), ""
    kind, why = delegated_client(ctx)
    if kind is not None:
        return set(known["delegatedClient"][kind]) | {"all"}, set(), why
    return types & {"all"}, types - {"all"}, why


def _scan(ctx: Context, kind: Callable[[Policy], bool]) -> _Scan:
    listed = policies(ctx)
    if not listed:
        return _Scan()  # no policy: nothing about the sign-in to work out
    known = data("wellknown")
    targets = [*known["apps"]["ca_targets"], known["apps"]["exchange_online"]]
    surely, maybe, why = _client_types(ctx)
    flows = known["conditionalAccess"]["authenticationFlows"]
    scan = _Scan()
    who: ca.Who | None = None
    for policy in listed:
        cond = policy.conditions
        if policy.state not in (ca.ENABLED, ca.REPORT_ONLY) or not kind(policy):
            continue
        app_types = set(cond.clientAppTypes)
        # unknownFutureValue: Graph has a client app type preflight does not know, which may be this sign-in's.
        future = not ca.client_in_scope(app_types, surely | maybe) and FUTURE in app_types
        if not ca.client_in_scope(app_types, surely | maybe) and not future:
            continue
        unsure = None if app_types & surely or maybe <= app_types else \
            f"it covers only {', '.join(sorted(app_types & maybe))} clients and {why}"
        narrowed_to = ca.transfer_methods(cond)
        if narrowed_to and not narrowed_to & set(flows[ctx.method.value]):
            continue  # e.g. "block device code flow": not a flow this method signs in with
        if not ca.app_in_scope(cond.applications, targets):
            continue
        who = who or _who(ctx)  # the user is read only when some policy could apply
        try:
            if not ca.user_in_scope(cond.users, who):
                continue
            if future:
                scan.undecided.append(Uninterpretable(
                    f"{ca.label(policy)} covers client app types {', '.join(sorted(app_types))}: unknownFutureValue "
                    "is a client app type added after preflight was written, which may be this sign-in's"))
            else:
                scan.hits.append(policy)
                if unsure:
                    scan.client_unsure[policy.id] = unsure
        except Unavailable as exc:
            scan.undecided.append(detached(exc))  # its traceback would hold this frame in a cycle
    return scan


def policies(ctx: Context) -> list[Policy]:
    return ctx.org_as("conditionalAccessPolicies", ConditionalAccessPolicies).root


def named_locations(ctx: Context) -> dict[str, NamedLocation]:
    return ca.named_locations(ctx.org_as("namedLocations", NamedLocations).root)


def _who(ctx: Context) -> ca.Who:
    user = ctx.mailbox_as("user", GraphUser)
    member_of: list[MemberOfItem] | Unavailable
    try:
        member_of = ctx.mailbox_as("memberOf", MemberOf).root
    except Unavailable as exc:
        member_of = detached(exc)
    return ca.Who.of(user, member_of)


def _evidence(policies: list[Policy], **extra: Any) -> dict[str, Any]:
    items = [{"id": p.id, "displayName": p.displayName, "state": p.state,
              "clientAppTypes": list(p.conditions.clientAppTypes),
              "builtInControls": list(p.grantControls.builtInControls) if p.grantControls else None}
             for p in policies]
    return {"conditionalAccessPolicies": items, **extra}


@dataclass
class _Found:
    """Covering policies split into enforced now, and at risk (report-only, or narrowed by what we cannot see)."""

    enforced: list[Policy] = field(default_factory=list)
    at_risk: list[Policy] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def add(self, policy: Policy, narrowed_by: str | None) -> None:
        if policy.state == ca.ENABLED and not narrowed_by:
            self.enforced.append(policy)
            return
        self.at_risk.append(policy)
        if policy.state == ca.REPORT_ONLY:
            when = f", when {narrowed_by}" if narrowed_by else ""
            self.reasons.append(f"{ca.label(policy)} would apply once enforced{when}")
        else:
            self.reasons.append(f"{ca.label(policy)} applies when {narrowed_by}")

    def outcome(self, now_fine: str, evidence: Mapping[str, Any] | None = None, cause: str | None = None
                ) -> Outcome | None:
        if self.at_risk:
            return warned(f"{now_fine}, but {'; '.join(self.reasons)}.", _evidence(self.at_risk, **(evidence or {})),
                          cause)
        return None


def _narrowed(policy: Policy) -> str | None:
    conditions = ca.unevaluated(policy.conditions)
    return f"its {', '.join(conditions)} condition matches" if conditions else None


def senders_of(ctx: Context) -> list[ca.Network] | Outcome:
    """The sender ranges of the options, or `unknown` naming the one that is no IP address or range."""
    try:
        return [ca.parse_network(ip) for ip in ctx.options.sender_ips]
    except ValueError as exc:
        return unknown(f"A sender IP in the options is not an IP address or CIDR range ({exc}).",
                       {"options.sender_ips": list(ctx.options.sender_ips)})


@for_existing
@check("ms.ca-legacy-auth", "Conditional Access: legacy authentication block", severity=Severity.HIGH,
       cause="ca-legacy-auth-block", methods=(Method.BASIC,), order=32,
       reads=("conditionalAccessPolicies", "user", "memberOf"))
def ca_legacy_auth(ctx: Context) -> Outcome:
    scan = _scan(ctx, _blocks_everywhere)  # location-bound blocks: ms.ca-location
    found = _Found()
    for policy in scan.hits:
        found.add(policy, _narrowed(policy))
    if found.enforced:
        types = sorted({t for p in found.enforced for t in p.conditions.clientAppTypes})
        return failed(f"Conditional Access policy {', '.join(map(ca.label, found.enforced))} blocks client app types "
                      f"{', '.join(types)} for {ctx.subject}; 'other' (legacy authentication) includes SMTP AUTH "
                      "with a password.", _evidence(found.enforced))
    if scan.undecided:
        raise scan.undecided[0]
    return found.outcome("Basic SMTP sign-in is not blocked now") or passed(
        f"No enabled Conditional Access policy blocks legacy-authentication clients for {ctx.subject}.",
        {"conditionalAccessPolicies": "none applies"})


@for_existing
@check("ms.ca-location", "Conditional Access: location block", severity=Severity.HIGH, cause="ca-location-block",
       methods=(Method.BASIC, Method.OAUTH_DELEGATED), order=34,
       reads=("conditionalAccessPolicies", "namedLocations", "user", "memberOf", "application"))
def ca_location(ctx: Context) -> Outcome:
    # App-only (client credentials) tokens are not evaluated by user-targeted policies: not oauth-app. Basic has
    # ms.ca-legacy-auth for blocks no location narrows; delegated OAuth has no other check, so they count here as
    # blocking sign-in from every address (Prowler's and Maester's "block all" and device-code cases).
    scan = _scan(ctx, _blocks_by_location if ctx.method is Method.BASIC else _blocks)
    everywhere = [p for p in scan.hits if not ca.narrows_by_location(p.conditions)]
    if not scan.hits and not scan.undecided:
        return passed(f"No enabled Conditional Access policy blocks sign-in by location for {ctx.subject}.",
                      {"conditionalAccessPolicies": "none applies"})
    if not ctx.options.sender_ips and len(everywhere) < len(scan.hits):
        # Which side of the location condition the sender is on decides the verdict: without it, unknown.
        names = ", ".join(map(ca.label, scan.hits)) or "A policy that may cover this user"
        return unknown(f"{names} blocks sign-in by location, and no sender IP was given: pass --sender-ip "
                       "CIDR with the sending service's outbound IP ranges to evaluate it.",
                       _evidence(scan.hits, **{"options.sender_ips": []}))
    senders = senders_of(ctx)
    if isinstance(senders, Outcome):
        return senders
    named = named_locations(ctx) if len(everywhere) < len(scan.hits) else {}
    found, cannot_tell, where_detail, whys = _Found(), [], {}, []
    for policy in scan.hits:
        locations = policy.conditions.locations
        results = [(s, *ca.location_applies(locations, s, named)) for s in senders] \
            if locations is not None and policy not in everywhere \
            else [("any address", ca.Where.IN, "no location condition: blocks everywhere")]
        where_detail.update({f"{ca.name(policy)} / {s}": why for s, _, why in results})
        unsure = scan.client_unsure.get(policy.id)
        if unsure and policy.state == ca.ENABLED and any(where is not ca.Where.OUT for _, where, _ in results):
            cannot_tell.append(policy)  # enforced where it applies; whether it applies to this client is open
            whys.append(f"{ca.label(policy)}: {unsure}")
        elif any(where is ca.Where.IN for _, where, _ in results):
            found.add(policy, unsure or _narrowed(policy))
        elif any(where is ca.Where.UNKNOWN for _, where, _ in results) and policy.state == ca.REPORT_ONLY:
            found.add(policy, "the sender is in its locations")  # not enforced: at risk wherever the sender is
        elif any(where is ca.Where.UNKNOWN for _, where, _ in results):
            cannot_tell.append(policy)
            whys += [f"{ca.label(policy)} for {s}: {why}" for s, where, why in results if where is ca.Where.UNKNOWN]
    evidence = {"options.sender_ips": [str(s) for s in senders], "locations": where_detail}
    if found.enforced:
        return failed(f"Conditional Access policy {', '.join(map(ca.label, found.enforced))} blocks sign-in from "
                      f"{', '.join(map(str, senders)) or 'every address'} for {ctx.subject}.",
                      _evidence(found.enforced, **evidence))
    if scan.undecided:
        raise scan.undecided[0]
    if cannot_tell:
        return unknown(f"Cannot tell whether Conditional Access blocks the sender by location: {'; '.join(whys)} "
                       "(an IP named location holding the sender range, or the sending app registered in this "
                       "tenant, makes it certain).", _evidence(cannot_tell, **evidence))
    return found.outcome("Sign-in from the sender IPs is not blocked now", evidence) or passed(
        f"The sender IPs {', '.join(map(str, senders))} are outside every location that a Conditional Access "
        f"policy blocks for {ctx.subject}.", _evidence(scan.hits, **evidence))


@for_existing
@check("ms.ca-mfa", "Conditional Access: MFA or other grant controls for legacy clients", severity=Severity.HIGH,
       cause="mfa-required", methods=(Method.BASIC,), order=36,
       reads=("conditionalAccessPolicies", "namedLocations", "user", "memberOf"))
def ca_mfa(ctx: Context) -> Outcome:
    scan = _scan(ctx, _needs_controls)
    found, cannot_tell = _Found(), []
    for policy in scan.hits:
        narrowed = _narrowed(policy)
        locations = policy.conditions.locations
        if locations is not None and ca.narrows_by_location(policy.conditions):
            if not ctx.options.sender_ips:
                narrowed = "the sign-in comes from one of its locations (no --sender-ip given to evaluate it)"
            else:
                senders = senders_of(ctx)
                if isinstance(senders, Outcome):
                    return senders
                named = named_locations(ctx)
                results = [ca.location_applies(locations, s, named) for s in senders]
                wheres = {where for where, _ in results}
                if ca.Where.IN not in wheres:
                    if ca.Where.UNKNOWN not in wheres:
                        continue
                    unsure = "; ".join(why for where, why in results if where is ca.Where.UNKNOWN)
                    narrowed = f"the sender is in its locations ({unsure})"
            if policy.state == ca.ENABLED:
                cannot_tell.append((policy, narrowed))  # enforced wherever it applies: cannot call it a risk
                continue
        found.add(policy, narrowed)
    controls = {ca.name(p): _grant_controls(p) for p in scan.hits}
    if found.enforced:
        which = "; ".join(map(_controls_text, found.enforced))
        return failed(f"Conditional Access policy {which} from legacy clients for {ctx.subject}; a password-only "
                      "SMTP AUTH sign-in cannot satisfy any grant control, so it is refused.",
                      _evidence(found.enforced, grantControls=controls), cause=_controls_cause(found.enforced))
    if scan.undecided:
        raise scan.undecided[0]
    if cannot_tell:
        policies = [p for p, _ in cannot_tell]
        which = "; ".join(f"{_controls_text(p)} when {why}" for p, why in cannot_tell)
        return unknown(f"Conditional Access policy {which}; a password-only SMTP AUTH sign-in cannot satisfy it. "
                       "Pass --sender-ip CIDR with the sending service's outbound ranges (as IP named locations) "
                       "to evaluate it.", _evidence(policies, grantControls=controls))
    return found.outcome("Basic SMTP sign-in needs no grant control now", {"grantControls": controls},
                         _controls_cause(found.at_risk)) or passed(
        f"No enabled Conditional Access policy requires MFA or another grant control from legacy clients for "
        f"{ctx.subject}.", {"conditionalAccessPolicies": "none applies"})
