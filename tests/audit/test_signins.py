"""The sign-in evidence in an audit: the inventory keys, and the roll-up of who is still on Basic SMTP AUTH
per customer and across customers, with the days left, in report.json, the action plan and the HTML report."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest

from preflight.audit.inventory import load_inventory
from preflight.audit.output import write_consolidated, write_tenant
from preflight.audit.runner import run_audit
from preflight.causes import load_catalogue
from preflight.errors import InputError
from preflight.model import Method
from preflight.providers import CollectRequest, Registry
from preflight.report.plan import still_on_basic
from preflight_providers.google.run import collect_request
from preflight_providers.microsoft import provider
from tests.conftest import NOW
from tests.microsoft.conftest import load_fixture
from tests.microsoft.test_signins import run


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "inventory.toml"
    path.write_text(body)
    return path


@pytest.mark.parametrize(("value", "problem"), [("31", "from 1 to 30"), ("0", "from 1 to 30"), ("true", "from 1"),
                                                 ('"30"', "whole number of days")])
def test_the_sign_ins_key_is_a_window_of_1_to_30_days(tmp_path: Path, value: str, problem: str) -> None:
    body = (f'[customer.a]\nprovider = "microsoft"\ntenant = "a.example"\nmailboxes = ["x@a.example"]\n'
            f"sign_ins = {value}\n")
    with pytest.raises(InputError, match=rf":5: customer\.a\.sign_ins: .*{problem}"):
        load_inventory(write(tmp_path, body), ["microsoft"])


def test_sign_in_keys_reach_the_collector_settings_and_may_be_defaults(tmp_path: Path) -> None:
    body = ('[defaults]\nsign_ins = 14\n[customer.a]\nprovider = "microsoft"\ntenant = "a.example"\n'
            'mailboxes = ["x@a.example"]\nsign_ins_tenant = true\n')
    customer = load_inventory(write(tmp_path, body), ["microsoft"]).customers[0]
    assert customer.settings["sign_ins"] == 14 and customer.settings["sign_ins_tenant"] is True
    with pytest.raises(InputError, match="sign_ins_tenant: must be true or false"):
        load_inventory(write(tmp_path, body.replace("= true", '= "yes"')), ["microsoft"])


def test_the_roll_up_names_checked_mailboxes_and_unlisted_integrations_with_the_retirement_date() -> None:
    still = still_on_basic(run(load_fixture("sign-ins")))
    assert [(a.account, a.checked, a.successes) for a in still.accounts] == [
        ("scanner@contoso.com", False, 2), ("jobs@contoso.com", True, 2)]
    assert still.retires_on == date(2026, 12, 31) and still.days_left(date(2026, 11, 26)) == 35
    assert still.accounts[1].last_success == "2026-11-25T08:00:04.1234567Z"


def test_garbled_evidence_is_left_out_of_the_roll_up() -> None:
    result = run(load_fixture("sign-ins"))
    for f in result.findings:
        if "stillOnBasic" in f.evidence:
            f.evidence["stillOnBasic"] = {"accounts": [{"account": 7, "successes": "many"}], "retiresOn": "soon"}
    still = still_on_basic(result)
    assert not still.accounts and still.retires_on is None


def test_an_audit_rolls_up_basic_smtp_per_customer_and_across_customers(tmp_path: Path) -> None:
    snap = tmp_path / "contoso.json"
    snap.write_text(json.dumps(load_fixture("sign-ins")))
    quiet = load_fixture("sign-ins")
    del quiet["org"]["tenantSmtpSignIns"]
    quiet["mailboxes"]["jobs@contoso.com"]["smtpSignIns"] = []
    (tmp_path / "quiet.json").write_text(json.dumps(quiet))
    body = ('[customer.contoso]\nname = "Contoso"\nprovider = "microsoft"\nsnapshot = "contoso.json"\n'
            '[customer.quiet]\nprovider = "microsoft"\nsnapshot = "quiet.json"\n')
    inv = load_inventory(write(tmp_path, body), ["microsoft"])
    runs, _ = run_audit(inv, Registry([provider]), load_catalogue(), NOW, tmp_path / "cache")
    out = tmp_path / "out"
    for r in runs:
        write_tenant(r, out, NOW)
    write_consolidated(runs, out, NOW, False)
    rollup = json.loads((out / "report.json").read_text())["audit"]["basic_smtp"]
    assert rollup["total_accounts"] == 2 and rollup["not_in_inventory"] == 1
    [contoso] = rollup["customers"]
    assert contoso["customer"] == "contoso" and contoso["days_left"] == 35 and contoso["retires_on"] == "2026-12-31"
    assert contoso["accounts"][0] == {"account": "scanner@contoso.com", "in_inventory": False, "successes": 2,
                                      "last_success": "2026-11-26T06:15:00.0000000Z"}
    plan = (out / "action-plan.md").read_text()
    assert "## Still on Basic SMTP AUTH" in plan
    assert "| Contoso | scanner@contoso.com | no | 2 | 2026-11-26T06:15:00.0000000Z | 35 |" in plan
    own = (out / "contoso" / "action-plan.md").read_text()
    assert "35 day(s) before Microsoft disables it by default (the end of December 2026, 2026-12-31)" in own
    assert "scanner@contoso.com (not in the inventory): 2 sign-in(s)" in (out / "report.html").read_text()
    assert "Still on Basic" not in (out / "quiet" / "action-plan.md").read_text()
    rows = list(csv.DictReader(io.StringIO((out / "action-plan.csv").read_text(), newline="")))
    basic = [(r["customer"], r["where"], r["kind"], r["cause"]) for r in rows if r["kind"] == "still on basic"]
    assert basic == [("Contoso", "scanner@contoso.com", "still on basic", "basic-auth-retirement"),
                     ("Contoso", "jobs@contoso.com", "still on basic", "basic-auth-retirement")]
    scanner = next(r for r in rows if r["where"] == "scanner@contoso.com")
    assert "2 Basic SMTP AUTH sign-in(s)" in scanner["fix"] and "(not in the inventory)" in scanner["fix"]
    assert "35 day(s) before Microsoft disables it by default" in scanner["fix"]
    own = list(csv.DictReader(io.StringIO((out / "quiet" / "action-plan.csv").read_text(), newline="")))
    assert all(r["kind"] != "still on basic" for r in own)


def test_a_google_customer_asking_for_sign_in_evidence_is_told_there_is_none() -> None:

    request = CollectRequest(settings={"domain": "fabrikam.example", "sign_ins": 30},
                             mailboxes=("a@fabrikam.example",), methods=(Method.BASIC,))
    with pytest.raises(InputError, match="do not say which sign-ins were SMTP"):
        collect_request(request)


def test_redacted_sign_in_records_evaluate_to_the_same_findings_without_addresses_or_ips() -> None:
    from preflight.audit.redact import Redactor

    original = load_fixture("sign-ins")
    redactor = Redactor(b"k" * 32)
    redactor.learn(original)
    redacted = redactor.value(original)
    text = json.dumps(redacted)
    for secret in ("jobs@contoso.com", "scanner@contoso.com", "192.0.2.10", "203.0.113.25", "198.51.100.7"):
        assert secret not in text
    before, after = run(original), run(redacted)
    assert [(f.check, f.status, f.cause) for f in before.findings] == [
        (f.check, f.status, f.cause) for f in after.findings]
    assert [(v.verdict, v.blocking) for v in before.mailboxes] == [(v.verdict, v.blocking) for v in after.mailboxes]
    tenant = next(f for f in after.findings if f.check == "ms.smtp-sign-ins-tenant")
    assert tenant.message.count("(not a --sender-ip)") == next(
        f for f in before.findings if f.check == "ms.smtp-sign-ins-tenant").message.count("(not a --sender-ip)") > 0
    still = still_on_basic(after)
    assert len(still.accounts) == 2 and all(a.account.startswith("user-") for a in still.accounts)


def test_ip_pseudonyms_keep_ranges_and_leave_other_text_alone() -> None:
    import ipaddress

    from preflight.audit.redact import Redactor

    r = Redactor(b"k" * 32)
    inside, outside, net = r.ip("192.0.2.10"), r.ip("198.51.100.7"), r.ip("192.0.2.0/24")
    assert ipaddress.ip_address(inside) in ipaddress.ip_network(net)
    assert ipaddress.ip_address(outside) not in ipaddress.ip_network(net)
    assert ipaddress.ip_address(r.ip("2001:db8::1")) in ipaddress.ip_network(r.ip("2001:db8::/32"))
    assert r.ip("192.0.2.10") == inside and Redactor(b"j" * 32).ip("192.0.2.10") != inside
    kept = "at 2026-11-25T08:00:04.1234567Z, not 999.1.1.1"
    assert r.text(kept) == kept
