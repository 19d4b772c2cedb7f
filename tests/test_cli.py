"""The command line as a user meets it: exit codes, one-line errors, stdout for data, lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli


def snapshot_file(tmp_path: Path, **over: object) -> Path:
    data: dict[str, object] = {
        "schema": "preflight.snapshot/v1", "provider": "microsoft", "collected_at": "2026-11-26T10:00:00Z",
        "tenant": {"id": "11111111-1111-1111-1111-111111111111", "domain": "contoso.com"},
        "options": {"methods": ["oauth-app"]}, "org": {}, "mailboxes": {"jobs@contoso.com": {}},
    }
    data.update(over)
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "missing.json"], "missing.json: cannot read file"),
        (["evaluate", "--bogus"], "No such option: --bogus"),
        (["evaluate", "x.json", "--format", "pdf"], "--format"),
        (["causes", "--format", "yaml"], "'yaml' is not one of 'table', 'json'"),
        (["evaluate", "x.json", "--as-of", "yesterday"], "--as-of: 'yesterday' is not a date"),
        (["explain", "--file", "missing.txt"], "missing.txt: cannot read file"),
        (["explain", "   "], "the error text is empty"),
        (["explain", "x", "--provider", "aol"], "--provider: 'aol'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert out == ""
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_snapshots_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    assert run_cli(["evaluate", str(bad)], capsys)[2].startswith(f"preflight: error: {bad}: invalid JSON")
    unknown = snapshot_file(tmp_path, provider="aol")
    code, _, err = run_cli(["evaluate", str(unknown)], capsys)
    assert code == 2 and "unknown provider 'aol' (known: google, microsoft)" in err


def test_evaluate_writes_json_to_stdout_and_a_file_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = snapshot_file(tmp_path)
    code, out, _ = run_cli(["evaluate", str(path), "--format", "json"], capsys)
    report = json.loads(out)
    assert report["schema"] == "preflight.report/v1" and report["targets"][0]["tenant"] == "contoso.com"
    target = tmp_path / "out" / "report.json"
    code2, out2, err2 = run_cli(["evaluate", str(path), "-f", "json", "-o", str(target)], capsys)
    assert out2 == "" and "Report written to" in err2 and code2 == code
    assert json.loads(target.read_text())["targets"] == report["targets"]


def test_causes_lists_the_catalogue_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["causes", "--format", "json"], capsys)
    ids = [c["id"] for c in json.loads(out)]
    assert code == 0 and "security-defaults" in ids and len(ids) >= 35


@pytest.mark.slow
def test_help_and_explain_import_no_sign_in_library_and_no_plugin() -> None:
    for args in (["--help"], ["explain", "535 5.7.3 Authentication unsuccessful"]):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import sys; from preflight.cli import main; main(sys.argv[1:])",
             *args], capture_output=True, text=True, env={"NO_COLOR": "1", "PATH": ""}, check=False,
        )
        modules = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
        assert proc.returncode == 0, proc.stderr[-2000:]
        heavy = {m for m in modules if m.split(".")[0] in {"msal", "google", "google_auth_oauthlib", "requests"}}
        assert not heavy, heavy
        # Neither needs a plugin: no provider module, and --help scans no entry points (importlib.metadata;
        # typer's own pydantic reads them when a command runs, in any typer app).
        scan = {"importlib.metadata"} if args == ["--help"] else set()
        plugins = {m for m in modules if m in scan or m.startswith("preflight_providers")}
        assert not plugins, plugins
        # Listing the commands runs none: no report model, snapshot reader or discovery (issue 19).
        unneeded = {"preflight.model", "preflight.snapshot", "preflight.discovery_cli", "json"}
        assert args != ["--help"] or not modules & unneeded, modules & unneeded


def test_explain_never_echoes_a_credential_from_the_paste(capsys: pytest.CaptureFixture[str]) -> None:
    jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL291dGxvb2sub2ZmaWNlMzY1LmNvbSJ9.c2lnbmF0dXJl"
    paste = (f"C: AUTH XOAUTH2 dXNlcj1qb2JzQGNvbnRvc28uY29tAWF1dGg9QmVhcmVyIHNlbnRpbmVs\n"
             f"Authorization: Bearer {jwt}\nsmtp password=Sentinel-Pa55word\n"
             "S: 535 5.7.3 Authentication unsuccessful [SN4PR0501CA0054.namprd05.prod.outlook.com]")
    for fmt in ("json", "table"):
        code, out, _ = run_cli(["explain", paste, "--format", fmt], capsys)
        assert code == 0 and "5.7.3" in out
        for secret in (jwt, "dXNlcj1qb2JzQGNvbnRvc28uY29tAWF1dGg9QmVhcmVyIHNlbnRpbmVs", "Sentinel-Pa55word"):
            assert secret not in out


def test_explain_masks_auth_login_exchanges_as_transcripts_show_them(capsys: pytest.CaptureFixture[str]) -> None:
    paste = ("<-  334 VXNlcm5hbWU6\n -> am9ic0Bjb250b3NvLmNvbQ==\n<-  334 UGFzc3dvcmQ6\n -> U2VudGluZWwtUGFzcw==\n"
             "<** 535 5.7.3 Authentication unsuccessful\npass: Sentinel-Pass")
    code, out, _ = run_cli(["explain", paste, "--format", "json"], capsys)
    assert code == 0 and "5.7.3" in out
    for secret in ("am9ic0Bjb250b3NvLmNvbQ==", "U2VudGluZWwtUGFzcw==", "Sentinel-Pass"):
        assert secret not in out


# --- issue 18: what people expect of a CLI ---------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from preflight import __version__

    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out == f"preflight {__version__}\n"


@pytest.mark.slow
def test_shell_completion_script_and_completions(capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run_cli(["--show-completion", "bash"], capsys)
    assert code == 0 and "_preflight_completion" in out
    monkeypatch.setenv("_PREFLIGHT_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "preflight ca")
    monkeypatch.setenv("COMP_CWORD", "1")
    _, out, _ = run_cli([], capsys)
    assert out.split() == ["causes"]


@pytest.mark.parametrize("command", [[], ["evaluate"], ["causes"], ["explain"], ["redact"], ["check", "microsoft"],
                                     ["probe"], ["audit"], ["diff"]])
def test_help_has_no_library_placeholders(command: list[str], capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_cli([*command, "--help"], capsys)
    assert code == 0
    for placeholder in ("<bool>", "<str>", "<path>", "<int>", "<float>", "list[", "<list"):
        assert placeholder not in out, placeholder
    assert all(len(line) <= 80 for line in out.splitlines())


@pytest.mark.slow
def test_causes_and_checks_detail_views(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["causes", "send-as-denied"], capsys)
    assert code == 0 and out.startswith("The From address is not the mailbox")
    assert "Fix (microsoft): Add-RecipientPermission" in out and "Docs:" in out
    code, out, _ = run_cli(["causes", "send-as-denied", "--format", "json"], capsys)
    assert json.loads(out)["id"] == "send-as-denied"
    code, out, _ = run_cli(["checks", "--format", "json"], capsys)
    first = json.loads(out)[0]
    code, out, _ = run_cli(["checks", first["id"]], capsys)
    assert code == 0 and first["title"] in " ".join(out.split()) and f"id: {first['id']}" in out
    code, _, err = run_cli(["causes", "send-as-denyed"], capsys)
    assert code == 2 and "did you mean send-as-denied?" in err


@pytest.mark.slow
def test_text_output_wraps_at_80_columns_without_splitting_ids(capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    text = ("535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated "
            "successfully. Contact your administrator. [MN2PR07CA0004.namprd07.prod.outlook.com]")
    for args in (["explain", text], ["causes"], ["checks"], ["causes", "oauth-client-credential-invalid"]):
        _, out, _ = run_cli(args, capsys)
        assert all(len(line) <= 80 for line in out.splitlines()), args
    _, out, _ = run_cli(["explain", text], capsys)
    assert "[ca-legacy-auth-block," in out and "MN2PR07CA0004.namprd07.prod.outlook.com" in out


def test_output_option_on_data_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for args, name in ((["explain", "AADSTS50126: Error validating credentials"], "e.txt"),
                       (["causes", "--format", "json"], "c.json"), (["checks"], "k.txt")):
        code, out, _ = run_cli([*args, "--output", str(tmp_path / name)], capsys)
        assert code == 0 and out == "" and (tmp_path / name).read_text()


@pytest.mark.slow
def test_demo_summary_and_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    html = tmp_path / "demo.html"
    code, out, _ = run_cli(["demo", "--html", str(html), "--summary", "--format", "json"], capsys)
    data = json.loads(out)
    assert data["schema"] == "preflight.summary/v1" and data["targets"]
    assert all(set(t["verdicts"]) <= {"ready", "blocked", "at-risk", "incomplete"} for t in data["targets"])
    report = tmp_path / "demo.md"
    code, out, _ = run_cli(["demo", "--html", str(html), "--format", "markdown", "--output", str(report)], capsys)
    assert out == "" and report.read_text().startswith("#")
    code, _, err = run_cli(["demo", "--html", str(html), "--summary", "--format", "html"], capsys)
    assert code == 2 and "--summary prints table or json" in err


def test_mailboxes_from_file(tmp_path: Path) -> None:
    from preflight.errors import InputError
    from preflight.mailboxlist import mailbox_options, read_mailboxes

    plain = tmp_path / "boxes.txt"
    plain.write_text("# mailboxes\njobs@contoso.com\n\nalerts@contoso.com\nJOBS@contoso.com\n")
    assert read_mailboxes(plain) == ["jobs@contoso.com", "alerts@contoso.com"]
    exported = tmp_path / "users.csv"
    exported.write_text("\ufeffDisplay Name,UserPrincipalName\nJobs,jobs@contoso.com\nAlerts,alerts@contoso.com\n")
    assert mailbox_options(["a@contoso.com"], exported) == ["a@contoso.com", "jobs@contoso.com",
                                                            "alerts@contoso.com"]
    bad = tmp_path / "bad.txt"
    bad.write_text("jobs@contoso.com\nnot an address\n")
    with pytest.raises(InputError, match="entry 2"):
        read_mailboxes(bad)
    with pytest.raises(InputError, match="--mailboxes-from FILE"):
        mailbox_options(None, None)


def test_check_without_mailboxes_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["check", "microsoft", "--tenant", "contoso.com"], capsys)
    assert code == 2 and "--mailboxes-from FILE" in err and err.count("\n") == 1


def test_ctrl_c_is_one_line_and_exit_130(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import preflight.explain_cli

    def interrupted(*_args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(preflight.explain_cli, "run_explain", interrupted)
    code, out, err = run_cli(["explain", "535 5.7.8"], capsys)
    assert code == 130 and out == "" and err == "preflight: interrupted\n"
    _, help_text, _ = run_cli(["--help"], capsys)
    assert "130 interrupted" in " ".join(help_text.split())
