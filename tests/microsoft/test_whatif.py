"""Microsoft's What If beside preflight's Conditional Access reading, per-user MFA, and CA for workload identities.

Snapshots are the fixtures (documented shapes) changed in memory; the collector runs against the strict fake,
which answers What If only for well-formed questions it has a recorded answer for.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from preflight.model import Status
from preflight.snapshot import error_of
from preflight_providers.microsoft.clouds import Cloud
from preflight_providers.microsoft.whatif import sample_addresses, service_principal_questions, user_questions
from tests.conftest import evaluate_data, finding
from tests.microsoft.conftest import load_fixture
from tests.microsoft.fake import Call, FakeMicrosoft, Reply, graph_error
from tests.microsoft.fake_beta import evaluate_error
from tests.microsoft.test_collect import run_collect

J = "jobs@contoso.com"
EXO = "00000002-0000-0ff1-ce00-000000000000"
CTX = "https://graph.microsoft.com/beta/$metadata#Collection(microsoft.graph.whatIfAnalysisResult)"
FORBIDDEN = {"error": {"status": 403, "code": "Authorization_RequestDenied",
                       "message": "Insufficient privileges to complete the operation."}}


def applies(policy: dict[str, Any]) -> dict[str, Any]:
    """A whatIfAnalysisResult: the policy as Graph returns it, with policyApplies and analysisReasons."""
    return {**copy.deepcopy(policy), "policyApplies": True, "analysisReasons": "notSet"}


def answer_all(box: dict[str, Any], value: list[dict[str, Any]], client_app_type: str | None = None) -> None:
    for item in box["conditionalAccessWhatIf"]:
        if client_app_type in (None, item["request"]["signInConditions"].get("clientAppType")):
            item["response"] = {"@odata.context": CTX, "value": value}


def app_says_applies(data: dict[str, Any]) -> None:
    """Microsoft's What If says the workload policy applies to the app's token from 192.0.2.10."""
    value = [applies(data["org"]["conditionalAccessPolicies"][0])]
    data["org"]["workloadConditionalAccessWhatIf"] = [
        {"request": q, "response": {"@odata.context": CTX, "value": value}}
        for q in service_principal_questions(data["org"]["servicePrincipal"]["id"], EXO, ["192.0.2.10"])]


# -- the questions ------------------------------------------------------------------------------------


def test_questions_are_the_documented_shape_and_the_strict_fake_accepts_them() -> None:
    uid = "cfe9a131-06e0-5f3a-a022-c15c32419d5f"
    basic = user_questions(uid, "basic", EXO, ["192.0.2.10"])
    assert basic == [{
        "signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": uid},
        "signInContext": {"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": [EXO]},
        "signInConditions": {"clientAppType": "other", "ipAddress": "192.0.2.10"},
        "appliedPoliciesOnly": True}]
    delegated = user_questions(uid, "oauth-delegated", EXO, [])
    assert [q["signInConditions"] for q in delegated] == [{"clientAppType": "browser"},
                                                          {"clientAppType": "mobileAppsAndDesktopClients"}]
    app = service_principal_questions(uid, EXO, ["198.51.100.0/24"])
    assert [q["signInConditions"] for q in app] == [{"ipAddress": "198.51.100.0"}, {"ipAddress": "198.51.100.255"}]
    assert all(evaluate_error(q) is None for q in basic + delegated + app)


@pytest.mark.parametrize("change", [
    lambda q: q.pop("signInContext"),
    lambda q: q["signInConditions"].update(clientAppType="legacy"),
    lambda q: q["signInConditions"].update(ipAddress="192.0.2.0/24"),
    lambda q: q["signInIdentity"].update(userId="jobs@contoso.com"),
    lambda q: q["signInIdentity"].update({"@odata.type": "#microsoft.graph.user"}),
    lambda q: q.update(appliedPoliciesOnly="true"),
    lambda q: q["signInConditions"].update(clientAppTypes=["other"]),
])
def test_the_fake_rejects_what_graph_rejects(change: Any) -> None:
    question = user_questions("cfe9a131-06e0-5f3a-a022-c15c32419d5f", "basic", EXO, ["192.0.2.10"])[0]
    change(question)
    assert evaluate_error(question) is not None


def test_a_range_is_asked_by_its_ends() -> None:
    assert sample_addresses(["203.0.113.7", "203.0.113.0/30", "2001:db8::/127", "not an ip"]) == [
        "203.0.113.7", "203.0.113.0", "203.0.113.3", "2001:db8::", "2001:db8::1"]


# -- collection -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_what_if_and_per_user_mfa_are_asked_in_beta_batches(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                            tmp_path: Path) -> None:
    expected = load_fixture("whatif-alltrusted")
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    box = got["mailboxes"][J]
    assert box["conditionalAccessWhatIf"] == expected["mailboxes"][J]["conditionalAccessWhatIf"]
    assert box["authenticationRequirements"] == {"perUserMfaState": "disabled"}
    subs = microsoft_fake.calls("graph-beta", sub=True)
    assert sorted(c.method for c in subs) == ["GET", "POST", "POST", "POST"]  # MFA state; other, browser, mobile
    assert all(c.path == "/identity/conditionalAccess/evaluate" for c in subs if c.method == "POST")
    assert microsoft_fake.http_requests("graph-beta") == 1  # one /beta/$batch


@pytest.mark.slow
def test_a_refused_what_if_is_recorded_once_and_the_own_reading_stands(microsoft_fake: FakeMicrosoft,
                                                                       microsoft_cloud: Cloud, tmp_path: Path) -> None:
    def refuse(call: Call) -> Reply | None:
        if call.api == "graph-beta" and call.path.endswith("/evaluate"):
            return graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        return None

    microsoft_fake.fault = refuse
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, load_fixture("whatif-alltrusted"))
    assert error_of(got["mailboxes"][J]["conditionalAccessWhatIf"])["status"] == 403  # type: ignore[index]
    f = finding(evaluate_data(got), "ms.ca-location", J, method="basic")
    assert f.status is Status.UNKNOWN and "AllTrusted" in f.message
    assert "What If evaluation could not be read (403" in f.message and "own reading" in f.message


@pytest.mark.slow
def test_the_app_is_asked_as_a_service_principal(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                 tmp_path: Path) -> None:
    expected = load_fixture("workload-location")
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    assert got["org"]["workloadConditionalAccessWhatIf"] == expected["org"]["workloadConditionalAccessWhatIf"]
    assert got["org"]["servicePrincipal"]["signInAudience"] == "AzureADMyOrg"
    assert [c.parameters["signInIdentity"]["@odata.type"] for c in microsoft_fake.calls("graph-beta", sub=True)] == [
        "#microsoft.graph.servicePrincipalSignIn"]


# -- Microsoft's answer beside the own reading -------------------------------------------------------------


def test_microsoft_resolves_all_trusted_that_the_snapshot_cannot() -> None:
    data = load_fixture("whatif-alltrusted")
    f = finding(evaluate_data(data), "ms.ca-location", J, method="basic")
    assert f.status is Status.PASS and "disagreed (unknown" in f.message and f.evidence["agreement"] is False
    del data["mailboxes"][J]["conditionalAccessWhatIf"]
    own = finding(evaluate_data(data), "ms.ca-location", J, method="basic")
    assert own.status is Status.UNKNOWN and "was not collected" in own.message


def test_microsoft_says_the_policy_applies_and_decides() -> None:
    data = load_fixture("whatif-alltrusted")
    answer_all(data["mailboxes"][J], [applies(data["org"]["conditionalAccessPolicies"][0])], "other")
    result = evaluate_data(data)
    f = finding(result, "ms.ca-location", J, method="basic")
    assert f.status is Status.FAIL and f.cause == "ca-location-block"
    assert "Microsoft's What If evaluation" in f.message and "Microsoft's answer decides" in f.message
    assert finding(result, "ms.ca-location", J, method="oauth-delegated").status is Status.PASS


def test_agreement_is_said_and_kept_as_evidence() -> None:
    data = load_fixture("ca-legacy-included")
    box, policy = data["mailboxes"][J], data["org"]["conditionalAccessPolicies"][0]
    qs = user_questions(box["user"]["id"], "basic", EXO, data["options"]["sender_ips"])
    box["conditionalAccessWhatIf"] = [{"request": q, "response": {"@odata.context": CTX, "value": [applies(policy)]}}
                                      for q in qs]
    f = finding(evaluate_data(data), "ms.ca-legacy-auth", J, method="basic")
    assert f.status is Status.FAIL and "own reading agrees" in f.message and f.evidence["agreement"] is True


def test_a_refused_or_garbled_answer_never_changes_the_own_reading() -> None:
    base = load_fixture("ca-legacy-included")
    box = base["mailboxes"][J]
    qs = user_questions(box["user"]["id"], "basic", EXO, base["options"]["sender_ips"])
    for recorded in (FORBIDDEN,
                     [{"request": q, "response": {"value": [{"id": "x", "policyApplies": "no"}]}} for q in qs],
                     [{"request": q, "response": {"@odata.context": CTX}} for q in qs],
                     [{"request": {**q, "appliedPoliciesOnly": False}, "response": {"value": []}} for q in qs],
                     {"value": []}):
        data = copy.deepcopy(base)
        data["mailboxes"][J]["conditionalAccessWhatIf"] = recorded
        f = finding(evaluate_data(data), "ms.ca-legacy-auth", J, method="basic")
        assert f.status is Status.FAIL and "this is preflight's own reading" in f.message, recorded


@pytest.mark.parametrize("garble", ["state", "request", "shape"])
def test_a_garbled_answer_that_decided_a_block_is_unknown_not_the_softer_own_reading(garble: str) -> None:
    """The own reading misses the nested group (at risk); Microsoft's answer blocks. Garbled, it cannot be used,
    and the own reading alone would improve the verdict: unknown (issue 11). Refused (403), the own reading
    stands: that is an answer never given, not one given and lost."""
    base = load_fixture("peers/maester-whatif-microsoft-decides")
    assert finding(evaluate_data(base), "ms.ca-legacy-auth", J, method="basic").status is Status.FAIL
    data = copy.deepcopy(base)
    item = data["mailboxes"][J]["conditionalAccessWhatIf"][0]
    if garble == "state":
        item["response"]["value"][0]["state"] = "partiallyEnabled"
    elif garble == "request":
        item["request"]["signInConditions"]["clientAppType"] = "Other"
    else:
        item["response"]["value"][0]["id"] = 0
    f = finding(evaluate_data(data), "ms.ca-legacy-auth", J, method="basic")
    assert f.status is Status.UNKNOWN and "cannot stand alone" in f.message
    data["mailboxes"][J]["conditionalAccessWhatIf"] = FORBIDDEN
    f = finding(evaluate_data(data), "ms.ca-legacy-auth", J, method="basic")
    assert f.status is not Status.UNKNOWN and "this is preflight's own reading" in f.message


def test_what_microsoft_was_not_given_stays_with_the_own_reading() -> None:
    """A policy narrowed by a country location: What If has no country, so its silence proves nothing."""
    data = load_fixture("whatif-alltrusted")
    policy = data["org"]["conditionalAccessPolicies"][0]
    policy["conditions"]["locations"] = {"includeLocations": ["8fc5f3b3-26b7-52de-91cc-ac741928d4ed"],
                                         "excludeLocations": []}
    f = finding(evaluate_data(data), "ms.ca-location", J, method="basic")
    assert f.status is Status.UNKNOWN and "country location" in f.message


def test_unreadable_memberships_are_settled_by_microsoft() -> None:
    data = load_fixture("whatif-alltrusted")
    policy = data["org"]["conditionalAccessPolicies"][0]
    policy["conditions"]["users"]["includeUsers"] = []
    policy["conditions"]["users"]["includeGroups"] = ["6b2f0d3c-1a4e-4b5f-8c7d-9e0f1a2b3c4d"]
    data["mailboxes"][J]["memberOf"] = FORBIDDEN
    f = finding(evaluate_data(data), "ms.ca-location", J, method="basic")
    assert f.status is Status.PASS and "disagreed (unknown: Could not read memberOf" in f.message


# -- per-user MFA ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "status"), [("disabled", Status.PASS), ("enabled", Status.WARN),
                                               ("enforced", Status.FAIL), ("unknownFutureValue", Status.UNKNOWN)])
def test_per_user_mfa_states(state: str, status: Status) -> None:
    data = load_fixture("per-user-mfa-enforced")
    data["mailboxes"][J]["authenticationRequirements"] = {"perUserMfaState": state}
    f = finding(evaluate_data(data), "ms.per-user-mfa", J)
    assert f.status is status
    if status in (Status.FAIL, Status.WARN):
        assert f.cause == "mfa-required" and "app password" in f.message


def test_per_user_mfa_unreadable_names_the_permission() -> None:
    data = load_fixture("per-user-mfa-enforced")
    data["mailboxes"][J]["authenticationRequirements"] = FORBIDDEN
    f = finding(evaluate_data(data), "ms.per-user-mfa", J)
    assert f.status is Status.UNKNOWN and "403" in f.message and f.remediation and "Policy.Read.All" in f.remediation


# -- Conditional Access for workload identities ------------------------------------------------------------


def test_a_workload_policy_blocks_the_app_outside_its_locations() -> None:
    data = load_fixture("workload-location")
    data["options"]["sender_ips"] = ["192.0.2.10"]
    del data["org"]["workloadConditionalAccessWhatIf"]
    f = finding(evaluate_data(data), "ms.ca-workload-identity", subject=None)
    assert f.status is Status.FAIL and f.cause == "ca-location-block" and "was not collected" in f.message
    app_says_applies(data)
    f = finding(evaluate_data(data), "ms.ca-workload-identity", subject=None)
    assert f.status is Status.FAIL and "own reading agrees" in f.message


def test_a_multi_tenant_app_is_out_of_scope_unless_microsoft_says_otherwise() -> None:
    data = load_fixture("workload-location")
    data["options"]["sender_ips"] = ["192.0.2.10"]
    data["org"]["servicePrincipal"]["signInAudience"] = "AzureADMultipleOrgs"
    del data["org"]["workloadConditionalAccessWhatIf"]
    f = finding(evaluate_data(data), "ms.ca-workload-identity", subject=None)
    assert f.status is Status.PASS and "multi-tenant" in f.message
    app_says_applies(data)
    f = finding(evaluate_data(data), "ms.ca-workload-identity", subject=None)
    assert f.status is Status.FAIL and "disagreed (pass" in f.message


def test_workload_policy_without_sender_ip_or_registration_is_unknown() -> None:
    data = load_fixture("workload-location")
    data["options"]["sender_ips"] = []
    del data["org"]["workloadConditionalAccessWhatIf"]
    assert finding(evaluate_data(data), "ms.ca-workload-identity", subject=None).status is Status.UNKNOWN
    data["options"]["sender_ips"] = ["203.0.113.25"]
    del data["org"]["servicePrincipal"]["appOwnerOrganizationId"]
    f = finding(evaluate_data(data), "ms.ca-workload-identity", subject=None)
    assert f.status is Status.UNKNOWN and "single-tenant" in f.message


def test_an_undecided_delegated_client_keeps_a_one_type_policy_with_the_own_reading() -> None:
    """The sending app's client type is unknown (multi-tenant app): Microsoft saying a browser-only policy applies
    to a browser sign-in does not say it applies to this one."""
    data = load_fixture("ca-client-app-types")
    box = data["mailboxes"][J]
    policy = next(p for p in data["org"]["conditionalAccessPolicies"]
                  if p["conditions"]["clientAppTypes"] == ["browser"])
    box["conditionalAccessWhatIf"] = [
        {"request": q, "response": {"@odata.context": CTX, "value": [applies(policy)] if q["signInConditions"][
            "clientAppType"] == "browser" else []}}
        for q in user_questions(box["user"]["id"], "oauth-delegated", EXO, data["options"]["sender_ips"])]
    f = finding(evaluate_data(data), "ms.ca-location", J, method="oauth-delegated")
    assert f.status is Status.UNKNOWN and "client app types (browser)" in f.message
