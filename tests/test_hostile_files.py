"""The offline commands (evaluate, redact, diff, explain) on files and text holding credentials a server once
echoed: a snapshot or report from anywhere (an older version, a hand-edited file, a pasted transcript) may quote
a token, a bearer header or a client secret in an error. None of it is shown or written again, in any format,
and nothing of it turns into a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.leaks import assert_clean_run, assert_no_leak, files_text

FIXTURES = Path(__file__).parent / "microsoft" / "fixtures"
JWT = "eyJ0eXAiOiJKV1QifQ.eyJzZW50aW5lbCI6ImZpbGVzIn0.c2lnbmF0dXJlLXNlbnRpbmVsLWZpbGVz"
OPAQUE = "opaqueSENTINELaccess4f9a8b7c6d5e"
BEARER = "bearerSENTINEL0a1b2c3d4e5f6a7b8"
CLIENT_SECRET = "Qx8~SENTINEL.client-secret_value"
ENTRA_SECRET = "Zz9~SENTINEL.wrong-secret_value"
SENTINELS = [JWT, OPAQUE, BEARER, CLIENT_SECRET, ENTRA_SECRET]
ECHO = (f"token {JWT} lacks a role; access_token={OPAQUE}; Authorization: Bearer {BEARER}; "
        f"client_secret={CLIENT_SECRET}; AADSTS7000215: Invalid client secret provided: '{ENTRA_SECRET}'.")


def echoing_snapshot(tmp_path: Path) -> Path:
    """The `forbidden` fixture, its errors quoting credentials (one as a string error record, one as an object)."""
    data: dict[str, Any] = json.loads((FIXTURES / "forbidden.json").read_text())
    data["org"]["securityDefaults"]["error"]["message"] = ECHO
    data["mailboxes"]["jobs@contoso.com"]["casMailbox"]["error"]["message"] = f"Get-CASMailbox: {ECHO}"
    data["org"]["transportConfig"] = {"error": ECHO}
    path = tmp_path / "echoing-snapshot.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("fmt", ["table", "json", "html", "markdown", "csv", "junit"])
def test_evaluate_shows_no_credential_an_error_quoted(fmt: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = echoing_snapshot(tmp_path)
    code, out, err = run_cli(["evaluate", str(snapshot), "--format", fmt, "--as-of", "2026-11-26"], capsys)
    assert code == 3, err  # the unreadable resources are unknown: incomplete
    assert "Forbidden" in out or fmt == "csv"  # the error itself is still reported
    assert_clean_run(out, err, SENTINELS)
    written = tmp_path / "out" / f"report.{fmt}"
    code, out, err = run_cli(["evaluate", str(snapshot), "--format", fmt, "--output", str(written)], capsys)
    assert written.exists()
    assert_clean_run(out, err, SENTINELS)
    assert_no_leak(written.read_text(encoding="utf-8"), SENTINELS)


def test_redact_writes_no_credential_an_error_quoted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = echoing_snapshot(tmp_path)
    report = tmp_path / "report.json"
    report.write_text(json.dumps(_forged_report(snapshot, tmp_path, capsys)))
    code, out, err = run_cli(["redact", str(snapshot), str(report), "--output-dir", str(tmp_path / "shared")], capsys)
    assert code == 0, err
    assert len(list((tmp_path / "shared").iterdir())) == 2
    assert_clean_run(out, err, SENTINELS)
    assert_no_leak(files_text(tmp_path / "shared"), SENTINELS)


def _forged_report(snapshot: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """A JSON report as an older version (or a hand edit) might have left it: every message and error quoting
    the credentials."""
    path = tmp_path / "clean-report.json"
    run_cli(["evaluate", str(snapshot), "--format", "json", "--output", str(path), "--as-of", "2026-11-26"], capsys)
    data: dict[str, Any] = json.loads(path.read_text())
    for target in data["targets"]:
        target["errors"] = [*target.get("errors", []), ECHO]
        for finding in target["findings"]:
            finding["message"] += f" ({ECHO})"
    return data


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_diff_shows_no_credential_a_report_quoted(fmt: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    before = tmp_path / "before.json"
    code, _out, err = run_cli(["evaluate", str(FIXTURES / "oauth-app-ready.json"), "--format", "json", "--output",
                           str(before), "--as-of", "2026-11-26"], capsys)
    assert before.exists(), err
    after = tmp_path / "after.json"
    after.write_text(json.dumps(_forged_report(echoing_snapshot(tmp_path), tmp_path, capsys)))
    code, out, err = run_cli(["diff", str(before), str(after), "--format", fmt], capsys)
    assert code == 1, err  # something regressed
    assert "Could not read" in out
    assert_clean_run(out, err, SENTINELS)


@pytest.mark.parametrize("how", ["argument", "file", "stdin"])
@pytest.mark.parametrize("fmt", ["table", "json"])
def test_explain_shows_no_credential_of_a_pasted_transcript(
        how: str, fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    text = (f"535 5.7.3 Authentication unsuccessful {ECHO}\n"
            "334 VXNlcm5hbWU6\n C: c2VudGluZWwtdXNlckBjb250b3NvLmNvbQ==\n"
            f"AUTH XOAUTH2 dXNlcj1qb2JzQGNvbnRvc28uY29tAWF1dGg9QmVhcmVyIHNlbnRpbmVsAQE=")
    sasl = ["c2VudGluZWwtdXNlckBjb250b3NvLmNvbQ==", "dXNlcj1qb2JzQGNvbnRvc28uY29tAWF1dGg9QmVhcmVyIHNlbnRpbmVsAQE="]
    args = ["explain", "--format", fmt, "--output", str(tmp_path / "explained")]
    if how == "argument":
        args.append(text)
    elif how == "file":
        (tmp_path / "pasted.txt").write_text(text)
        args += ["--file", str(tmp_path / "pasted.txt")]
    else:
        import io

        monkeypatch.setattr("sys.stdin", io.StringIO(text))
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    shown = (tmp_path / "explained").read_text(encoding="utf-8")
    assert "wrong-credentials" in shown or "oauth" in shown.lower()
    assert_clean_run(out + shown, err, SENTINELS)
    assert not [s for s in sasl if s in out + shown + err]
