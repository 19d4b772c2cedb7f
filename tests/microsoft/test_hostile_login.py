"""login, logout and auth-check against a misbehaving sign-in service: every secret they learn (the client secret,
a certificate passphrase, every token issued) joins the run's registry, so no output, file or --debug log shows it
in any encoding; every failure is one line naming the sign-in service, exit 4, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.leaks import assert_clean_run, assert_no_leak, files_text
from tests.microsoft.conftest import CLIENT_ID, SECRET, SECRET_ENV, load_fixture, tenant_for
from tests.microsoft.fake import FakeMicrosoft
from tests.microsoft.test_hostile_signin import CASES, SECRETS, on

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("isolated", "secret_env")]


def _app_only(command: str, domain: str, *extra: str) -> list[str]:
    return [*extra, command, "microsoft", "--tenant", domain, "--client-id", CLIENT_ID, "--auth", "secret",
            "--client-secret-env", SECRET_ENV, "--cloud", "fake"]


COMMANDS = {"login": [], "auth-check": ["--format", "json"]}


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_misbehaving_token_endpoint_is_one_clean_line(
        case: str, command: str, debug: bool, microsoft_fake: FakeMicrosoft, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    api, reply, shown = CASES[case]
    microsoft_fake.fault = on(api, reply)  # type: ignore[assignment]
    args = _app_only(command, snapshot["tenant"]["domain"], *(["--debug"] if debug else []))
    code, out, err = run_cli([*args, *COMMANDS[command]], capsys)
    assert code == 4, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("preflight: sign-in failed: ") and shown in last, err
    assert "{'" not in err, "no Python dict repr"
    assert out == ""
    assert_clean_run(out, err, SECRETS + microsoft_fake.issued)
    assert_no_leak(files_text(tmp_path, skip="xdg"), SECRETS + microsoft_fake.issued)


class _Recording:
    """Captures the run's registry main() creates, to ask it what it learned."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from preflight import runsecrets

        self.made: list[runsecrets.RunSecrets] = []
        real = runsecrets.RunSecrets
        made = self.made

        class Recorded(real):  # type: ignore[misc, valid-type]
            def __init__(self, parent: runsecrets.RunSecrets | None = None) -> None:
                super().__init__(parent)
                if parent is None:
                    made.append(self)

        monkeypatch.setattr(runsecrets, "RunSecrets", Recorded)

    def knows(self, secret: str) -> bool:
        root = self.made[0]
        return root.mask_known(f"<{secret}>") == "<********>"


@pytest.mark.parametrize("command", ["login", "auth-check", "check"])
def test_the_run_registry_learns_the_client_secret_and_every_token(
        command: str, microsoft_fake: FakeMicrosoft, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """What the sign-in learns reaches the registry the root log filter masks with (not a private copy), so a
    third-party logger quoting a token is masked too."""
    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    recording = _Recording(monkeypatch)
    domain = snapshot["tenant"]["domain"]
    extra = ["--mailbox", f"jobs@{domain}"] if command == "check" else []
    code, _out, err = run_cli([*_app_only(command, domain), *extra], capsys)
    assert code in (0, 1, 3), err
    assert microsoft_fake.issued
    assert recording.knows(SECRET)
    assert all(recording.knows(token) for token in microsoft_fake.issued)


def test_auth_check_against_admin_apis_echoing_the_token_leaks_nothing(
        microsoft_fake: FakeMicrosoft, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Graph and Exchange answer every probe with an error quoting the bearer token and the client secret."""
    from tests.microsoft.fake import Call, Reply

    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))

    def echo(call: Call) -> Reply | None:
        if call.api in ("graph", "exchange") and microsoft_fake.issued:
            said = f"token {microsoft_fake.issued[-1]} (client secret {SECRET}) lacks a role"
            return Reply(403, {"error": {"code": "Forbidden", "message": said}})
        return None

    microsoft_fake.fault = echo
    for fmt in ("table", "json"):
        code, out, err = run_cli([*_app_only("auth-check", snapshot["tenant"]["domain"], "--debug"), "--format", fmt],
                                 capsys)
        assert code in (3, 4), err
        assert "Forbidden" in out + err
        assert_clean_run(out, err, SECRETS + microsoft_fake.issued)


def test_login_and_logout_with_debug_leak_nothing(
        microsoft_fake: FakeMicrosoft, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    domain = snapshot["tenant"]["domain"]
    code, out, err = run_cli(_app_only("login", domain, "--debug"), capsys)
    assert code == 0 and "Signed in to" in err, err
    assert "debug: " in err
    cache = list((tmp_path / "xdg").rglob("*.json"))
    assert cache, "login wrote a token cache"
    code, out2, err2 = run_cli(["--debug", "logout", "microsoft", "--tenant", domain, "--cloud", "fake"], capsys)
    assert code == 0 and "Removed 1 token cache(s)." in err2, err2
    assert not any(p.exists() for p in cache)
    assert_clean_run(out + out2, err + err2, SECRETS + microsoft_fake.issued)


def test_a_browser_sign_in_nobody_finishes_ends_within_its_bound(
        microsoft_fake: FakeMicrosoft, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """msal's loopback listener waits for ever unless given a timeout: `--auth browser` is bounded."""
    from preflight_providers.microsoft import auth

    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url, *a, **k: opened.append(url) or True)
    monkeypatch.setattr(auth, "BROWSER_LOGIN_SECONDS", 1.0)
    code, out, err = run_cli(["login", "microsoft", "--tenant", snapshot["tenant"]["domain"], "--client-id", CLIENT_ID,
                          "--auth", "browser", "--cloud", "fake"], capsys)
    assert opened, err
    assert (code, out) == (4, ""), err
    last = err.strip().splitlines()[-1]
    assert last.startswith("preflight: sign-in failed: ") and "no answer from the browser within 1 s" in last, err
    assert "Traceback" not in err
