"""`preflight check google` end to end: real CLI, real google-auth, the fake serving the fixture workspaces."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from preflight_providers.google import provider, settings
from tests.conftest import run_cli
from tests.google.fake import FakeGoogle, Workspace, sample_snapshot, secrets_of
from tests.leaks import assert_no_leak

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "fixtures"
ALL = [s.url for s in settings.scopes() if "service-account" in s.auth]
CLIENT_ID = "104857600000000000001"


class World:
    def __init__(self, fake: FakeGoogle, ws: Workspace, key: Path, admin: str, tmp: Path) -> None:
        self.fake, self.ws, self.key, self.admin, self.tmp = fake, ws, key, admin, tmp

    def check_args(self, snapshot: dict[str, Any], *extra: str) -> list[str]:
        args = ["check", "google", "--domain", snapshot["tenant"]["domain"], "--auth", "service-account",
                "--key-file", str(self.key), "--admin", self.admin, "--api-root", self.fake.url]
        for box in snapshot["mailboxes"]:
            args += ["--mailbox", box]
        opts = snapshot.get("options") or {}
        for m in opts.get("methods") or []:
            args += ["--method", m]
        for box, addr in (opts.get("from_addresses") or {}).items():
            args += ["--from", f"{box}={addr}"]
        if opts.get("app_id"):
            args += ["--app-id", opts["app_id"]]
        present = {k for rec in snapshot["mailboxes"].values() for k in rec}
        flags = {"sendAs": "--with-sendas", "licenses": "--with-licenses", "tokens": "--with-tokens",
                 "advancedProtectionEvents": "--with-audit-log"}
        for resource, flag in flags.items():
            if resource in present:
                args.append(flag)
        return args + list(extra)


def world_for(snapshot: dict[str, Any], tmp: Path) -> tuple[FakeGoogle, Workspace, str]:
    ws = Workspace.from_snapshot(snapshot)
    admin = f"preflight-admin@{snapshot['tenant']['domain']}"
    ws.add_admin(admin)
    ws.grant(CLIENT_ID, ALL)
    return FakeGoogle([ws], tmp), ws, admin


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("PREFLIGHT_GOOGLE_PROFILE", raising=False)
    monkeypatch.delenv("PREFLIGHT_GOOGLE_KEY_FILE", raising=False)
    return tmp_path


@pytest.fixture()
def sample(env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[World, dict[str, Any]]]:
    snap = sample_snapshot()
    fake, ws, admin = world_for(snap, env)
    with fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_file))
        yield World(fake, ws, fake.key_file(env), admin, env), snap


def _targets(report: str) -> list[dict[str, Any]]:
    return list(json.loads(report)["targets"])


FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))


def _by_name(org: dict[str, Any]) -> dict[str, Any]:
    """Policies come in the order Google lists them (one listing, or one per application), not the file's."""
    policies = org.get("policies")
    if isinstance(policies, list):
        return {**org, "policies": sorted(policies, key=lambda p: str(p.get("name")))}
    return org


@pytest.mark.parametrize("fixture", FIXTURE_FILES, ids=[p.stem for p in FIXTURE_FILES])
def test_check_equals_evaluate_of_saved_snapshot(fixture: Path, env: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    snap = json.loads(fixture.read_text())
    fake, _, admin = world_for(snap, env)
    with fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_file))
        world = World(fake, _, fake.key_file(env), admin, env)
        saved = env / "out" / "snap.json"
        code, out, err = run_cli(world.check_args(snap, "--save-snapshot", str(saved), "--format", "json"), capsys)
    assert "Traceback" not in err
    collected = json.loads(saved.read_text())
    # The collector read back exactly what the fixture holds: same payloads, same recorded errors.
    assert _by_name(collected["org"]) == _by_name(snap["org"])
    assert collected["mailboxes"] == snap["mailboxes"]
    assert collected["options"]["methods"] == snap["options"]["methods"]
    code2, out2, _ = run_cli(["evaluate", str(saved), "--format", "json"], capsys)
    assert (code, _targets(out)) == (code2, _targets(out2))
    assert _targets(out)[0]["findings"], "the provider's checks produced findings"


def test_policy_api_forbidden_makes_dependent_checks_unknown(env: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    snap = sample_snapshot()
    snap["mailboxes"] = {"jobs@acme.example": snap["mailboxes"]["jobs@acme.example"]}
    fake, ws, _ = world_for(snap, env)
    helpdesk = "helpdesk@acme.example"
    ws.add_admin(helpdesk, super_admin=False)  # a delegated admin: the Policy API refuses it (super admins only)
    with fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_file))
        world = World(fake, ws, fake.key_file(env), helpdesk, env)
        code, out, err = run_cli(world.check_args(snap, "--format", "json"), capsys)
    assert code == 3, err
    findings = _targets(out)[0]["findings"]
    policy_checks = {c.id for c in provider.checks() if "policies" in c.reads}
    on_policies = [f for f in findings if f["check"] in policy_checks]
    unknown = [f for f in on_policies if f["status"] == "unknown"]
    assert unknown and all("403 PERMISSION_DENIED" in f["message"] for f in unknown)
    assert all("super administrator" in (f["remediation"] or "") for f in unknown)
    # Nothing decided on a guess: what hinges on the unreadable policies is unknown, nothing fails.
    assert not [f for f in findings if f["status"] == "fail"]


def test_report_is_on_stdout_progress_on_stderr(sample: tuple[World, dict[str, Any]],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    world, snap = sample
    _code, out, err = run_cli(world.check_args(snap, "--format", "json"), capsys)
    json.loads(out)
    assert "reading Google Workspace acme.example as admin" not in out
    assert "preflight: reading Google Workspace acme.example as preflight-admin@acme.example" in err
    assert "API requests" in err


def test_no_secret_in_any_output(sample: tuple[World, dict[str, Any]], capsys: pytest.CaptureFixture[str],
                                 caplog: pytest.LogCaptureFixture) -> None:
    world, snap = sample
    caplog.set_level(logging.DEBUG)
    saved = world.tmp / "s.json"
    report = world.tmp / "r.html"
    texts = []
    for fmt in ("json", "table", "markdown", "csv", "junit"):
        _, out, err = run_cli(world.check_args(snap, "--format", fmt, "--save-snapshot", str(saved)), capsys)
        texts += [out, err]
    _, out, err = run_cli(["--debug", *world.check_args(snap)], capsys)
    assert "debug: preflight.http: GET https://127.0.0.1" in err  # the HTTP calls were logged, masked
    texts += [out, err]
    run_cli(world.check_args(snap, "--format", "html", "--output", str(report)), capsys)
    texts += [saved.read_text(), report.read_text(), caplog.text]
    assert caplog.text  # debug logging of the HTTP calls was on
    assert world.fake.issued
    assert_no_leak("\n".join(texts), secrets_of(world.fake, [world.key]))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mailbox", "not-an-address"], "--mailbox: 'not-an-address' is not an email address"),
        (["--domain", "bad domain"], "--domain: 'bad domain' is not a domain name"),
        (["--from", "x@acme.example", "--from", "y@acme.example"], "--from: give one address for every mailbox, or "
         "MAILBOX=ADDR pairs"),
        (["--from", "other@acme.example=x@acme.example"], "--from: other@acme.example is not one of"),
        (["--profile", "../etc"], "--profile: '../etc' is not a profile name"),
        (["--api-root", "http://127.0.0.1:1"], "--api-root: 'http://127.0.0.1:1' must be an https:// URL"),
        (["--method", "smtp"], "--method"),
    ],
)
def test_bad_input_is_one_line_exit_2(sample: tuple[World, dict[str, Any]], extra: list[str], message: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    world, snap = sample
    code, out, err = run_cli(world.check_args(snap, *extra), capsys)
    assert (code, out) == (2, "")
    assert message in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_bad_key_file_and_missing_options_exit_2(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["check", "google", "--domain", "acme.example", "--mailbox", "a@acme.example"]
    cases = [
        ([*base, "--auth", "service-account", "--key-file", str(env / "nope.json"), "--admin", "a@acme.example"],
         "cannot read service account key file"),
        ([*base, "--auth", "service-account", "--admin", "a@acme.example"], "needs --key-file"),
        ([*base, "--auth", "service-account", "--key-file", str(env / "k.json")], "needs --admin"),
        (base, "has no sign-in"),
        ([*base, "--auth", "oauth", "--with-sendas"], "--with-sendas needs --auth service-account"),
        (["check", "google", "--mailbox", "a@acme.example", "--auth", "oauth"], "give --domain or --customer-id"),
        (["check", "google", "--domain", "acme.example"], "at least one --mailbox"),
    ]
    for args, message in cases:
        code, out, err = run_cli(args, capsys)
        assert (code, out) == (2, ""), (args, err)
        assert message in err and err.count("\n") == 1, (args, err)


def test_no_delegation_at_all_exits_4(sample: tuple[World, dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    world, snap = sample
    world.ws.dwd.clear()
    code, out, err = run_cli(world.check_args(snap), capsys)
    assert (code, out) == (4, "")
    assert err.startswith("preflight: reading") and "sign-in failed: no Google token for " in err
    assert "unauthorized_client" in err and "auth-check google" in err


def test_token_endpoint_unreachable_exits_4(sample: tuple[World, dict[str, Any]],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    world, snap = sample
    info = json.loads(world.key.read_text())
    info["token_uri"] = "https://127.0.0.1:9/token"  # discard port: nothing listens
    world.key.write_text(json.dumps(info))
    code, _, err = run_cli(world.check_args(snap), capsys)
    assert code == 4 and "token endpoint could not be reached" in err


def test_wrong_customer_exits_4(sample: tuple[World, dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    world, snap = sample
    args = world.check_args(snap)
    args[args.index("--domain") + 1] = "globex.example"
    code, out, err = run_cli(args, capsys)
    assert (code, out) == (4, "") and "does not own globex.example" in err


def test_commands_module_is_cheap_to_import() -> None:
    code = ("import sys, preflight_providers.google.commands as c; "
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('google', 'google_auth_oauthlib', 'requests', "
            "'cryptography', 'platformdirs')]; "
            "assert set(c.COMMANDS) == {'check', 'login', 'logout', 'auth-check'}; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_help_lists_the_google_commands(capsys: pytest.CaptureFixture[str]) -> None:
    for group in ("check", "login", "logout", "auth-check"):
        code, out, _ = run_cli([group, "google", "--help"], capsys)
        assert code == 0 and "--profile" in out
    _, out, _ = run_cli(["check", "google", "--help"], capsys)
    assert "--with-licenses" in out and "read/write" in out and "--api-root" not in out


def test_setup_doc_lists_exactly_the_scopes_the_code_requests() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "google-setup.md").read_text(encoding="utf-8")
    base = ",".join(s.url for s in settings.wanted_scopes("service-account"))
    assert f"\n   {base}\n" in doc  # the block an admin pastes into the delegation form
    for s in settings.scopes():
        assert s.url in doc, s.url
        assert s.opt_in is None or f"`{s.opt_in}`" in doc


def test_only_read_only_scopes_without_an_opt_in() -> None:
    for s in settings.scopes():
        assert s.read_only or s.opt_in, f"{s.url} can change the Workspace: it must be opt-in"
        assert s.resources or s.auth == ("oauth",), s.key


def test_audit_reads_several_workspaces_in_isolation(env: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    acme = Workspace.from_snapshot(sample_snapshot("acme.example", "C03az79cb"))
    globex = Workspace.from_snapshot(sample_snapshot("globex.example", "C04globex"))
    broken = Workspace.from_snapshot(sample_snapshot("broken.example", "C05broken"))
    for ws in (acme, globex, broken):
        ws.add_admin(f"admin@{ws.customer['customerDomain']}")
    acme.grant(CLIENT_ID, ALL)
    globex.grant(CLIENT_ID, ALL)  # broken.example never granted the delegation
    with FakeGoogle([acme, globex, broken], env) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_file))
        monkeypatch.setenv("PREFLIGHT_GOOGLE_API_ROOT", fake.url)
        key = fake.key_file(env)
        sections = "\n".join(
            f'[customer.{name}]\nprovider = "google"\ndomain = "{name}.example"\nauth = "service-account"\n'
            f'key_file = "{key}"\nadmin = "admin@{name}.example"\nmailboxes = ["jobs@{name}.example"]\n'
            f'methods = ["basic"]\nwith_sendas = true\n'
            for name in ("acme", "globex", "broken"))
        inventory = env / "inventory.toml"
        inventory.write_text(sections)
        code, out, err = run_cli(["audit", str(inventory), "--output-dir", str(env / "audit")], capsys)
    assert code == 4, err  # one Workspace could not be read: that is the most urgent thing to say
    report = json.loads((env / "audit" / "report.json").read_text())
    by_name = {t["name"]: t for t in report["targets"]}
    assert by_name["acme"]["tenant"] == "acme.example" and by_name["acme"]["findings"]
    assert by_name["globex"]["tenant"] == "globex.example" and not by_name["globex"]["errors"]
    assert "unauthorized_client" in by_name["broken"]["errors"][0]
    # each Workspace was read only with its own admin's tokens
    for name in ("acme", "globex"):
        seen = fake.seen(f"/admin/directory/v1/users/jobs@{name}.example")
        assert seen and {s.subject for s in seen} == {f"admin@{name}.example"}
    snap = json.loads((env / "audit" / "acme" / "snapshot.json").read_text())
    assert snap["mailboxes"]["jobs@acme.example"]["sendAs"][0]["sendAsEmail"] == "jobs@acme.example"
    assert_no_leak(out + err + json.dumps(report), secrets_of(fake, [key]))
