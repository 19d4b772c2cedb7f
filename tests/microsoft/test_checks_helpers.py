"""The tricky parts on their own: string booleans, Conditional Access scoping, IP/location matching, the
effective authentication policy, consent, and honest unknowns when a needed resource is unreadable."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from preflight.model import Status
from preflight.snapshot import Unavailable
from preflight_providers.microsoft.checks import ca
from preflight_providers.microsoft.checks.values import smtp_addresses
from preflight_providers.microsoft.resources import (
    CaApplications,
    CaConditions,
    CaLocations,
    CasMailbox,
    CaUsers,
    ExchangeUser,
    GraphUser,
    MailboxPermission,
    MemberOf,
    MemberOfItem,
    NamedLocations,
)
from tests.conftest import evaluate_data, finding, fixture_data

J = "jobs@contoso.com"
FORBIDDEN = {"error": {"status": 403, "code": "Authorization_RequestDenied",
                       "message": "Insufficient privileges to complete the operation."}}


# -- Exchange value normalisation ----------------------------------------------------------------

@pytest.mark.parametrize(("raw", "want"), [(True, True), (False, False), ("True", True), ("false", False),
                                           (" FALSE ", False), ("$true", True), (None, None)])
def test_exchange_booleans_read_json_and_powershell_text(raw: Any, want: bool | None) -> None:
    assert CasMailbox.model_validate({"SmtpClientAuthenticationDisabled": raw}).SmtpClientAuthenticationDisabled is want


@pytest.mark.parametrize("raw", ["yes", 1, 0, [], {}, ""])
def test_exchange_booleans_refuse_anything_else(raw: Any) -> None:
    with pytest.raises(ValidationError, match="SmtpClientAuthenticationDisabled"):
        CasMailbox.model_validate({"SmtpClientAuthenticationDisabled": raw})


def test_multi_valued_properties_and_references() -> None:
    rights = {"User": "jobs@contoso.com", "Deny": "False"}
    assert MailboxPermission.model_validate({**rights, "AccessRights": ["FullAccess", "ReadPermission"]}) \
        .AccessRights == ["FullAccess", "ReadPermission"]
    assert MailboxPermission.model_validate({**rights, "AccessRights": "FullAccess, ReadPermission"}) \
        .AccessRights == ["FullAccess", "ReadPermission"]
    assert ExchangeUser.model_validate({"AuthenticationPolicy": {"Name": "Block Basic Auth"}}) \
        .AuthenticationPolicy == "Block Basic Auth"
    with pytest.raises(ValidationError):
        ExchangeUser.model_validate({"AuthenticationPolicy": "  "})
    assert smtp_addresses(["SMTP:Jobs@Contoso.com", "smtp:careers@contoso.com", "X500:/o=x"]) == {
        "jobs@contoso.com", "careers@contoso.com"}


# -- Conditional Access: who is in scope -----------------------------------------------------------

U1, U2 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
G1 = "33333333-3333-4333-8333-333333333333"
ADMIN_ROLE = "62e90394-69f5-4237-9190-012177145e10"
GROUP = {"@odata.type": "#microsoft.graph.group", "id": G1, "displayName": "SMTP exceptions"}
ADMIN = {"@odata.type": "#microsoft.graph.directoryRole", "id": "r-obj", "displayName": "Global Administrator",
         "roleTemplateId": ADMIN_ROLE}


def user(user_id: str = U1, user_type: str | None = "Member") -> GraphUser:
    return GraphUser.model_validate({"id": user_id, "userPrincipalName": J, "mail": J, "accountEnabled": True,
                                     "userType": user_type, "assignedPlans": [], "proxyAddresses": []})


def member_of(*items: dict[str, Any]) -> list[MemberOfItem]:
    return MemberOf.model_validate(list(items)).root


def users(**kw: Any) -> CaUsers:
    base: dict[str, Any] = {k: [] for k in ("includeUsers", "excludeUsers", "includeGroups", "excludeGroups",
                                            "includeRoles", "excludeRoles")}
    base["includeGuestsOrExternalUsers"] = None
    base["excludeGuestsOrExternalUsers"] = None
    base.update(kw)
    return CaUsers.model_validate(base)


def test_user_scope_includes_and_excludes() -> None:
    who = ca.Who.of(user(), member_of(GROUP, ADMIN))
    assert ca.user_in_scope(users(includeUsers=["All"]), who)
    assert not ca.user_in_scope(users(includeUsers=["All"], excludeUsers=[U1]), who)
    assert not ca.user_in_scope(users(includeUsers=["All"], excludeGroups=[G1]), who)
    assert ca.user_in_scope(users(includeGroups=[G1]), who)
    assert ca.user_in_scope(users(includeRoles=[ADMIN_ROLE]), who)
    assert not ca.user_in_scope(users(includeUsers=["All"], excludeRoles=[ADMIN_ROLE]), who)
    assert not ca.user_in_scope(users(includeUsers=["None"]), who)
    assert not ca.user_in_scope(users(includeUsers=[U2]), who)
    assert not ca.user_in_scope(None, who)  # workload-identity policy: no users condition


def guests(types: str, kind: str | None = "all") -> dict[str, Any]:
    tenants = None if kind is None else {"@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants",
                                         "membershipKind": kind}
    return {"guestOrExternalUserTypes": types, "externalTenants": tenants}


def test_guests() -> None:
    guest = ca.Who.of(user(U2, "Guest"), [])
    assert ca.user_in_scope(users(includeUsers=["GuestsOrExternalUsers"]), guest)
    assert not ca.user_in_scope(users(includeUsers=["All"], excludeUsers=["GuestsOrExternalUsers"]), guest)
    assert not ca.user_in_scope(users(includeUsers=["GuestsOrExternalUsers"]), ca.Who.of(user(), []))
    both = "internalGuest,b2bCollaborationGuest"
    assert ca.user_in_scope(users(includeGuestsOrExternalUsers=guests(both)), guest)
    assert ca.user_in_scope(users(includeGuestsOrExternalUsers=guests(both, None)), guest)
    assert not ca.user_in_scope(users(includeGuestsOrExternalUsers=guests("serviceProvider")), guest)
    # userType null: a rule for guests cannot place the user; one that names no guest still cannot match.
    nobody_knows = ca.Who.of(user(U2, None), [])
    with pytest.raises(Unavailable, match="userType is null"):
        ca.user_in_scope(users(includeUsers=["GuestsOrExternalUsers"]), nobody_knows)
    assert ca.user_in_scope(users(includeUsers=["All"]), nobody_knows)
    assert not ca.user_in_scope(users(includeGuestsOrExternalUsers=guests("serviceProvider")), nobody_knows)
    # One kind of guest, some tenants, or a kind Graph added later: whether it matches this guest is undecided.
    for rule in (guests("b2bCollaborationGuest"), guests(both, "enumerated"), guests("unknownFutureValue")):
        with pytest.raises(Unavailable, match="guest type"):
            ca.user_in_scope(users(includeUsers=["All"], excludeGuestsOrExternalUsers=rule), guest)


@pytest.mark.parametrize("rule", [guests("b2bGuest"), guests("internalGuest;serviceProvider"), guests(""),
                                  guests("internalGuest", "some"), {"guestOrExternalUserTypes": 3}],
                         ids=["unknown-kind", "wrong-separator", "empty", "membership-kind", "not-text"])
def test_a_guest_rule_off_its_documented_shape_is_refused(rule: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        users(includeUsers=["All"], excludeGuestsOrExternalUsers=rule)


def test_memberships_are_needed_only_when_a_policy_names_groups_or_roles() -> None:
    unreadable = ca.Who.of(user(), Unavailable("memberOf of jobs@contoso.com", "403"))
    assert ca.user_in_scope(users(includeUsers=["All"]), unreadable)
    assert not ca.user_in_scope(users(includeUsers=["All"], excludeUsers=[U1], excludeGroups=[G1]), unreadable)
    with pytest.raises(Unavailable):
        ca.user_in_scope(users(includeUsers=["All"], excludeGroups=[G1]), unreadable)


def test_roles_returned_without_template_ids_cannot_be_matched() -> None:
    limited = ca.Who.of(user(), member_of(GROUP, {"@odata.type": "#microsoft.graph.directoryRole", "id": "r-obj"}))
    assert ca.user_in_scope(users(includeGroups=[G1]), limited)
    with pytest.raises(Unavailable, match="roleTemplateId"):
        ca.user_in_scope(users(includeUsers=["All"], excludeRoles=[ADMIN_ROLE]), limited)


EXO = "00000002-0000-0ff1-ce00-000000000000"
TARGETS = ["All", "Office365", EXO]


@pytest.mark.parametrize(("apps", "want"), [
    ({"includeApplications": ["All"], "excludeApplications": []}, True),
    ({"includeApplications": ["Office365"], "excludeApplications": []}, True),
    ({"includeApplications": [EXO], "excludeApplications": []}, True),
    ({"includeApplications": ["All"], "excludeApplications": ["Office365"]}, False),
    ({"includeApplications": ["All"], "excludeApplications": [EXO]}, False),
    ({"includeApplications": ["00000003-0000-0ff1-ce00-000000000000"], "excludeApplications": []}, False),  # SharePoint
    ({"includeApplications": [], "excludeApplications": [], "includeUserActions": ["urn:user:registersecurityinfo"]},
     False),
])
def test_application_scope(apps: dict[str, Any], want: bool) -> None:
    assert ca.app_in_scope(CaApplications.model_validate(apps), TARGETS) is want


def conditions(**kw: Any) -> CaConditions:
    base: dict[str, Any] = {
        "clientAppTypes": ["all"], "applications": {"includeApplications": ["All"], "excludeApplications": []},
        "users": users(includeUsers=["All"]).model_dump(), "clientApplications": None, "locations": None,
        "platforms": None, "devices": None, "signInRiskLevels": [], "userRiskLevels": [],
        "servicePrincipalRiskLevels": []}
    return CaConditions.model_validate({**base, **kw})


def test_client_types_and_unevaluated_conditions() -> None:
    assert ca.client_in_scope(["exchangeActiveSync", "other"], ["other", "all"])
    assert ca.client_in_scope(["all"], ["other", "all"])
    assert not ca.client_in_scope(["browser", "mobileAppsAndDesktopClients"], ["other", "all"])
    assert ca.unevaluated(conditions(signInRiskLevels=["high"], platforms={"includePlatforms": ["all"]})) == [
        "signInRiskLevels high"]
    assert ca.unevaluated(conditions(platforms={"includePlatforms": ["android"], "excludePlatforms": []})) == [
        "device platforms"]
    assert ca.unevaluated(conditions()) == []


# -- Conditional Access: locations ------------------------------------------------------------------

V4, V6 = "#microsoft.graph.iPv4CidrRange", "#microsoft.graph.iPv6CidrRange"
LOC_OFFICE, LOC_PARTNER = "44444444-4444-4444-8444-444444444444", "55555555-5555-4555-8555-555555555555"
LOC_COUNTRY, LOC_DELETED = "66666666-6666-4666-8666-666666666666", "77777777-7777-4777-8777-777777777777"
OFFICE: dict[str, Any] = {
    "@odata.type": "#microsoft.graph.ipNamedLocation", "id": LOC_OFFICE, "displayName": "Office", "isTrusted": True,
    "ipRanges": [{"@odata.type": V4, "cidrAddress": "198.51.100.0/24"},
                 {"@odata.type": V6, "cidrAddress": "2001:db8:10::/48"}]}
PARTNER: dict[str, Any] = {
    "@odata.type": "#microsoft.graph.ipNamedLocation", "id": LOC_PARTNER, "displayName": "Partner",
    "isTrusted": False, "ipRanges": [{"@odata.type": V4, "cidrAddress": "203.0.113.0/25"}]}
COUNTRY: dict[str, Any] = {
    "@odata.type": "#microsoft.graph.countryNamedLocation", "id": LOC_COUNTRY, "displayName": "Home country",
    "countriesAndRegions": ["NL"], "includeUnknownCountriesAndRegions": False}
NAMED = ca.named_locations(NamedLocations.model_validate([OFFICE, PARTNER, COUNTRY]).root)


def locations(include: list[str], exclude: list[str]) -> CaLocations:
    return CaLocations.model_validate({"includeLocations": include, "excludeLocations": exclude})


OUTSIDE_TRUSTED = locations(["All"], ["AllTrusted"])
OUTSIDE_OFFICE = locations(["All"], [LOC_OFFICE])


@pytest.mark.parametrize(("sender", "want"), [
    ("198.51.100.7", ca.Where.OUT),  # in the trusted office range: excluded
    ("198.51.100.0/25", ca.Where.OUT),
    ("198.51.100.0/23", ca.Where.IN),  # only half of the range is excluded: the other half is blocked
    ("192.0.2.10", ca.Where.IN),
    ("2001:db8:10:1::5", ca.Where.OUT),  # IPv6 inside the excluded /48
    ("2001:db8:99::5", ca.Where.IN),
    ("203.0.113.10", ca.Where.IN),  # another named location does not exempt
])
def test_block_outside_a_named_location(sender: str, want: ca.Where) -> None:
    assert ca.location_applies(OUTSIDE_OFFICE, ca.parse_network(sender), NAMED)[0] is want


@pytest.mark.parametrize(("sender", "want"), [
    ("198.51.100.7", ca.Where.OUT),  # in a trusted IP named location: excluded
    ("2001:db8:10:1::5", ca.Where.OUT),
    # Outside every trusted named location, but AllTrusted also holds the MFA trusted IPs, which Graph
    # does not show: not provably blocked.
    ("198.51.100.0/23", ca.Where.UNKNOWN),
    ("192.0.2.10", ca.Where.UNKNOWN),
    ("203.0.113.10", ca.Where.UNKNOWN),  # a named location that is not trusted does not exempt either
])
def test_block_outside_trusted_locations(sender: str, want: ca.Where) -> None:
    where, why = ca.location_applies(OUTSIDE_TRUSTED, ca.parse_network(sender), NAMED)
    assert where is want
    if want is ca.Where.UNKNOWN:
        assert "MFA trusted IPs" in why


def test_sender_outside_named_trusted_ranges_under_an_all_trusted_exclusion_is_unknown() -> None:
    data = fixture_data("microsoft", "ca-location-trusted")
    data["options"]["sender_ips"] = ["192.0.2.10"]
    f = finding(evaluate_data(data), "ms.ca-location", J, method="basic")
    assert f.status is Status.UNKNOWN and "AllTrusted" in f.message and "Configure MFA trusted IPs" in f.message


@pytest.mark.parametrize(("types", "status"), [(["unknownFutureValue"], Status.UNKNOWN),
                                               (["other", "unknownFutureValue"], Status.FAIL),
                                               (["browser"], Status.PASS)])
def test_a_client_app_type_added_later_may_be_this_sign_ins(types: list[str], status: Status) -> None:
    """Graph's unknownFutureValue stands for a client app type preflight does not know: not ignored (issue 11)."""
    data = fixture_data("microsoft", "ca-legacy-included")
    data["org"]["conditionalAccessPolicies"][0]["conditions"]["clientAppTypes"] = types
    f = finding(evaluate_data(data), "ms.ca-legacy-auth", J, method="basic")
    assert f.status is status
    if status is Status.UNKNOWN:
        assert "unknownFutureValue" in f.message


def test_named_and_country_locations() -> None:
    only_partner = locations([LOC_PARTNER], [])
    assert ca.location_applies(only_partner, ca.parse_network("203.0.113.200"), NAMED)[0] is ca.Where.OUT
    assert ca.location_applies(only_partner, ca.parse_network("203.0.113.0/24"), NAMED)[0] is ca.Where.IN
    except_home = locations(["All"], [LOC_COUNTRY])
    where, why = ca.location_applies(except_home, ca.parse_network("192.0.2.1"), NAMED)
    assert where is ca.Where.UNKNOWN and "'Home country' (country)" in why
    unknown_id = locations([LOC_DELETED], [])
    assert ca.location_applies(unknown_id, ca.parse_network("192.0.2.1"), NAMED)[0] is ca.Where.UNKNOWN
    assert ca.narrows_by_location(conditions(locations=OUTSIDE_TRUSTED.model_dump()))
    assert not ca.narrows_by_location(conditions(locations={"includeLocations": ["All"], "excludeLocations": []}))
    assert not ca.narrows_by_location(conditions(locations=None))


def test_location_check_without_sender_ip_is_unknown_and_so_is_a_bad_one() -> None:
    data = fixture_data("microsoft", "ca-location-outside")
    data["options"]["sender_ips"] = []
    result = evaluate_data(data)
    f = finding(result, "ms.ca-location", J, method="basic")
    assert f.status is Status.UNKNOWN and "--sender-ip CIDR" in f.message
    assert "'Block sign-in outside trusted locations' (enabled)" in f.message
    assert {m.verdict.value for m in result.mailboxes if m.method.value == "basic"} == {"incomplete"}
    data["options"]["sender_ips"] = ["not-an-ip"]
    assert finding(evaluate_data(data), "ms.ca-location", J, method="basic").status is Status.UNKNOWN
    data["options"]["sender_ips"] = ["198.51.100.20"]  # the trusted head office
    assert finding(evaluate_data(data), "ms.ca-location", J, method="basic").status is Status.PASS


def test_country_exclusion_makes_the_location_check_unknown() -> None:
    data = fixture_data("microsoft", "ca-location-outside")
    policy = data["org"]["conditionalAccessPolicies"][0]
    country = next(loc for loc in data["org"]["namedLocations"] if "countriesAndRegions" in loc)
    policy["conditions"]["locations"] = {"includeLocations": ["All"], "excludeLocations": [country["id"]]}
    f = finding(evaluate_data(data), "ms.ca-location", J, method="basic")
    assert f.status is Status.UNKNOWN and "country" in f.message


def test_unreadable_membership_is_unknown_unless_another_policy_already_blocks() -> None:
    data = fixture_data("microsoft", "ca-legacy-excluded")
    data["mailboxes"][J]["memberOf"] = FORBIDDEN
    f = finding(evaluate_data(data), "ms.ca-legacy-auth", J)
    assert f.status is Status.UNKNOWN and "memberOf" in f.message and "GroupMember.Read.All" in str(f.remediation)
    blanket = copy.deepcopy(data["org"]["conditionalAccessPolicies"][0])
    blanket["id"], blanket["displayName"] = "p-2", "Block legacy authentication for everyone"
    blanket["conditions"]["users"]["excludeGroups"] = []
    data["org"]["conditionalAccessPolicies"].append(blanket)
    assert finding(evaluate_data(data), "ms.ca-legacy-auth", J).status is Status.FAIL


def test_policy_narrowed_by_sign_in_risk_is_a_warning() -> None:
    data = fixture_data("microsoft", "ca-legacy-included")
    data["org"]["conditionalAccessPolicies"][0]["conditions"]["signInRiskLevels"] = ["high"]
    f = finding(evaluate_data(data), "ms.ca-legacy-auth", J)
    assert f.status is Status.WARN and "signInRiskLevels high" in f.message


def test_disabled_policy_and_other_apps_are_ignored() -> None:
    data = fixture_data("microsoft", "ca-legacy-included")
    data["org"]["conditionalAccessPolicies"][0]["state"] = "disabled"
    assert finding(evaluate_data(data), "ms.ca-legacy-auth", J).status is Status.PASS
    data = fixture_data("microsoft", "ca-legacy-included")
    data["org"]["conditionalAccessPolicies"][0]["conditions"]["applications"]["excludeApplications"] = ["Office365"]
    assert finding(evaluate_data(data), "ms.ca-legacy-auth", J).status is Status.PASS


# -- Exchange: the effective authentication policy ----------------------------------------------------

def test_user_policy_wins_over_the_org_default_and_names_are_matched_loosely() -> None:
    data = fixture_data("microsoft", "auth-policy-no-basic")
    result = evaluate_data(data)
    assert "Get-OrganizationConfig DefaultAuthenticationPolicy" in finding(result, "ms.auth-policy-basic-smtp",
                                                                           J).message
    assert finding(result, "ms.auth-policy-basic-smtp", "scanner@contoso.com").status is Status.PASS
    # the reference may come as a distinguished name
    policy = data["org"]["authenticationPolicies"][1]
    data["mailboxes"][J]["exchangeUser"]["AuthenticationPolicy"] = policy["DistinguishedName"]
    assert finding(evaluate_data(data), "ms.auth-policy-basic-smtp", J).status is Status.PASS


def test_no_policy_anywhere_passes_without_reading_the_policy_list() -> None:
    data = fixture_data("microsoft", "auth-policy-no-basic")
    data["org"]["organizationConfig"]["DefaultAuthenticationPolicy"] = None
    data["org"]["authenticationPolicies"] = FORBIDDEN
    assert finding(evaluate_data(data), "ms.auth-policy-basic-smtp", J).status is Status.PASS
    assert finding(evaluate_data(data), "ms.auth-policy-basic-smtp", "scanner@contoso.com").status is Status.UNKNOWN


def test_a_policy_name_that_is_not_in_the_list_is_unknown() -> None:
    data = fixture_data("microsoft", "auth-policy-no-basic")
    data["org"]["organizationConfig"]["DefaultAuthenticationPolicy"] = "Deleted policy"
    assert finding(evaluate_data(data), "ms.auth-policy-basic-smtp", J).status is Status.UNKNOWN


def test_smtp_auth_needs_the_org_value_only_when_the_mailbox_inherits() -> None:
    data = fixture_data("microsoft", "smtp-auth-off-tenant-on-mailbox")
    data["org"]["transportConfig"] = FORBIDDEN
    assert finding(evaluate_data(data), "ms.smtp-auth-enabled", J).status is Status.PASS
    data["mailboxes"][J]["casMailbox"]["SmtpClientAuthenticationDisabled"] = None
    assert finding(evaluate_data(data), "ms.smtp-auth-enabled", J).status is Status.UNKNOWN
    data["mailboxes"][J]["casMailbox"]["SmtpClientAuthenticationDisabled"] = "Maybe"
    f = finding(evaluate_data(data), "ms.smtp-auth-enabled", J)
    assert f.status is Status.UNKNOWN and "SmtpClientAuthenticationDisabled: found 'Maybe'" in f.message


# -- Account -----------------------------------------------------------------------------------------

def test_graph_404_with_an_exchange_mailbox_is_not_called_missing() -> None:
    data = fixture_data("microsoft", "accounts")
    data["mailboxes"]["missing@contoso.com"]["mailbox"] = data["mailboxes"][J]["mailbox"]
    assert finding(evaluate_data(data), "ms.mailbox-exists", "missing@contoso.com").status is Status.UNKNOWN


def test_graph_404_is_missing_only_when_the_alias_lookup_found_nobody_or_exchange_agrees() -> None:
    data = fixture_data("microsoft", "accounts")
    box = data["mailboxes"]["missing@contoso.com"]
    exchange_404 = box["mailbox"]
    box["mailbox"] = FORBIDDEN
    f = finding(evaluate_data(data), "ms.mailbox-exists", "missing@contoso.com")
    assert f.status is Status.FAIL and "no user has it as a proxy address" in f.message  # lookup: []
    box["userLookup"] = {"error": {"status": 429, "code": "TooManyRequests", "message": "Too many requests"}}
    f = finding(evaluate_data(data), "ms.mailbox-exists", "missing@contoso.com")
    assert f.status is Status.UNKNOWN and "userLookup" in f.message and "User.Read.All" in str(f.remediation)
    del box["userLookup"]  # a snapshot without the lookup: nothing says the 404 is final
    assert finding(evaluate_data(data), "ms.mailbox-exists", "missing@contoso.com").status is Status.UNKNOWN
    box["mailbox"] = exchange_404  # Exchange does not know the address either
    f = finding(evaluate_data(data), "ms.mailbox-exists", "missing@contoso.com")
    assert f.status is Status.FAIL and "Get-Mailbox did not find it either" in f.message


def test_unlicensed_mailbox_of_unreadable_type_is_unknown_not_a_guess() -> None:
    data = fixture_data("microsoft", "accounts")
    data["mailboxes"]["contractor@contoso.com"]["mailbox"] = FORBIDDEN
    f = finding(evaluate_data(data), "ms.exchange-licence", "contractor@contoso.com")
    assert f.status is Status.UNKNOWN
    # userPurpose answers the question when Get-Mailbox cannot (both documented shapes)
    data["mailboxes"]["contractor@contoso.com"]["mailboxSettings"] = {"userPurpose": {"value": "shared"}}
    # a shared mailbox someone signs in to directly (accountEnabled: true) is what the licence terms are about
    assert finding(evaluate_data(data), "ms.exchange-licence", "contractor@contoso.com").status is Status.WARN
    data["mailboxes"]["contractor@contoso.com"]["user"]["accountEnabled"] = False
    assert finding(evaluate_data(data), "ms.exchange-licence", "contractor@contoso.com").status is Status.PASS
    data["mailboxes"]["contractor@contoso.com"]["user"]["accountEnabled"] = True
    data["mailboxes"]["contractor@contoso.com"]["mailboxSettings"] = {"userPurpose": "user"}
    assert finding(evaluate_data(data), "ms.exchange-licence", "contractor@contoso.com").status is Status.FAIL


def test_shared_mailbox_with_a_full_access_user_can_be_reached_with_delegated_oauth() -> None:
    data = fixture_data("microsoft", "shared-mailbox")
    box = data["mailboxes"]["recruiting@contoso.com"]
    box["mailboxPermissions"].append({**box["mailboxPermissions"][0], "User": "alice@contoso.com",
                                      "AccessRights": ["FullAccess"]})
    shared = {f.method.value if f.method else None: f for f in evaluate_data(data).findings
              if f.check == "ms.shared-mailbox"}
    assert shared["oauth-delegated"].status is Status.WARN and "alice@contoso.com" in shared["oauth-delegated"].message
    assert shared["basic"].status is Status.FAIL and shared["oauth-app"].status is Status.PASS
    box["mailboxPermissions"][-1]["Deny"] = True
    shared = {f.method.value if f.method else None: f for f in evaluate_data(data).findings
              if f.check == "ms.shared-mailbox"}
    assert shared["oauth-delegated"].status is Status.FAIL


# -- OAuth -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("assigned", "status", "cause"), [
    ([], Status.FAIL, "third-party-apps-blocked"),
    (["ManagePermissionGrantsForSelf.microsoft-user-default-legacy"], Status.WARN, "oauth-app-not-authorized"),
    (["ManagePermissionGrantsForSelf.microsoft-user-default-low"], Status.UNKNOWN, "oauth-app-not-authorized"),
])
def test_delegated_consent_depends_on_user_consent_settings(assigned: list[str], status: Status, cause: str) -> None:
    data = fixture_data("microsoft", "oauth-delegated")
    data["org"]["authorizationPolicy"]["defaultUserRolePermissions"]["permissionGrantPoliciesAssigned"] = assigned
    f = finding(evaluate_data(data), "ms.oauth-delegated-consent", "bob@contoso.com")
    assert (f.status, f.cause) == (status, cause)


def test_admin_consent_covers_everyone_without_reading_consent_settings() -> None:
    data = fixture_data("microsoft", "oauth-delegated")
    grant = data["org"]["oauth2PermissionGrants"][0]
    grant["consentType"], grant["principalId"] = "AllPrincipals", None
    data["org"]["authorizationPolicy"] = FORBIDDEN
    assert finding(evaluate_data(data), "ms.oauth-delegated-consent", "bob@contoso.com").status is Status.PASS


def test_app_only_needs_full_access_and_send_as_alone_fails_with_the_fix() -> None:
    data = fixture_data("microsoft", "oauth-app-no-mailbox-permission")
    sp_id = data["org"]["servicePrincipal"]["id"]
    data["mailboxes"][J]["recipientPermissions"].append(
        {"Identity": "jobs", "Trustee": sp_id, "AccessControlType": "Allow", "AccessRights": ["SendAs"],
         "IsInherited": False, "InheritanceType": "None"})
    f = finding(evaluate_data(data), "ms.oauth-mailbox-permission", J)
    assert f.status is Status.FAIL and "Add-MailboxPermission -Identity jobs@contoso.com" in f.message
    assert "-AccessRights FullAccess" in f.message
    # the verdict rests on FullAccess only: an unreadable Get-RecipientPermission changes nothing
    data["mailboxes"][J]["recipientPermissions"] = FORBIDDEN
    assert finding(evaluate_data(data), "ms.oauth-mailbox-permission", J).status is Status.FAIL
    data["mailboxes"][J]["mailboxPermissions"].append(
        {"Identity": "jobs", "User": sp_id, "AccessRights": ["FullAccess"], "Deny": False, "InheritanceType": "All",
         "IsInherited": False, "IsValid": True, "ObjectState": "Unchanged"})
    assert finding(evaluate_data(data), "ms.oauth-mailbox-permission", J).status is Status.PASS


def test_full_access_for_the_app_cannot_be_judged_when_exchange_names_are_unknown() -> None:
    data = fixture_data("microsoft", "oauth-app-no-mailbox-permission")
    data["org"]["exchangeServicePrincipals"] = FORBIDDEN
    assert finding(evaluate_data(data), "ms.oauth-mailbox-permission", J).status is Status.UNKNOWN


# -- Conditional Access: grant controls a password cannot satisfy -------------------------------------

@pytest.mark.parametrize(("grant", "cause", "named"), [
    ({"operator": "OR", "builtInControls": ["compliantDevice", "domainJoinedDevice"]}, "ca-legacy-auth-block",
     "compliantDevice or domainJoinedDevice"),
    ({"operator": "AND", "builtInControls": ["approvedApplication"],
      "termsOfUse": ["0f3f3d2a-6c3e-4a59-9a8e-2d1f7f0b7c11"]}, "ca-legacy-auth-block",
     "approvedApplication and termsOfUse"),
    ({"operator": "OR", "builtInControls": ["compliantApplication", "passwordChange"]}, "ca-legacy-auth-block",
     "compliantApplication or passwordChange"),
    ({"operator": "OR", "builtInControls": [], "customAuthenticationFactors": ["Duo"]}, "ca-legacy-auth-block",
     "customAuthenticationFactors"),
    ({"operator": "OR", "builtInControls": ["mfa", "compliantDevice"]}, "mfa-required", "mfa or compliantDevice"),
    ({"operator": "OR", "builtInControls": [], "authenticationStrength": {
        "id": "00000000-0000-0000-0000-000000000004", "displayName": "Phishing-resistant MFA"}}, "mfa-required",
     "authenticationStrength 'Phishing-resistant MFA'"),
])
def test_any_grant_control_blocks_a_password_only_sign_in(grant: dict[str, Any], cause: str, named: str) -> None:
    data = fixture_data("microsoft", "ca-mfa")
    empty = {"customAuthenticationFactors": [], "termsOfUse": [], "authenticationStrength": None}
    data["org"]["conditionalAccessPolicies"][0]["grantControls"] = {**empty, **grant}
    f = finding(evaluate_data(data), "ms.ca-mfa", J)
    assert (f.status, f.cause) == (Status.FAIL, cause)
    assert f"'Require MFA for all users' (enabled) requires {named}" in f.message


def test_a_policy_with_session_controls_only_grants_a_password_sign_in() -> None:
    data = fixture_data("microsoft", "ca-mfa")
    data["org"]["conditionalAccessPolicies"][0]["grantControls"] = None
    assert finding(evaluate_data(data), "ms.ca-mfa", J).status is Status.PASS


def test_enabled_grant_controls_outside_trusted_locations_without_sender_ip_are_unknown() -> None:
    data = fixture_data("microsoft", "ca-mfa")
    data["org"]["conditionalAccessPolicies"][0]["conditions"]["locations"] = {
        "includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}
    f = finding(evaluate_data(data), "ms.ca-mfa", J)
    assert f.status is Status.UNKNOWN and "--sender-ip CIDR" in f.message
    data["org"]["conditionalAccessPolicies"][0]["state"] = "enabledForReportingButNotEnforced"
    assert finding(evaluate_data(data), "ms.ca-mfa", J).status is Status.WARN
