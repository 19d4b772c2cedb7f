"""ScubaGoggles' own Policy API fixtures (cisagov/ScubaGoggles, Testing/Unit/Python/data/policyapi_*.json, CC0), turned
into snapshots: each org unit ScubaGoggles reports on gets a user in it holding the licence the policies' clauses
name, and the effective value preflight computes for that user must equal what ScubaGoggles' tests expect.

Made with a one-off conversion: org units in the Directory orgunits.list shape, the policies verbatim (less the
fields ScubaGoggles' tests invent, e.g. "testing comment"), ScubaGoggles' `results` kept per org unit for the
settings policies target directly. Sections ScubaGoggles post-processes with its own parsers (rules, spam lists)
are not compared.

ScubaGoggles reduces the policies that target each org unit apart; Google's reduction (and preflight's) is per
user, over the policies of the user's org unit and its parents. The two agree for the root org unit, and for a
child org unit's Max settings (its own policy has the greater sortOrder); a child's Merge and MaxMap values also
take the parents' fields and entries (get_policies12's gmail_rule_states), so those are compared at the root only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from preflight.model import Status
from preflight_providers.google.checks.facts import SettingSpec
from preflight_providers.google.checks.policy import Membership, reduce, targeted_groups
from preflight_providers.google.resources import Policies
from tests.conftest import evaluate_data

DATA = Path(__file__).parent / "fixtures" / "scubagoggles"
SNAPSHOTS = sorted(p for p in DATA.glob("*.json") if not p.name.endswith(".expected.json"))
# ScubaGoggles' reducers (policy_api.py _expectedPolicySettings) for the sections compared; Max otherwise.
MERGE = {"chat_chat_history", "chat_external_chat_restriction", "drive_and_docs_drive_sdk",
         "groups_for_business_groups_sharing", "security_less_secure_apps", "security_super_admin_account_recovery",
         "security_user_account_recovery"}
MAXMAP = {"gmail_email_address_lists": "id", "gmail_rule_states": "ruleId"}


def spec(section: str, types: set[str]) -> SettingSpec:
    setting = next(t for t in (t.removeprefix("settings/") for t in types) if t.replace(".", "_") == section)
    if section in MAXMAP:
        return SettingSpec(setting, "MaxMap", {}, "none", key=MAXMAP[section])
    return SettingSpec(setting, "Merge" if section in MERGE else "Max", {}, "none")


def member(snap: dict[str, Any], user: dict[str, Any]) -> Membership:
    units = {ou["orgUnitPath"]: ou["orgUnitId"].removeprefix("id:") for ou in snap["org"]["orgUnits"]}
    parts = [p for p in user["orgUnitPath"].split("/") if p]
    chain = {units["/"]} | {units["/" + "/".join(parts[:i])] for i in range(1, len(parts) + 1)}
    skus = frozenset(f"/product/{a['productId']}/sku/{a['skuId']}" for a in
                     snap["mailboxes"][user["primaryEmail"]]["licenses"])
    # The user is in no group (ScubaGoggles keys group policies apart): hasMember said no for every targeted one.
    return Membership(frozenset(chain), frozenset(units.values()), units["/"], frozenset(),
                      dict.fromkeys(targeted_groups(snap["org"]["policies"]), False), skus)


@pytest.mark.parametrize("path", SNAPSHOTS, ids=[p.stem for p in SNAPSHOTS])
def test_effective_values_equal_what_scubagoggles_expects(path: Path) -> None:
    snap = json.loads(path.read_text(encoding="utf-8"))
    expected = json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))["effective"]
    types = {p["setting"]["type"] for p in snap["org"]["policies"]}
    assert expected, "each converted fixture compares something"
    for address, sections in expected.items():
        user = snap["mailboxes"][address]["user"]
        for section, value in sections.items():
            how = spec(section, types)
            if user["orgUnitPath"] != "/" and how.reducer != "Max":
                continue
            eff = reduce(Policies.model_validate(snap["org"]["policies"]).root, how, member(snap, user))
            assert not eff.alternatives, (address, section)  # licences read: nothing is left undecided
            assert dict(eff.value) == value, (path.stem, address, section)


@pytest.mark.parametrize("path", SNAPSHOTS, ids=[p.stem for p in SNAPSHOTS])
def test_the_checks_run_on_them_without_guessing(path: Path) -> None:
    snap = json.loads(path.read_text(encoding="utf-8"))
    result = evaluate_data(snap, where=path.stem)
    assert result.findings
    for f in result.findings:
        assert f.status is not Status.UNKNOWN or f.check in ("google.gmail-service", "google.dwd-grant"), (
            f.check, f.subject, f.message)
