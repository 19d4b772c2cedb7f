"""Prowler's and Maester's own Conditional Access test cases as snapshots (issue 12, "Tests and proof").

Each fixtures/peers/NAME.json is one peer test case: its policies in Graph's conditionalAccessPolicy shape, in a
tenant whose only other layers let SMTP through, for jobs@contoso.com. NAME.expected.json records where the case
comes from (repository, commit, file, test), what the peer answers, how it was translated to Graph's shape, and
preflight's expected reading for the mailbox: the check that answers it, its status and cause, and the verdicts.

The peers ask a tenant-wide question ("does some policy block legacy authentication for everyone?"); preflight
asks whether Basic SMTP AUTH (or delegated / app-only OAuth) works for this mailbox. `outcome` says whether the
two readings agree, whether preflight was fixed to agree, or why the disagreement is intended.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import evaluate_data, finding

PEERS = Path(__file__).parent / "fixtures" / "peers"
CASES = sorted(p for p in PEERS.glob("*.json") if not p.name.endswith(".expected.json"))
OUTCOMES = {"agree", "fixed", "intended disagreement"}


def expected(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))
    return data


def test_every_case_says_where_it_comes_from_and_how_it_compares() -> None:
    assert len(CASES) >= 50
    for path in CASES:
        e = expected(path)
        assert e["peer"] in ("prowler-cloud/prowler", "maester365/maester") and len(e["commit"]) == 40, path.name
        assert e["source"] and e["test"] and e["peer_check"] and e["peer_result"], path.name
        assert e["outcome"] in OUTCOMES and e["why"], path.name
    assert {expected(p)["peer"] for p in CASES} == {"prowler-cloud/prowler", "maester365/maester"}


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_peer_case(path: Path) -> None:
    want = expected(path)["expect"]
    result = evaluate_data(json.loads(path.read_text(encoding="utf-8")), where=path.name)
    f = finding(result, want["check"], want["subject"], want["method"])
    assert f.status.value == want["status"], f.message
    if f.status.value in ("fail", "warn"):
        assert f.cause == want["cause"], f.message
    verdicts = {m.method.value: [m.verdict.value, m.blocking] for m in result.mailboxes if m.address == want["subject"]}
    assert {k: verdicts[k] for k in want["verdicts"]} == want["verdicts"]


def test_an_empty_client_app_type_list_as_in_the_peers_mocks_is_not_read_as_covering_nothing() -> None:
    """Prowler's mocks build policies with client_app_types=[]; Graph requires the field and says ["all"] when a
    policy does not narrow client apps. [] read as "no client" would turn every such block into a pass."""
    data = json.loads((PEERS / "prowler-legacy-enabled.json").read_text(encoding="utf-8"))
    data["org"]["conditionalAccessPolicies"][0]["conditions"]["clientAppTypes"] = []
    result = evaluate_data(data, where="empty-client-app-types")
    f = next(f for f in result.findings if f.check == "ms.ca-legacy-auth")
    assert f.status.value == "unknown" and "clientAppTypes" in f.message
