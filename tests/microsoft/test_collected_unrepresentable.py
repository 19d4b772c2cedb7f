"""A reply holding what no JSON output could carry (a lone surrogate escape, NaN, a 30-digit integer) spoils that one
read, not the tenant: its checks are unknown and name why, the rest is still evaluated and reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from preflight.snapshot import parse_collected
from tests.conftest import run_cli
from tests.microsoft.conftest import load_fixture, tenant_for
from tests.microsoft.fake import Call, FakeMicrosoft, Reply
from tests.microsoft.test_hostile_signin import check

SPOILED = {  # as the fake writes them: "\\ud800", NaN, 30 nines
    "a lone surrogate": {"isEnabled": "\ud800"},
    "NaN": {"isEnabled": float("nan")},
    "a 30-digit integer": {"isEnabled": 10**30 - 1},
}


@pytest.mark.parametrize("case", sorted(SPOILED))
@pytest.mark.usefixtures("isolated", "secret_env")
def test_a_spoiled_read_makes_its_checks_unknown_and_the_tenant_is_still_reported(
        case: str, microsoft_fake: FakeMicrosoft, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))

    def spoil(call: Call) -> Reply | None:
        if call.api == "graph" and call.path.endswith("identitySecurityDefaultsEnforcementPolicy"):
            return Reply(200, SPOILED[case])
        return None

    microsoft_fake.fault = spoil
    report = tmp_path / "report.json"
    code, _out, err = run_cli([*check(str(snapshot["tenant"]["domain"])), "--format", "json", "--output",
                               str(report)], capsys)
    assert code != 2 and "Traceback" not in err, err
    target = json.loads(report.read_text())["targets"][0]
    assert not target["errors"]
    unknown = [f for f in target["findings"] if f["status"] == "unknown" and "unreadable reply" in f["message"]]
    assert unknown, [f["message"] for f in target["findings"]]
    assert [f for f in target["findings"] if f["status"] in ("pass", "fail")]


def test_only_the_spoiled_resource_becomes_an_error_record() -> None:
    data = {"schema": "preflight.snapshot/v1", "provider": "microsoft", "tenant": {"id": "t"},
            "org": {"securityDefaults": {"isEnabled": float("nan")}, "organization": {"value": []}},
            "mailboxes": {"a@x.example": {"user": {"id": "1", "name": "\ud800"}, "mailbox": {"ok": 1}}}}
    snap = parse_collected(data, "t (collected)")
    assert snap.org["organization"] == {"value": []} and snap.mailboxes["a@x.example"]["mailbox"] == {"ok": 1}
    for spoiled in (snap.org["securityDefaults"], snap.mailboxes["a@x.example"]["user"]):
        assert spoiled["error"]["code"] == "MalformedResponse" and "unreadable reply" in spoiled["error"]["message"]
