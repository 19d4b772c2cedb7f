"""The one pipeline (preflight.pipeline): the unreachable-API rule, save -> evaluate -> emit, one progress style."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from preflight import pipeline
from preflight.output import FailOn, Format
from preflight.runsecrets import RunSecrets, run_scope
from preflight.snapshot import parse

NETWORK = {"error": {"status": None, "code": "ConnectionError", "message": "connection refused"}}
FORBIDDEN = {"error": {"status": 403, "code": "Forbidden", "message": "insufficient privileges"}}
DEADLINE = {"error": {"status": None, "code": "DeadlineExceeded", "message": "the deadline ran out"}}


def collected(org: dict[str, Any], box: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": "preflight.snapshot/v1", "provider": "microsoft", "collected_at": "2026-11-26T10:00:00Z",
        "tenant": {"id": "11111111-1111-1111-1111-111111111111", "domain": "contoso.com"},
        "options": {"methods": ["basic"]}, "org": org, "mailboxes": {"jobs@contoso.com": box},
    }


@pytest.mark.parametrize(("org", "box", "unreachable"), [
    ({"securityDefaults": NETWORK}, {"user": NETWORK}, True),
    ({"securityDefaults": NETWORK}, {"user": FORBIDDEN}, False),  # the service answered: a refusal
    ({"securityDefaults": NETWORK}, {"user": {"id": "u1"}}, False),  # something was read
    ({"securityDefaults": DEADLINE}, {"user": DEADLINE}, False),  # out of time: unknown, not unreachable
    ({"securityDefaults": DEADLINE}, {"user": NETWORK}, True),
    ({}, {}, False),  # nothing asked is nothing failed
])
def test_the_unreachable_rule(org: dict[str, Any], box: dict[str, Any], unreachable: bool) -> None:
    why = pipeline.unreachable(parse(collected(org, box)), "Test Cloud")
    assert (why is not None) is unreachable
    if why:
        assert why == "could not reach the Test Cloud admin APIs (ConnectionError: connection refused)"


def test_check_writes_the_report_and_the_snapshot_and_exits_4_when_nothing_could_be_reached(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    provider = pipeline.default_registry().get("microsoft")
    data = collected({"securityDefaults": NETWORK}, {"user": NETWORK})
    saved, report = tmp_path / "snap.json", tmp_path / "report.json"
    code = pipeline.check(provider, data, "test", save_snapshot=saved, fmt=Format.json, output=report,
                          fail_on=FailOn.fail)
    target = json.loads(report.read_text())["targets"][0]
    assert code == 4
    assert target["errors"] == [f"could not reach the {provider.title} admin APIs (ConnectionError: "
                                "connection refused)"]
    assert target["findings"] == [] and target["mailboxes"] == []  # no verdict rests on a network failure
    assert json.loads(saved.read_text())["org"]["securityDefaults"] == NETWORK
    err = capsys.readouterr().err
    assert f"preflight: Snapshot written to {saved}\n" in err and f"preflight: Report written to {report}\n" in err


def test_check_with_a_refusal_evaluates_it(tmp_path: Path) -> None:
    provider = pipeline.default_registry().get("microsoft")
    report = tmp_path / "report.json"
    code = pipeline.check(provider, collected({"securityDefaults": FORBIDDEN}, {"user": NETWORK}), "test",
                          save_snapshot=None, fmt=Format.json, output=report, fail_on=FailOn.fail)
    target = json.loads(report.read_text())["targets"][0]
    assert code == 3 and target["errors"] == [] and target["findings"]


def test_progress_is_one_masked_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    secrets = RunSecrets()
    secrets.add("s3cr3t-value-1234")
    with run_scope(secrets):
        pipeline.progress("signed in with s3cr3t-value-1234")
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("preflight: signed in with ") and "s3cr3t" not in err
    assert err.count("\n") == 1


def test_as_of_is_noon_utc_and_a_bad_date_is_input_error() -> None:
    from preflight.errors import InputError

    assert pipeline.as_of_date("2026-11-26").isoformat() == "2026-11-26T12:00:00+00:00"
    with pytest.raises(InputError, match="--as-of: '26/11/2026' is not a date"):
        pipeline.as_of_date("26/11/2026")


def test_worst_exit_code_follows_design_8() -> None:
    from preflight.exitcodes import worst

    assert [worst([0, 3, 1]), worst([3, 4, 1]), worst([0, 3]), worst([]), worst([2, 130])] == [1, 4, 3, 0, 0]
