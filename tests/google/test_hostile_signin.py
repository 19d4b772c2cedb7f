"""A Google token endpoint that misbehaves (truncated or non-JSON replies, HTML error pages, 429 with a Google
API error body, echoes): one line naming the sign-in service and the status, exit 4, no traceback, no dict
repr, no secret or token anywhere."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.google.fake import Reply, Seen
from tests.google.test_collect_cli import World, env, sample  # noqa: F401  (fixtures)
from tests.leaks import assert_clean_run, assert_no_leak, files_text

pytestmark = pytest.mark.slow

SENTINEL = "ya29.a0SENTINEL-truncated-google-access-token"
HTML = b"<html><body><h1>502 Bad Gateway</h1></body></html>"

CASES: dict[str, tuple[Reply, str]] = {
    "truncated-json": (Reply(200, b'{"access_token": "' + SENTINEL.encode() + b'", "expires_in": 35'), "HTTP 200"),
    "not-json": (Reply(200, f"access_token={SENTINEL}".encode(), {"Content-Type": "text/plain"}), "HTTP 200"),
    "string-json": (Reply(200, b'"just a string"'), "HTTP 200"),
    "html-502": (Reply(502, HTML, {"Content-Type": "text/html"}), "answered HTTP 502"),
    "429-google-error": (Reply(429, {"error": {"code": 429, "message": "Quota exceeded for quota metric",
                                               "status": "RESOURCE_EXHAUSTED"}}, {"Retry-After": "120"}),
                         "RESOURCE_EXHAUSTED"),
    "429-text": (Reply(429, b"Too Many Requests", {"Retry-After": "120", "Content-Type": "text/plain"}), "429"),
    "echo": (Reply(400, {"error": "invalid_grant", "error_description": f"bad token access_token={SENTINEL}"}),
             "invalid_grant"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_misbehaving_google_token_endpoint_is_one_clean_line(
        case: str, sample: tuple[World, dict[str, Any]], capsys: pytest.CaptureFixture[str],  # noqa: F811
        tmp_path: Path) -> None:
    world, snap = sample
    reply, shown = CASES[case]

    def fault(seen: Seen) -> Reply | None:
        return reply if seen.path == "/token" else None

    world.fake.fault = fault
    code, out, err = run_cli(world.check_args(snap, "--deadline", "60", "--format", "json", "--save-snapshot",
                                              str(tmp_path / "out" / "snap.json")), capsys)
    assert code == 4, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("preflight: sign-in failed: ") and shown in last, err
    assert "{'" not in err and "TypeError" not in err, err
    secrets = [SENTINEL, *(i for i in world.fake.issued if not re.fullmatch(r"[0-9a-f]{40}", i))]  # key ids are public
    assert_clean_run(out, err, secrets)
    assert_no_leak(files_text(tmp_path, skip="config"), secrets)


def test_profile_folders_are_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import stat

    from preflight_providers.google import profiles

    root = tmp_path / "config" / "preflight" / "google"
    old = os.umask(0o022)
    try:
        profiles.profile("customer-a", root).save_settings({"domain": "a.example"})
    finally:
        os.umask(old)
    for path in [tmp_path / "config", *(tmp_path / "config").rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"
