"""Whose SendAs counts for app-only SMTP, and Exchange RBAC for Applications ('Application SMTP.SendAsApp')."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from preflight.model import Status
from preflight_providers.microsoft.clouds import Cloud
from tests.conftest import evaluate_data, finding
from tests.microsoft.conftest import load_fixture
from tests.microsoft.fake import FakeMicrosoft
from tests.microsoft.test_collect import run_collect

J = "jobs@contoso.com"
SENDER = "careers@contoso.com"
SP_ID = "e9b794a4-a407-5da6-b841-cbdad0163ecb"


def send_as(trustee: str) -> list[dict[str, Any]]:
    return [{"Identity": "careers", "Trustee": "NT AUTHORITY\\SELF", "AccessControlType": "Allow",
             "AccessRights": ["SendAs"], "IsInherited": False, "InheritanceType": "None"},
            {"Identity": "careers", "Trustee": trustee, "AccessControlType": "Allow", "AccessRights": ["SendAs"],
             "IsInherited": False, "InheritanceType": "None"}]


@pytest.mark.parametrize(("trustee", "status"), [(J, Status.PASS), (SP_ID, Status.UNKNOWN),
                                                 ("someone@contoso.com", Status.FAIL)])
def test_app_only_send_as_counts_the_mailbox_signing_in(trustee: str, status: Status) -> None:
    data = load_fixture("oauth-app-ready")
    data["options"]["from_addresses"] = {J: SENDER}
    data["mailboxes"][J]["fromRecipientPermissions"] = send_as(trustee)
    f = finding(evaluate_data(data), "ms.send-as", J)
    assert f.status is status
    if status is Status.UNKNOWN:
        assert "notifuse/notifuse#250" in f.message and f"to {J}" in f.message


def test_rbac_for_applications_grants_without_entra_role_or_mailbox_permission() -> None:
    data = load_fixture("oauth-app-rbac")
    result = evaluate_data(data)
    assert finding(result, "ms.oauth-app-role", None).status is Status.PASS
    assert finding(result, "ms.oauth-mailbox-permission", J).status is Status.PASS
    del data["org"]["applicationRoleAssignments"]
    result = evaluate_data(data)
    role = finding(result, "ms.oauth-app-role", None)
    assert role.status is Status.FAIL and "were not collected" in role.message


def test_a_scoped_rbac_assignment_needs_test_service_principal_authorization() -> None:
    data = load_fixture("oauth-app-rbac")
    data["org"]["applicationRoleAssignments"][0]["CustomResourceScope"] = "SMTP senders"
    f = finding(evaluate_data(data), "ms.oauth-mailbox-permission", J)
    assert f.status is Status.UNKNOWN and "Test-ServicePrincipalAuthorization" in f.message


def test_with_the_entra_role_the_mailbox_permission_is_checked_anyway() -> None:
    data = load_fixture("oauth-app-rbac")
    data["org"]["servicePrincipalAppRoles"] = load_fixture("oauth-app-ready")["org"]["servicePrincipalAppRoles"]
    f = finding(evaluate_data(data), "ms.oauth-mailbox-permission", J)
    assert f.status is Status.FAIL and "checks mailbox permissions anyway" in f.message


def test_other_or_disabled_assignments_do_not_count() -> None:
    data = load_fixture("oauth-app-rbac")
    grant = data["org"]["applicationRoleAssignments"][0]
    for change in ({"Role": "Application Mail.Send"}, {"Enabled": False}, {"RoleAssignee": "someone else",
                                                                          "RoleAssigneeName": "someone else"}):
        data["org"]["applicationRoleAssignments"] = [{**grant, **change}]
        f = finding(evaluate_data(data), "ms.oauth-app-role", None)
        assert f.status is Status.FAIL and "no 'Application SMTP.SendAsApp'" in f.message, change


def test_unreadable_assignments_leave_a_missing_role_unknown() -> None:
    data = load_fixture("oauth-app-rbac")
    data["org"]["applicationRoleAssignments"] = {"error": {"status": 403, "code": "Forbidden",
                                                           "message": "User is not allowed to call "
                                                                      "Get-ManagementRoleAssignment"}}
    f = finding(evaluate_data(data), "ms.oauth-app-role", None)
    assert f.status is Status.UNKNOWN and "403" in f.message and f.remediation


@pytest.mark.slow
def test_assignments_are_read_for_service_principals(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                     tmp_path: Path) -> None:
    expected = load_fixture("oauth-app-rbac")
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    assert got["org"]["applicationRoleAssignments"] == expected["org"]["applicationRoleAssignments"]
    calls = [c for c in microsoft_fake.calls("exchange") if c.cmdlet == "Get-ManagementRoleAssignment"]
    assert [c.parameters for c in calls] == [{"RoleAssigneeType": "ServicePrincipal"}]
