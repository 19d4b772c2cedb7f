"""Opt-in sign-in evidence: the Entra sign-in log's Basic SMTP AUTH sign-ins, read bounded from the strict fake."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from preflight.causes import load_catalogue
from preflight.engine import evaluate
from preflight.model import Finding, Status, TargetResult
from preflight.snapshot import error_of, parse
from preflight_providers.microsoft import provider, signins
from preflight_providers.microsoft.clouds import Cloud
from tests.conftest import NOW
from tests.microsoft.conftest import load_fixture
from tests.microsoft.fake import FakeMicrosoft
from tests.microsoft.test_collect import run_collect

J = "jobs@contoso.com"
FORBIDDEN = {"error": {"status": 403, "code": "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                       "message": "Neither tenant is B2C or tenant doesn't have premium license"}}


def run(data: dict[str, Any]) -> TargetResult:
    return evaluate(parse(data, "test"), provider.checks(), load_catalogue(), NOW, provider.permissions(),
                    resources=provider.resources())


def finding(result: TargetResult) -> Finding:
    return next(f for f in result.findings if f.check == "ms.smtp-sign-ins" and f.subject == J)


def test_basic_sign_ins_still_in_use_are_a_warning_with_count_last_and_ips() -> None:
    f = finding(run(load_fixture("sign-ins")))
    assert f.status is Status.WARN and f.cause == "basic-auth-retirement"
    assert "2 successful sign-in(s) in the last 30 days" in f.message and "2026-11-25T08:00:04" in f.message
    assert "192.0.2.10" in f.message and "AADSTS50126 (wrong-credentials)" in f.message
    assert "198.51.100.7 (not a --sender-ip)" in f.message
    assert f.evidence["failureCodes"] == {"50126": {"count": 1, "cause": "wrong-credentials"}}


def test_only_failures_name_the_cause_of_the_latest() -> None:
    data = load_fixture("sign-ins")
    box = data["mailboxes"][J]
    box["smtpSignIns"] = [r for r in box["smtpSignIns"] if r["status"]["errorCode"]]
    late = copy.deepcopy(box["smtpSignIns"][0])
    late.update(createdDateTime="2026-11-25T09:00:00Z", status={"errorCode": 53003, "failureReason": "Blocked"})
    box["smtpSignIns"].append(late)
    f = finding(run(data))
    assert f.status is Status.WARN and f.cause == "ca-location-block" and "none succeeded" in f.message


def test_none_passes_not_asked_is_silent_and_refused_is_unknown() -> None:
    data = load_fixture("sign-ins")
    data["mailboxes"][J]["smtpSignIns"] = []
    assert finding(run(data)).status is Status.PASS
    data["mailboxes"][J]["smtpSignIns"] = FORBIDDEN
    f = finding(run(data))
    assert f.status is Status.UNKNOWN and "403" in f.message and f.remediation and "P1" in f.remediation
    del data["mailboxes"][J]["smtpSignIns"]
    assert not [f for f in run(data).findings if f.check == "ms.smtp-sign-ins"]


def test_the_log_is_read_filtered_paged_and_bounded(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                    tmp_path: Path, monkeypatch: Any) -> None:
    expected = load_fixture("sign-ins")
    del expected["org"]["tenantSmtpSignIns"], expected["org"]["smtpSignInWindow"]["tenantTruncated"]
    microsoft_fake.page_size = 1
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    assert got["mailboxes"][J]["smtpSignIns"] == expected["mailboxes"][J]["smtpSignIns"]
    assert got["org"]["smtpSignInWindow"] == expected["org"]["smtpSignInWindow"]
    reads = [c for c in microsoft_fake.calls("graph") if c.path == "/auditLogs/signIns"]
    assert len(reads) == 3  # three pages of one
    assert "clientAppUsed eq 'Authenticated SMTP'" in reads[0].query["$filter"][0]
    monkeypatch.setattr(signins, "MAX_PAGES", 2)
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    assert len(got["mailboxes"][J]["smtpSignIns"]) == 2 and got["org"]["smtpSignInWindow"]["truncated"] is True
    assert "page limit" in finding(run(got)).message


def test_a_tenant_without_p1_is_recorded_as_the_refusal(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                        tmp_path: Path) -> None:
    served = load_fixture("sign-ins")
    served["mailboxes"][J]["smtpSignIns"] = FORBIDDEN
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, served)
    assert error_of(got["mailboxes"][J]["smtpSignIns"])["status"] == 403  # type: ignore[index]
    assert finding(run(got)).status is Status.UNKNOWN


def agreement(result: TargetResult) -> Finding:
    return next(f for f in result.findings if f.check == "ms.smtp-sign-ins-agree" and f.subject == J)


def test_a_blocked_configuration_with_recent_successes_is_a_disagreement_showing_both_sides() -> None:
    data = load_fixture("sign-ins")
    data["mailboxes"][J]["casMailbox"]["SmtpClientAuthenticationDisabled"] = True
    result = run(data)
    f = agreement(result)
    assert f.status is Status.WARN and f.cause == "sign-in-log-disagrees" and f.remediation
    assert "says Basic SMTP AUTH is blocked (smtp-auth-disabled-mailbox)" in f.message
    assert "2 successful Basic SMTP sign-in(s) in the last 30 days" in f.message and "192.0.2.10" in f.message
    assert f.evidence["configuration"] == {"verdict": "blocked", "blocking": ["smtp-auth-disabled-mailbox"]}
    assert f.evidence["signInLog"]["lastSuccess"] == "2026-11-25T08:00:04.1234567Z"
    basic = next(v for v in result.mailboxes if v.method.value == "basic")
    assert basic.verdict.value == "blocked"  # the evidence warns; it never unblocks


def test_a_ready_configuration_whose_latest_sign_ins_fail_is_a_disagreement_naming_the_cause() -> None:
    data = load_fixture("sign-ins")
    box = data["mailboxes"][J]
    late = copy.deepcopy(box["smtpSignIns"][-1])
    late.update(createdDateTime="2026-11-26T07:00:00Z", ipAddress="198.51.100.7",
                status={"errorCode": 53003, "failureReason": "Access has been blocked by Conditional Access policies."})
    box["smtpSignIns"].insert(0, late)
    f = agreement(run(data))
    assert f.status is Status.WARN and f.cause == "ca-location-block"
    assert "1 failed Basic SMTP sign-in(s) in the last 30 days, after the last success on 2026-11-25" in f.message
    assert "AADSTS53003" in f.message and "198.51.100.7" in f.message
    assert f.evidence["configuration"]["verdict"] == "at-risk"  # the configuration alone, not the log's warning


def test_agreement_passes_and_nothing_to_compare_is_silent() -> None:
    data = load_fixture("sign-ins")
    assert agreement(run(data)).status is Status.PASS  # the latest sign-in succeeded, the configuration allows it
    data["mailboxes"][J]["casMailbox"]["SmtpClientAuthenticationDisabled"] = True
    box = data["mailboxes"][J]
    box["smtpSignIns"] = [r for r in box["smtpSignIns"] if r["status"]["errorCode"]]
    f = agreement(run(data))
    assert f.status is Status.PASS and "all 1 Basic SMTP sign-in(s) of the last 30 days failed" in f.message
    for records in ([], FORBIDDEN):
        box["smtpSignIns"] = records
        assert not [f for f in run(data).findings if f.check == "ms.smtp-sign-ins-agree"]


def tenant_finding(result: TargetResult, check: str) -> Finding:
    return next(f for f in result.findings if f.check == check and f.subject is None)


def test_app_only_sign_ins_show_token_grants_and_failures_after_the_last_success() -> None:
    data = load_fixture("sign-ins")
    f = tenant_finding(run(data), "ms.app-sign-ins")
    assert f.status is Status.PASS and "got 1 app-only token(s) for Exchange Online" in f.message
    assert f.evidence["failureCodes"] == {"7000215": {"count": 1, "cause": "oauth-client-credential-invalid"}}
    late = copy.deepcopy(data["org"]["appSignIns"][1])
    late["createdDateTime"] = "2026-11-26T09:00:00Z"
    data["org"]["appSignIns"].insert(0, late)
    f = tenant_finding(run(data), "ms.app-sign-ins")
    assert f.status is Status.WARN and f.cause == "oauth-client-credential-invalid"
    assert "the last success was on 2026-11-25T08:10:00" in f.message and "AADSTS7000215" in f.message
    data["org"]["appSignIns"] = FORBIDDEN
    f = tenant_finding(run(data), "ms.app-sign-ins")
    assert f.status is Status.UNKNOWN and f.remediation and "P1" in f.remediation


def test_tenant_wide_sign_ins_are_grouped_per_user_and_name_the_unlisted() -> None:
    data = load_fixture("sign-ins")
    f = tenant_finding(run(data), "ms.smtp-sign-ins-tenant")
    assert f.status is Status.WARN and f.cause == "basic-auth-retirement"
    assert "2 user(s) used Basic SMTP AUTH in the last 30 days, 2 of them successfully, 1 not among" in f.message
    assert "scanner@contoso.com (not checked): 2 ok, 1 failed" in f.message and "203.0.113.25" in f.message
    users = f.evidence["users"]
    assert users["scanner@contoso.com"]["listed"] is False and users["jobs@contoso.com"]["listed"] is True
    assert users["scanner@contoso.com"]["lastSuccess"] == "2026-11-26T06:15:00.0000000Z"
    data["org"]["tenantSmtpSignIns"] = [r for r in data["org"]["tenantSmtpSignIns"] if r["status"]["errorCode"]]
    f = tenant_finding(run(data), "ms.smtp-sign-ins-tenant")
    assert f.status is Status.WARN and f.cause == "wrong-credentials" and "None succeeded" in f.message
    data["org"]["tenantSmtpSignIns"] = []
    assert tenant_finding(run(data), "ms.smtp-sign-ins-tenant").status is Status.PASS
    del data["org"]["tenantSmtpSignIns"]
    assert not [f for f in run(data).findings if f.check == "ms.smtp-sign-ins-tenant"]


def test_the_app_and_tenant_reads_are_filtered_paged_and_the_app_read_goes_to_beta(
        microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud, tmp_path: Path, monkeypatch: Any) -> None:
    expected = load_fixture("sign-ins")
    microsoft_fake.page_size = 1
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    assert got["org"]["appSignIns"] == expected["org"]["appSignIns"]
    assert got["org"]["tenantSmtpSignIns"] == expected["org"]["tenantSmtpSignIns"][:5]
    assert got["org"]["smtpSignInWindow"]["tenantTruncated"] is True
    assert "there may be more" in tenant_finding(run(got), "ms.smtp-sign-ins-tenant").message
    beta = [c for c in microsoft_fake.calls("graph-beta") if c.path == "/auditLogs/signIns"]
    assert len(beta) == 2  # two pages of one
    assert "signInEventTypes/any(t: t eq 'servicePrincipal')" in beta[0].query["$filter"][0]
    assert "appId eq '5a7c9e21-4b3d-4f6a-8c2e-1d9f0b7a6e53'" in beta[0].query["$filter"][0]
    every = [c for c in microsoft_fake.calls("graph") if c.path == "/auditLogs/signIns"
             and "userPrincipalName" not in c.query["$filter"][0]]
    assert len(every) == 5  # stopped at MAX_PAGES
    monkeypatch.setattr(signins, "MAX_PAGES", 10)
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    assert got["org"] == {**got["org"], **{k: expected["org"][k] for k in ("appSignIns", "tenantSmtpSignIns",
                                                                          "smtpSignInWindow")}}


def test_service_principal_sign_ins_are_refused_on_v1() -> None:
    from tests.microsoft.fake_signins import sign_ins

    class Fake:
        url, page_size = "https://graph.example", 10

    reply = sign_ins(Fake(), None, {"$filter": ["signInEventTypes/any(t: t eq 'servicePrincipal')"]})  # type: ignore[arg-type]
    assert reply.status == 400


def test_check_sign_ins_tenant_reads_the_whole_tenant_and_evaluate_reproduces_it(
        microsoft_fake: FakeMicrosoft, tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    from tests.conftest import run_cli as cli
    from tests.microsoft.conftest import SECRET, SECRET_ENV, tenant_for
    from tests.microsoft.test_collect_cli import check_args, targets

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv(SECRET_ENV, SECRET)
    snapshot = load_fixture("sign-ins")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    saved = tmp_path / "snap.json"
    _, out, _ = cli([*check_args(snapshot), "--sign-ins-tenant", "--save-snapshot", str(saved), "--format", "json"],
                    capsys)
    reads = [c.query["$filter"][0] for c in microsoft_fake.calls("graph") if c.path == "/auditLogs/signIns"]
    assert any("userPrincipalName" not in q for q in reads) and any("userPrincipalName" in q for q in reads)
    checks = {f["check"] for f in targets(out)[0]["findings"]}
    assert {"ms.smtp-sign-ins-tenant", "ms.app-sign-ins", "ms.smtp-sign-ins"} <= checks
    _, offline, _ = cli(["evaluate", str(saved), "--format", "json"], capsys)
    assert targets(out) == targets(offline)
