"""Consultant audits: inventory validation, parallel isolated tenants, outputs, drift and redaction."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

import pytest

from preflight.audit.diff import diff_reports, has_regressions
from preflight.audit.inventory import TEMPLATE, load_inventory
from preflight.audit.output import write_consolidated, write_tenant
from preflight.audit.redact import Redactor
from preflight.audit.runner import run_audit
from preflight.causes import load_catalogue
from preflight.checks import Check, Context, Outcome, check, failed, passed
from preflight.errors import InputError, SignInError
from preflight.model import Report, Severity, Verdict
from preflight.output import make_report
from preflight.providers import CollectRequest, Registry

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


@check("toy.smtp", "SMTP AUTH", severity=Severity.HIGH, cause="smtp-auth-disabled-mailbox")
def smtp(ctx: Context) -> Outcome:
    if ctx.mailbox("casMailbox")["SmtpClientAuthenticationDisabled"]:
        return failed(f"SMTP AUTH is off for {ctx.subject}.")
    return passed("SMTP AUTH is on.")


class ToyProvider:
    """Collects from an in-memory 'tenant' per tenant name; records which cache folders it was given."""

    name = "microsoft"
    title = "toy"

    def __init__(self, tenants: dict[str, dict[str, bool]], fail: set[str] | None = None,
                 gate: threading.Event | None = None) -> None:
        self.tenants, self.fail, self.gate = tenants, fail or set(), gate
        self.seen: list[tuple[str, Path | None]] = []

    def checks(self) -> Sequence[Check]:
        return [smtp]

    def permissions(self) -> Mapping[str, str]:
        return {}

    def demo_snapshots(self) -> Sequence[Traversable]:
        return []

    def commands(self) -> Mapping[str, Callable[..., Any]]:
        return {}

    def collect(self, request: CollectRequest) -> dict[str, Any]:
        tenant = str(request.settings["tenant"])
        self.seen.append((tenant, request.cache_dir))
        if tenant in self.fail:
            raise SignInError(f"AADSTS700016: application not found in {tenant}")
        if self.gate is not None and tenant == "slow.example":
            self.gate.wait(5)
        disabled = self.tenants[tenant]
        return {
            "schema": "preflight.snapshot/v1", "provider": "microsoft", "tenant": {"domain": tenant},
            "options": {"methods": [m.value for m in request.methods]}, "org": {},
            "mailboxes": {m: {"casMailbox": {"SmtpClientAuthenticationDisabled": disabled.get(m, False)}}
                          for m in request.mailboxes},
        }


def inventory(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "inventory.toml"
    path.write_text(body)
    return path


GOOD = """
[defaults]
methods = ["oauth-app"]
workers = 3

[customer.contoso]
provider = "microsoft"
tenant = "contoso.example"
mailboxes = ["jobs@contoso.example", "hr@contoso.example"]

[customer.broken]
name = "Broken Corp"
provider = "microsoft"
tenant = "broken.example"
mailboxes = ["jobs@broken.example"]

[customer.fabrikam]
provider = "microsoft"
tenant = "fabrikam.example"
mailboxes = ["jobs@fabrikam.example"]
[[customer.fabrikam.exception]]
match = "smtp-auth-disabled-mailbox"
reason = "Vendor switches to Graph API sending in January"
expires = 2027-01-31
"""


def test_the_init_template_is_a_valid_inventory(tmp_path: Path) -> None:
    inv = load_inventory(inventory(tmp_path, TEMPLATE), ["google", "microsoft"])
    assert [c.key for c in inv.customers] == ["contoso", "fabrikam"]
    assert inv.customers[0].exceptions[0].match == "basic-auth-retirement"
    assert inv.customers[0].from_addresses == {"jobs@contoso.com": "no-reply@contoso.com"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[customer.a]\nprovider = "microsoft"\nmailboxes = ["not-an-address"]\n', ":3: customer.a.mailboxes:"),
        ('[customer.a]\nprovider = "aol"\nmailboxes = ["a@b.example"]\n', ":2: customer.a.provider: 'aol'"),
        ('[customer.a]\nprovider = "microsoft"\nmailboxes = ["a@b.example"]\ncolour = "red"\n',
         ":4: customer.a.colour: unknown key"),
        ('[customer.a]\nprovider = "microsoft"\nmailboxes = ["a@b.example"]\nsender_ips = ["10.0.0.300"]\n',
         ":4: customer.a.sender_ips: '10.0.0.300'"),
        ('[defaults]\nworkers = 0\n[customer.a]\nprovider = "microsoft"\nmailboxes = ["a@b.example"]\n',
         ":2: defaults.workers"),
        ('[customer.a]\nprovider = "microsoft"\nmailboxes = ["a@b.example"]\nmethods = ["pigeon"]\n',
         ":4: customer.a.methods:"),
        ('[customer.a\nprovider = 1\n', ":1: invalid TOML"),
        ("", "no customers"),
    ],
)
def test_inventory_errors_name_file_line_and_key(tmp_path: Path, body: str, expected: str) -> None:
    path = inventory(tmp_path, body)
    with pytest.raises(InputError) as info:
        load_inventory(path, ["google", "microsoft"])
    assert str(path) in str(info.value) and expected in str(info.value)


def test_inline_secrets_are_allowed_only_with_a_warning(tmp_path: Path) -> None:
    warnings: list[str] = []
    body = '[customer.a]\nprovider = "microsoft"\nmailboxes = ["a@b.example"]\nclient_secret = "s3cr3t-value"\n'
    load_inventory(inventory(tmp_path, body), ["microsoft"], warn=warnings.append)
    assert len(warnings) == 1 and ":4: customer.a.client_secret" in warnings[0]
    assert "s3cr3t-value" not in warnings[0]


def test_audit_isolates_tenants_and_survives_one_failing(tmp_path: Path) -> None:
    provider = ToyProvider(
        {"contoso.example": {"hr@contoso.example": True}, "fabrikam.example": {"jobs@fabrikam.example": True}},
        fail={"broken.example"},
    )
    inv = load_inventory(inventory(tmp_path, GOOD), ["microsoft"])
    states: list[tuple[str, str]] = []
    runs, interrupted = run_audit(inv, Registry([provider]), load_catalogue(), NOW, tmp_path / "cache",
                                  on_state=lambda k, s: states.append((k, s)))
    assert not interrupted and [r.customer.key for r in runs] == ["contoso", "broken", "fabrikam"]
    contoso, broken, fabrikam = (r.result for r in runs)
    assert {m.address: m.verdict for m in contoso.mailboxes} == {
        "jobs@contoso.example": Verdict.READY, "hr@contoso.example": Verdict.BLOCKED}
    assert broken.errors and "AADSTS700016" in broken.errors[0] and not broken.findings
    assert fabrikam.mailboxes[0].verdict is Verdict.READY  # the accepted exception
    assert fabrikam.findings[0].accepted == "Vendor switches to Graph API sending in January until 2027-01-31"
    # every tenant got its own cache folder, none inside another's
    folders = [d for _, d in provider.seen]
    assert len(set(folders)) == 3 and all(d is not None and d.is_relative_to(tmp_path / "cache") for d in folders)
    assert ("broken", "failed") in states and ("contoso", "done") in states

    out = tmp_path / "out"
    for r in runs:
        write_tenant(r, out, NOW)
    write_consolidated(runs, out, NOW, interrupted)
    consolidated = json.loads((out / "report.json").read_text())
    assert [t["name"] for t in consolidated["targets"]] == ["contoso", "Broken Corp", "fabrikam"]
    assert json.loads((out / "contoso" / "snapshot.json").read_text())["schema"] == "preflight.snapshot/v1"
    html = (out / "report.html").read_text()
    assert "Readiness across tenants" in html and "Could not audit" in html and "1/2 ready" in html
    plan = list(csv.DictReader(io.StringIO((out / "action-plan.csv").read_text())))
    assert [(p["customer"], p["cause"], p["where"]) for p in plan] == [
        ("contoso", "smtp-auth-disabled-mailbox", "hr@contoso.example")]
    assert "Set-CASMailbox" in plan[0]["fix"]
    assert "AADSTS700016" in (out / "action-plan.md").read_text()


def test_drift_between_two_audits(tmp_path: Path) -> None:
    inv = load_inventory(inventory(tmp_path, GOOD), ["microsoft"])
    before = ToyProvider({"contoso.example": {"hr@contoso.example": True}, "fabrikam.example": {}})
    after = ToyProvider({"contoso.example": {"jobs@contoso.example": True}, "fabrikam.example": {}})
    old = [r.result for r in run_audit(inv, Registry([before]), load_catalogue(), NOW, tmp_path)[0]]
    new = [r.result for r in run_audit(inv, Registry([after]), load_catalogue(), NOW, tmp_path)[0]]
    drifts = {d.tenant: d for d in diff_reports(make_report(old), make_report(new))}
    contoso = drifts["contoso"]
    assert [n.subject for _, n in contoso.fixed] == ["hr@contoso.example"]
    assert [n.subject for _, n in contoso.regressed] == ["jobs@contoso.example"]
    assert has_regressions(list(drifts.values()))
    assert not drifts["fabrikam"].changed


def test_redaction_is_stable_and_keeps_verdicts(tmp_path: Path) -> None:
    inv = load_inventory(inventory(tmp_path, GOOD), ["microsoft"])
    provider = ToyProvider({"contoso.example": {"hr@contoso.example": True}, "fabrikam.example": {}})
    runs, _ = run_audit(inv, Registry([provider]), load_catalogue(), NOW, tmp_path)
    redactor = Redactor(b"k" * 32)
    snap = runs[0].snapshot
    assert snap is not None
    red = redactor.value(snap.to_dict())
    text = json.dumps(red)
    assert "contoso" not in text and "hr@" not in text
    assert redactor.value(snap.to_dict()) == red  # stable
    from preflight.engine import evaluate
    from preflight.snapshot import parse

    again = evaluate(parse(red), [smtp], load_catalogue(), NOW)
    assert sorted(m.verdict.value for m in again.mailboxes) == sorted(m.verdict.value for m in runs[0].result.mailboxes)
    report_text = json.dumps(redactor.value(runs[0].result.to_dict()))
    assert "hr@contoso.example" not in report_text and "smtp-auth-disabled-mailbox" in report_text
    assert redactor.text("00000002-0000-0ff1-ce00-000000000000") == "00000002-0000-0ff1-ce00-000000000000"


def test_the_documented_demo_inventory_audits_offline(tmp_path: Path) -> None:
    from preflight.audit.cli import audit

    path = Path(__file__).resolve().parent.parent / "docs" / "examples" / "demo-inventory.toml"
    inv = load_inventory(path, ["google", "microsoft"])
    assert len(inv.customers) == 6 and all(c.snapshot is not None and c.snapshot.is_file() for c in inv.customers)
    import typer

    with pytest.raises(typer.Exit) as info:
        audit(str(path), output_dir=tmp_path / "out")
    assert info.value.exit_code == 1  # the simulated tenants have blocking findings
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert len(report["targets"]) == 6 and not any(t["errors"] for t in report["targets"])
    contoso = next(t for t in report["targets"] if t["name"] == "Contoso (simulated)")
    assert any(f["accepted"] for f in contoso["findings"])


def test_diff_sees_warn_to_unknown_and_lines_up_a_report_with_a_snapshot() -> None:
    from preflight.cli import as_of_date, default_registry, evaluate_snapshots

    demo = Path(__file__).resolve().parent.parent / "providers" / "microsoft" / "demo" / "contoso.json"
    registry = default_registry()
    june, next_june = (make_report(evaluate_snapshots([demo], registry, as_of_date(day)))
                       for day in ("2026-06-01", "2027-06-01"))
    drift = diff_reports(june, next_june)
    # Basic SMTP AUTH is off by default after 2026, unless an admin turned it back on: warn -> unknown
    assert [n.check for _, n in drift[0].became_unknown] == ["ms.basic-auth-retirement"] and not drift[0].regressed
    assert [n.check for _, n in diff_reports(next_june, june)[0].became_known] == ["ms.basic-auth-retirement"]
    # the same tenant under an audit's display name is still the same tenant
    renamed = Report.from_dict(june.to_dict())
    renamed.targets[0].name = "Contoso (simulated)"
    assert not diff_reports(renamed, june)[0].changed
