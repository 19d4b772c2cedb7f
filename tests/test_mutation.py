"""Fail closed, tested: garbled resources of every shipped snapshot never improve a verdict (issue 11).

A fixed seed and a budget that runs in seconds; benchmarks/mutation.py runs every mutant. tests/mutants.py
defines the mutations and the property. The cases issue 11 saw fail open each have a named test below,
and a test shows the property catches them when the resource models are taken away.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from preflight.checks import Check
from preflight.providers import CollectRequest, Provider, Registry
from preflight.resources import Schema
from preflight_providers.microsoft.resources import ConditionalAccessPolicies, ConditionalAccessPolicy
from tests.mutants import DELETE, Mutant, Outcomes, Runner, Shipped, sample, shipped

SEED = 11
BUDGET = 1200

REGISTRY = Registry.from_entry_points()
ITEMS = {item.name: item for item in shipped(REGISTRY)}
RUNNER = Runner(REGISTRY)


@pytest.mark.slow
def test_no_sampled_mutant_of_any_shipped_snapshot_fails_open_crashes_or_writes_invalid_json() -> None:
    out = Outcomes()
    for item, mutant in sample(list(ITEMS.values()), BUDGET, SEED):
        RUNNER.run(item, mutant, out)
    assert out.problems == []
    assert sum(out.counts.values()) == BUDGET
    # The sample reaches every kind of mutation, and most garbling is caught as `unknown`.
    assert {kind for kind, _ in out.counts} == {"delete", "null", "type", "case", "unknown-value"}
    assert out.outcome_counts()["unknown (honest)"] > BUDGET // 10


@pytest.mark.slow
def test_every_shipped_snapshot_has_mutants() -> None:
    assert len(ITEMS) >= 30
    assert all(sample([item], None, SEED) for item in ITEMS.values())


def _run(name: str, path: tuple[str | int, ...], value: Any, kind: str = "type",
         runner: Runner = RUNNER) -> tuple[Outcomes, Any]:
    item = ITEMS[name]
    out = Outcomes()
    mutant = Mutant(name, path, kind, value)
    runner.run(item, mutant, out)
    result = runner._evaluate(item, _applied(item, mutant))
    return out, result


def _applied(item: Shipped, mutant: Mutant) -> dict[str, Any]:
    from tests.mutants import apply

    data: dict[str, Any] = apply(item.data, mutant.path, mutant.value)
    return data


def _unknown_naming(result: Any, check: str, *words: str) -> bool:
    return any(f.check == check and f.status.value == "unknown" and all(w in f.message for w in words)
               for f in result.findings)


CA = "tests/microsoft/fixtures/ca-legacy-included.json"
POLICY: tuple[str | int, ...] = ("org", "conditionalAccessPolicies", 0)
SEEN_CA = [
    ((*POLICY, "state"), "Enabled", "state"),
    ((*POLICY, "state"), None, "state"),
    ((*POLICY, "state"), 0, "state"),
    ((*POLICY, "state"), "", "state"),
    ((*POLICY, "conditions", "clientAppTypes"), "other", "clientAppTypes"),
    ((*POLICY, "conditions", "clientAppTypes"), DELETE, "clientAppTypes"),
    ((*POLICY, "conditions", "users"), {}, "includeUsers"),
    ((*POLICY, "conditions", "users", "includeUsers"), "All", "includeUsers"),
    ((*POLICY, "conditions", "applications"), None, "applications"),
    ((*POLICY, "conditions", "applications", "includeApplications"), DELETE, "includeApplications"),
    ((*POLICY, "grantControls", "builtInControls"), "block", "builtInControls"),
]


@pytest.mark.parametrize(("path", "value", "field"), SEEN_CA, ids=[f"{p[-1]}={v!r}" for p, v, _ in SEEN_CA])
def test_a_garbled_conditional_access_policy_is_unknown_not_ignored(
    path: tuple[str | int, ...], value: Any, field: str
) -> None:
    out, result = _run(CA, path, DELETE if value is DELETE else value, "delete" if value is DELETE else "type")
    assert out.problems == []
    assert _unknown_naming(result, "ms.ca-legacy-auth", "conditionalAccessPolicies[0]", field)
    assert {m.verdict.value for m in result.mailboxes} == {"incomplete"}


WORKLOAD = "tests/microsoft/fixtures/workload-location.json"
APPS: tuple[str | int, ...] = (*POLICY, "conditions", "clientApplications")


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [(APPS, {}, "includeServicePrincipals"),
     ((*APPS, "includeServicePrincipals"), DELETE, "includeServicePrincipals"),
     ((*APPS, "includeServicePrincipals"), "ServicePrincipalsInMyTenant", "includeServicePrincipals"),
     ((*APPS, "excludeServicePrincipals"), None, "excludeServicePrincipals")],
    ids=["empty-object", "include-deleted", "include-string", "exclude-null"],
)
def test_a_garbled_workload_identity_policy_is_unknown_not_ignored(
    path: tuple[str | int, ...], value: Any, field: str
) -> None:
    out, result = _run(WORKLOAD, path, value, "delete" if value is DELETE else "type")
    assert out.problems == []
    assert _unknown_naming(result, "ms.ca-workload-identity", "conditionalAccessPolicies[0]", field)


GUESTS = "tests/microsoft/fixtures/peers/maester-guest-guests.json"
RULE: tuple[str | int, ...] = (*POLICY, "conditions", "users", "includeGuestsOrExternalUsers")


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [((*RULE, "guestOrExternalUserTypes"), "", "guestOrExternalUserTypes"),
     ((*RULE, "guestOrExternalUserTypes"), "InternalGuest", "guestOrExternalUserTypes"),
     ((*RULE, "externalTenants", "membershipKind"), DELETE, "membershipKind"),
     ((*RULE, "externalTenants"), DELETE, "externalTenants"),
     (("mailboxes", "jobs@contoso.com", "user", "userType"), DELETE, "userType"),
     (("mailboxes", "jobs@contoso.com", "user", "userType"), None, "userType")],
    ids=["types-empty", "types-case", "membership-kind-deleted", "tenants-deleted", "user-type-deleted",
         "user-type-null"],
)
def test_a_garbled_guest_rule_is_unknown_not_ignored(path: tuple[str | int, ...], value: Any, field: str) -> None:
    out, result = _run(GUESTS, path, value, "delete" if value is DELETE else "type")
    assert out.problems == []
    assert any(f.status.value == "unknown" and field in f.message for f in result.findings)
    assert {m.verdict.value for m in result.mailboxes} == {"incomplete"}


AUTH = "tests/microsoft/fixtures/auth-policy-no-basic.json"


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [(("org", "organizationConfig", "DefaultAuthenticationPolicy"), DELETE, ("DefaultAuthenticationPolicy",)),
     (("org", "organizationConfig"), {}, ("DefaultAuthenticationPolicy",)),
     (("org", "organizationConfig", "DefaultAuthenticationPolicy"), "", ("DefaultAuthenticationPolicy",)),
     (("org", "organizationConfig"), {"error": "Forbidden"}, ("Forbidden",)),
     (("org", "authenticationPolicies"), {"error": "Forbidden"}, ("Forbidden",))],
    ids=["key-deleted", "empty-object", "empty-name", "string-error", "string-error-list"],
)
def test_no_default_authentication_policy_is_only_ever_an_explicit_null(
    path: tuple[str | int, ...], value: Any, words: tuple[str, ...]
) -> None:
    out, result = _run(AUTH, path, value, "delete" if value is DELETE else "type")
    assert out.problems == []
    f = next(f for f in result.findings if f.check == "ms.auth-policy-basic-smtp" and f.subject == "jobs@contoso.com")
    assert f.status.value == "unknown" and all(w in f.message for w in words)


def test_a_string_error_record_is_unavailable_everywhere() -> None:
    out, result = _run("tests/microsoft/fixtures/security-defaults.json", ("org", "securityDefaults"),
                       {"error": "Forbidden"})
    assert out.problems == []
    f = next(f for f in result.findings if f.check == "ms.security-defaults")
    assert f.status.value == "unknown" and "Forbidden" in f.message


def test_google_a_user_without_is_mailbox_setup_is_unknown_not_a_pass() -> None:
    out, result = _run("providers/google/demo/woodgrove.json",
                       ("mailboxes", "loans@woodgrove.example", "user", "isMailboxSetup"), DELETE, "delete")
    assert out.problems == []
    assert _unknown_naming(result, "google.gmail-service", "isMailboxSetup")


GW = "tests/google/fixtures/basic_2sv_app_passwords.json"


@pytest.mark.parametrize(
    ("path", "field"),
    [(("org", "orgUnits", 0, "orgUnitId"), "orgUnitId"),
     (("mailboxes", "recruiting@tailspin.example", "licenses", 0, "skuId"), "skuId"),
     (("mailboxes", "recruiting@tailspin.example", "licenses", 0, "productId"), "productId")],
    ids=["orgUnitId", "skuId", "productId"],
)
@pytest.mark.parametrize("value", [5, ["x"], None], ids=["int", "list", "null"])
def test_google_a_wrong_type_id_makes_policy_checks_unknown(path: tuple[str | int, ...], field: str,
                                                            value: Any) -> None:
    out, result = _run(GW, path, value, "null" if value is None else "type")
    assert out.problems == []
    assert _unknown_naming(result, "google.gmail-service", field)


# -- The property can fail: without the models, the seen cases fail open -------------------------------------


class _Lenient(ConditionalAccessPolicies):
    """The policy list as the engine before issue 11 read it: a policy it could not make sense of was skipped."""

    @classmethod
    def model_validate(cls, obj: Any, **_kw: Any) -> _Lenient:
        kept = []
        for policy in obj:
            try:
                kept.append(ConditionalAccessPolicy.model_validate(policy))
            except ValidationError:
                continue
        return cls(kept)


class _Unmodelled:
    """The real provider, but garbled Conditional Access policies skipped instead of refused (the engine before
    issue 11). The checks read the typed model, so the lenient reader still gives one."""

    def __init__(self, real: Provider) -> None:
        self.real, self.name, self.title = real, real.name, real.title

    def checks(self) -> Sequence[Check]:
        return self.real.checks()

    def resources(self) -> Schema:
        models: dict[str, type[BaseModel]] = {**self.real.resources(), "conditionalAccessPolicies": _Lenient}
        return models

    def permissions(self) -> Mapping[str, str]:
        return self.real.permissions()

    def demo_snapshots(self) -> Sequence[Traversable]:
        return []

    def commands(self) -> Mapping[str, Callable[..., Any]]:
        return {}

    def collect(self, request: CollectRequest) -> dict[str, Any]:
        raise NotImplementedError


def test_the_property_catches_a_fail_open_when_resources_are_not_parsed() -> None:
    lax = Registry([_Unmodelled(p) for p in REGISTRY.all()])
    runner = Runner(lax)
    out = Outcomes()
    for path, value, _ in SEEN_CA[:1] + SEEN_CA[6:7]:
        item = ITEMS[CA]
        runner.run(Shipped(item.name, lax.get("microsoft"), item.data), Mutant(CA, path, "type", value), out)
    assert out.outcome_counts()["FAIL-OPEN"] == 2 and all(p.startswith("fail-open") for p in out.problems)


# -- Loaders: one line, exit 2, in every output format ---------------------------------------------------------


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "html", "junit", "csv"])
@pytest.mark.parametrize(
    ("edit", "message"),
    [(lambda t: t.replace('"contoso.com"', '"contoso\\ud800.com"', 1), "lone surrogate"),
     (lambda t: t.replace('"isEnabled": true', '"isEnabled": NaN', 1), "NaN"),
     (lambda t: t.replace('"isEnabled": true', '"isEnabled": Infinity', 1), "Infinity"),
     (lambda t: t.replace('"isEnabled": true', '"isEnabled": ' + "7" * 5000, 1), "5000 digits")],
    ids=["surrogate", "nan", "infinity", "huge-int"],
)
def test_unrepresentable_input_is_refused_in_every_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, edit: Callable[[str], str], message: str
) -> None:
    from preflight.cli import main

    source = Path(__file__).parent / "microsoft" / "fixtures" / "security-defaults.json"
    text = edit(source.read_text(encoding="utf-8"))
    path = tmp_path / "s.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(path), "--format", fmt])
    out, err = capsys.readouterr()
    assert info.value.code == 2 and out == "" and message in err and err.count("\n") == 1


def test_shipped_snapshots_stay_valid_inputs() -> None:
    for item in ITEMS.values():
        assert json.loads(json.dumps(item.data, allow_nan=False)) == item.data
