"""login, logout and auth-check against a misbehaving Google sign-in service: every secret they learn (the OAuth
client secret, the authorization code and PKCE verifier, the refresh, access and ID tokens, the service-account key)
joins the run's registry, so no output, file or --debug log shows it in any encoding; a token endpoint of any shape
is one line naming the sign-in service and its status, exit 4, never a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.google.fake import Browser, Reply, Seen
from tests.google.test_collect_auth import World, sa_key, world  # noqa: F401  (fixtures)
from tests.leaks import assert_clean_run, assert_no_leak

pytestmark = pytest.mark.slow  # a fake Google sign-in service and a stand-in browser per case

SENTINEL = "ya29.a0SENTINEL-hostile-google-access-token"
REFRESH = "1//0SENTINEL-hostile-google-refresh-token"
HTML = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


def login_oauth(w: World, capsys: pytest.CaptureFixture[str], profile: str, user: str,
                *root: str) -> tuple[int, str, str]:
    """`preflight [ROOT OPTIONS] login google --auth oauth` as `user`, in the admin's (stand-in) browser."""
    w.fake.browser_user = user
    secrets_file = w.fake.client_secrets(w.tmp, client_id=f"{profile}-preflight.apps.googleusercontent.com")
    return w.run([*root, "login", "google", "--auth", "oauth", "--client-secrets", str(secrets_file), "--profile",
                  profile, "--domain", user.split("@")[1]], capsys)


def _secrets(w: World, *extra: str) -> list[str]:
    """Everything secret the fake handed out (key ids are public), plus the sentinels."""
    return [SENTINEL, REFRESH, *extra, *(i for i in w.fake.issued if not re.fullmatch(r"[0-9a-f]{40}", i))]


def _echo(w: World) -> Reply:
    """A token endpoint quoting back what it was sent: the client secret, and the code (in a code exchange) or the
    refresh token (in a refresh), plus a token of its own."""
    refreshes = [i for i in w.fake.issued if i.startswith("1//0fake-")]
    grant = refreshes or [i for i in w.fake.issued if i.startswith("4/0fake-")]
    sent = " ".join([*(i for i in w.fake.issued if i.startswith("GOCSPX-")), *grant])
    return Reply(400, {"error": "invalid_grant", "error_description": f"you sent {sent}; access_token={SENTINEL}"})


CASES: dict[str, tuple[object, str]] = {
    "truncated-json": (Reply(200, b'{"access_token": "' + SENTINEL.encode() + b'", "refresh_token": "'
                             + REFRESH.encode() + b'", "expires_in": 35'), "HTTP 200"),
    "not-json": (Reply(200, f"token={SENTINEL}".encode(), {"Content-Type": "text/plain"}), "HTTP 200"),
    "string-json": (Reply(200, b'"just a string"'), "HTTP 200"),
    "html-502": (Reply(502, HTML, {"Content-Type": "text/html"}), "HTTP 502"),
    "429-google-error": (Reply(429, {"error": {"code": 429, "message": "Quota exceeded for quota metric",
                                               "status": "RESOURCE_EXHAUSTED"}}, {"Retry-After": "120"}), "429"),
    "429-text": (Reply(429, b"Too Many Requests", {"Retry-After": "120", "Content-Type": "text/plain"}), "429"),
    "500-empty": (Reply(500, b""), "HTTP 500"),
    "echo": (_echo, "invalid_grant"),
}


def _fault_on_token(w: World, case: str) -> None:
    reply, _shown = CASES[case]

    def fault(seen: Seen) -> Reply | None:
        if seen.path != "/token":
            return None
        return reply(w) if callable(reply) else reply  # type: ignore[return-value]

    w.fake.fault = fault


def _clean(w: World, out: str, err: str, *extra: str) -> None:
    assert_clean_run(out, err, _secrets(w, *extra))
    inputs = re.compile(r"client_secret_.*\.json|preflight-[0-9a-f]{8}\.json")  # the files the test wrote
    written = "\n".join(p.read_bytes().decode("utf-8", "replace") for p in sorted(w.tmp.rglob("*"))
                        if p.is_file() and "config" not in p.relative_to(w.tmp).parts[:1]
                        and not inputs.fullmatch(p.name))
    assert_no_leak(written, _secrets(w, *extra))


def _one_failure_line(code: int, err: str, shown: str) -> str:
    assert code == 4, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("preflight: sign-in failed: ") and shown in last, err
    ours = "\n".join(line for line in err.splitlines() if not line.startswith("debug: "))
    assert "{'" not in ours and "TypeError" not in ours and "JSONDecodeError" not in ours, err
    return last


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_oauth_login_code_exchange_misbehaving(case: str, debug: bool, world: World,  # noqa: F811
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _fault_on_token(world, case)
    code, out, err = login_oauth(world, capsys, "acme", "admin@acme.example", *(["--debug"] if debug else []))
    last = _one_failure_line(code, err, CASES[case][1])
    assert "Google sign-in service" in last
    assert out == "" and not (world.profile_dir("acme") / "oauth-token.json").exists()
    _clean(world, out, err)


@pytest.mark.parametrize("case", sorted(CASES))
def test_service_account_login_misbehaving(case: str, world: World,  # noqa: F811
                                           capsys: pytest.CaptureFixture[str]) -> None:
    key = sa_key(world)
    _fault_on_token(world, case)
    code, out, err = world.run(["--debug", "login", "google", "--auth", "service-account", "--key-file", str(key),
                                "--admin", "admin@acme.example", "--profile", "acme"], capsys)
    _one_failure_line(code, err, CASES[case][1])
    _clean(world, out, err, _private_key(key))


@pytest.mark.parametrize("kind", ["oauth", "service-account"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_auth_check_misbehaving_token_endpoint(case: str, kind: str, world: World,  # noqa: F811
                                               capsys: pytest.CaptureFixture[str]) -> None:
    extra: list[str] = []
    if kind == "oauth":
        assert login_oauth(world, capsys, "acme", "admin@acme.example")[0] == 0
    else:
        key = sa_key(world)
        extra = ["--auth", "service-account", "--key-file", str(key), "--admin", "admin@acme.example"]
    _fault_on_token(world, case)
    code, out, err = world.run(["--debug", "auth-check", "google", "--profile", "acme", *extra, "--format",
                                "json"], capsys)
    assert code == 4, out + err
    assert "Traceback" not in err and "{'" not in out
    _clean(world, out, err, *([] if kind == "oauth" else [_private_key(key)]))


def _private_key(path: Path) -> str:
    return str(json.loads(path.read_text())["private_key"])


def test_oauth_login_and_auth_check_and_logout_leak_nothing_in_debug_logs(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    """The happy path with --debug: requests-oauthlib logs the token request body (client secret, code, PKCE
    verifier) and the token reply; all of it is masked."""
    code, out, err = login_oauth(world, capsys, "acme", "admin@acme.example", "--debug")
    assert code == 0, err
    assert "debug: " in err
    code, out2, err2 = world.run(["--debug", "auth-check", "google", "--profile", "acme"], capsys)
    assert code == 0, out2 + err2
    code, out3, err3 = world.run(["--debug", "logout", "google", "--profile", "acme"], capsys)
    assert code == 0 and "revoked the refresh token at Google" in err3
    _clean(world, out + out2 + out3, err + err2 + err3)


REVOKE_CASES = {
    "echo": lambda token: Reply(400, {"error": f"invalid_token {token}", "error_description": token}),
    "html-502": lambda _t: Reply(502, HTML, {"Content-Type": "text/html"}),
    "not-json": lambda token: Reply(400, f"token={token}".encode(), {"Content-Type": "text/plain"}),
}


@pytest.mark.parametrize("case", sorted(REVOKE_CASES))
def test_logout_with_a_misbehaving_revoke_endpoint(case: str, world: World,  # noqa: F811
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert login_oauth(world, capsys, "acme", "admin@acme.example")[0] == 0
    token_file = world.profile_dir("acme") / "oauth-token.json"
    refresh = json.loads(token_file.read_text())["refresh_token"]
    world.fake.fault = lambda seen: REVOKE_CASES[case](refresh) if seen.path == "/revoke" else None
    code, out, err = world.run(["--debug", "logout", "google", "--profile", "acme"], capsys)
    assert (code, out) == (0, ""), err
    assert "could not revoke at Google (HTTP " in err and "removed the stored sign-in" in err
    assert not token_file.exists()
    _clean(world, out, err)


# --- the browser sign-in is bounded in total ----------------------------------------------------------------


class _HostileBrowser:
    """Opens connections to the loopback listener that never finish a request (a browser's idle pre-connection,
    a request trickling in), asks for /favicon.ico and a forged redirect, and only then, if asked, follows the
    real consent redirect."""

    def __init__(self, follow: Browser | None = None) -> None:
        self.follow = follow
        self.sockets: list[object] = []

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        import socket
        from urllib.parse import parse_qs, urlsplit

        redirect = urlsplit(parse_qs(urlsplit(url).query)["redirect_uri"][0])
        port = redirect.port
        assert port is not None
        silent = socket.create_connection(("127.0.0.1", port))
        trickle = socket.create_connection(("127.0.0.1", port))
        trickle.sendall(b"GET /?code=4/0never")  # and nothing more: the request never ends
        self.sockets += [silent, trickle]
        for path in ("/favicon.ico", "/?state=forged&code=4/0forged"):
            with socket.create_connection(("127.0.0.1", port)) as stray:
                stray.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
                assert stray.recv(100).startswith(b"HTTP/1.0 4")
        if self.follow is not None:
            self.follow.open(url, new, autoraise)
        return True


def test_a_browser_that_never_answers_ends_the_login_within_its_bound(
        world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    import time

    from preflight_providers.google import auth

    browser = _HostileBrowser()
    monkeypatch.setattr("webbrowser.get", lambda using=None: browser)
    monkeypatch.setattr(auth, "BROWSER_LOGIN_SECONDS", 1.0)
    started = time.process_time()
    code, out, err = login_oauth(world, capsys, "acme", "admin@acme.example")
    assert time.process_time() - started < 5  # CPU time: the wait does not spin
    assert (code, out) == (4, ""), err
    assert err.strip().splitlines()[-1] == ("preflight: sign-in failed: no answer from the browser within 1 s; run "
                                            "login again and finish the sign-in in the browser")
    assert not (world.profile_dir("acme") / "oauth-token.json").exists()
    _clean(world, out, err)


def test_stray_and_stalled_connections_do_not_stop_the_real_redirect(
        world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """google-auth-oauthlib's own listener handles one request: a pre-connection that never speaks hangs it, and
    /favicon.ico ends it without a code. Here the consent redirect still gets through."""
    monkeypatch.setattr("webbrowser.get", lambda using=None: _HostileBrowser(follow=world.browser))
    code, out, err = login_oauth(world, capsys, "acme", "admin@acme.example")
    assert world.browser.errors == []
    assert (code, out) == (0, ""), err
    assert (world.profile_dir("acme") / "oauth-token.json").exists()
    _clean(world, out, err)


def test_a_slow_code_exchange_is_cut_at_the_sign_in_bound(
        world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The token endpoint answers the code exchange a byte at a time (here: not at all within the bound)."""
    import threading

    from preflight_providers.google import auth

    monkeypatch.setattr(auth, "BROWSER_LOGIN_SECONDS", 2.0)
    release = threading.Event()

    def stall(seen: Seen) -> Reply | None:
        if seen.path == "/token":
            release.wait(30)
        return None

    world.fake.fault = stall
    try:
        code, out, err = login_oauth(world, capsys, "acme", "admin@acme.example")
    finally:
        release.set()
    assert (code, out) == (4, ""), err
    last = err.strip().splitlines()[-1]
    assert last.startswith("preflight: sign-in failed: the Google sign-in service") and "could not be reached" in last
    _clean(world, out, err)
