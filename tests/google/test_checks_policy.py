"""The effective-policy reduction (preflight_providers.google.checks.policy): Max, Merge, MaxMap, inheritance, groups,
licences, defaults, undecidable queries, and sortOrder renumbering."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from preflight_providers.google.checks import policy
from preflight_providers.google.checks.facts import SettingSpec, facts
from preflight_providers.google.checks.policy import Applies, Effective, Membership, Target, Undetermined
from preflight_providers.google.resources import Policies, Policy

ROOT, SALES, EMEA, ENG = "03ph8a2z0root00", "03ph8a2z1sales0", "03ph8a2z2emea00", "03ph8a2z3eng000"
GROUP, OTHER_GROUP = "01ci93xb3grp001", "01ci93xb3grp002"
SKU = "/product/Google-Apps/sku/1010020028"
LABELS = {f"orgUnits/{ROOT}": "/", f"orgUnits/{SALES}": "/Sales", f"orgUnits/{EMEA}": "/Sales/EMEA",
          f"orgUnits/{ENG}": "/Engineering", f"groups/{GROUP}": "vip@example.com"}
ALL_OUS = frozenset({ROOT, SALES, EMEA, ENG})


def member(ous: Iterable[str], groups: Iterable[str] | None = (), licences: Iterable[str] | None = None,
           nested: Mapping[str, bool] | None = None) -> Membership:
    """Unless `nested` says otherwise, hasMember was read for the test groups and found no nested membership."""
    return Membership(
        org_unit_ids=frozenset(ous) | {ROOT},
        known_org_unit_ids=ALL_OUS,
        root_org_unit_id=ROOT,
        group_ids=None if groups is None else frozenset(groups),
        nested={GROUP: False, OTHER_GROUP: False} if nested is None else nested,
        licences=None if licences is None else frozenset(licences),
        labels=LABELS,
    )


EMEA_USER = member({SALES, EMEA})


def pol(
    setting: str, value: Mapping[str, Any], sort: float, ou: str = ROOT, group: str | None = None,
    licence: bool = False, kind: str = "ADMIN", name: str | None = None, query: str | None = None,
) -> dict[str, Any]:
    clauses = [f"entity.org_units.exists(org_unit, org_unit.org_unit_id == orgUnitId('{ou}'))"]
    pq: dict[str, Any] = {"orgUnit": f"orgUnits/{ou}", "sortOrder": sort}
    if group:
        clauses.append(f"entity.groups.exists(group, group.group_id == groupId('{group}'))")
        pq["group"] = f"groups/{group}"
    if licence:
        clauses.append(f"entity.licenses.exists(license, license in ['{SKU}'])")
    pq["query"] = query if query is not None else " && ".join(clauses)
    return {
        "name": name or f"policies/p{sort}",
        "customer": "customers/C01b2c3d4",
        "policyQuery": pq,
        "setting": {"type": f"settings/{setting}", "value": dict(value)},
        "type": kind,
    }


def reduce(policies: Iterable[dict[str, Any]], spec: SettingSpec, m: Membership) -> Effective:
    """The reduction of policies given as payloads, parsed against their model first as the checks do."""
    return policy.reduce(Policies.model_validate(list(policies)).root, spec, m)


def target(payload: dict[str, Any], m: Membership) -> Target:
    return policy.target(Policy.model_validate(payload), m)


MAX = SettingSpec("test.max", "Max", {"a": "default-a", "b": "default-b"}, "test default")
MERGE = SettingSpec("test.merge", "Merge", {"c": "default-c"}, "test default")
MAXMAP = SettingSpec("test.maxmap", "MaxMap", {"services": []}, "test default", key="scopesGroup")


def test_max_takes_every_field_from_the_greatest_applicable_sort_order() -> None:
    policies = [
        pol("test.max", {"a": "root", "b": "root-b"}, 101, kind="SYSTEM"),
        pol("test.max", {"a": "sales"}, 201.5, ou=SALES),
        pol("test.max", {"a": "eng", "b": "eng-b"}, 301, ou=ENG),  # greater, but not the user's unit
    ]
    eff = reduce(policies, MAX, EMEA_USER)
    assert eff.value == {"a": "sales", "b": "default-b"}  # Max does not borrow b from a lesser policy
    assert eff.source("a") is not None and eff.source("a").target == "org unit /Sales"  # type: ignore[union-attr]
    assert eff.source("b") is not None and eff.source("b").policy is None  # type: ignore[union-attr]
    assert eff.applicable == 2


def test_merge_takes_each_field_from_the_greatest_policy_that_sets_it_and_concatenates_arrays() -> None:
    policies = [
        pol("test.merge", {"a": "root", "b": "root-b", "list": ["r"]}, 101),
        pol("test.merge", {"a": "sales", "list": ["s"]}, 201, ou=SALES),
        pol("test.merge", {"list": ["e"]}, 202, ou=EMEA),
    ]
    eff = reduce(policies, MERGE, EMEA_USER)
    assert eff.value == {"a": "sales", "b": "root-b", "list": ["e", "s", "r"], "c": "default-c"}
    assert eff.source("b").sort_order == 101  # type: ignore[union-attr]


def test_maxmap_keeps_one_entry_per_key_from_the_greatest_policy() -> None:
    policies = [
        pol("test.maxmap", {"services": [{"scopesGroup": "GMAIL_ALL", "isEnabled": False},
                                         {"scopesGroup": "DRIVE_ALL", "isEnabled": False}]}, 101),
        pol("test.maxmap", {"services": [{"scopesGroup": "GMAIL_ALL", "isEnabled": True}]}, 201, ou=SALES),
    ]
    eff = reduce(policies, MAXMAP, EMEA_USER)
    assert eff.value["services"] == [{"scopesGroup": "GMAIL_ALL", "isEnabled": True},
                                     {"scopesGroup": "DRIVE_ALL", "isEnabled": False}]
    assert eff.source("services[DRIVE_ALL]").sort_order == 101  # type: ignore[union-attr]
    assert eff.source("services[GMAIL_ALL]").sort_order == 201  # type: ignore[union-attr]


def test_org_unit_policies_inherit_down_the_tree_and_the_child_wins_by_sort_order_not_list_order() -> None:
    policies = [
        pol("test.max", {"a": "emea"}, 201.00201, ou=EMEA),
        pol("test.max", {"a": "root"}, 101.00049, kind="SYSTEM"),
        pol("test.max", {"a": "sales"}, 201.00007, ou=SALES),
    ]
    for seed in range(5):
        shuffled = list(policies)
        random.Random(seed).shuffle(shuffled)
        assert reduce(shuffled, MAX, EMEA_USER).get("a") == "emea"
    assert reduce(policies, MAX, member({SALES})).get("a") == "sales"
    assert reduce(policies, MAX, member({ENG})).get("a") == "root"


def test_group_policies_apply_to_members_only() -> None:
    policies = [
        pol("gmail.service_status", {"serviceState": "DISABLED"}, 201, ou=SALES),
        pol("gmail.service_status", {"serviceState": "ENABLED"}, 301, group=GROUP),
    ]
    spec = facts().setting("gmail.service_status")
    assert reduce(policies, spec, member({SALES}, {GROUP})).get("serviceState") == "ENABLED"
    assert reduce(policies, spec, member({SALES}, {OTHER_GROUP})).get("serviceState") == "DISABLED"
    eff = reduce(policies, spec, member({SALES}, {GROUP}))
    assert eff.source("serviceState").target == "org unit /, group vip@example.com"  # type: ignore[union-attr]


def test_a_group_reached_through_a_nested_group_applies_and_an_unread_one_is_undetermined() -> None:
    policies = [
        pol("gmail.service_status", {"serviceState": "DISABLED"}, 201, ou=SALES),
        pol("gmail.service_status", {"serviceState": "ENABLED"}, 301, group=GROUP),
    ]
    spec = facts().setting("gmail.service_status")
    assert reduce(policies, spec, member({SALES}, {OTHER_GROUP}, nested={GROUP: True})).get("serviceState") == (
        "ENABLED")
    with pytest.raises(Undetermined) as err:
        reduce(policies, spec, member({SALES}, {OTHER_GROUP}, nested={})).get("serviceState")
    assert err.value.needs == "groupMembership" and "nested group" in err.value.reason


def test_unread_groups_undetermine_only_when_a_group_policy_would_change_the_answer() -> None:
    spec = facts().setting("gmail.service_status")
    deciding = [
        pol("gmail.service_status", {"serviceState": "DISABLED"}, 201, ou=SALES),
        pol("gmail.service_status", {"serviceState": "ENABLED"}, 301, group=GROUP),
    ]
    with pytest.raises(Undetermined) as err:
        reduce(deciding, spec, member({SALES}, groups=None)).get("serviceState")
    assert err.value.needs == "userGroups"
    same = [
        pol("gmail.service_status", {"serviceState": "ENABLED"}, 201, ou=SALES),
        pol("gmail.service_status", {"serviceState": "ENABLED"}, 301, group=GROUP),
    ]
    assert reduce(same, spec, member({SALES}, groups=None)).get("serviceState") == "ENABLED"
    outranked = [  # a lesser group policy cannot beat the greater org unit one under Max
        pol("gmail.service_status", {"serviceState": "ENABLED"}, 50, group=GROUP),
        pol("gmail.service_status", {"serviceState": "DISABLED"}, 201, ou=SALES),
    ]
    assert reduce(outranked, spec, member({SALES}, groups=None)).get("serviceState") == "DISABLED"


def test_fields_no_policy_sets_take_the_documented_defaults_from_data() -> None:
    enrol = reduce([], facts().setting("security.two_step_verification_enrollment"), EMEA_USER)
    assert enrol.get("allowEnrollment") is True
    src = enrol.source("allowEnrollment")
    assert src is not None and src.policy is None and "policy-api-concepts" in src.target
    factor = reduce([], facts().setting("security.two_step_verification_enforcement_factor"), EMEA_USER)
    assert factor.get("allowedSignInFactorSet") == "ALL"
    assert reduce([], facts().setting("security.advanced_protection_program"), EMEA_USER).value == {}


def test_sort_order_renumbering_of_system_policies_changes_nothing() -> None:
    """From 1 September 2026 SYSTEM policies' sortOrder integer part drops by one (101.00049 -> 100.00049)."""
    before = [
        pol("test.merge", {"a": "system", "b": "system-b"}, 101.00049, kind="SYSTEM"),
        pol("test.merge", {"a": "sales"}, 201.00007, ou=SALES),
        pol("test.merge", {"b": "emea-b"}, 201.00201, ou=EMEA),
    ]
    after = [
        {**p, "policyQuery": {**p["policyQuery"], "sortOrder": p["policyQuery"]["sortOrder"] - 1}}
        if p["type"] == "SYSTEM" else p
        for p in before
    ]
    assert reduce(after, MERGE, EMEA_USER).value == reduce(before, MERGE, EMEA_USER).value

    def rescale(ps: list[dict[str, Any]]) -> list[dict[str, Any]]:  # any order-preserving renumbering
        return [{**p, "policyQuery": {**p["policyQuery"], "sortOrder": p["policyQuery"]["sortOrder"] * 7 - 500}}
                for p in ps]

    for spec in (MAX, MERGE):
        assert reduce(rescale(before), spec, EMEA_USER).value == reduce(before, spec, EMEA_USER).value


def test_licence_clauses_are_evaluated_when_licences_were_read_and_undetermined_otherwise() -> None:
    policies = [pol("test.max", {"a": "licensed"}, 201, licence=True)]
    assert reduce(policies, MAX, member(set(), licences={SKU})).get("a") == "licensed"
    assert reduce(policies, MAX, member(set(), licences={"/product/Google-Apps/sku/1010060001"})).get("a") == (
        "default-a"
    )
    # Unread licences: a licence clause may or may not hold, and here it decides the value. No guess.
    with pytest.raises(Undetermined) as info:
        reduce(policies, MAX, member(set(), licences=None)).get("a")
    assert info.value.needs == "licenses" and "--with-licenses" in info.value.reason
    # Google's SYSTEM policies come one per edition: when every edition says the same, licences don't matter.
    other = "/product/Google-Apps/sku/1010020020"
    per_edition = [pol("test.max", {"a": "same"}, 101, licence=True, kind="SYSTEM"),
                   pol("test.max", {"a": "same"}, 102, kind="SYSTEM", query=(
                       f"entity.org_units.exists(org_unit, org_unit.org_unit_id == orgUnitId('{ROOT}')) && "
                       f"entity.licenses.exists(license, license in ['{other}'])"))]
    spec = SettingSpec("test.max", "Max", {"a": "same"}, "test default")
    assert reduce(per_edition, spec, member(set(), licences=None)).get("a") == "same"


def test_an_org_unit_id_orgunits_list_did_not_return_is_undecided_never_the_root() -> None:
    # A deleted org unit's lingering policy must not fall back to the root and apply to everyone.
    m = Membership(org_unit_ids=frozenset({SALES, ROOT}), known_org_unit_ids=frozenset({SALES, ENG, ROOT}),
                   root_org_unit_id=ROOT)
    gone = "03ph8a2z9gone00"
    assert target(pol("test.max", {}, 1, ou=ROOT), m).applies is Applies.YES
    assert target(pol("test.max", {}, 1, ou=ENG), m).applies is Applies.NO
    assert target(pol("test.max", {}, 1, ou=SALES), m).applies is Applies.YES
    lingering = target(pol("test.max", {}, 1, ou=gone), m)
    assert lingering.applies is Applies.MAYBE and gone in lingering.why
    policies = [pol("test.max", {"a": "root"}, 101), pol("test.max", {"a": "deleted unit"}, 201, ou=gone)]
    with pytest.raises(Undetermined) as err:
        reduce(policies, MAX, m).get("a")
    assert "not among the org units" in err.value.reason
    # ... and when it says what applies anyway, the answer stands.
    assert reduce([*policies[:1], pol("test.max", {"a": "root"}, 201, ou=gone)], MAX, m).get("a") == "root"


def test_helper_fields_decide_when_there_is_no_query() -> None:
    p = pol("test.max", {"a": "x"}, 1, ou=SALES, query="")
    assert target(p, EMEA_USER).applies is Applies.YES
    assert target(p, member({ENG})).applies is Applies.NO
    odd = pol("test.max", {"a": "x"}, 1, query="")
    odd["policyQuery"]["group"] = "WORKSPACE_ALL_ADMIN_GROUP"  # seen in the wild (ScubaGoggles)
    assert target(odd, EMEA_USER).applies is Applies.MAYBE


def test_a_query_preflight_cannot_evaluate_matters_only_when_it_could_win() -> None:
    odd_query = "entity.org_units.exists(org_unit, org_unit.org_unit_id == orgUnitId('x')) || entity.is_admin"
    high = [pol("test.max", {"a": "root"}, 101), pol("test.max", {"a": "odd"}, 301, query=odd_query)]
    with pytest.raises(Undetermined) as err:
        reduce(high, MAX, EMEA_USER).get("a")
    assert "||" in err.value.reason and err.value.needs is None
    low = [pol("test.max", {"a": "root"}, 101), pol("test.max", {"a": "odd"}, 50, query=odd_query)]
    assert reduce(low, MAX, EMEA_USER).get("a") == "root"


def test_policies_of_other_setting_types_are_ignored_and_malformed_ones_are_shape_errors() -> None:
    policies = [pol("test.other", {"a": "other"}, 999), pol("test.max", {"a": "mine"}, 1)]
    assert reduce(policies, MAX, EMEA_USER).get("a") == "mine"
    broken = pol("test.max", {"a": "x"}, 1)
    del broken["policyQuery"]["sortOrder"]
    with pytest.raises(ValidationError, match="sortOrder"):
        reduce([broken], MAX, EMEA_USER)
    broken = pol("test.max", {"a": "x"}, 1)
    broken["policyQuery"]["sortOrder"] = True
    with pytest.raises(ValidationError, match="sortOrder"):
        reduce([broken], MAX, EMEA_USER)


def test_data_files_declare_a_known_reducer_for_every_setting_the_checks_read() -> None:
    read = {
        "gmail.service_status", "security.two_step_verification_enrollment",
        "security.two_step_verification_enforcement_factor", "security.advanced_protection_program",
        "api_controls.unconfigured_third_party_apps", "api_controls.google_services",
    }
    assert read == set(facts().settings)  # and no data for a setting nothing reads
    assert facts().setting("api_controls.unconfigured_third_party_apps").reducer == "Merge"
    assert facts().setting("api_controls.google_services").reducer == "MaxMap"


# --- properties -------------------------------------------------------------------------------------------

_OUS = [ROOT, SALES, EMEA, ENG]
_policy = st.tuples(
    st.sampled_from(_OUS),
    st.sampled_from([None, GROUP, OTHER_GROUP]),
    st.dictionaries(st.sampled_from(["a", "b", "list"]), st.integers(0, 3), max_size=3),
)


def _policies(specs: list[tuple[str, str | None, dict[str, int]]]) -> list[dict[str, Any]]:
    # Distinct sortOrders, as the API guarantees; values wrap lists so Merge has arrays to join.
    return [
        pol("test.merge", {k: ([v] if k == "list" else v) for k, v in value.items()}, 100 + i * 1.5, ou=ou,
            group=group, name=f"policies/h{i}")
        for i, (ou, group, value) in enumerate(specs)
    ]


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(st.lists(_policy, max_size=8), st.randoms(use_true_random=False), st.sampled_from([MAX, MERGE]))
def test_reduction_depends_on_sort_order_only_not_on_list_order_or_numbering(
    specs: list[tuple[str, str | None, dict[str, int]]], rnd: random.Random, spec: SettingSpec
) -> None:
    policies = _policies(specs)
    user = member({SALES, EMEA}, {GROUP})
    expected = reduce(policies, spec, user).value
    shuffled = list(policies)
    rnd.shuffle(shuffled)
    assert reduce(shuffled, spec, user).value == expected
    renumbered = [{**p, "policyQuery": {**p["policyQuery"], "sortOrder": p["policyQuery"]["sortOrder"] * 3 - 250}}
                  for p in shuffled]
    assert reduce(renumbered, spec, user).value == expected
    # A policy for a unit the user is not in never contributes.
    others = [p for p, (ou, _, _) in zip(policies, specs, strict=True) if ou == ENG]
    for p in others:
        assert all(src.policy != p["name"] for src in reduce(policies, spec, user).sources.values())


def test_candidates_that_differ_in_raw_value_but_mean_the_same_decide_without_licences() -> None:
    """Real SYSTEM and root ADMIN policies carry licence clauses (ScubaGoggles' policyapi_reducer1.json): without
    --with-licenses they may or may not apply, yet every candidate means the same, so the answer stands."""
    nobody = member(set(), licences=None)
    access = facts().setting("api_controls.unconfigured_third_party_apps")
    uber = [pol("api_controls.unconfigured_third_party_apps", {"accessLevel": "UNSPECIFIED_UBER_BLOCK"},
                101.00104, licence=True, kind="SYSTEM")]
    eff = reduce(uber, access, nobody)
    with pytest.raises(Undetermined):
        eff.get("accessLevel")  # raw values differ: UNSPECIFIED_UBER_BLOCK vs absent
    assert eff.settle("accessLevel", facts().enum("accessLevel").meaning) == "allow"
    blocking = [*uber, pol("api_controls.unconfigured_third_party_apps", {"accessLevel": "BLOCK_ALL_SCOPES"},
                           201.00049, licence=True)]
    with pytest.raises(Undetermined) as err:
        reduce(blocking, access, nobody).settle("accessLevel", facts().enum("accessLevel").meaning)
    assert err.value.needs == "licenses" and "BLOCK_ALL_SCOPES" in err.value.reason

    app = facts().setting("security.advanced_protection_program")
    off = [pol("security.advanced_protection_program", {"enableAdvancedProtectionSelfEnrollment": False},
               101.00049, licence=True, kind="SYSTEM")]
    assert reduce(off, app, nobody).settle("enableAdvancedProtectionSelfEnrollment", lambda v: v is True) is False
    on = [*off, pol("security.advanced_protection_program", {"enableAdvancedProtectionSelfEnrollment": True},
                    201.00049, licence=True)]
    with pytest.raises(Undetermined):
        reduce(on, app, nobody).settle("enableAdvancedProtectionSelfEnrollment", lambda v: v is True)


def test_maxmap_entries_are_settled_per_key() -> None:
    nobody = member(set(), licences=None)
    spec = facts().setting("api_controls.google_services")
    drive = [pol("api_controls.google_services", {"services": [{"scopesGroup": "DRIVE_ALL", "isEnabled": False}]},
                 201, licence=True)]
    eff = reduce(drive, spec, nobody)
    assert eff.entry("services", "GMAIL_ALL", lambda e: e) is None  # a Drive restriction says nothing of Gmail
    gmail = [pol("api_controls.google_services", {"services": [{"scopesGroup": "GMAIL_ALL", "isEnabled": False}]},
                 201, licence=True)]
    with pytest.raises(Undetermined):
        reduce(gmail, spec, nobody).entry("services", "GMAIL_ALL", lambda e: e)


def test_sort_order_is_printed_exactly_as_the_api_gave_it() -> None:
    for sort, shown in ((201.00162, "201.00162"), (202.00001, "202.00001"), (202, "202"), (101.0, "101.0")):
        eff = reduce([pol("test.max", {"a": "x"}, sort)], MAX, EMEA_USER)
        assert f"(sortOrder {shown})" in eff.origin("a")
