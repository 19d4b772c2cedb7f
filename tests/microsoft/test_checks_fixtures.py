"""Fixture tenants, one per row of the troubleshooting table: verdict per mailbox and method, blocking causes
in the order a sign-in meets them, through the real engine, catalogue and permission list."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from preflight.causes import load_catalogue
from preflight.exitcodes import Exit, exit_code
from preflight.model import Status, TargetResult
from preflight_providers.microsoft import provider
from preflight_providers.microsoft.checks import ALL_CHECKS
from tests.conftest import evaluate_data, evaluate_fixture, finding, fixture_data

FIXTURES = Path(__file__).parent / "fixtures"
AFTER = datetime(2027, 1, 15, 12, tzinfo=UTC)
CATALOGUE = load_catalogue()

J, R = "jobs@contoso.com", "recruiting@contoso.com"
B, D, A = "basic", "oauth-delegated", "oauth-app"
NA = "oauth-app-not-authorized"

# fixture -> {(mailbox, method): (verdict, blocking causes in order)}
EXPECTED: dict[str, dict[tuple[str, str], tuple[str, list[str]]]] = {
    "shared-mailbox": {(R, B): ("blocked", ["shared-mailbox"]), (R, D): ("blocked", ["shared-mailbox"]),
                       (R, A): ("ready", [])},
    "smtp-auth-off-tenant": {(J, B): ("blocked", ["smtp-auth-disabled-tenant"]),
                             (J, A): ("blocked", ["smtp-auth-disabled-tenant"])},
    # works: the mailbox overrides the organisation (Basic is only at risk from its retirement)
    "smtp-auth-off-tenant-on-mailbox": {(J, B): ("at-risk", []), (J, A): ("ready", [])},
    "smtp-auth-off-mailbox": {(J, B): ("blocked", ["smtp-auth-disabled-mailbox"]),
                              (J, A): ("blocked", ["smtp-auth-disabled-mailbox"])},
    "security-defaults": {(J, B): ("blocked", ["security-defaults"]), (J, A): ("ready", []),
                          ("alerts@contoso.com", B): ("blocked", ["security-defaults", "smtp-auth-disabled-tenant"]),
                          ("alerts@contoso.com", A): ("blocked", ["smtp-auth-disabled-tenant"])},
    "ca-legacy-excluded": {(J, B): ("at-risk", [])},
    "ca-legacy-included": {(J, B): ("blocked", ["ca-legacy-auth-block"])},
    "ca-location-trusted": {(J, B): ("at-risk", []), (J, D): ("ready", []), (J, A): ("ready", [])},
    # "block device code flow" policies (Maester Test-MtCaDeviceCodeFlow): not a password sign-in's flow
    "ca-device-code-flow": {(J, B): ("at-risk", []), (J, D): ("at-risk", []), (J, A): ("ready", [])},
    # a browser-only location block: not Basic ("other"); for delegated OAuth it depends on whether the
    # sending app is a confidential (browser) or public (mobile/desktop) client, unknown for a multi-tenant app
    "ca-client-app-types": {(J, B): ("at-risk", []), (J, D): ("incomplete", []), (J, A): ("ready", [])},
    "ca-location-outside": {(J, B): ("blocked", ["ca-location-block"]), (J, D): ("blocked", ["ca-location-block"]),
                            (J, A): ("ready", [])},
    "auth-policy-no-basic": {(J, B): ("blocked", ["basic-auth-policy-block"]),
                             ("scanner@contoso.com", B): ("at-risk", [])},
    "oauth-app-ready": {(J, A): ("ready", [])},
    # Exchange Foundation alone (EMS E3) gives no mailbox; a shared mailbox with sign-in enabled can sign in;
    # room, equipment and scheduling mailboxes need no licence and, blocked by design, only send app-only
    "mailbox-kinds": {("analyst@contoso.com", B): ("blocked", ["no-mailbox-license"]),
                      ("analyst@contoso.com", A): ("blocked", ["no-mailbox-license"]),
                      ("frontdesk@contoso.com", B): ("at-risk", []), ("frontdesk@contoso.com", A): ("ready", []),
                      **{(f"{m}@contoso.com", x): v for m in ("boardroom", "bookings", "projector")
                         for x, v in ((B, ("blocked", ["shared-mailbox"])), (A, ("ready", [])))}},
    "oauth-app-not-consented": {(J, A): ("blocked", [NA])},
    "oauth-app-no-role": {(J, A): ("blocked", [NA])},
    "oauth-app-no-exchange-sp": {(J, A): ("blocked", [NA])},
    "oauth-app-wrong-object-id": {(J, A): ("blocked", [NA])},
    "oauth-app-no-mailbox-permission": {(J, A): ("blocked", [NA])},
    "oauth-app-no-app-id": {(J, A): ("incomplete", [])},
    "forbidden": {(m, x): ("incomplete", []) for m in (J, R) for x in (B, D, A)},
    "accounts": {(J, B): ("at-risk", []), (J, D): ("incomplete", []),
                 ("careers@contoso.com", B): ("blocked", ["alias-address"]),
                 ("careers@contoso.com", D): ("blocked", ["alias-address"]),
                 ("former.employee@contoso.com", B): ("blocked", ["account-disabled"]),
                 ("former.employee@contoso.com", D): ("blocked", ["account-disabled"]),
                 ("contractor@contoso.com", B): ("blocked", ["no-mailbox-license"]),
                 ("contractor@contoso.com", D): ("blocked", ["no-mailbox-license"]),
                 ("temp@contoso.com", B): ("at-risk", []), ("temp@contoso.com", D): ("incomplete", []),
                 ("missing@contoso.com", B): ("blocked", ["mailbox-not-found"]),
                 ("missing@contoso.com", D): ("blocked", ["mailbox-not-found"])},
    "ca-mfa": {(J, B): ("blocked", ["mfa-required"]), ("sync@contoso.com", B): ("at-risk", [])},
    "oauth-delegated": {("alice@contoso.com", D): ("ready", []),
                        ("bob@contoso.com", D): ("blocked", ["third-party-apps-blocked"])},
    "send-as": {(J, B): ("at-risk", []), ("sales@contoso.com", B): ("blocked", ["send-as-denied"]),
                ("alerts@contoso.com", B): ("incomplete", []),
                ("noreply@contoso.com", B): ("blocked", ["shared-mailbox"])},
    # Microsoft's What If says the AllTrusted exclusion covers the sender (an MFA trusted IP): not blocked
    "whatif-alltrusted": {(J, B): ("at-risk", []), (J, D): ("ready", [])},
    "per-user-mfa-enforced": {(J, B): ("blocked", ["mfa-required"]), (J, A): ("ready", [])},
    "workload-location": {(J, A): ("ready", [])},
    # no Entra SMTP.SendAsApp, no FullAccess: an organisation-wide RBAC for Applications assignment instead
    "oauth-app-rbac": {(J, A): ("ready", [])},
    # the sign-in log: Basic SMTP AUTH still in use (and one wrong password)
    "sign-ins": {(J, B): ("at-risk", []), (J, A): ("ready", [])},
    "several-layers": {(R, B): ("blocked", ["shared-mailbox", "ca-legacy-auth-block", "basic-auth-policy-block",
                                            "smtp-auth-disabled-tenant"])},
}


def verdicts(result: TargetResult) -> dict[tuple[str, str], tuple[str, list[str]]]:
    return {(m.address, m.method.value): (m.verdict.value, m.blocking) for m in result.mailboxes}


def test_every_fixture_has_expectations() -> None:
    assert {p.stem for p in FIXTURES.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_verdicts(name: str) -> None:
    assert verdicts(evaluate_fixture("microsoft", name)) == EXPECTED[name]


def test_every_failure_names_a_catalogue_cause_with_a_microsoft_fix_for_the_subject() -> None:
    for name in EXPECTED:
        for f in evaluate_fixture("microsoft", name).findings:
            if f.status in (Status.FAIL, Status.WARN):
                assert f.cause is not None and f.cause in CATALOGUE and f.remediation, (name, f.check)
                assert f.remediation == CATALOGUE.get(f.cause).fix("microsoft", f.subject, f.evidence)
                assert f.evidence, (name, f.check)


def test_forbidden_everywhere_is_all_unknown_never_pass_and_exits_3() -> None:
    result = evaluate_fixture("microsoft", "forbidden")
    statuses = {f.check: f.status for f in result.findings}
    assert Status.PASS not in statuses.values() and Status.FAIL not in statuses.values()
    # only the date-based retirement warning needs nothing from the tenant
    assert {c for c, s in statuses.items() if s is not Status.UNKNOWN} == {"ms.basic-auth-retirement"}
    for f in result.findings:
        if f.status is Status.UNKNOWN:
            assert "403" in f.message and f.remediation and f.remediation.startswith("Grant "), f.check
    assert exit_code([result]) is Exit.INCOMPLETE


def test_smtp_auth_finding_names_the_setting_its_value_and_where_it_came_from() -> None:
    f = finding(evaluate_fixture("microsoft", "smtp-auth-off-tenant"), "ms.smtp-auth-enabled", J)
    assert f.cause == "smtp-auth-disabled-tenant"
    assert "Get-TransportConfig SmtpClientAuthenticationDisabled: True" in f.message
    assert f.evidence == {"casMailbox.SmtpClientAuthenticationDisabled": None,
                          "transportConfig.SmtpClientAuthenticationDisabled": True}
    assert "Set-CASMailbox -Identity jobs@contoso.com -SmtpClientAuthenticationDisabled $false" in str(f.remediation)
    # "True"/"False" strings from the REST endpoint are read as booleans
    g = finding(evaluate_fixture("microsoft", "smtp-auth-off-mailbox"), "ms.smtp-auth-enabled", J)
    assert g.cause == "smtp-auth-disabled-mailbox" and g.evidence["casMailbox.SmtpClientAuthenticationDisabled"] is True


def test_basic_auth_retirement_warns_before_the_date_and_is_unknown_after_it() -> None:
    before = finding(evaluate_fixture("microsoft", "smtp-auth-off-tenant-on-mailbox"), "ms.basic-auth-retirement")
    assert before.status is Status.WARN and "2026-12-31" in before.message
    assert "any day now" not in before.message
    # "End of December 2026" names no day: through December it can happen any day
    december = finding(evaluate_fixture("microsoft", "smtp-auth-off-tenant-on-mailbox",
                                        now=datetime(2026, 12, 3, tzinfo=UTC)), "ms.basic-auth-retirement")
    assert december.status is Status.WARN and "any day now" in december.message
    last_day = evaluate_fixture("microsoft", "smtp-auth-off-tenant-on-mailbox",
                                now=datetime(2026, 12, 31, 23, tzinfo=UTC))
    assert finding(last_day, "ms.basic-auth-retirement").status is Status.WARN
    # after it: disabled by default, but an admin may have re-enabled it and nothing shows which
    after = evaluate_fixture("microsoft", "smtp-auth-off-tenant-on-mailbox", now=AFTER)
    f = finding(after, "ms.basic-auth-retirement")
    assert f.status is Status.UNKNOWN and "turn it back on" in f.message and "cannot be read" in f.message
    assert f.evidence["re-enable setting"].startswith("not documented")
    assert verdicts(after)[(J, B)] == ("incomplete", [])
    assert verdicts(after)[(J, A)] == ("ready", [])
    # a tenant that blocks Basic anyway is still blocked by what it shows
    blocked = evaluate_fixture("microsoft", "auth-policy-no-basic", now=AFTER)
    assert verdicts(blocked)[(J, B)] == ("blocked", ["basic-auth-policy-block"])


def test_location_block_names_the_policy_and_the_sender_ip() -> None:
    f = next(f for f in evaluate_fixture("microsoft", "ca-location-outside").findings
             if f.check == "ms.ca-location" and f.status is Status.FAIL)
    assert "'Block sign-in outside trusted locations' (enabled)" in f.message and "192.0.2.10/32" in f.message
    trusted = evaluate_fixture("microsoft", "ca-location-trusted")
    assert finding(trusted, "ms.ca-location", J, method="basic").status is Status.PASS
    # app-only tokens are not evaluated by user-targeted policies: no location finding for oauth-app
    assert all(f.method is None or f.method.value != A for f in trusted.findings if f.check == "ms.ca-location")


def test_device_code_flow_policies_do_not_block_basic_and_only_warn_for_delegated() -> None:
    result = evaluate_fixture("microsoft", "ca-device-code-flow")
    assert finding(result, "ms.ca-legacy-auth", J).status is Status.PASS
    delegated = next(f for f in result.findings if f.check == "ms.ca-location" and f.method and f.method.value == D)
    assert delegated.status is Status.WARN and "deviceCodeFlow" in delegated.message
    # the same policies without the flow condition block both
    data = fixture_data("microsoft", "ca-device-code-flow")
    for policy in data["org"]["conditionalAccessPolicies"]:
        policy["conditions"]["authenticationFlows"] = {"transferMethods": "none"}
    assert verdicts(evaluate_data(data))[(J, B)] == ("blocked", ["ca-legacy-auth-block",
                                  "ca-location-block"])
    # a flow Graph may add later is not guessed at
    for policy in data["org"]["conditionalAccessPolicies"]:
        policy["conditions"]["authenticationFlows"] = {"transferMethods": "deviceCodeFlow,unknownFutureValue"}
    odd = finding(evaluate_data(data), "ms.ca-legacy-auth", J)
    assert odd.status is Status.UNKNOWN and "unknownFutureValue" in odd.message


@pytest.mark.parametrize(("client_types", "registration", "verdict"), [
    (["browser"], {"web": {"redirectUris": ["https://app.example/callback"]}}, ("blocked", ["ca-location-block"])),
    (["browser"], {"publicClient": {"redirectUris": ["http://localhost"]}}, ("ready", [])),
    (["browser"], {"spa": {"redirectUris": ["https://app.example/"]}}, ("blocked", ["ca-location-block"])),
    (["mobileAppsAndDesktopClients"], {"isFallbackPublicClient": True}, ("blocked", ["ca-location-block"])),
    (["mobileAppsAndDesktopClients"], {"web": {"redirectUris": ["https://app.example/callback"]}}, ("ready", [])),
    (["mobileAppsAndDesktopClients"], None, ("incomplete", [])),  # multi-tenant app: registration not here
    (["mobileAppsAndDesktopClients"], {"web": {"redirectUris": ["https://a.example/"]},
                                       "publicClient": {"redirectUris": ["http://localhost"]}}, ("incomplete", [])),
    (["browser", "mobileAppsAndDesktopClients"], None, ("blocked", ["ca-location-block"])),  # either way
])
def test_delegated_oauth_client_app_type_comes_from_the_app_registration(
        client_types: list[str], registration: dict[str, Any] | None, verdict: tuple[str, list[str]]) -> None:
    """Microsoft's CA docs: "services registered as an OAuth confidential client" are Browser clients."""
    data = fixture_data("microsoft", "ca-client-app-types")
    data["org"]["conditionalAccessPolicies"][0]["conditions"]["clientAppTypes"] = client_types
    if registration is not None:
        data["org"]["application"] = {"id": "0d9e6f3a-1b2c-4d5e-8f90-a1b2c3d4e5f6", "appId": data["options"]["app_id"],
                                      "displayName": "Acme Recruiting", **registration}
    assert verdicts(evaluate_data(data))[(J, D)] == verdict


# cisagov/ScubaGear Testing/Unit/Rego/AAD/AADConfig_01_test.rego (MS.AAD.1.1v1, 4d34e9a4): its base policy
# and json.patch variants, with ScubaGear's verdict. ScubaGear asks "is legacy auth blocked for every user and
# every app"; ms.ca-legacy-auth asks "does a policy block Basic SMTP for this mailbox", so some rows differ.
SCUBA_JOBS = "cfe9a131-06e0-5f3a-a022-c15c32419d5f"  # jobs@contoso.com in ca-legacy-included


def _set(*path: str, value: Any) -> Any:
    def apply(policy: dict[str, Any]) -> None:
        where = policy
        for key in path[:-1]:
            where = where[key]
        where[path[-1]] = value
    return apply


@pytest.mark.parametrize(("patch", "scuba_meets", "ours"), [
    (None, True, Status.FAIL),  # test_NoExclusionsConditions_Correct: blocked for everyone, jobs@ included
    # test_NoExclusionsIncludeApplications_Incorrect: ScubaGear wants All apps; Office365 still covers Exchange
    # Online, which is what SMTP AUTH signs in to, so Basic SMTP is blocked all the same (a disagreement)
    (_set("conditions", "applications", "includeApplications", value=["Office365"]), False, Status.FAIL),
    # test_NoExclusionsIncludeUsers_Incorrect: another user only; jobs@ is not blocked (agrees for jobs@)
    (_set("conditions", "users", "includeUsers", value=["49b4dcdf-1f90-41a5-9dd7-5e7c3609b423"]), False,
     Status.PASS),
    # test_NoExclusionsExcludeUsers_Incorrect, with jobs@ as the excluded user: not blocked for jobs@
    (_set("conditions", "users", "excludeUsers", value=[SCUBA_JOBS]), False, Status.PASS),
    # test_NoExclusionsExcludeGroups_Incorrect: a group jobs@ is not in; ScubaGear fails the tenant for the
    # gap, jobs@ itself is still blocked (a different question, not a different fact)
    (_set("conditions", "users", "excludeGroups", value=["49b4dcdf-1f90-41a5-9dd7-5e7c3609b423"]), False,
     Status.FAIL),
    # test_NoExclusionsClientAppTypes_Incorrect: [""] is no documented client app type: unknown, not a pass
    (_set("conditions", "clientAppTypes", value=[""]), False, Status.UNKNOWN),
    (_set("grantControls", "builtInControls", value=[]), False, Status.PASS),  # ..._BuiltInControls_Incorrect
    (_set("state", value="disabled"), False, Status.PASS),  # test_NoExclusionsState_Incorrect
])
def test_scubagear_ms_aad_1_1_cases(patch: Any, scuba_meets: bool, ours: Status) -> None:
    data = fixture_data("microsoft", "ca-legacy-included")
    policy = data["org"]["conditionalAccessPolicies"][0]
    policy["conditions"]["users"]["excludeGroups"] = []  # ScubaGear's base policy excludes nobody
    if patch is not None:
        patch(policy)
    f = finding(evaluate_data(data), "ms.ca-legacy-auth", J)
    assert f.status is ours, f.message
    if ours is not Status.FAIL:
        assert not scuba_meets  # where preflight finds no block, ScubaGear never finds legacy auth blocked


def test_report_only_policy_is_a_warning_and_role_exclusion_is_honoured() -> None:
    result = evaluate_fixture("microsoft", "ca-mfa")
    legacy = finding(result, "ms.ca-legacy-auth", J)
    assert legacy.status is Status.WARN and "report-only" in legacy.message
    assert finding(result, "ms.ca-mfa", "sync@contoso.com").status is Status.PASS
    assert finding(result, "ms.ca-mfa", J).status is Status.FAIL


def test_shared_mailbox_is_fine_for_app_only_and_needs_no_licence_or_sign_in() -> None:
    result = evaluate_fixture("microsoft", "shared-mailbox")
    shared = [f for f in result.findings if f.check == "ms.shared-mailbox"]
    assert {(f.method.value if f.method else None, f.status) for f in shared} == {
        (B, Status.FAIL), (D, Status.FAIL), (A, Status.PASS)}
    assert finding(result, "ms.exchange-licence", R).status is Status.PASS
    sign_in = {f.method.value if f.method else None: f.status for f in result.findings
               if f.check == "ms.sign-in-enabled"}
    assert sign_in == {B: Status.SKIPPED, D: Status.SKIPPED, A: Status.PASS}


def test_mailbox_kinds_licence_and_sign_in() -> None:
    result = evaluate_fixture("microsoft", "mailbox-kinds")
    foundation = finding(result, "ms.exchange-licence", "analyst@contoso.com")
    assert foundation.status is Status.FAIL and "EXCHANGE_S_FOUNDATION" in foundation.message
    enabled = finding(result, "ms.shared-mailbox", "frontdesk@contoso.com", method="basic")
    assert enabled.method is not None and enabled.status is Status.WARN
    assert enabled.evidence["user.accountEnabled"] is True and "not meant for direct sign-in" in enabled.message
    licence = next(f for f in result.findings if f.check == "ms.exchange-licence"
                   and f.subject == "frontdesk@contoso.com" and f.method and f.method.value == B)
    assert licence.status is Status.WARN and licence.cause == "no-mailbox-license"
    for room in ("boardroom", "bookings", "projector"):
        assert finding(result, "ms.exchange-licence", f"{room}@contoso.com").status is Status.PASS
    # with sign-in blocked again, the shared mailbox cannot sign in; a group mailbox's kind is not evaluated
    # (its account cannot sign in either)
    data = fixture_data("microsoft", "mailbox-kinds")
    data["mailboxes"]["frontdesk@contoso.com"]["user"]["accountEnabled"] = False
    data["mailboxes"]["boardroom@contoso.com"]["mailbox"]["RecipientTypeDetails"] = "GroupMailbox"
    again = verdicts(evaluate_data(data))
    assert again[("frontdesk@contoso.com", B)] == ("blocked", ["shared-mailbox"])
    assert again[("boardroom@contoso.com", B)] == ("blocked", ["account-disabled"])
    assert again[("boardroom@contoso.com", A)] == ("incomplete", [])
    # a RecipientTypeDetails value preflight does not know is not guessed at
    data["mailboxes"]["boardroom@contoso.com"]["mailbox"]["RecipientTypeDetails"] = "HologramMailbox"
    odd = next(f for f in evaluate_data(data).findings
               if f.check == "ms.shared-mailbox" and f.subject == "boardroom@contoso.com")
    assert odd.status is Status.UNKNOWN and "HologramMailbox" in odd.message


def test_wrong_object_id_says_which_id_was_used() -> None:
    f = finding(evaluate_fixture("microsoft", "oauth-app-wrong-object-id"), "ms.oauth-exchange-service-principal")
    assert f.status is Status.FAIL and "app registration's object id" in f.message
    assert f.evidence["exchangeServicePrincipal.ObjectId"] != f.evidence["servicePrincipal.id"]


def test_missing_app_id_says_to_pass_it() -> None:
    result = evaluate_fixture("microsoft", "oauth-app-no-app-id")
    unknowns = [f for f in result.findings if f.status is Status.UNKNOWN]
    assert {f.check for f in unknowns} == {"ms.oauth-app-role", "ms.oauth-exchange-service-principal",
                                          "ms.oauth-mailbox-permission", "ms.ca-workload-identity"}
    assert all("--app-id" in f.message for f in unknowns)


def test_send_as_unknown_when_the_from_address_was_not_collected() -> None:
    f = finding(evaluate_fixture("microsoft", "send-as"), "ms.send-as", "alerts@contoso.com")
    assert f.status is Status.UNKNOWN and "info@contoso.com" in f.message
    assert finding(evaluate_fixture("microsoft", "send-as"), "ms.send-as", J).status is Status.PASS


def test_missing_address_gets_one_finding_instead_of_piling_up_unknowns() -> None:
    # preflight.checks: the address check is the one finding about an address that does not exist.
    result = evaluate_fixture("microsoft", "accounts")
    mine = [f for f in result.findings if f.subject == "missing@contoso.com"]
    assert [(f.check, f.status) for f in mine] == [("ms.mailbox-exists", Status.FAIL)]


def test_checks_are_listed_in_sign_in_order_with_unique_ids_and_catalogue_causes() -> None:
    ids = [c.id for c in ALL_CHECKS]
    assert len(ids) == len(set(ids))
    orders = [c.order for c in ALL_CHECKS]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    for c in ALL_CHECKS:
        assert c.cause in CATALOGUE, c.id
        assert set(c.reads) <= set(provider.permissions()), c.id
    # DESIGN §6: an Entra layer (security defaults) is met before the Exchange SMTP AUTH switch
    order = {c.id: c.order for c in ALL_CHECKS}
    assert order["ms.security-defaults"] < order["ms.smtp-auth-enabled"] < order["ms.oauth-app-role"]
    assert order["ms.mailbox-exists"] == min(orders) and order["ms.send-as"] == max(orders)


def test_exchange_permission_advice_names_roles_as_roles_and_the_read_only_role_group() -> None:
    exchange = {k: v for k, v in provider.permissions().items() if "Exchange.ManageAsApp" in v}
    assert len(exchange) >= 8
    for name, text in exchange.items():
        assert "role group View-Only Organization Management" in text, name
        assert "role group View-Only Recipients" not in text and "role group View-Only Configuration" not in text


def test_evaluation_is_repeatable_from_the_report_json() -> None:
    result = evaluate_fixture("microsoft", "several-layers")
    again = TargetResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.to_dict() == result.to_dict()


@pytest.mark.parametrize("item", provider.demo_snapshots(), ids=lambda i: i.name)
def test_demo_tenant_tells_its_story(item: Any) -> None:
    data = json.loads(item.read_text(encoding="utf-8"))
    assert data["tenant"]["name"].endswith("(simulated)")
    result = evaluate_data(data)
    by_verdict: dict[str, list[list[str]]] = {}
    for m in result.mailboxes:
        by_verdict.setdefault(m.verdict.value, []).append(m.blocking)
    assert "ready" in by_verdict and "incomplete" in by_verdict
    assert any(len(causes) >= 2 for causes in by_verdict["blocked"])
    unknown = [f for f in result.findings if f.status is Status.UNKNOWN]
    assert any("403" in f.message for f in unknown)


def test_there_are_at_least_three_demo_tenants() -> None:
    assert len(provider.demo_snapshots()) >= 3
