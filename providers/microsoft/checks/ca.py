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

from preflight.snapshot import Unavailable

from ..resources import (
    CaApplications,
    CaConditions,
    CaLocations,
    CaUsers,
    ConditionalAccessPolicy,
    CountryNamedLocation,
    GraphUser,
    GroupMember,
    GuestsOrExternalUsers,
    IpNamedLocation,
    MemberOfItem,
    NamedLocation,
    RoleMember,
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ENABLED = "enabled"
REPORT_ONLY = "enabledForReportingButNotEnforced"


@dataclass(frozen=True)
class Who:
    """The signing-in user as Conditional Access sees it. Memberships are read only when a policy needs them."""

    user_id: str
    guest: bool | None  # None: userType is null, so whether a guest rule holds is not known
    groups: frozenset[str] | None = None  # None: memberOf could not be read
    roles: frozenset[str] | None = None  # role template ids; None: unreadable or returned without them
    memberships_error: Unavailable | None = None

    @classmethod
    def of(cls, user: GraphUser, member_of: Sequence[MemberOfItem] | Unavailable) -> Who:
        guest = None if user.userType is None else user.userType == "Guest"
        if isinstance(member_of, Unavailable):
            return cls(user.id, guest, memberships_error=member_of)
        groups = frozenset(m.id for m in member_of if isinstance(m, GroupMember))
        templates = [m.roleTemplateId for m in member_of if isinstance(m, RoleMember)]
        # With limited permissions Graph returns only @odata.type and id: no roleTemplateId to match on.
        known = [t for t in templates if t is not None]
        if len(known) < len(templates):
            error = Unavailable("memberOf", "directory roles were returned without roleTemplateId")
            return cls(user.id, guest, groups, None, error)
        return cls(user.id, guest, groups, frozenset(known))

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


def label(policy: ConditionalAccessPolicy) -> str:
    """A policy as messages name it: 'display name' (state), report-only spelled out."""
    state = "report-only" if policy.state == REPORT_ONLY else policy.state
    return f"'{name(policy)}' ({state})"


def name(policy: ConditionalAccessPolicy) -> str:
    return policy.displayName or policy.id


# The conditionalAccessGuestOrExternalUserTypes a directory user of userType Guest can be: a local (internal)
# guest or a B2B collaboration guest (concept-conditional-access-users-groups: B2B collaboration members are
# userType Member; direct-connect, service-provider and other external users are not Guest objects here).
GUEST_KINDS = frozenset({"internalGuest", "b2bCollaborationGuest"})


def _guest_rule(rule: GuestsOrExternalUsers | None, key: str, users: list[str]) -> bool:
    """Whether a guest is matched by the guests-or-external-users rule (includeGuestsOrExternalUsers or
    excludeGuestsOrExternalUsers): only when it names both kinds a Guest can be, for every external tenant. A
    rule naming one kind, or some tenants, may or may not match: undecided (Graph's user does not say which);
    so is one naming a kind Graph added after this check was written (unknownFutureValue)."""
    if "GuestsOrExternalUsers" in users:
        return True
    if rule is None:
        return False
    named = {k.strip() for k in rule.guestOrExternalUserTypes.split(",")}
    kinds = named & GUEST_KINDS
    every_tenant = rule.externalTenants is None or rule.externalTenants.membershipKind == "all"
    if not kinds and "unknownFutureValue" not in named:
        return False
    if kinds == GUEST_KINDS and every_tenant:
        return True
    raise Unavailable("guest type", f"a policy's {key} names {rule.guestOrExternalUserTypes}"
                      f"{'' if every_tenant else ' of some external tenants'}, and whether this guest is a local "
                      "guest or a B2B collaboration guest (and of which tenant) is not in the user record")


def _as_guest(who: Who, rule: GuestsOrExternalUsers | None, key: str, users: list[str]) -> bool:
    """Whether the user is matched as a guest; undecided when the rule holds for guests and userType is null."""
    if who.guest is False or not _guest_rule(rule, key, users):
        return False
    if who.guest is None:
        raise Unavailable("user", f"userType is null, and a policy's guest rule ({key}) holds for guests: whether "
                          "this user is one is not known")
    return True


def user_in_scope(users: CaUsers | None, who: Who) -> bool:
    """Included (All, the user, a group, a role, guests) and not excluded. Memberships read only if needed."""
    if users is None:
        return False  # a workload-identity policy (clientApplications), not a user one
    if who.user_id in users.excludeUsers or _as_guest(
        who, users.excludeGuestsOrExternalUsers, "excludeGuestsOrExternalUsers", users.excludeUsers
    ):
        return False
    include = users.includeUsers
    included = (
        "All" in include
        or who.user_id in include
        or _as_guest(who, users.includeGuestsOrExternalUsers, "includeGuestsOrExternalUsers", include)
    )
    if not included:
        included = who.in_groups(users.includeGroups) or who.in_roles(users.includeRoles)
    if not included:
        return False
    return not (who.in_groups(users.excludeGroups) or who.in_roles(users.excludeRoles))


def app_in_scope(apps: CaApplications, targets: Iterable[str]) -> bool:
    """The policy targets Exchange Online: All, Office365 or its app id, and does not exclude it."""
    targets = set(targets) - {"All"}
    include = set(apps.includeApplications)
    exclude = set(apps.excludeApplications)
    return ("All" in include or bool(include & targets)) and not exclude & targets


def client_in_scope(client_app_types: Iterable[str], method_types: Iterable[str]) -> bool:
    return bool(set(client_app_types) & set(method_types))


def transfer_methods(conditions: CaConditions) -> frozenset[str]:
    """The authentication flows a policy is narrowed to (authenticationFlows.transferMethods, a flags enum
    written "deviceCodeFlow,authenticationTransfer"; resources.py admits only the documented members);
    empty when it is not narrowed."""
    flows = conditions.authenticationFlows
    raw = flows.transferMethods if flows is not None else ""
    return frozenset(v.strip() for v in raw.split(",") if v.strip()) - {"none"}


def unevaluated(conditions: CaConditions) -> list[str]:
    """Conditions that narrow a policy in ways a snapshot cannot evaluate (risk, platform, device, filters,
    the sign-in's authentication flow)."""
    out = []
    flows = conditions.authenticationFlows
    if flows is not None and flows.transferMethods.strip() not in ("", "none"):
        out.append(f"authentication flows ({flows.transferMethods})")
    if conditions.signInRiskLevels:
        out.append(f"signInRiskLevels {', '.join(conditions.signInRiskLevels)}")
    if conditions.userRiskLevels:
        out.append(f"userRiskLevels {', '.join(conditions.userRiskLevels)}")
    if conditions.insiderRiskLevels:
        out.append(f"insiderRiskLevels {conditions.insiderRiskLevels}")
    platforms = conditions.platforms
    if platforms is not None and (platforms.includePlatforms != ["all"] or platforms.excludePlatforms):
        out.append("device platforms")
    if conditions.devices is not None and conditions.devices.deviceFilter is not None:
        out.append("a device filter")
    if conditions.applications.applicationFilter is not None:
        out.append("an application filter")
    return out


def narrows_by_location(conditions: CaConditions) -> bool:
    locations = conditions.locations
    if locations is None:
        return False
    include, exclude = locations.includeLocations, locations.excludeLocations
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


def _ranges(location: IpNamedLocation) -> list[Network]:
    return [parse_network(r.cidrAddress) for r in location.ipRanges]


def _covers(ranges: Sequence[Network], sender: Network, whole: bool) -> bool:
    same = [r for r in ranges if r.version == sender.version]
    if whole:
        return any(sender.subnet_of(r) for r in same)  # type: ignore[arg-type]
    return any(sender.overlaps(r) for r in same)


Named = Mapping[str, NamedLocation]  # namedLocations by id


def named_locations(locations: Iterable[NamedLocation]) -> dict[str, NamedLocation]:
    return {loc.id: loc for loc in locations}


def in_location(location_id: str, sender: Network, named: Named, whole: bool) -> Where:
    """Is the sender range in this location? whole=False: any of its addresses; True: all of them."""
    if location_id == "All":
        return Where.IN
    if location_id == "AllTrusted":
        trusted = [r for loc in named.values() if isinstance(loc, IpNamedLocation) and loc.isTrusted
                   for r in _ranges(loc)]
        return Where.IN if _covers(trusted, sender, whole) else Where.UNKNOWN  # may be an MFA trusted IP
    location = named.get(location_id)
    if not isinstance(location, IpNamedLocation):
        return Where.UNKNOWN
    return Where.IN if _covers(_ranges(location), sender, whole) else Where.OUT


def is_ip_location(location_id: str, named: Named) -> bool:
    return isinstance(named.get(location_id), IpNamedLocation)


def location_applies(locations: CaLocations, sender: Network, named: Named) -> tuple[Where, str]:
    """Does a policy's location condition cover the sender range? A block that reaches part of the range
    counts (some sends fail); an exclusion counts only when it covers the whole range."""
    include, exclude = locations.includeLocations, locations.excludeLocations
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


def _name(location_id: str, named: Named) -> str:
    if location_id in ("All", "AllTrusted"):
        return location_id
    loc = named.get(location_id)
    if loc is None:
        return f"{location_id} (not among the named locations)"
    kind = "country" if isinstance(loc, CountryNamedLocation) else "IP"
    return f"'{loc.displayName if loc.displayName is not None else location_id}' ({kind})"


def _unmatched(location_id: str, named: Named) -> str:
    if location_id == "AllTrusted":
        return ("AllTrusted, which holds the trusted IP named locations (the sender is outside them) and "
                f"{MFA_TRUSTED_IPS}: check the sender is not listed there")
    return f"{_name(location_id, named)} cannot be matched to an IP address"
