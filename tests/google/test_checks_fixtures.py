"""Google checks over the fixture workspaces: verdicts per mailbox and method, blocking causes in order."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from preflight.causes import load_catalogue
from preflight.exitcodes import exit_code
from preflight.model import Status
from tests.conftest import evaluate_data, evaluate_fixture, finding, fixture_data

FIXTURES = Path(__file__).parent / "fixtures"
CATALOGUE = load_catalogue()

# fixture -> {(mailbox, method): (verdict, blocking causes in the order a sign-in meets them)}
EXPECTED: dict[str, dict[tuple[str, str], tuple[str, list[str]]]] = {
    "group_address": {
        ("jobs@tailspin.example", "basic"): ("blocked", ["shared-mailbox"]),
        ("jobs@tailspin.example", "oauth-delegated"): ("blocked", ["shared-mailbox"]),
        ("jobs@tailspin.example", "oauth-app"): ("blocked", ["shared-mailbox"]),
        ("careers@tailspin.example", "basic"): ("blocked", ["shared-mailbox"]),
        ("careers@tailspin.example", "oauth-delegated"): ("blocked", ["shared-mailbox"]),
        ("careers@tailspin.example", "oauth-app"): ("blocked", ["shared-mailbox"]),
        ("nobody@tailspin.example", "basic"): ("blocked", ["mailbox-not-found"]),
        ("nobody@tailspin.example", "oauth-delegated"): ("blocked", ["mailbox-not-found"]),
        ("nobody@tailspin.example", "oauth-app"): ("blocked", ["mailbox-not-found"]),
    },
    "user_alias": {
        ("hr@tailspin.example", "basic"): ("blocked", ["alias-address"]),
        ("hr@tailspin.example", "oauth-delegated"): ("blocked", ["alias-address"]),
    },
    "suspended_user": {
        ("former@tailspin.example", "basic"): ("blocked", ["account-disabled"]),
        ("former@tailspin.example", "oauth-delegated"): ("blocked", ["account-disabled"]),
    },
    "basic_2sv_off": {
        # One root cause (not enrolled, enrolment allowed), one blocking cause.
        ("printer@tailspin.example", "basic"): ("blocked", ["password-login-retired"]),
    },
    "basic_2sv_app_passwords": {
        ("recruiting@tailspin.example", "basic"): ("at-risk", []),
        ("recruiting@tailspin.example", "oauth-delegated"): ("ready", []),
    },
    "security_key_only": {
        ("deploy@tailspin.example", "basic"): ("blocked", ["password-login-retired", "app-passwords-unavailable"]),
        ("deploy@tailspin.example", "oauth-delegated"): ("ready", []),
        ("builds@tailspin.example", "basic"): ("at-risk", []),
        ("builds@tailspin.example", "oauth-delegated"): ("ready", []),
    },
    "gmail_group_override": {
        ("helpdesk@tailspin.example", "basic"): ("at-risk", []),
        ("helpdesk@tailspin.example", "oauth-delegated"): ("ready", []),
        ("agent@tailspin.example", "basic"): ("blocked", ["no-mailbox-license"]),
        ("agent@tailspin.example", "oauth-delegated"): ("blocked", ["no-mailbox-license"]),
    },
    "third_party_blocked": {
        # Blocked for unconfigured apps, but the sending app may be Trusted, which no Google API shows.
        ("sales@tailspin.example", "oauth-delegated"): ("incomplete", []),
        ("sales@tailspin.example", "oauth-app"): ("incomplete", []),
        ("campaigns@tailspin.example", "oauth-delegated"): ("incomplete", []),
        ("campaigns@tailspin.example", "oauth-app"): ("incomplete", []),
    },
    "policy_api_forbidden": {
        ("orders@tailspin.example", "basic"): ("incomplete", []),
        ("orders@tailspin.example", "oauth-delegated"): ("incomplete", []),
    },
}

# Checks whose verdict needs the Policy API (the rest read only the Directory).
POLICY_CHECKS = {"google.gmail-service", "google.password-sign-in", "google.app-passwords", "google.api-controls"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_verdicts_and_blocking_order(name: str) -> None:
    result = evaluate_fixture("google", name)
    got = {(m.address, m.method.value): (m.verdict.value, m.blocking) for m in result.mailboxes}
    assert got == EXPECTED[name]


def test_every_fixture_is_covered() -> None:
    assert {p.stem for p in FIXTURES.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_findings_are_specific_and_carry_evidence_and_remediation(name: str) -> None:
    for f in evaluate_fixture("google", name).findings:
        assert f.message.endswith(".") and len(f.message) > 30, f
        if f.status is not Status.SKIPPED:
            assert f.evidence, f
        if f.status in (Status.FAIL, Status.WARN):
            assert f.cause is not None and f.cause in CATALOGUE and f.remediation, f
            if f.subject and "{subject}" in CATALOGUE.get(f.cause).remediation["google"]:
                assert f.subject in f.remediation, f
        # Payload-shape unknowns would mean a fixture and the checks disagree on field names.
        assert "documented shape" not in f.message, f


def test_policy_api_forbidden_makes_every_policy_check_unknown_naming_the_role_and_exit_3() -> None:
    result = evaluate_fixture("google", "policy_api_forbidden")
    who = "orders@tailspin.example"
    for check in POLICY_CHECKS:
        f = finding(result, check, who)
        assert f.status is Status.UNKNOWN, f
        assert "super administrator" in f.message and "cloud-identity.policies.readonly" in f.message
        assert f.remediation and "super administrator" in f.remediation
        assert f.evidence["error"]["status"] == 403
    # What the Directory alone decides stays decided.
    assert finding(result, "google.account-state", who).status is Status.PASS
    assert finding(result, "google.2sv", who).status is Status.PASS
    assert exit_code([result]) == 3


def test_group_and_alias_messages_name_what_the_address_is() -> None:
    result = evaluate_fixture("google", "group_address")
    assert "is a Google group (Jobs" in finding(result, "google.address", "jobs@tailspin.example").message
    assert "alias of the Google group jobs@" in finding(result, "google.address", "careers@tailspin.example").message
    nobody = finding(result, "google.address", "nobody@tailspin.example")
    assert nobody.cause == "mailbox-not-found" and "404" in nobody.message
    # A group is not a user: no user-level finding is invented for it.
    assert {f.check for f in result.findings if f.subject == "jobs@tailspin.example"} == {"google.address"}

    alias = evaluate_fixture("google", "user_alias")
    f = finding(alias, "google.address", "hr@tailspin.example")
    assert f.cause == "alias-address" and "hr.team@tailspin.example" in f.message
    # The owner's state is what signs in: the other findings speak about it.
    assert "hr.team@tailspin.example (the owner of hr@tailspin.example)" in finding(
        alias, "google.account-state", "hr@tailspin.example"
    ).message
    send_as = finding(alias, "google.send-as", "hr@tailspin.example")
    assert send_as.status is Status.PASS and send_as.evidence["sendAs.verificationStatus"] == "accepted"


def test_gmail_policy_evidence_names_the_policy_and_target_that_decided() -> None:
    result = evaluate_fixture("google", "gmail_group_override")
    on = finding(result, "google.gmail-service", "helpdesk@tailspin.example")
    assert on.status is Status.PASS and "group gmail-users@tailspin.example" in on.message
    assert "ADMIN policy" in on.evidence["gmail.service_status.serviceState source"]
    off = finding(result, "google.gmail-service", "agent@tailspin.example")
    assert off.status is Status.FAIL and "org unit /Support" in off.message
    assert off.evidence["gmail.service_status.serviceState"] == "DISABLED"


def test_security_key_only_is_inherited_from_the_parent_org_unit() -> None:
    result = evaluate_fixture("google", "security_key_only")
    deploy = finding(result, "google.app-passwords", "deploy@tailspin.example")
    assert deploy.status is Status.FAIL and "org unit /Engineering " in deploy.message
    builds = finding(result, "google.app-passwords", "builds@tailspin.example")
    assert builds.status is Status.WARN and builds.cause == "app-passwords-unavailable"


def test_not_enrolled_in_2sv_is_named_once_with_a_pointer_from_the_2sv_check() -> None:
    result = evaluate_fixture("google", "basic_2sv_off")
    sign_in = finding(result, "google.password-sign-in", "printer@tailspin.example")
    assert sign_in.status is Status.FAIL and "isEnrolledIn2Sv false" in sign_in.message
    two_step = finding(result, "google.2sv", "printer@tailspin.example")
    assert two_step.status is Status.SKIPPED and "google.password-sign-in" in two_step.message
    assert "allowEnrollment true" in two_step.message


def test_app_password_required_is_a_warning_with_its_own_cause() -> None:
    f = finding(evaluate_fixture("google", "basic_2sv_app_passwords"), "google.password-sign-in",
                "recruiting@tailspin.example")
    assert f.status is Status.WARN and f.cause == "app-password-required"
    assert "app password" in f.message and f.remediation and "apppasswords" in f.remediation


def test_oauth_app_is_not_subject_to_api_controls_but_its_delegation_is_unknown() -> None:
    result = evaluate_fixture("google", "third_party_blocked")
    skipped = finding(result, "google.api-controls", "sales@tailspin.example", "oauth-app")
    assert skipped.status is Status.SKIPPED and skipped.method is not None
    dwd = finding(result, "google.dwd-grant", None)
    assert dwd.status is Status.UNKNOWN and "Domain-wide delegation" in dwd.message
    assert "814295537361-k2v7atsdemo0q1r8.apps.googleusercontent.com" in dwd.message
    blocked = finding(result, "google.api-controls", "campaigns@tailspin.example", "oauth-delegated")
    assert "Gmail is Restricted" in blocked.message and "GMAIL_ALL" in blocked.message
    assert blocked.status is Status.UNKNOWN and "Trusted" in blocked.message


MANDATORY = {"org": ["policies", "orgUnits"], "mailbox": ["user", "group"]}
# Org resources no user-level check reaches: the only addresses are groups, or the Policy API already failed.
NO_EFFECT = {("group_address", "policies"), ("group_address", "orgUnits"), ("policy_api_forbidden", "policies"),
             ("policy_api_forbidden", "orgUnits")}
FORBIDDEN = {"error": {"status": 403, "code": "forbidden", "message": "Not Authorized to access this resource/api"}}


def _unreadable_variants() -> list[tuple[str, str, str | None]]:
    out: list[tuple[str, str, str | None]] = []
    for name in sorted(EXPECTED):
        data = fixture_data("google", name)
        for res in MANDATORY["org"]:
            if res in data["org"]:
                out.append((name, res, None))
        for address, box in data["mailboxes"].items():
            out.extend((name, res, address) for res in MANDATORY["mailbox"] if res in box)
    return out


@pytest.mark.parametrize(("name", "resource", "address"), _unreadable_variants())
def test_an_unreadable_resource_only_ever_turns_findings_unknown(name: str, resource: str, address: str | None) -> None:
    data = fixture_data("google", name)
    before = {(f.check, f.subject, f.method): f.status for f in evaluate_data(data).findings}
    broken = copy.deepcopy(data)
    if address is None:
        broken["org"][resource] = FORBIDDEN
    else:
        broken["mailboxes"][address][resource] = FORBIDDEN
    after = evaluate_data(broken).findings
    changed = [f for f in after if before.get((f.check, f.subject, f.method)) is not f.status]
    if (name, resource) in NO_EFFECT:
        assert not changed
    else:
        assert changed, "making a resource unreadable changed nothing: the checks do not read it"
    for f in changed:
        assert f.status is Status.UNKNOWN, f
