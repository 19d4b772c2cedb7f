"""Focused tests of single Google checks on variations of the fixture workspaces, the check registry, and
the demo workspaces."""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from preflight.causes import load_catalogue
from preflight.model import Finding, Method, Status
from preflight_providers.google import provider
from preflight_providers.google.checks import ALL_CHECKS
from tests.conftest import evaluate_data, evaluate_fixture, finding, fixture_data

FIXTURES = Path(__file__).parent / "fixtures"
CATALOGUE = load_catalogue()
ROOT = "03ph8a2z0tsroot"
ATS = "814295537361-k2v7atsdemo0q1r8.apps.googleusercontent.com"
Data = dict[str, Any]


def variant(name: str, change: Callable[[Data], None]) -> Data:
    data = copy.deepcopy(fixture_data("google", name))
    change(data)
    return data


def add_policy(data: Data, setting: str, value: dict[str, Any], sort: float, ou: str = ROOT) -> None:
    data["org"]["policies"].append({
        "name": f"policies/ahptest{len(data['org']['policies']):04d}",
        "customer": "customers/C01b2c3d4",
        "policyQuery": {
            "query": f"entity.org_units.exists(org_unit, org_unit.org_unit_id == orgUnitId('{ou}'))",
            "orgUnit": f"orgUnits/{ou}",
            "sortOrder": sort,
        },
        "setting": {"type": f"settings/{setting}", "value": value},
        "type": "ADMIN",
    })


def user_of(data: Data, address: str) -> dict[str, Any]:
    user: dict[str, Any] = data["mailboxes"][address]["user"]
    return user


# --- the registry ----------------------------------------------------------------------------------------


def test_check_ids_are_unique_causes_exist_and_order_follows_the_sign_in() -> None:
    ids = [c.id for c in ALL_CHECKS]
    assert len(ids) == len(set(ids)) and all(i.startswith("google.") for i in ids)
    assert all(c.cause in CATALOGUE for c in ALL_CHECKS)
    assert [c.order for c in ALL_CHECKS] == sorted(c.order for c in ALL_CHECKS)
    assert list(provider.checks()) == ALL_CHECKS


def test_every_resource_a_check_reads_says_what_to_grant() -> None:
    grants = provider.permissions()
    for c in ALL_CHECKS:
        for resource in c.reads:
            assert resource in grants, (c.id, resource)
    text = files("preflight_providers.google").joinpath("data/permissions.toml").read_text(encoding="utf-8")
    raw_grants = tomllib.loads(text)
    assert "super administrator" in raw_grants["policies"]
    for opt_in in ("sendAs", "licenses", "tokens"):
        assert raw_grants[opt_in].startswith("(opt-in:"), opt_in
    assert "no read-only" in raw_grants["licenses"] and "no read-only" in raw_grants["tokens"]


# --- address and account -----------------------------------------------------------------------------------


def test_a_domain_outside_the_workspace_is_not_found() -> None:
    def change(d: Data) -> None:
        d["mailboxes"]["nobody@tailspin.example"]["user"] = {
            "error": {"status": 400, "code": "badRequest", "message": "Domain not found."}}
    f = finding(evaluate_data(variant("group_address", change)), "google.address", "nobody@tailspin.example")
    assert f.status is Status.FAIL and f.cause == "mailbox-not-found" and "Domain not found" in f.message


def test_an_address_in_a_domain_not_listed_says_so() -> None:
    def change(d: Data) -> None:
        d["mailboxes"]["someone@elsewhere.example"] = copy.deepcopy(d["mailboxes"]["nobody@tailspin.example"])
    result = evaluate_data(variant("group_address", change))
    assert "elsewhere.example is not one of this Workspace's domains" in finding(
        result, "google.address", "someone@elsewhere.example").message
    assert "is not one of" not in finding(result, "google.address", "nobody@tailspin.example").message


def test_a_403_for_an_address_in_a_domain_the_workspace_does_not_own_is_not_found_not_a_missing_grant() -> None:
    forbidden = {"error": {"status": 403, "code": "forbidden", "message": "Not Authorized to access this resource/api"}}

    def change(d: Data) -> None:
        d["mailboxes"]["someone@elsewhere.example"] = {"user": copy.deepcopy(forbidden)}
    result = evaluate_data(variant("group_address", change))
    f = finding(result, "google.address", "someone@elsewhere.example")
    assert f.status is Status.FAIL and f.cause == "mailbox-not-found" and "elsewhere.example" in f.message
    assert "Grant" not in f.message
    # The per-user checks have nothing to say about it (google.address does), rather than asking for a scope.
    assert not [x for x in result.findings if x.subject == "someone@elsewhere.example" and x.check != "google.address"]

    def unreadable(d: Data) -> None:
        change(d)
        d["org"]["domains"] = copy.deepcopy(forbidden)
    f = finding(evaluate_data(variant("group_address", unreadable)), "google.address", "someone@elsewhere.example")
    assert f.status is Status.UNKNOWN  # nothing proves the domain is not this Workspace's

    def own_domain(d: Data) -> None:
        d["mailboxes"]["nobody@tailspin.example"]["user"] = copy.deepcopy(forbidden)
    f = finding(evaluate_data(variant("group_address", own_domain)), "google.address", "nobody@tailspin.example")
    assert f.status is Status.UNKNOWN and "admin.directory.user.readonly" in f.message


def test_a_group_that_cannot_be_read_after_a_user_404_is_unknown_naming_the_group_scope() -> None:
    def change(d: Data) -> None:
        d["mailboxes"]["jobs@tailspin.example"]["group"] = {
            "error": {"status": 403, "code": "forbidden", "message": "Not Authorized to access this resource/api"}}
    f = finding(evaluate_data(variant("group_address", change)), "google.address", "jobs@tailspin.example")
    assert f.status is Status.UNKNOWN and "admin.directory.group.readonly" in f.message


def test_archived_and_unreported_account_state() -> None:
    def archived(d: Data) -> None:
        user_of(d, "printer@tailspin.example")["archived"] = True
    f = finding(evaluate_data(variant("basic_2sv_off", archived)), "google.account-state", "printer@tailspin.example")
    assert f.status is Status.FAIL and f.cause == "account-disabled" and "archived" in f.message

    def unreported(d: Data) -> None:
        del user_of(d, "printer@tailspin.example")["suspended"]
    f = finding(evaluate_data(variant("basic_2sv_off", unreported)), "google.account-state", "printer@tailspin.example")
    assert f.status is Status.UNKNOWN and "suspended" in f.message


def test_a_pending_password_change_warns_for_user_sign_ins_only() -> None:
    def change(d: Data) -> None:
        user_of(d, "sales@tailspin.example")["changePasswordAtNextLogin"] = True
    result = evaluate_data(variant("third_party_blocked", change))
    f = finding(result, "google.password-change", "sales@tailspin.example")
    assert f.status is Status.WARN and f.cause == "web-login-required" and f.method is Method.OAUTH_DELEGATED


# --- Gmail service ---------------------------------------------------------------------------------------


def test_no_mailbox_fails_even_when_the_policy_api_is_forbidden() -> None:
    def change(d: Data) -> None:
        user_of(d, "orders@tailspin.example")["isMailboxSetup"] = False
    f = finding(evaluate_data(variant("policy_api_forbidden", change)), "google.gmail-service",
                "orders@tailspin.example")
    assert f.status is Status.FAIL and f.cause == "no-mailbox-license" and "isMailboxSetup false" in f.message


def test_a_licence_without_gmail_fails_and_a_gmail_licence_passes() -> None:
    def essentials(d: Data) -> None:
        lic = d["mailboxes"]["recruiting@tailspin.example"]["licenses"][0]
        lic.update(skuId="1010060001", skuName="Google Workspace Essentials")
    f = finding(evaluate_data(variant("basic_2sv_app_passwords", essentials)), "google.gmail-service",
                "recruiting@tailspin.example")
    assert f.status is Status.FAIL and "Essentials" in f.message
    ok = finding(evaluate_fixture("google", "basic_2sv_app_passwords"), "google.gmail-service",
                 "recruiting@tailspin.example")
    assert ok.status is Status.PASS and ok.evidence["licenses"]
    # Licences were read, so the SYSTEM policy's licence clause was evaluated, not assumed.
    assert "assumed" not in ok.evidence["gmail.service_status.serviceState source"]


def test_no_service_status_policy_with_an_existing_mailbox_is_unknown_not_a_guess() -> None:
    def change(d: Data) -> None:
        d["org"]["policies"] = [p for p in d["org"]["policies"]
                                if p["setting"]["type"] != "settings/gmail.service_status"]
    f = finding(evaluate_data(variant("basic_2sv_off", change)), "google.gmail-service", "printer@tailspin.example")
    assert f.status is Status.UNKNOWN and "isMailboxSetup true" in f.message


def test_unread_groups_make_a_group_decided_service_status_unknown_naming_the_scope() -> None:
    def change(d: Data) -> None:
        d["mailboxes"]["helpdesk@tailspin.example"]["userGroups"] = {
            "error": {"status": 403, "code": "forbidden", "message": "Not Authorized to access this resource/api"}}
    result = evaluate_data(variant("gmail_group_override", change))
    f = finding(result, "google.gmail-service", "helpdesk@tailspin.example")
    assert f.status is Status.UNKNOWN and "userGroups" in f.message and "group.readonly" in f.message


def test_uncollected_licences_leave_licence_targeted_policies_undecided_naming_the_opt_in() -> None:
    # Google's SYSTEM policies target a licence: without the user's licences, whether they apply is unknown.
    def change(d: Data) -> None:
        for box in d["mailboxes"].values():
            box.pop("licenses", None)
    result = evaluate_data(variant("gmail_group_override", change))
    helpdesk = finding(result, "google.gmail-service", "helpdesk@tailspin.example")
    assert helpdesk.status is Status.UNKNOWN and "--with-licenses" in helpdesk.message
    agent = finding(result, "google.gmail-service", "agent@tailspin.example")
    assert agent.status is Status.UNKNOWN and "--with-licenses" in agent.message
    blocked = evaluate_data(variant("third_party_blocked", change))
    f = finding(blocked, "google.api-controls", "sales@tailspin.example", "oauth-delegated")
    assert f.status is Status.UNKNOWN and "--with-licenses" in f.message
    # Where every candidate policy means the same as the default (SYSTEM ALL, allowEnrollment true, no Advanced
    # Protection self-enrolment), the licences do not matter: the checks decide.
    assert finding(result, "google.app-passwords", "helpdesk@tailspin.example").status is Status.PASS
    assert {m.verdict.value for m in result.mailboxes} == {"incomplete"}


def test_a_group_policy_reaches_a_member_of_a_nested_group() -> None:
    # agent@ is not directly in gmail-users@, whose policy turns Gmail on; hasMember says it is, through a nested group.
    def nested(d: Data) -> None:
        d["mailboxes"]["agent@tailspin.example"]["groupMembership"]["01ci93xb3gmlusr"] = {"isMember": True}
    f = finding(evaluate_data(variant("gmail_group_override", nested)), "google.gmail-service",
                "agent@tailspin.example")
    assert f.status is Status.PASS and "group 01ci93xb3gmlusr" in f.message

    def unread(d: Data) -> None:
        del d["mailboxes"]["agent@tailspin.example"]["groupMembership"]
    f = finding(evaluate_data(variant("gmail_group_override", unread)), "google.gmail-service",
                "agent@tailspin.example")
    assert f.status is Status.UNKNOWN and "groupMembership" in f.message and "group.readonly" in f.message

    def refused(d: Data) -> None:
        d["mailboxes"]["agent@tailspin.example"]["groupMembership"]["01ci93xb3gmlusr"] = {
            "error": {"status": 400, "code": "invalid", "message": "Invalid Input"}}
    f = finding(evaluate_data(variant("gmail_group_override", refused)), "google.gmail-service",
                "agent@tailspin.example")
    assert f.status is Status.UNKNOWN and "nested group" in f.message


def test_service_state_spelling_is_case_insensitive() -> None:
    def change(d: Data) -> None:
        add_policy(d, "gmail.service_status", {"serviceState": "disabled"}, 201.5)
    f = finding(evaluate_data(variant("basic_2sv_off", change)), "google.gmail-service", "printer@tailspin.example")
    assert f.status is Status.FAIL


def test_an_org_unit_missing_from_the_list_is_unknown() -> None:
    def change(d: Data) -> None:
        user_of(d, "printer@tailspin.example")["orgUnitPath"] = "/Deleted"
    f = finding(evaluate_data(variant("basic_2sv_off", change)), "google.gmail-service", "printer@tailspin.example")
    assert f.status is Status.UNKNOWN and "/Deleted" in f.message


# --- basic: password retirement, 2SV, app passwords --------------------------------------------------------


def test_before_the_retirement_date_password_sign_in_is_a_warning() -> None:
    f = finding(evaluate_data(fixture_data("google", "basic_2sv_off"), now=datetime(2024, 1, 10, tzinfo=UTC)),
                "google.password-sign-in",
                "printer@tailspin.example")
    assert f.status is Status.WARN and f.cause == "password-login-retired" and "2024-09-30" in f.message


def test_2sv_enrolment_not_allowed_names_the_policy() -> None:
    def change(d: Data) -> None:
        add_policy(d, "security.two_step_verification_enrollment", {"allowEnrollment": False}, 201.3)
    f = finding(evaluate_data(variant("basic_2sv_off", change)), "google.2sv", "printer@tailspin.example")
    assert f.status is Status.FAIL and "allowEnrollment false" in f.message and "policies/ahptest" in f.message


@pytest.mark.parametrize("factor", ["PASSKEY_ONLY", "PASSKEY_PLUS_SECURITY_CODE",
                                    "PASSKEY_PLUS_IP_BOUND_SECURITY_CODE"])
def test_security_key_only_with_or_without_security_codes_disables_app_passwords(factor: str) -> None:
    # "Only security key and allow security codes with/without remote access" (ScubaGoggles' names): the method
    # is still security keys only, and enforcing security keys disables app passwords (answer 9176599).
    def change(d: Data) -> None:
        for p in d["org"]["policies"]:
            if p["setting"]["value"].get("allowedSignInFactorSet") == "PASSKEY_ONLY":
                p["setting"]["value"]["allowedSignInFactorSet"] = factor
    result = evaluate_data(variant("security_key_only", change))
    f = finding(result, "google.app-passwords", "deploy@tailspin.example")
    base = finding(evaluate_fixture("google", "security_key_only"), "google.app-passwords", "deploy@tailspin.example")
    assert f.status is base.status and f.status in (Status.FAIL, Status.WARN) and factor in f.message


def test_an_unknown_sign_in_factor_set_is_unknown() -> None:
    def change(d: Data) -> None:
        add_policy(d, "security.two_step_verification_enforcement_factor",
                   {"allowedSignInFactorSet": "SOMETHING_NEW"}, 201.4)
    result = evaluate_data(variant("basic_2sv_app_passwords", change))
    assert finding(result, "google.app-passwords", "recruiting@tailspin.example").status is Status.UNKNOWN
    assert finding(result, "google.password-sign-in", "recruiting@tailspin.example").status is Status.UNKNOWN


def test_advanced_protection_self_enrolment_is_a_risk_to_app_passwords() -> None:
    def change(d: Data) -> None:
        add_policy(d, "security.advanced_protection_program", {"enableAdvancedProtectionSelfEnrollment": True},
                   201.6)
    f = finding(evaluate_data(variant("basic_2sv_app_passwords", change)), "google.app-passwords",
                "recruiting@tailspin.example")
    assert f.status is Status.WARN and "Advanced Protection" in f.message


# --- OAuth: API controls ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "status"),
    [
        # Blocked for unconfigured apps; the sending app may be configured as Trusted, which no API shows.
        ("BLOCK_ALL", Status.UNKNOWN),  # documented spelling
        ("BLOCK_ALL_SCOPES", Status.UNKNOWN),  # what the API returns
        ("ALLOW_SIGN_IN_ONLY", Status.UNKNOWN),
        ("ALLOW_SIGN_IN_SCOPES_ONLY", Status.UNKNOWN),
        ("UNSPECIFIED_UBER_BLOCK", Status.PASS),  # "Allow users to access any third-party apps"
        ("ACCESS_LEVEL_UNSPECIFIED", Status.UNKNOWN),
        ("A_FUTURE_VALUE", Status.UNKNOWN),
    ],
)
def test_unconfigured_app_access_levels_in_both_spellings(level: str, status: Status) -> None:
    def change(d: Data) -> None:
        add_policy(d, "api_controls.unconfigured_third_party_apps", {"accessLevel": level}, 201.9)
    f = finding(evaluate_data(variant("basic_2sv_app_passwords", change)), "google.api-controls",
                "recruiting@tailspin.example")
    assert f.status is status, f.message
    if level.startswith(("BLOCK", "ALLOW")):
        assert level in f.message and "Trusted" in f.message and "Manage third-party app access" in f.message


def test_no_unconfigured_apps_policy_takes_the_console_default_and_says_so() -> None:
    def change(d: Data) -> None:
        d["org"]["policies"] = [p for p in d["org"]["policies"]
                                if p["setting"]["type"] != "settings/api_controls.unconfigured_third_party_apps"]
    f = finding(evaluate_data(variant("basic_2sv_app_passwords", change)), "google.api-controls",
                "recruiting@tailspin.example")
    assert f.status is Status.PASS and "Admin console default" in f.message


def test_a_user_without_the_mailbox_flag_is_not_in_the_documented_shape() -> None:
    # users.get always reports isMailboxSetup; without it the inferred "no policy means Gmail off" default
    # would decide alone (issue 11: a missing isMailboxSetup turned a fail into a pass).
    def change(d: Data) -> None:
        d["org"]["policies"] = [p for p in d["org"]["policies"]
                                if p["setting"]["type"] != "settings/gmail.service_status"]
        del user_of(d, "printer@tailspin.example")["isMailboxSetup"]
    f = finding(evaluate_data(variant("basic_2sv_off", change)), "google.gmail-service", "printer@tailspin.example")
    assert f.status is Status.UNKNOWN and "user.isMailboxSetup is missing" in f.message


def test_merge_keeps_a_lesser_policys_access_level_when_a_greater_one_sets_only_other_fields() -> None:
    def change(d: Data) -> None:
        add_policy(d, "api_controls.unconfigured_third_party_apps", {"accessLevel": "BLOCK_ALL_SCOPES"}, 201.1)
        add_policy(d, "api_controls.unconfigured_third_party_apps",
                   {"accessLevelUnder18": "UNDERAGE_UBER_BLOCK_UNSPECIFIED"}, 201.2)
    f = finding(evaluate_data(variant("basic_2sv_app_passwords", change)), "google.api-controls",
                "recruiting@tailspin.example")
    assert f.status is Status.UNKNOWN and "BLOCK_ALL_SCOPES" in f.message


@pytest.mark.parametrize(("entry", "status"), [
    ({"scopesGroup": "GMAIL_HIGH_RISK", "isEnabled": False}, Status.UNKNOWN),  # unless the app is Trusted
    ({"scopesGroup": "GMAIL_ALL"}, Status.UNKNOWN),
    # Unrestricted: Prowler reads only isEnabled false as restricted, ScubaGoggles' restricted entries all carry
    # false, and Google's supported-settings page calls the field the Restricted/Unrestricted switch.
    ({"scopesGroup": "GMAIL_ALL", "isEnabled": True}, Status.PASS),
    ({"scopesGroup": "DRIVE_ALL", "isEnabled": False}, Status.PASS),
])
def test_restricted_google_services(entry: dict[str, Any], status: Status) -> None:
    def change(d: Data) -> None:
        add_policy(d, "api_controls.google_services", {"services": [entry]}, 201.8)
    f = finding(evaluate_data(variant("basic_2sv_app_passwords", change)), "google.api-controls",
                "recruiting@tailspin.example")
    assert f.status is status, f.message


@pytest.mark.parametrize(("client_id", "app_id", "granted"), [
    (ATS, ATS, True),
    # The short form of a client id (GAM's TRUNCATE_CLIENT_ID; a bare-number client like GAM's 1095133494869)
    ("1095133494869.apps.googleusercontent.com", "1095133494869", True),
    (ATS, ATS.removesuffix(".apps.googleusercontent.com"), True),
    # A project number is not a client: another client of the same project is not this app.
    (ATS, "814295537361", False),
])
def test_a_token_the_user_already_granted_the_app_passes_api_controls(client_id: str, app_id: str,
                                                                      granted: bool) -> None:
    def change(d: Data) -> None:
        d["options"]["app_id"] = app_id
        uid = user_of(d, "sales@tailspin.example")["id"]
        d["mailboxes"]["sales@tailspin.example"]["tokens"] = [{
            "kind": "admin#directory#token", "etag": '"t"', "clientId": client_id, "displayText": "Acme ATS",
            "anonymous": False, "nativeApp": False, "userKey": uid, "scopes": ["https://mail.google.com/"]}]
    f = finding(evaluate_data(variant("third_party_blocked", change)), "google.api-controls", "sales@tailspin.example",
                "oauth-delegated")
    if granted:
        assert f.status is Status.PASS and f.evidence["token.clientId"] == client_id
    else:
        assert f.status is Status.UNKNOWN and "has not granted it yet" in f.message


def test_blocked_api_controls_without_a_grant_on_record_ask_to_check_the_app_is_trusted() -> None:
    def change(d: Data) -> None:
        d["options"]["app_id"] = ATS
        d["mailboxes"]["sales@tailspin.example"]["tokens"] = []
    result = evaluate_data(variant("third_party_blocked", change))
    f = finding(result, "google.api-controls", "sales@tailspin.example", "oauth-delegated")
    assert f.status is Status.UNKNOWN
    assert f"Check client id {ATS} in" in f.message and "has not granted it yet" in f.message
    assert "Trusted" in f.message and "domain-wide delegation" in f.message and "162106" in f.message
    assert "Manage third-party app access" in f.message and "BLOCK_ALL_SCOPES" in f.message
    unread = finding(result, "google.api-controls", "campaigns@tailspin.example", "oauth-delegated")
    assert unread.status is Status.UNKNOWN and "--with-tokens" in unread.message


def test_the_delegation_check_asks_for_the_app_id_when_none_was_given() -> None:
    def change(d: Data) -> None:
        d["options"]["app_id"] = None
    f = finding(evaluate_data(variant("third_party_blocked", change)), "google.dwd-grant", None)
    assert f.status is Status.UNKNOWN and "--app-id" in f.message


# --- send-as ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status_value", "expected"), [
    ("accepted", Status.PASS), ("pending", Status.FAIL), ("verificationStatusUnspecified", Status.UNKNOWN)])
def test_send_as_verification(status_value: str, expected: Status) -> None:
    def change(d: Data) -> None:
        d["mailboxes"]["recruiting@tailspin.example"]["sendAs"][1]["verificationStatus"] = status_value
    f = finding(evaluate_data(variant("basic_2sv_app_passwords", change)), "google.send-as",
                "recruiting@tailspin.example")
    assert f.status is expected
    if expected is Status.FAIL:
        assert f.cause == "send-as-denied"


def test_send_as_an_address_not_listed_fails_and_unread_send_as_is_unknown_naming_the_opt_in() -> None:
    def other(d: Data) -> None:
        d["options"]["from_addresses"] = {"recruiting@tailspin.example": "ceo@tailspin.example"}
    f = finding(evaluate_data(variant("basic_2sv_app_passwords", other)), "google.send-as",
                "recruiting@tailspin.example")
    assert f.status is Status.FAIL and "ceo@tailspin.example" in f.message

    def unread(d: Data) -> None:
        del d["mailboxes"]["recruiting@tailspin.example"]["sendAs"]
    f = finding(evaluate_data(variant("basic_2sv_app_passwords", unread)), "google.send-as",
                "recruiting@tailspin.example")
    assert f.status is Status.UNKNOWN and "--with-sendas" in f.message


def test_sending_as_itself_needs_no_send_as_finding() -> None:
    result = evaluate_fixture("google", "basic_2sv_off")
    assert not [f for f in result.findings if f.check == "google.send-as"]


# --- demo workspaces -------------------------------------------------------------------------------------

DEMO_STORIES = {
    "fabrikam.json": {
        ("careers@fabrikam.example", "basic"): "at-risk",
        ("careers@fabrikam.example", "oauth-delegated"): "ready",
        ("jobs@fabrikam.example", "basic"): "blocked",
        ("talent@fabrikam.example", "oauth-delegated"): "blocked",
        ("support@fabrikam.example", "basic"): "blocked",
        ("support@fabrikam.example", "oauth-delegated"): "incomplete",  # is the ATS Trusted? no API says
        ("jane.doe@fabrikam.example", "oauth-delegated"): "blocked",
    },
    "northwind.json": {
        ("orders@northwind.example", "basic"): "incomplete",
        ("invoices@northwind.example", "basic"): "blocked",
        ("invoices@northwind.example", "oauth-delegated"): "incomplete",
        ("noreply@northwind.example", "basic"): "blocked",
    },
    "woodgrove.json": {
        ("alerts@woodgrove.example", "basic"): "blocked",
        ("alerts@woodgrove.example", "oauth-app"): "blocked",
        ("statements@woodgrove.example", "basic"): "at-risk",
        ("statements@woodgrove.example", "oauth-app"): "incomplete",
        ("loans@woodgrove.example", "oauth-app"): "blocked",
    },
}


def test_demo_workspaces_tell_their_stories() -> None:
    demos = {item.name: item for item in provider.demo_snapshots()}
    assert set(DEMO_STORIES) <= set(demos) and len(demos) >= 2
    for name, story in DEMO_STORIES.items():
        data = json.loads(demos[name].read_text(encoding="utf-8"))
        tenant = data["tenant"]
        assert tenant["name"].endswith("(simulated)") and tenant["id"].startswith("C0") and tenant["domain"]
        assert len(data["mailboxes"]) >= 3
        result = evaluate_data(data)
        got = {(m.address, m.method.value): m.verdict.value for m in result.mailboxes}
        assert {k: got[k] for k in story} == story, name
        assert not [f for f in result.findings if "documented shape" in f.message], name


def test_a_product_whose_licences_could_not_be_listed_leaves_only_its_clauses_undecided() -> None:
    # gmail_group_override's policies target Google-Apps/1010020028. Licences of another product failing changes
    # nothing; Google-Apps itself failing leaves those clauses undecided for a user not seen holding the SKU.
    def other_product(d: Data) -> None:
        d["org"]["licenseErrors"] = {"101034": {"error": {"status": 503, "code": "backendError",
                                                          "message": "Backend Error"}}}
    base = finding(evaluate_fixture("google", "gmail_group_override"), "google.gmail-service",
                   "helpdesk@tailspin.example")
    same = finding(evaluate_data(variant("gmail_group_override", other_product)), "google.gmail-service",
                   "helpdesk@tailspin.example")
    assert same.status is base.status is Status.PASS

    def google_apps(d: Data) -> None:
        d["org"]["licenseErrors"] = {"Google-Apps": {"error": {"status": 403, "code": "forbidden",
                                                               "message": "Not Authorized"}}}
        d["mailboxes"]["helpdesk@tailspin.example"]["licenses"] = []
    f = finding(evaluate_data(variant("gmail_group_override", google_apps)), "google.gmail-service",
                "helpdesk@tailspin.example")
    assert f.status is Status.UNKNOWN and "Google-Apps" in f.message and "could not be read" in f.message


def test_existing_app_passwords_are_named_with_their_last_use() -> None:
    result = evaluate_fixture("google", "basic_2sv_app_passwords")
    f = finding(result, "google.password-sign-in", "recruiting@tailspin.example")
    assert f.status is Status.WARN and f.cause == "app-password-required"
    assert "has 2 app password(s)" in f.message and "ATS mailer (created 2025-10-28 08:00 UTC, last used " \
        "2025-11-25 07:40 UTC)" in f.message and "Old scanner" in f.message and "never used" in f.message

    def none(d: Data) -> None:
        d["mailboxes"]["recruiting@tailspin.example"]["asps"] = []
    f = finding(evaluate_data(variant("basic_2sv_app_passwords", none)), "google.password-sign-in",
                "recruiting@tailspin.example")
    assert f.status is Status.WARN and "has no app password yet" in f.message

    def unread(d: Data) -> None:
        del d["mailboxes"]["recruiting@tailspin.example"]["asps"]
    f = finding(evaluate_data(variant("basic_2sv_app_passwords", unread)), "google.password-sign-in",
                "recruiting@tailspin.example")
    assert f.status is Status.WARN and "app password(s)" not in f.message and "no app password yet" not in f.message


# --- the audit log (opt-in, --with-audit-log) --------------------------------------------------------------


def _delegation(app_id: str, when: str, name: str, scopes: list[str]) -> dict[str, Any]:
    """A Reports API admin activity (admin.reports_v1 discovery, schema Activity)."""
    return {"kind": "admin#reports#activity",
            "id": {"time": when, "uniqueQualifier": "1", "applicationName": "admin", "customerId": "C01b2c3d4"},
            "actor": {"callerType": "USER", "email": "it-admin@tailspin.example"},
            "events": [{"type": "DOMAIN_SETTINGS", "name": name, "parameters": [
                {"name": "API_CLIENT_NAME", "value": app_id}, {"name": "API_SCOPES", "multiValue": scopes}]}]}


def test_the_admin_audit_log_decides_the_delegation_grant_within_its_retention() -> None:
    mail = "https://mail.google.com/"

    def logged(*activities: dict[str, Any]) -> Callable[[Data], None]:
        def change(d: Data) -> None:
            d["org"]["delegationEvents"] = list(activities)
        return change

    def dwd(change: Callable[[Data], None]) -> Finding:
        return finding(evaluate_data(variant("third_party_blocked", change)), "google.dwd-grant", None)

    granted = dwd(logged(_delegation(ATS, "2026-10-02T14:11:09.512Z", "AUTHORIZE_API_CLIENT_ACCESS", [mail])))
    assert granted.status is Status.PASS and "2026-10-02T14:11:09.512Z" in granted.message
    removed = dwd(logged(_delegation(ATS, "2026-10-02T14:11:09.512Z", "AUTHORIZE_API_CLIENT_ACCESS", [mail]),
                         _delegation(ATS, "2026-11-02T09:00:00.000Z", "REMOVE_API_CLIENT_ACCESS", [])))
    assert removed.status is Status.FAIL and removed.cause == "oauth-app-not-authorized"
    assert "removed" in removed.message
    other_scopes = dwd(logged(_delegation(ATS, "2026-10-02T14:11:09.512Z", "AUTHORIZE_API_CLIENT_ACCESS",
                                          ["https://www.googleapis.com/auth/calendar"])))
    assert other_scopes.status is Status.UNKNOWN and "calendar" in other_scopes.message
    # The shipped fixture logs another client only: nothing is known of this one beyond the log's retention.
    silent = finding(evaluate_fixture("google", "third_party_blocked"), "google.dwd-grant", None)
    assert silent.status is Status.UNKNOWN and "about 6 months" in silent.message
    unread = finding(evaluate_fixture("google", "group_address"), "google.dwd-grant", None)
    assert unread.status is Status.UNKNOWN and "--with-audit-log" in unread.message


def test_an_advanced_protection_enrolment_in_the_audit_log_removes_app_passwords() -> None:
    # The fixture logs an enrolment and a later unenrolment: app passwords are available again.
    base = finding(evaluate_fixture("google", "basic_2sv_app_passwords"), "google.app-passwords",
                   "recruiting@tailspin.example")
    assert base.status is Status.PASS
    assert base.evidence["audit log (Advanced Protection)"] == ["2026-08-03T16:40:12.000Z titanium_enroll",
                                                                "2026-09-14T08:02:51.000Z titanium_unenroll"]

    def enrolled(d: Data) -> None:
        d["mailboxes"]["recruiting@tailspin.example"]["advancedProtectionEvents"].pop()  # drop the unenrolment
    f = finding(evaluate_data(variant("basic_2sv_app_passwords", enrolled)), "google.app-passwords",
                "recruiting@tailspin.example")
    assert f.status is Status.FAIL and "Advanced Protection on 2026-08-03T16:40:12.000Z" in f.message
    basic = finding(evaluate_data(variant("basic_2sv_app_passwords", enrolled)), "google.password-sign-in",
                    "recruiting@tailspin.example")
    assert basic.status is Status.FAIL
