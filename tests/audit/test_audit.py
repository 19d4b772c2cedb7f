"""Consultant audits: inventory validation, parallel isolated tenants, outputs, drift and redaction."""

from __future__ import annotations

import csv
import io
import json
import re
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
from preflight.model import Severity, Verdict
from preflight.output import make_report
from preflight.providers import CollectRequest, Registry
from preflight.report.read import parse_report
from preflight.resources import Schema
from preflight_providers.microsoft.resources import RESOURCES
from tests.conftest import NOW, evaluate_data, run_cli


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

    def resources(self) -> Schema:
        return RESOURCES

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


def test_the_tenants_of_one_run_share_its_memo_and_another_run_has_its_own(tmp_path: Path) -> None:
    """What one tenant's sign-in learned (a parsed key, an API's refusal) is there for the run's next tenants."""
    memos: list[object] = []

    class Recording(ToyProvider):
        def collect(self, request: CollectRequest) -> dict[str, Any]:
            memos.append(request.memo)
            return super().collect(request)

    inv = load_inventory(inventory(tmp_path, GOOD), ["microsoft"])
    tenants: dict[str, dict[str, bool]] = {"contoso.example": {}, "broken.example": {}, "fabrikam.example": {}}
    for _ in range(2):
        run_audit(inv, Registry([Recording(tenants)]), load_catalogue(), NOW, tmp_path / "cache")
    assert len(memos) == 6
    assert all(m is memos[0] for m in memos[:3]) and all(m is memos[3] for m in memos[3:])
    assert memos[0] is not memos[3]


def test_the_init_template_is_a_valid_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    path = inventory(tmp_path, TEMPLATE)
    with pytest.raises(InputError, match=r":16: customer.contoso.certificate: '~/.config/preflight/certs/contoso.pfx'"
                                         ": no such file"):
        load_inventory(path, ["google", "microsoft"])
    for file in (".config/preflight/certs/contoso.pfx", ".config/preflight/keys/fabrikam.json"):
        (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / file).write_text("{}")
    inv = load_inventory(path, ["google", "microsoft"])
    assert inv.customers[0].settings["certificate"] == str(tmp_path / ".config/preflight/certs/contoso.pfx")
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
    assert "Readiness across tenants" in html and "could not audit" in html and "1/2 ready" in html
    assert 'href="contoso/report.html"' in html  # each customer links to its own report
    own = (out / "contoso" / "report.html").read_text()
    assert "<h1>contoso</h1>" in own and "Action plan" in own and "Evidence" in own
    assert "Set-CASMailbox -Identity hr@contoso.example" in (out / "contoso" / "action-plan.md").read_text()
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
    assert [c.after.subject for c in contoso.fixed] == ["hr@contoso.example"]
    assert [c.after.subject for c in contoso.regressed] == ["jobs@contoso.example"]
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

    again = evaluate(parse(red), [smtp], load_catalogue(), NOW, resources=RESOURCES)
    assert sorted(m.verdict.value for m in again.mailboxes) == sorted(m.verdict.value for m in runs[0].result.mailboxes)
    report_text = json.dumps(redactor.value(runs[0].result.to_dict()))
    assert "hr@contoso.example" not in report_text and "smtp-auth-disabled-mailbox" in report_text
    assert redactor.text("00000002-0000-0ff1-ce00-000000000000") == "00000002-0000-0ff1-ce00-000000000000"


@pytest.mark.slow
def test_the_documented_demo_inventory_audits_offline(tmp_path: Path) -> None:
    from preflight.audit.cli import audit

    path = Path(__file__).resolve().parents[2] / "docs" / "examples" / "demo-inventory.toml"
    inv = load_inventory(path, ["google", "microsoft"])
    assert len(inv.customers) == 7 and all(c.snapshot is not None and c.snapshot.is_file() for c in inv.customers)
    import typer

    with pytest.raises(typer.Exit) as info:
        audit(str(path), output_dir=tmp_path / "out")
    assert info.value.exit_code == 1  # the simulated tenants have blocking findings
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert len(report["targets"]) == 7 and not any(t["errors"] for t in report["targets"])
    contoso = next(t for t in report["targets"] if t["name"] == "Contoso (simulated)")
    assert any(f["accepted"] for f in contoso["findings"])


def test_diff_sees_warn_to_unknown_and_lines_up_a_report_with_a_snapshot() -> None:
    from preflight.pipeline import as_of_date, default_registry, evaluate_snapshots

    demo = Path(__file__).resolve().parents[2] / "providers" / "microsoft" / "demo" / "contoso.json"
    registry = default_registry()
    june, next_june = (make_report(evaluate_snapshots([demo], registry, as_of_date(day)))
                       for day in ("2026-06-01", "2027-06-01"))
    drift = diff_reports(june, next_june)
    # Basic SMTP AUTH is off by default after 2026, unless an admin turned it back on: warn -> unknown
    assert [c.after.check for c in drift[0].became_unknown] == ["ms.basic-auth-retirement"] and not drift[0].regressed
    assert [c.after.check for c in diff_reports(next_june, june)[0].became_known] == ["ms.basic-auth-retirement"]
    # the same tenant under an audit's display name is still the same tenant
    renamed = parse_report(june.to_dict(), "june")
    renamed.targets[0].name = "Contoso (simulated)"
    assert not diff_reports(renamed, june)[0].changed


# --- every input is checked: one line, exit 2, before any tenant runs (issue 11) -------------------------

ROOT = Path(__file__).resolve().parents[2]
DEMO_MICROSOFT = ROOT / "providers" / "microsoft" / "demo" / "contoso.json"
DEMO_GOOGLE = ROOT / "providers" / "google" / "demo" / "fabrikam.json"
ONE = '[customer.a]\nprovider = "microsoft"\nmailboxes = ["a@b.example"]\n'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("defaults = 5\n" + ONE, ":1: defaults: must be a [defaults] table"),
        ("[defaults]\nworkers = true\n" + ONE, ":2: defaults.workers: must be a whole number"),
        ("[defaults]\nmethods = 5\n" + ONE, ":2: defaults.methods: must be a list of strings"),
        ("customer = 5\n", "no customers"),
        ("[customer]\na = 5\n", ":1: customer.a: must be a table"),
        (ONE + "name = 5\n", ":4: customer.a.name: must be a non-empty string"),
        (ONE + "tenant = []\n", ":4: customer.a.tenant: must be a non-empty string"),
        (ONE + 'with_sendas = "yes"\n', ":4: customer.a.with_sendas: must be true or false"),
        (ONE + "from = 5\n", ":4: customer.a.from: a From address"),
        (ONE + "exception = 5\n", ":4: customer.a.exception: use [[customer.NAME.exception]]"),
        ('[customer.a]\nprovider = "microsoft"\nmailboxes = 5\n', ":3: customer.a.mailboxes: must be a list"),
        ('[customer.a]\nprovider = "microsoft"\nmailboxes = ["a@b.example", "A@b.example"]\n',
         ":3: customer.a.mailboxes: 'a@b.example' is listed twice"),
        (ONE.replace("customer.a", '"customer"."report.json"'), "'report.json' is reserved"),
        (ONE.replace("customer.a", "customer.NUL"), "'NUL' is reserved"),
        (ONE + ONE.replace("customer.a", "customer.A"), ":4: customer.A: differs from [customer.a] only in case"),
        (ONE + "[[customer.a.exception]]\nmatch = \"smtp-auth-disabled-mailbx\"\nreason = \"x\"\n",
         ":5: customer.a.exception[1].match: 'smtp-auth-disabled-mailbx' is no check or cause id of this provider; "
         "did you mean 'smtp-auth-disabled-mailbox'?"),
        (ONE + "[[customer.a.exception]]\nmatch = \"shared-mailbox\"\nreason = \"x\"\n"
               "[[customer.a.exception]]\nmatch = \"shared-mailbox\"\nreason = \"x\"\nexpire = 2027-01-01\n",
         ":10: customer.a.exception[2].expire: unknown key"),
        (ONE + "[[customer.a.exception]]\nmatch = \"shared-mailbox\"\nreason = \"x\"\nexpires = \"2027\"\n",
         ":7: customer.a.exception[1].expires: must be a date"),
        (ONE + "[[customer.a.exception]]\nmatch = \"shared-mailbox\"\n", ":4: customer.a.exception[1]: reason"),
        (ONE + "[[customer.a.exception]]\nmatch = \"shared-mailbox\"\nreason = \"x\"\nsubject = \"c@b.example\"\n",
         ":7: customer.a.exception[1].subject: 'c@b.example' is not one of this customer's mailboxes"),
        (ONE + 'key_file = "nowhere.json"\n', ":4: customer.a.key_file: 'nowhere.json': no such file"),
        (ONE + 'certificate = "nowhere.pfx"\n', ":4: customer.a.certificate: 'nowhere.pfx': no such file"),
        (f'[customer.a]\nprovider = "microsoft"\nsnapshot = "{DEMO_GOOGLE}"\n',
         ":3: customer.a.snapshot: '" + str(DEMO_GOOGLE) + "' is a google snapshot, but provider = 'microsoft'"),
        ('[customer.a]\nprovider = "microsoft"\nsnapshot = "inventory.toml"\n',
         ":3: customer.a.snapshot: " ),
    ],
)
def test_every_inventory_key_is_typed_and_checked_before_any_sign_in(tmp_path: Path, body: str,
                                                                     expected: str) -> None:
    path = inventory(tmp_path, body)
    ids = {"microsoft": {"smtp-auth-disabled-mailbox", "shared-mailbox", "ms.smtp-auth"}}
    with pytest.raises(InputError) as info:
        load_inventory(path, ["google", "microsoft"], warn=lambda _m: None, ids=ids)
    assert str(info.value).startswith(str(path)) and expected in str(info.value)
    assert "\n" not in str(info.value)


def test_a_reserved_customer_name_is_refused_before_any_tenant_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = (f'[customer.a]\nprovider = "microsoft"\nsnapshot = "{DEMO_MICROSOFT}"\n'
            f'["customer"."report.json"]\nprovider = "microsoft"\nsnapshot = "{DEMO_MICROSOFT}"\n')
    code, _, err = run_cli(["audit", str(inventory(tmp_path, body)), "-d", str(tmp_path / "out")], capsys)
    assert code == 2 and "'report.json' is reserved" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_customers_of_the_same_display_name_stay_apart_everywhere(tmp_path: Path) -> None:
    body = GOOD.replace('name = "Broken Corp"', 'name = "Acme"') + (
        '[customer.acme-eu]\nname = "acme"\nprovider = "microsoft"\ntenant = "eu.example"\n'
        'mailboxes = ["x@eu.example"]\n')
    inv = load_inventory(inventory(tmp_path, body), ["microsoft"])
    assert [c.name for c in inv.customers] == ["contoso", "Acme (broken)", "fabrikam", "acme (acme-eu)"]
    provider = ToyProvider({"contoso.example": {}, "fabrikam.example": {}, "eu.example": {"x@eu.example": True}},
                           fail={"broken.example"})
    runs, _ = run_audit(inv, Registry([provider]), load_catalogue(), NOW, tmp_path / "cache")
    out = write_consolidated(runs, tmp_path / "out", NOW, interrupted=False)
    html = (out / "report.html").read_text()
    assert "Acme (broken)" in html and "acme (acme-eu)" in html and "x@eu.example" in html
    assert "AADSTS700016" in html


def test_an_inline_customer_without_the_provider_ids_still_needs_typed_exceptions(tmp_path: Path) -> None:
    inv = load_inventory(inventory(tmp_path, GOOD), ["microsoft"])
    assert inv.customers[2].exceptions[0].match == "smtp-auth-disabled-mailbox"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"schema":"preflight.report/v1","tool":"x","targets":[]}', "malformed report: tool must be an object"),
        ('{"schema":"preflight.report/v1","tool":{"version":"1"},"generated_at":"x","targets":"x"}',
         "targets must be a list"),
        ('{"schema":"preflight.report/v1","tool":{"version":"1"},"generated_at":"x","targets":[{"name":"a",'
         '"provider":"microsoft","tenant":"t","findings":[{"check":"c","title":"t","status":"FAIL"}]}]}',
         "targets[0].findings[0].status: 'FAIL' is not one of"),
        ('{"schema":"preflight.report/v1","tool":{"version":"1"},"generated_at":"x","targets":[{"name":"a",'
         '"provider":"microsoft","tenant":"t","mailboxes":[{"address":"a","method":"basic","verdict":"ready",'
         '"blocking":"x"}]}]}', "targets[0].mailboxes[0].blocking must be a list"),
        ('{"schema":"preflight.report/v1","x":NaN}', "NaN is not a JSON number"),
        ('{"schema":"preflight.report/v1","x":"\\ud800"}', "lone surrogate"),
        ('{"schema":"preflight.report/v1","x":' + "9" * 5000 + "}", "an integer of 5000 digits"),
        ('[1, 2]', "schema None"),
    ],
)
def test_diff_and_redact_refuse_malformed_reports_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    for args in (["diff", str(bad), str(bad)], ["redact", str(bad), "-d", str(tmp_path / "red")]):
        code, out, err = run_cli(args, capsys)
        assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, (args, err)
        assert "Traceback" not in err and out == ""
    assert not (tmp_path / "red").exists()


def test_redact_refuses_a_malformed_snapshot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "snap.json"
    bad.write_text('{"schema":"preflight.snapshot/v1","provider":"microsoft","tenant":[],"org":{},"mailboxes":{}}')
    code, _, err = run_cli(["redact", str(bad), "-d", str(tmp_path / "red")], capsys)
    assert code == 2 and "'tenant' must be an object" in err


def report_file(tmp_path: Path, name: str, tenant: str, status: str, method: str | None = None) -> Path:
    finding = {"check": "ms.smtp", "title": "SMTP AUTH", "status": status, "severity": "high",
               "cause": "smtp-auth-disabled-mailbox", "subject": "a@x.example", "method": method,
               "message": f"SMTP AUTH {status}", "evidence": {}, "remediation": None, "accepted": None}
    data = {"schema": "preflight.report/v1", "tool": {"name": "preflight", "version": "1"},
            "generated_at": "2026-11-26T12:00:00Z",
            "targets": [{"name": tenant, "provider": "microsoft", "tenant": tenant, "errors": [], "findings": [finding],
                         "mailboxes": [{"address": "a@x.example", "method": m, "verdict": "ready", "blocking": []}
                                       for m in ("basic", "oauth-app")]}]}
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_diff_lists_each_change_once_with_its_methods(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = report_file(tmp_path, "old.json", "x.example", "pass")
    new = report_file(tmp_path, "new.json", "x.example", "fail")
    code, out, _ = run_cli(["diff", str(old), str(new)], capsys)
    assert code == 1
    assert out.count("regressed:") == 1 and "[basic, oauth-app]" in out and "(pass -> fail)" in out
    only_basic = report_file(tmp_path, "basic.json", "x.example", "fail", method="basic")
    code, out, _ = run_cli(["diff", str(old), str(only_basic)], capsys)
    assert out.count("regressed:") == 1 and "[basic]" in out
    code, out, _ = run_cli(["diff", str(old), str(new), "-f", "json"], capsys)
    assert json.loads(out)["tenants"][0]["regressed"][0]["methods"] == ["basic", "oauth-app"]


def test_diff_of_reports_sharing_no_tenant_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = report_file(tmp_path, "old.json", "x.example", "pass")
    new = report_file(tmp_path, "new.json", "y.example", "pass")
    code, out, err = run_cli(["diff", str(old), str(new)], capsys)
    assert code == 2 and out == "" and "share no tenant" in err and "x.example" in err and "y.example" in err


@pytest.mark.slow
def test_an_output_folder_belongs_to_one_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from preflight.audit.folder import claim

    body = f'[customer.contoso]\nprovider = "microsoft"\nsnapshot = "{DEMO_MICROSOFT}"\n'
    inv = inventory(tmp_path, body)
    out = tmp_path / "out"
    (out / "fabrikam").mkdir(parents=True)
    (out / "fabrikam" / "report.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    code, _, err = run_cli(["audit", str(inv), "-d", str(out)], capsys)
    assert code == 2 and "not empty (fabrikam, notes.txt)" in err and "--force" in err
    code, _, err = run_cli(["audit", str(inv), "-d", str(out), "--force"], capsys)
    assert code == 1 and sorted(p.name for p in out.iterdir()) == [
        "action-plan.csv", "action-plan.md", "contoso", "notes.txt", "report.html", "report.json"]
    # two runs started in the same second get two folders
    monkeypatch.chdir(tmp_path)
    started = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    first, second = (claim(None, started, False, tmp_path / "cache") for _ in range(2))
    assert first.name == "preflight-audit-20261126-120000" and second.name == first.name + "-2"


def test_expired_exceptions_are_listed_and_the_summary_counts_what_ran(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = (f'[customer.contoso]\nprovider = "microsoft"\nsnapshot = "{DEMO_MICROSOFT}"\n'
            '[[customer.contoso.exception]]\nmatch = "shared-mailbox"\nreason = "Moving in Q1"\nexpires = 2026-01-31\n')
    out = tmp_path / "out"
    code, _, err = run_cli(["audit", str(inventory(tmp_path, body)), "-d", str(out), "--as-of", "2026-11-26"], capsys)
    assert code == 1
    assert "contoso: the exception for 'shared-mailbox' expired on 2026-01-31" in err
    assert "1 of 1 tenants audited." in err
    report = json.loads((out / "report.json").read_text())
    assert report["audit"]["expired_exceptions"] == [{"customer": "contoso", "match": "shared-mailbox",
                                                      "subject": None, "reason": "Moving in Q1",
                                                      "expired": "2026-01-31"}]
    assert not any(f["accepted"] for f in report["targets"][0]["findings"])
    assert report["generated_at"][:10] == datetime.now(UTC).date().isoformat()  # the run's, not --as-of


def test_the_demo_is_generated_today_whatever_day_it_is_evaluated_for(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "demo.html"
    run_cli(["demo", "--html", str(page), "-f", "json"], capsys)
    assert f"Generated</dt><dd>{datetime.now(UTC).date().isoformat()}" in page.read_text()


def test_provider_messages_name_inventory_keys_not_flags() -> None:
    from preflight.audit.runner import inventory_terms

    assert inventory_terms("set --certificate-password-env or --bogus", "contoso") == \
        "set customer.contoso.certificate_password_env or --bogus"


# --- redaction: zero survivors ------------------------------------------------------------------------------

# Names of Microsoft's own objects every tenant has: facts about the product, not about the customer.
PRODUCT_NAMES = {"Office 365 Exchange Online", "Security Defaults", "Microsoft Graph"}
WELL_KNOWN = ("onmicrosoft.com", "outlook.com", "google.com", "gmail.com", "microsoft.com", "office365.com",
              "googleapis.com", "office.com", "microsoftonline.com")


def sensitive(data: object, found: set[str] | None = None, key: str | None = None) -> set[str]:
    """Every string in a snapshot that names the customer or a person: addresses and their local parts,
    domains and the organisation name they spell, person and object names, tenant and customer ids, GUIDs."""
    from preflight.audit.redact import CUSTOMER_ID, EMAIL, GUID, KEEP_GUIDS

    found = set() if found is None else found
    if isinstance(data, dict):
        for k, v in data.items():
            sensitive(k, found)
            sensitive(v, found, k)
    elif isinstance(data, list):
        for v in data:
            sensitive(v, found, key)
    elif isinstance(data, str):
        for m in EMAIL.finditer(data):
            local, domain = m.group(1), m.group(2)
            found.update({m.group(0), domain})
            if len(local) >= 4:
                found.add(local)
        found.update(g for g in GUID.findall(data) if g.lower() not in KEEP_GUIDS)
        found.update(CUSTOMER_ID.findall(data))
        if key in ("domain", "domainName", "customerDomain"):
            found.add(data)
        if key in ("displayName", "givenName", "surname", "fullName", "familyName") and len(data) >= 4:
            found.add(data)
    return found


@pytest.mark.slow
def test_redacted_audit_outputs_keep_no_address_domain_name_or_id(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "docs" / "examples" / "demo-inventory.toml"
    inv = load_inventory(path, ["google", "microsoft"])
    needles: set[str] = set()
    for c in inv.customers:
        assert c.snapshot is not None
        data = json.loads(c.snapshot.read_text())
        sensitive(data, needles)
        needles.update({c.name, c.key})
        domain = str(data["tenant"].get("domain") or "")
        needles.update({domain, domain.split(".")[0]})
        needles.update(str(data["tenant"][k]) for k in ("id", "domain", "name", "customer_id") if k in data["tenant"])
    needles = {n for n in needles if n and n.lower() not in WELL_KNOWN and len(n) >= 4} - PRODUCT_NAMES
    assert {"Contoso (simulated)", "tailspintoys.com", "fabrikam", "jane.doe", "C02fbr7k1"} <= needles
    out = tmp_path / "out"
    code, _, _ = run_cli(["audit", str(path), "-d", str(out), "--redact", "--as-of", "2026-11-26"], capsys)
    assert code == 1
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"report.html", "report.json", "action-plan.md", "action-plan.csv",
                                       "snapshot.json"} and len(files) == 4 + 7 * 5
    # and the redact command, on every shipped demo snapshot and on a report
    shipped = [c.snapshot for c in inv.customers if c.snapshot is not None]
    code, _, _ = run_cli(["redact", *map(str, shipped), str(out / "report.json"), "-d", str(tmp_path / "red")], capsys)
    assert code == 0
    files += list((tmp_path / "red").iterdir())
    survivors = {}
    for p in files:
        # links stay (support.google.com is Google's), and API field names are no names ("devices")
        text = re.sub(r"https://\S+", " ", str(p.relative_to(tmp_path)) + "\n" + p.read_text(encoding="utf-8"))
        left = sorted(n for n in needles if re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", text,
                                                        re.IGNORECASE if "@" in n or "." in n else 0))
        # ids and domains also inside a longer token (an etag, a distinguished name, a file name)
        inside = sorted(n for n in needles if any(ch in n for ch in ".@0123456789") and len(n) >= 6
                        and n.lower() in text.lower() and n not in left)
        if left or inside:
            survivors[str(p.relative_to(tmp_path))] = left + inside
    assert survivors == {}


def test_redaction_reaches_inside_distinguished_names_etags_and_lists() -> None:
    redactor = Redactor(b"k" * 32)
    snap = {"tenant": {"domain": "tailspintoys.com", "id": "C04d2fea02"},
            "org": {"policy": {"Name": "Block Basic Auth", "DistinguishedName":
                               "CN=Block Basic Auth,CN=Auth Policies,CN=tailspintoys.onmicrosoft.com"},
                    "domains": {"domains": [{"domainName": "fabrikam.example", "etag": '"C04d2fea02-jane.doe-etag"'}]}},
            "mailboxes": {"jane.doe@fabrikam.example": {"user": {"displayName": "Jane Doe"}}},
            "evidence": {"domains": ["northwind.example"], "note": "Jane Doe of Tailspintoys"}}
    redactor.learn(snap)
    redactor.learn({"domains": ["northwind.example"]})
    text = json.dumps(redactor.value(snap)).lower()
    for needle in ("tailspintoys", "fabrikam", "northwind", "jane", "doe", "c04d2fea02", "block basic auth"):
        assert needle not in text, needle
    assert "https://support.google.com/a/answer/1" in redactor.text("see https://support.google.com/a/answer/1")


@pytest.mark.slow
def test_redacted_demo_snapshots_evaluate_to_the_same_verdicts() -> None:
    from preflight.pipeline import as_of_date, default_registry, evaluate_snapshots

    registry, day = default_registry(), as_of_date("2026-11-26")
    for demo in sorted((ROOT / "providers").glob("*/demo/*.json")):
        redactor = Redactor(b"k" * 32)
        data = json.loads(demo.read_text())
        redactor.learn(data)
        red = redactor.value(data)
        before = evaluate_snapshots([demo], registry, day)[0]
        after = evaluate_data(red, day, demo.name)
        assert [(m.method, m.verdict, m.blocking) for m in after.mailboxes] == \
            [(m.method, m.verdict, m.blocking) for m in before.mailboxes], demo.name


def test_consolidated_files_are_the_same_whatever_order_tenants_finish_in(tmp_path: Path) -> None:
    """An audit adds each tenant's share of the consolidated files as it finishes: the files are those of its
    finished tenants in the inventory's order, whichever finished first, and an interrupted run's hold only the
    tenants it reports."""
    from preflight.audit.inventory import Customer
    from preflight.audit.output import Consolidated
    from preflight.audit.runner import TenantRun
    from preflight.engine import Exception_
    from preflight.model import TargetResult

    def customer(key: str, provider: str, exceptions: tuple[Exception_, ...] = ()) -> Customer:
        return Customer(key=key, name=key.title(), provider=provider, settings={}, mailboxes=(), methods=(),
                        exceptions=exceptions)

    expired = (Exception_("smtp-auth-disabled-mailbox", "Moving in Q1", None, datetime(2026, 1, 31).date()),)
    runs = []
    for i, path in enumerate(sorted((ROOT / "providers").glob("*/demo/*.json"))):
        data = json.loads(path.read_text())
        result = evaluate_data(data)
        runs.append(TenantRun(customer(path.stem, data["provider"], expired if i == 0 else ()), result, None, 0.0))
    runs.insert(2, TenantRun(customer("broken", "microsoft"), TargetResult(
        "Broken", "microsoft", "broken.example", errors=["AADSTS700016: application not found"]), None, 0.0))
    names = ("report.json", "report.html", "action-plan.md", "action-plan.csv")
    for n, (interrupted, kept) in enumerate(((False, range(len(runs))), (True, [0, 2, 5]), (True, [3]))):
        whole = write_consolidated([runs[i] for i in kept], tmp_path / f"whole{n}", NOW, interrupted)
        with Consolidated(tmp_path / f"parts{n}", NOW) as files:
            for i in reversed(range(len(runs))):  # the last first; every tenant added, some not reported
                files.add_run(runs[i], i)
            parts = files.write(interrupted, set(kept))
        assert sorted(p.name for p in parts.iterdir()) == sorted(names)  # the parts file has no name
        for name in names:
            assert (parts / name).read_bytes() == (whole / name).read_bytes(), name
        report = json.loads((parts / "report.json").read_text())
        assert report["audit"]["customers"] == [runs[i].customer.key for i in kept]
        assert report["audit"]["interrupted"] is interrupted
    assert len(json.loads((tmp_path / "whole0" / "report.json").read_text())["audit"]["expired_exceptions"]) == 1


def test_redaction_does_not_depend_on_the_order_tenants_teach_it() -> None:
    """'jobs' is a local part in one tenant and an org unit's name in another: tenants finish in any order, and
    the same key must give the same pseudonyms either way."""
    first = {"primaryEmail": "jobs@contoso.example"}
    second = {"orgUnits": [{"name": "jobs", "orgUnitPath": "/jobs"}]}
    texts = []
    for order in ((first, second), (second, first)):
        red = Redactor(b"k" * 32)
        for data in order:
            red.learn(data)
        texts.append((red.value(second), red.text("the unit /jobs of jobs@contoso.example")))
    assert texts[0] == texts[1]
