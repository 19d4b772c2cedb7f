"""Google sign-in end to end: installed-app OAuth (real google-auth-oauthlib loopback flow), per-customer
profiles, logout with revocation, and auth-check for both kinds of sign-in, against the local fake."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from preflight_providers.google import settings
from tests.conftest import run_cli
from tests.google.fake import AUTH, Browser, FakeGoogle, Workspace, sample_snapshot, secrets_of
from tests.leaks import assert_no_leak

pytestmark = pytest.mark.slow

CLIENT_ID = "104857600000000000001"
SA_SCOPES = [s.url for s in settings.scopes() if "service-account" in s.auth]


def workspace(domain: str, customer_id: str) -> Workspace:
    snap = sample_snapshot(domain, customer_id)
    ws = Workspace.from_snapshot(snap)
    ws.add_admin(f"admin@{domain}")
    return ws


class World:
    def __init__(self, fake: FakeGoogle, tmp: Path, browser: Browser) -> None:
        self.fake, self.tmp, self.browser = fake, tmp, browser
        self.acme, self.globex = fake.workspaces
        self.outputs: list[str] = []

    def run(self, args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
        code, out, err = run_cli(args, capsys)
        self.outputs += [out, err]
        return code, out, err

    def profile_dir(self, name: str) -> Path:
        return self.tmp / "config" / "preflight" / "google" / name


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for var in ("PREFLIGHT_GOOGLE_PROFILE", "PREFLIGHT_GOOGLE_KEY_FILE", "OAUTHLIB_RELAX_TOKEN_SCOPE"):
        monkeypatch.delenv(var, raising=False)
    with FakeGoogle([workspace("acme.example", "C03az79cb"), workspace("globex.example", "C04globex")],
                    tmp_path) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_file))
        monkeypatch.setenv("PREFLIGHT_GOOGLE_API_ROOT", fake.url)
        browser = Browser(fake.ca_file)
        # The admin's browser is the one component that cannot run here.
        monkeypatch.setattr("webbrowser.get", lambda using=None: browser)
        yield World(fake, tmp_path, browser)


def login_oauth(w: World, capsys: pytest.CaptureFixture[str], profile: str, user: str,
                *extra: str) -> tuple[int, str, str]:
    w.fake.browser_user = user
    secrets_file = w.fake.client_secrets(w.tmp, client_id=f"{profile}-preflight.apps.googleusercontent.com")
    return w.run(["login", "google", "--auth", "oauth", "--client-secrets", str(secrets_file), "--profile", profile,
                  "--domain", user.split("@")[1], *extra], capsys)


def check(w: World, capsys: pytest.CaptureFixture[str], profile: str, domain: str,
          *extra: str) -> tuple[int, str, str]:
    return w.run(["check", "google", "--profile", profile, "--mailbox", f"jobs@{domain}", "--domain", domain,
                  "--format", "json", *extra], capsys)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- installed-app OAuth -----------------------------------------------------------------------------


def test_oauth_login_stores_refresh_token_0600_and_check_uses_it(world: World,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = login_oauth(world, capsys, "acme", "admin@acme.example")
    assert (code, out) == (0, ""), err
    assert "signed in as admin@acme.example" in err and "readable by you only" in err
    assert world.browser.errors == [] and len(world.browser.opened) == 1
    url = world.browser.opened[0]
    assert "code_challenge_method=S256" in url and "access_type=offline" in url and "prompt=consent" in url
    token = world.profile_dir("acme") / "oauth-token.json"
    assert mode(token) == 0o600 and mode(token.parent) == 0o700
    stored = json.loads(token.read_text())
    assert stored["refresh_token"].startswith("1//0fake-") and stored["account"] == "admin@acme.example"
    assert "token" not in stored  # the access token is not kept: a refresh per run is cheap
    assert set(stored["scopes"]) == {s.url for s in settings.wanted_scopes("oauth")}
    # check with the stored sign-in: refresh against the token endpoint, read the APIs as the admin
    code, out, err = check(world, capsys, "acme", "acme.example")
    assert json.loads(out)["targets"][0]["tenant"] == "acme.example", err
    assert {s.subject for s in world.fake.seen("/admin/directory/v1/")} == {"admin@acme.example"}
    assert_no_leak("\n".join(world.outputs), secrets_of(world.fake))


def test_unticked_scope_at_consent_is_reported_and_read_as_unknown(world: World,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    dropped = AUTH + "cloud-identity.policies.readonly"
    world.fake.consent_drop = {dropped}
    code, _, err = login_oauth(world, capsys, "acme", "admin@acme.example")
    assert code == 0 and f"not granted at the consent screen (the checks that need them will be unknown): {dropped}" \
        in err
    code, out, _ = check(world, capsys, "acme", "acme.example", "--save-snapshot", str(world.tmp / "s.json"))
    policies = json.loads((world.tmp / "s.json").read_text())["org"]["policies"]
    assert policies == {"error": {"status": 403, "code": "PERMISSION_DENIED",
                                  "message": "Request had insufficient authentication scopes."}}
    assert code in (1, 3)
    code, out, _ = world.run(["auth-check", "google", "--profile", "acme"], capsys)
    assert code == 3  # a scope or read is missing: its checks would be unknown (preflight.authcheck)
    assert f"FAIL  scope    {dropped}" in out and "preflight login google --profile acme" in out


def test_oauth_cannot_read_other_users_gmail(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    login_oauth(world, capsys, "acme", "admin@acme.example")
    code, out, err = check(world, capsys, "acme", "acme.example", "--with-sendas")
    assert (code, out) == (2, "") and "--with-sendas needs --auth service-account" in err


def test_check_without_login_says_how_to_sign_in(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = check(world, capsys, "acme", "acme.example", "--auth", "oauth")
    assert (code, out) == (4, "")
    assert "no stored Google sign-in for profile 'acme': run `preflight login google --profile acme" in err


def test_check_with_client_secrets_signs_in_first(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.fake.browser_user = "admin@acme.example"
    secrets_file = world.fake.client_secrets(world.tmp)
    _code, out, err = check(world, capsys, "acme", "acme.example", "--auth", "oauth", "--client-secrets",
                           str(secrets_file))
    assert json.loads(out)["targets"][0]["tenant"] == "acme.example", err
    assert (world.profile_dir("acme") / "oauth-token.json").exists()


def test_two_customers_side_by_side_without_bleed(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert login_oauth(world, capsys, "acme", "admin@acme.example")[0] == 0
    assert login_oauth(world, capsys, "globex", "admin@globex.example")[0] == 0
    acme = json.loads((world.profile_dir("acme") / "oauth-token.json").read_text())
    globex = json.loads((world.profile_dir("globex") / "oauth-token.json").read_text())
    assert acme["refresh_token"] != globex["refresh_token"]
    assert json.loads(check(world, capsys, "globex", "globex.example")[1])["targets"][0]["tenant"] == "globex.example"
    assert {s.subject for s in world.fake.seen("/admin/directory/v1/users/jobs@globex.example")} == \
        {"admin@globex.example"}
    # The acme profile pointed at globex: refused, nothing reported under the wrong name.
    code, out, err = check(world, capsys, "acme", "globex.example")
    assert (code, out) == (4, "")
    assert "admin@acme.example belongs to customer C03az79cb (acme.example), which does not own globex.example" in err
    # Logging out of one customer leaves the other signed in.
    assert world.run(["logout", "google", "--profile", "acme"], capsys)[0] == 0
    assert not (world.profile_dir("acme") / "oauth-token.json").exists()
    assert check(world, capsys, "globex", "globex.example")[0] in (0, 1, 3)
    assert check(world, capsys, "acme", "acme.example")[0] == 4


def test_profile_remembers_domain_and_sign_in(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    login_oauth(world, capsys, "acme", "admin@acme.example")
    _code, out, err = world.run(["check", "google", "--profile", "acme", "--mailbox", "jobs@acme.example",
                                "--format", "json"], capsys)
    assert json.loads(out)["targets"][0]["tenant"] == "acme.example", err
    settings_file = world.profile_dir("acme") / "profile.json"
    assert mode(settings_file) == 0o600
    assert json.loads(settings_file.read_text())["domain"] == "acme.example"


def test_logout_revokes_at_google_and_removes_the_file(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    login_oauth(world, capsys, "acme", "admin@acme.example")
    token = world.profile_dir("acme") / "oauth-token.json"
    refresh = json.loads(token.read_text())["refresh_token"]
    saved = token.read_text()
    code, out, err = world.run(["logout", "google", "--profile", "acme"], capsys)
    assert (code, out) == (0, "") and "revoked the refresh token at Google" in err
    assert not token.exists() and refresh not in err
    assert world.fake.seen("/revoke")
    # The revoked token no longer works even if a copy survived somewhere.
    token.write_text(saved)
    token.chmod(0o600)
    code, out, err = check(world, capsys, "acme", "acme.example")
    assert code == 4 and "Token has been expired or revoked." in err and "run `preflight login google` again" in err
    code, _, err = world.run(["logout", "google", "--profile", "acme", "--forget"], capsys)
    assert code == 0 and not world.profile_dir("acme").exists()
    assert "no stored Google sign-in" in world.run(["logout", "google", "--profile", "acme"], capsys)[2]


def test_loose_token_file_is_tightened_to_0600(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    login_oauth(world, capsys, "acme", "admin@acme.example")
    token = world.profile_dir("acme") / "oauth-token.json"
    token.chmod(0o644)
    _, _, err = check(world, capsys, "acme", "acme.example")
    assert "was readable by group or others; its mode is now 0600" in err
    assert mode(token) == 0o600
    token.chmod(0o640)
    code, out, _ = world.run(["auth-check", "google", "--profile", "acme"], capsys)
    assert code == 0 and "WARN  file" in out and "now 0600" in out and mode(token) == 0o600
    code, out, _ = world.run(["auth-check", "google", "--profile", "acme"], capsys)
    assert code == 0 and "PASS  file" in out


def test_relogin_replaces_the_token_atomically(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    login_oauth(world, capsys, "acme", "admin@acme.example")
    token = world.profile_dir("acme") / "oauth-token.json"
    first = json.loads(token.read_text())["refresh_token"]
    login_oauth(world, capsys, "acme", "admin@acme.example")
    assert json.loads(token.read_text())["refresh_token"] != first
    assert sorted(p.name for p in token.parent.iterdir()) == ["oauth-token.json", "profile.json"]  # no temp left


def test_oauth_auth_check_passes_when_everything_is_granted(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    login_oauth(world, capsys, "acme", "admin@acme.example")
    code, out, _ = world.run(["auth-check", "google", "--profile", "acme", "--format", "json"], capsys)
    report = json.loads(out)
    assert code == 0 and report["exit_code"] == 0 and report["principal"] == "admin@acme.example"
    assert {line["status"] for line in report["lines"]} == {"PASS"}
    assert any(line["subject"] == "Policy API policies.list" for line in report["lines"])


def test_web_client_file_is_refused(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    secrets_file = world.fake.client_secrets(world.tmp, kind="web")
    code, out, err = world.run(["login", "google", "--auth", "oauth", "--client-secrets", str(secrets_file)], capsys)
    assert (code, out) == (2, "") and "create an OAuth client of type Desktop app" in err


def test_refused_consent_exits_4(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.fake.deny_consent = True
    code, out, err = login_oauth(world, capsys, "acme", "admin@acme.example")
    assert (code, out) == (4, "")
    assert "sign-in failed: the sign-in was refused in the browser (access_denied)" in err
    assert not (world.profile_dir("acme") / "oauth-token.json").exists()


# --- service account ---------------------------------------------------------------------------------


def sa_key(world: World, grant: list[str] | None = None) -> Path:
    key = world.fake.key_file(world.tmp)
    world.acme.grant(CLIENT_ID, SA_SCOPES if grant is None else grant)
    return key


def test_service_account_login_saves_a_profile_not_the_key(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    key = sa_key(world)
    code, out, err = world.run(["login", "google", "--auth", "service-account", "--key-file", str(key), "--admin",
                                "admin@acme.example", "--profile", "acme", "--domain", "acme.example"], capsys)
    assert (code, out) == (0, ""), err
    assert f"client id {CLIENT_ID}" in err and "nothing secret was copied" in err
    saved = json.loads((world.profile_dir("acme") / "profile.json").read_text())
    assert saved == {"auth": "service-account", "key_file": str(key.resolve()), "admin": "admin@acme.example",
                     "domain": "acme.example"}
    code, out, err = world.run(["check", "google", "--profile", "acme", "--mailbox", "jobs@acme.example",
                                "--format", "json"], capsys)
    assert json.loads(out)["targets"][0]["tenant"] == "acme.example", err


def test_service_account_auth_check_all_granted(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    key = sa_key(world)
    code, out, err = world.run(["auth-check", "google", "--auth", "service-account", "--key-file", str(key),
                                "--admin", "admin@acme.example", "--with-sendas", "--with-licenses", "--with-tokens",
                                "--mailbox", "jobs@acme.example"], capsys)
    assert code == 0, out + err
    assert "FAIL" not in out and "WARN" not in out
    assert out.count("PASS  scope") == 9 and "(9/9)" in out
    assert "PASS  key " in out and "PASS  clock" in out and "PASS  read     Policy API policies.list" in out
    assert "sendAs.list jobs@acme.example" in out and "To grant" not in out


def test_service_account_auth_check_missing_grants(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    granted = [s for s in SA_SCOPES if "policies" not in s and "orgunit" not in s]
    key = sa_key(world, granted)
    code, out, _ = world.run(["auth-check", "google", "--auth", "service-account", "--key-file", str(key),
                              "--admin", "admin@acme.example"], capsys)
    assert code == 3  # a scope or read is missing: its checks would be unknown (preflight.authcheck)
    assert f"FAIL  scope    {AUTH}cloud-identity.policies.readonly" in out and "not granted to this client" in out
    assert f"FAIL  scope    {AUTH}admin.directory.orgunit.readonly" in out
    wanted = ",".join(s.url for s in settings.wanted_scopes("service-account"))
    assert "Security > Access and data control > API controls > Domain-wide delegation" in out
    assert f"Client ID: {CLIENT_ID}" in out and f"OAuth scopes (comma-delimited): {wanted}" in out
    assert "gmail.readonly" not in wanted and "apps.licensing" not in wanted  # opt-ins only when asked


def test_auth_check_reads_show_a_missing_admin_role(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    key = sa_key(world)
    world.acme.add_admin("helpdesk@acme.example", super_admin=False)
    code, out, _ = world.run(["auth-check", "google", "--auth", "service-account", "--key-file", str(key),
                              "--admin", "helpdesk@acme.example"], capsys)
    assert code == 3  # a scope or read is missing: its checks would be unknown (preflight.authcheck)
    assert "FAIL  read     Policy API policies.list" in out and "403 PERMISSION_DENIED" in out
    assert "super administrator" in out and "PASS  read     customers.get my_customer" in out


def test_auth_check_clock_and_key_age(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    key = sa_key(world)
    old = time.time() - 400 * 86400
    os.utime(key, (old, old))
    world.fake.clock_offset = -120.0  # Google's clock 2 minutes behind ours: our clock looks ahead
    code, out, _ = world.run(["auth-check", "google", "--auth", "service-account", "--key-file", str(key),
                              "--admin", "admin@acme.example"], capsys)
    assert code == 0
    assert "WARN  clock" in out and "ahead of 127.0.0.1" in out and "enable NTP" in out
    assert "WARN  key-age" in out and "at least 400 days old" in out and "rotate keys older than 90 days" in out
    assert "IAM & Admin > Service accounts > preflight@acme-tools.iam.gserviceaccount.com > Keys" in out
    world.fake.clock_offset = -900.0
    out = world.run(["auth-check", "google", "--auth", "service-account", "--key-file", str(key), "--admin",
                     "admin@acme.example"], capsys)[1]
    assert "FAIL  clock" in out


def test_auth_check_deleted_key_exits_4(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    key = sa_key(world)
    for sa in world.fake.service_accounts.values():
        sa.disabled = True
    code, out, _ = world.run(["auth-check", "google", "--auth", "service-account", "--key-file", str(key),
                              "--admin", "admin@acme.example"], capsys)
    assert code == 4
    assert "FAIL  key" in out and "Invalid JWT Signature." in out and "deleted or disabled?" in out


def test_service_account_login_with_a_dead_key_exits_4(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    key = sa_key(world)
    for sa in world.fake.service_accounts.values():
        sa.disabled = True
    code, out, err = world.run(["login", "google", "--auth", "service-account", "--key-file", str(key), "--admin",
                                "admin@acme.example", "--profile", "acme"], capsys)
    assert (code, out) == (4, "") and "Invalid JWT Signature." in err
    assert not (world.profile_dir("acme") / "profile.json").exists()


def test_no_secret_in_sign_in_outputs(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    key = sa_key(world)
    login_oauth(world, capsys, "acme", "admin@acme.example")
    world.run(["auth-check", "google", "--profile", "acme", "--format", "json"], capsys)
    world.run(["auth-check", "google", "--auth", "service-account", "--key-file", str(key), "--admin",
               "admin@acme.example", "--profile", "sa"], capsys)
    world.run(["logout", "google", "--profile", "acme"], capsys)
    assert world.fake.issued
    assert_no_leak("\n".join(world.outputs), secrets_of(world.fake, [key]))


