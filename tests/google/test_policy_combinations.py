"""Issue 13 item 1: when licence (or group, or org unit) clauses leave several candidate policies, a check is
evaluated under every combination of the undecided clauses it meets, and decided when all of them lead to the
same verdict; otherwise it is unknown naming the candidates.

The shipped Google fixtures and demos, and ScubaGoggles' Policy API fixtures turned into snapshots
(tests/google/fixtures/scubagoggles), are read twice: with the licences they were collected with, and as a
default run (no --with-licenses) leaves them. A default run may only know less, never something else.
`python -m tests.google.test_policy_combinations` prints how many checks a default run decides.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from preflight.checks import Context, Outcome, failed, passed
from preflight.model import Finding, Method, Status, TargetResult
from preflight.resources import Resources
from preflight.snapshot import Unavailable, parse
from preflight_providers.google import provider
from preflight_providers.google.checks import common
from preflight_providers.google.checks.common import User, effective, for_users
from tests.conftest import NOW, evaluate_data, finding

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
LICENCE = "/product/Google-Apps/sku/1010020028"  # Business Standard, as the fixtures' licence clauses name it
Data = dict[str, Any]


def shipped() -> list[Path]:
    """The Google fixtures and demo workspaces the closing note counts (ScubaGoggles' snapshots apart)."""
    return sorted((HERE / "fixtures").glob("*.json")) + sorted((ROOT / "providers" / "google" / "demo").glob("*.json"))


def scubagoggles() -> list[Path]:
    folder = HERE / "fixtures" / "scubagoggles"
    return sorted(p for p in folder.glob("*.json") if not p.name.endswith(".expected.json"))


def load(path: Path) -> Data:
    data: Data = json.loads(path.read_text(encoding="utf-8"))
    return data


def default_run(data: Data) -> Data:
    """What a run without --with-licenses collects: no licences, no per-product licence errors."""
    out = copy.deepcopy(data)
    for mailbox in out.get("mailboxes", {}).values():
        mailbox.pop("licenses", None)
    out.get("org", {}).pop("licenseErrors", None)
    return out


def by_key(result: TargetResult) -> dict[tuple[str, str | None, Method | None], Finding]:
    return {(f.check, f.subject, f.method): f for f in result.findings}


def decided(paths: list[Path], *, licences: bool) -> tuple[int, int]:
    """(pass, warn or fail findings, findings that are not skipped) over the snapshots."""
    yes = total = 0
    for path in paths:
        data = load(path)
        for f in evaluate_data(data if licences else default_run(data)).findings:
            total += f.status is not Status.SKIPPED
            yes += f.status in (Status.PASS, Status.WARN, Status.FAIL)
    return yes, total


@pytest.mark.parametrize("path", shipped() + scubagoggles(), ids=lambda p: p.stem)
def test_a_default_run_knows_less_never_something_else(path: Path) -> None:
    data = load(path)
    full, bare = by_key(evaluate_data(data)), by_key(evaluate_data(default_run(data)))
    assert full.keys() == bare.keys()
    for key, f in bare.items():
        if f.status is not Status.UNKNOWN:
            assert (f.status, f.cause) == (full[key].status, full[key].cause), (key, f.message)


def test_a_default_run_decides_at_least_what_it_did() -> None:
    """117 of 161 before the combination rule (per-field meanings only); 143 with licences."""
    assert decided(shipped(), licences=False) >= (120, 161)
    assert decided(shipped(), licences=True) == (143, 161)


def test_a_candidate_that_changes_a_field_but_not_the_verdict_decides() -> None:
    """builds@ is enrolled but not enforced: security keys only (from a licence-bound OU policy) or not, a
    password sign-in is at risk either way."""
    data = default_run(load(HERE / "fixtures" / "security_key_only.json"))
    f = finding(evaluate_data(data), "google.password-sign-in", "builds@tailspin.example")
    assert f.status is Status.WARN and f.cause == "app-password-required"
    assert "the verdict is the same in all 2 combinations" in f.message
    assert "policies/ahpc01b2c3d40009q7xk" in f.message
    assert f.evidence["combinations evaluated"] == [f"licence {LICENCE} holds", f"licence {LICENCE} does not hold"]


def test_a_candidate_that_changes_the_verdict_stays_unknown_naming_it_and_what_decides_it() -> None:
    """deploy@ has 2SV enforced: security keys only (the licence-bound OU policy) blocks app passwords, ALL does
    not. Which applies depends on the licence: unknown, naming the policy and what to grant."""
    data = default_run(load(HERE / "fixtures" / "security_key_only.json"))
    f = finding(evaluate_data(data), "google.app-passwords", "deploy@tailspin.example")
    assert f.status is Status.UNKNOWN
    assert "licenses" in f.message and "policies/ahpc01b2c3d40009q7xk" in f.message
    assert "'PASSKEY_ONLY' instead of 'ALL'" in f.message and f.remediation and "apps.licensing" in f.remediation


def _licence_bound(name: str, setting: str, value: dict[str, Any], sort: float) -> Data:
    return {
        "name": name,
        "customer": "customers/C01b2c3d4",
        "policyQuery": {
            "query": "entity.org_units.exists(org_unit, org_unit.org_unit_id == orgUnitId('03ph8a2z0tsroot')) && "
                     f"entity.licenses.exists(license, license in ['{LICENCE}'])",
            "orgUnit": "orgUnits/03ph8a2z0tsroot",
            "sortOrder": sort,
        },
        "setting": {"type": f"settings/{setting}", "value": value},
        "type": "ADMIN",
    }


@for_users
def _same_licence_both_ways(ctx: Context, user: User) -> Outcome:
    """A check reading two settings whose only candidates share one licence clause."""
    factor = effective(ctx, user, "security.two_step_verification_enforcement_factor")
    keys_only = factor.get("allowedSignInFactorSet") == "PASSKEY_ONLY"
    service = effective(ctx, user, "gmail.service_status").get("serviceState")
    return passed("together") if keys_only == (service == "ENABLED") else failed("apart")


def _coupled(*, same_clause: bool) -> Data:
    data = default_run(load(HERE / "fixtures" / "security_key_only.json"))
    other = "/product/Google-Apps/sku/1010020025"
    data["org"]["policies"] = [
        _licence_bound("policies/ahptest0001", "security.two_step_verification_enforcement_factor",
                       {"allowedSignInFactorSet": "PASSKEY_ONLY"}, 301),
        _licence_bound("policies/ahptest0002", "gmail.service_status", {"serviceState": "ENABLED"}, 301),
    ]
    if not same_clause:
        pq = data["org"]["policies"][1]["policyQuery"]
        pq["query"] = pq["query"].replace(LICENCE, other)
    return data


def _contexts(data: Data, address: str) -> Iterator[Context]:
    snap = parse(data, "test")
    yield Context(snap, address, Method.BASIC, NOW, Resources(snap, provider.resources()))


def test_one_clause_is_assumed_the_same_way_in_every_setting_it_appears_in() -> None:
    """Taken apart, each setting has a candidate; taken together, one licence decides both, so the two
    combinations that mix them (keys only without the licence's Gmail, and the reverse) never happen."""
    ctx = next(_contexts(_coupled(same_clause=True), "deploy@tailspin.example"))
    out = _same_licence_both_ways(ctx)
    assert out is not None and out.status is Status.PASS, out
    assert len(out.evidence["combinations evaluated"]) == 2
    # Two licences: the mixed combinations happen, and they disagree. Licences decide it: the unknown names the
    # licences resource (what to grant) and the candidates.
    with pytest.raises(Unavailable) as apart:
        _same_licence_both_ways(next(_contexts(_coupled(same_clause=False), "deploy@tailspin.example")))
    assert apart.value.resource.startswith("licenses") and "not collected" in apart.value.reason
    assert "policies/ahptest0001" in apart.value.reason and "policies/ahptest0002" in apart.value.reason


def test_past_the_bound_of_combinations_it_stays_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "MAX_COMBINATIONS", 1)
    with pytest.raises(Unavailable) as err:
        _same_licence_both_ways(next(_contexts(_coupled(same_clause=True), "deploy@tailspin.example")))
    assert "policies/ahptest0001" in err.value.reason


def main() -> None:
    for name, paths in (("shipped Google fixtures and demos", shipped()), ("ScubaGoggles snapshots", scubagoggles())):
        for licences in (False, True):
            yes, total = decided(paths, licences=licences)
            how = "with licences" if licences else "default run (no --with-licenses)"
            print(f"{name}, {how}: {yes} of {total} checks decided")


if __name__ == "__main__":
    main()
