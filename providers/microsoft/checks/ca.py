"""Conditional Access scoping, pure: does a policy cover this user, Exchange Online, this client and these IPs?

Graph shapes: conditionalAccessPolicy.conditions (users, applications, clientAppTypes, locations, ...),
namedLocation (#microsoft.graph.ipNamedLocation with ipRanges[].cidrAddress and isTrusted, or
#microsoft.graph.countryNamedLocation), transitiveMemberOf items (#microsoft.graph.group,
#microsoft.graph.directoryRole with roleTemplateId).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from preflight.snapshot import Unavailable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ENABLED = "enabled"
REPORT_ONLY = "enabledForReportingButNotEnforced"
IP_LOCATION = "#microsoft.graph.ipNamedLocation"
COUNTRY_LOCATION = "#microsoft.graph.countryNamedLocation"


@dataclass(frozen=True)
class Who:
    """The signing-in user as Conditional Access sees it. Memberships are read only when a policy needs them."""

    user_id: str
    guest: bool
    groups: frozenset[str] | None = None  # None: memberOf could not be read
    roles: frozenset[str] | None = None  # role template ids; None: unreadable or returned without them
    memberships_error: Unavailable | None = None

    @classmethod
    def of(cls, user: Mapping[str, Any], member_of: Sequence[Mapping[str, Any]] | Unavailable) -> Who:
        guest = user.get("userType") == "Guest"
        if isinstance(member_of, Unavailable):
            return cls(user["id"], guest, memberships_error=member_of)
        groups = frozenset(m["id"] for m in member_of if m.get("@odata.type") == "#microsoft.graph.group")
        role_items = [m for m in member_of if m.get("@odata.type") == "#microsoft.graph.directoryRole"]
        # With limited permissions Graph returns only @odata.type and id: no roleTemplateId to match on.
        if any("roleTemplateId" not in r for r in role_items):
            error = Unavailable("memberOf", "directory roles were returned without roleTemplateId")
            return cls(user["id"], guest, groups, None, error)
        return cls(user["id"], guest, groups, frozenset(r["roleTemplateId"] for r in role_items))

    def _need(self, values: frozenset[str] | None) -> frozenset[str]:
        if values is None:
            raise self.memberships_error or Unavailable("memberOf", "not collected")
        return values

    def in_groups(self, ids: Iterable[str]) -> bool:
        ids = set(ids)
        return bool(ids) and bool(ids & self._need(self.groups))

    def in_roles(self, ids: Iterable[str]) -> bool:
        ids = set(ids)
        return bool(ids) and bool(ids & self._need(self.roles))


def label(policy: Mapping[str, Any]) -> str:
    """A policy as messages name it: 'display name' (state), report-only spelled out."""
    state = "report-only" if policy.get("state") == REPORT_ONLY else policy.get("state")
    return f"'{policy.get('displayName') or policy.get('id')}' ({state})"


def _ids(d: Mapping[str, Any] | None, key: str) -> list[str]:
    return list((d or {}).get(key) or [])


# The conditionalAccessGuestOrExternalUserTypes a directory user of userType Guest can be: a local (internal)
# guest or a B2B collaboration guest (concept-conditional-access-users-groups: B2B collaboration members are
# userType Member; direct-connect, service-provider and other external users are not Guest objects here).
GUEST_KINDS = frozenset({"internalGuest", "b2bCollaborationGuest"})


def _guest_rule(d: Mapping[str, Any], key: str, users_key: str) -> bool:
    """Whether a guest is matched by the guests-or-external-users rule (includeGuestsOrExternalUsers or
    excludeGuestsOrExternalUsers): only when it names both kinds a Guest can be, for every external tenant. A
    rule naming one kind, or some tenants, may or may not match: undecided (Graph's user does not say which)."""
    if "GuestsOrExternalUsers" in _ids(d, users_key):
        return True
    rule = d.get(key)
    if rule is None:
        return False
    kinds = {k.strip() for k in str(rule.get("guestOrExternalUserTypes") or "").split(",")} & GUEST_KINDS
    tenants = rule.get("externalTenants") or {}
    every_tenant = tenants.get("membershipKind") in (None, "all")
    if not kinds:
        return False
    if kinds == GUEST_KINDS and every_tenant:
        return True
    named = rule.get("guestOrExternalUserTypes")
    raise Unavailable("guest type", f"a policy's {key} names {named}"
                      f"{'' if every_tenant else ' of some external tenants'}, and whether this guest is a local "
                      "guest or a B2B collaboration guest (and of which tenant) is not in the user record")


def user_in_scope(users: Mapping[str, Any] | None, who: Who) -> bool:
    """Included (All, the user, a group, a role, guests) and not excluded. Memberships read only if needed."""
    if not users:
        return False  # a workload-identity policy (clientApplications), not a user one
    if who.user_id in _ids(users, "excludeUsers") or (
        who.guest and _guest_rule(users, "excludeGuestsOrExternalUsers", "excludeUsers")
    ):
        return False
    include = _ids(users, "includeUsers")
    included = (
        "All" in include
        or who.user_id in include
        or (who.guest and _guest_rule(users, "includeGuestsOrExternalUsers", "includeUsers"))
    )
    if not included:
        included = who.in_groups(_ids(users, "includeGroups")) or who.in_roles(_ids(users, "includeRoles"))
    if not included:
        return False
    return not (who.in_groups(_ids(users, "excludeGroups")) or who.in_roles(_ids(users, "excludeRoles")))


def app_in_scope(apps: Mapping[str, Any] | None, targets: Iterable[str]) -> bool:
    """The policy targets Exchange Online: All, Office365 or its app id, and does not exclude it."""
    targets = set(targets) - {"All"}
    include = set(_ids(apps, "includeApplications"))
    exclude = set(_ids(apps, "excludeApplications"))
    return ("All" in include or bool(include & targets)) and not exclude & targets


def client_in_scope(client_app_types: Iterable[str], method_types: Iterable[str]) -> bool:
    return bool(set(client_app_types) & set(method_types))


def transfer_methods(conditions: Mapping[str, Any]) -> frozenset[str]:
    """The authentication flows a policy is narrowed to (authenticationFlows.transferMethods, a flags enum
    written "deviceCodeFlow,authenticationTransfer"; resources.py admits only the documented members);
    empty when it is not narrowed."""
    raw = (conditions.get("authenticationFlows") or {}).get("transferMethods") or ""
    return frozenset(v.strip() for v in str(raw).split(",") if v.strip()) - {"none"}


def unevaluated(conditions: Mapping[str, Any]) -> list[str]:
    """Conditions that narrow a policy in ways a snapshot cannot evaluate (risk, platform, device, filters,
    the sign-in's authentication flow)."""
    out = []
    flows = (conditions.get("authenticationFlows") or {}).get("transferMethods")
    if isinstance(flows, str) and flows.strip() not in ("", "none"):
        out.append(f"authentication flows ({flows})")
    for key in ("signInRiskLevels", "userRiskLevels", "insiderRiskLevels"):
        levels = conditions.get(key)
        if levels:
            out.append(f"{key} {', '.join(levels) if isinstance(levels, list) else levels}")
    platforms = conditions.get("platforms")
    if platforms and (_ids(platforms, "includePlatforms") != ["all"] or _ids(platforms, "excludePlatforms")):
        out.append("device platforms")
    if (conditions.get("devices") or {}).get("deviceFilter"):
        out.append("a device filter")
    if (conditions.get("applications") or {}).get("applicationFilter"):
        out.append("an application filter")
    return out


def narrows_by_location(conditions: Mapping[str, Any]) -> bool:
    locations = conditions.get("locations")
    if not locations:
        return False
    include, exclude = _ids(locations, "includeLocations"), _ids(locations, "excludeLocations")
    return bool(include) and (include != ["All"] or bool(exclude))


class Where(Enum):
    IN = "in"
    OUT = "out"
    UNKNOWN = "unknown"  # a country location, a location id not in namedLocations, or AllTrusted (see below)


# AllTrusted is the trusted IP named locations *and* the MFA trusted IPs of the legacy multifactor
# authentication service settings, which Graph does not expose: outside the former proves nothing.
MFA_TRUSTED_IPS = ("the MFA trusted IPs (Named locations > Configure MFA trusted IPs, in the legacy MFA service "
                   "settings), which Microsoft Graph does not show")


def parse_network(text: str) -> Network:
    return ipaddress.ip_network(text.strip(), strict=False)


def _ranges(location: Mapping[str, Any]) -> list[Network]:
    return [parse_network(r["cidrAddress"]) for r in location.get("ipRanges") or []]


def _covers(ranges: Sequence[Network], sender: Network, whole: bool) -> bool:
    same = [r for r in ranges if r.version == sender.version]
    if whole:
        return any(sender.subnet_of(r) for r in same)  # type: ignore[arg-type]
    return any(sender.overlaps(r) for r in same)


def in_location(
    location_id: str, sender: Network, named: Mapping[str, Mapping[str, Any]], whole: bool
) -> Where:
    """Is the sender range in this location? whole=False: any of its addresses; True: all of them."""
    if location_id == "All":
        return Where.IN
    if location_id == "AllTrusted":
        trusted = [r for loc in named.values() if loc.get("isTrusted") is True for r in _ranges(loc)]
        return Where.IN if _covers(trusted, sender, whole) else Where.UNKNOWN  # may be an MFA trusted IP
    location = named.get(location_id)
    if location is None or location.get("@odata.type") != IP_LOCATION:
        return Where.UNKNOWN
    return Where.IN if _covers(_ranges(location), sender, whole) else Where.OUT


def location_applies(
    locations: Mapping[str, Any], sender: Network, named: Mapping[str, Mapping[str, Any]]
) -> tuple[Where, str]:
    """Does a policy's location condition cover the sender range? A block that reaches part of the range
    counts (some sends fail); an exclusion counts only when it covers the whole range."""
    include, exclude = _ids(locations, "includeLocations"), _ids(locations, "excludeLocations")
    results = [(loc, in_location(loc, sender, named, whole=False)) for loc in include]
    hit = next((loc for loc, w in results if w is Where.IN), None)
    if hit is None:
        unknown = next((loc for loc, w in results if w is Where.UNKNOWN), None)
        if unknown is not None:
            return Where.UNKNOWN, f"included location {_unmatched(unknown, named)}"
        return Where.OUT, "outside every included location"
    # Any exclusion that holds the whole range takes it out, whatever an earlier one could not tell.
    excluded = [(loc, in_location(loc, sender, named, whole=True)) for loc in exclude]
    inside = next((loc for loc, where in excluded if where is Where.IN), None)
    if inside is not None:
        return Where.OUT, f"inside excluded location {_name(inside, named)}"
    unsure = next((loc for loc, where in excluded if where is Where.UNKNOWN), None)
    if unsure is not None:
        return Where.UNKNOWN, f"excluded location {_unmatched(unsure, named)}"
    return Where.IN, f"in included location {_name(hit, named)}"


def _name(location_id: str, named: Mapping[str, Mapping[str, Any]]) -> str:
    if location_id in ("All", "AllTrusted"):
        return location_id
    loc = named.get(location_id)
    if loc is None:
        return f"{location_id} (not among the named locations)"
    kind = "country" if loc.get("@odata.type") == COUNTRY_LOCATION else "IP"
    return f"'{loc.get('displayName', location_id)}' ({kind})"


def _unmatched(location_id: str, named: Mapping[str, Mapping[str, Any]]) -> str:
    if location_id == "AllTrusted":
        return ("AllTrusted, which holds the trusted IP named locations (the sender is outside them) and "
                f"{MFA_TRUSTED_IPS}: check the sender is not listed there")
    return f"{_name(location_id, named)} cannot be matched to an IP address"
