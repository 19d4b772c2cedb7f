"""`check google` against admin APIs that misbehave after a good sign-in (Directory, Cloud Identity policies,
Gmail): errors and payloads quoting the access token, bodies of any shape, every call throttled with
`Retry-After: 120` or an HTTP date an hour ahead. No output, report or snapshot shows a secret in any encoding,
nothing is a traceback or a guess, nothing waits. And `login google` creates only owner-only folders and files."""

from __future__ import annotations

import base64
import email.utils
import json
import os
import re
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli as run
from tests.google.fake import Reply, Seen
from tests.google.test_collect_auth import World as AuthWorld
from tests.google.test_collect_auth import sa_key, world  # noqa: F401  (fixtures)
from tests.google.test_collect_cli import World, env, sample  # noqa: F401  (fixtures)
from tests.google.test_hostile_login import login_oauth
from tests.leaks import assert_clean_run, assert_no_leak, files_text

pytestmark = pytest.mark.slow  # the Google fake and real google-auth sign-ins
ADMIN_APIS = ("/admin/", "/v1/policies", "/gmail/")


def _admin(seen: Seen) -> bool:
    return seen.path.startswith(ADMIN_APIS)


def _secrets(w: World) -> list[str]:
    key = json.loads(w.key.read_text())["private_key"]
    return [key, *(i for i in w.fake.issued if len(i) > 12 and not re.fullmatch(r"[0-9a-f]{40}", i))]


def _outputs(tmp_path: Path) -> list[str]:
    return ["--deadline", "60", "--format", "json", "--output", str(tmp_path / "out" / "report.json"),
            "--save-snapshot", str(tmp_path / "out" / "snapshot.json")]


def test_admin_apis_quoting_the_token_leak_into_no_report_or_snapshot(
        sample: tuple[World, dict[str, Any]], capsys: pytest.CaptureFixture[str],  # noqa: F811
        tmp_path: Path) -> None:
    w, snap = sample
    count = {"n": 0, "tokens": 0}

    def echo(seen: Seen) -> Reply | None:
        if not _admin(seen):
            return None
        count["n"] += 1
        # The tokens the request could carry (its subject's and scopes'): not one the fake issued to another
        # thread a moment ago, which its client has not even received yet.
        tokens = [t for t, g in list(w.fake._grants.items())
                  if t.startswith("ya29.") and g.subject == seen.subject and g.scopes == seen.scopes]
        count["tokens"] += len(tokens)
        said = " ".join(f"{t} {base64.b64encode(t.encode()).decode()} {json.dumps(t)}" for t in tokens)
        if count["n"] % 2:
            return Reply(403, {"error": {"code": 403, "message": f"Not Authorized: {said}",
                                         "status": "PERMISSION_DENIED"}})
        return None

    w.fake.fault = echo
    code, out, err = run(w.check_args(snap, *_outputs(tmp_path)), capsys)
    assert code in (1, 3), err
    assert count["n"] > 2 and count["tokens"] > 0, count  # the tokens really were quoted back
    written = files_text(tmp_path / "out")
    assert "PERMISSION_DENIED" in written or "Not Authorized" in written, "the refusals are still reported"
    assert_clean_run(out, err, _secrets(w))
    assert_no_leak(written, _secrets(w))
    assert stat.S_IMODE((tmp_path / "out" / "snapshot.json").stat().st_mode) == 0o600


SOON = {"Retry-After": "0"}  # retried at once: the shapes are under test here, not the waits
BODIES = {
    "html-200": Reply(200, b"<html><body>Service Unavailable</body></html>", {"Content-Type": "text/html", **SOON}),
    "truncated-200": Reply(200, b'{"users": [{"primaryEmail": "jobs@acme.exa', SOON),
    "not-json-403": Reply(403, b"Forbidden by the proxy", {"Content-Type": "text/plain", **SOON}),
    "empty-502": Reply(502, b"", SOON),
    "json-string-200": Reply(200, b'"just a string"', SOON),
}


@pytest.mark.parametrize("case", sorted(BODIES))
def test_admin_api_bodies_of_any_shape_are_unknown_never_a_traceback(
        case: str, sample: tuple[World, dict[str, Any]], capsys: pytest.CaptureFixture[str],  # noqa: F811
        tmp_path: Path) -> None:
    w, snap = sample
    w.fake.fault = lambda seen: BODIES[case] if _admin(seen) else None
    code, out, err = run(w.check_args(snap, *_outputs(tmp_path)), capsys)
    assert code in (3, 4), err
    assert_clean_run(out, err, _secrets(w))
    if code == 3:
        findings = json.loads((tmp_path / "out" / "report.json").read_text())["targets"][0]["findings"]
        decided = {f["check"]: f["status"] for f in findings if f["status"] in ("pass", "fail")}
        assert findings and not decided, decided  # nothing read, nothing passed or failed on a guess


@pytest.mark.parametrize("header", ["120", "http-date"])
def test_every_call_throttled_far_ahead_is_not_waited_for(
        header: str, sample: tuple[World, dict[str, Any]], capsys: pytest.CaptureFixture[str],  # noqa: F811
        tmp_path: Path) -> None:
    w, snap = sample
    value = email.utils.formatdate(time.time() + 3600, usegmt=True) if header == "http-date" else header
    calls = {"n": 0}

    def throttled(seen: Seen) -> Reply | None:
        if not _admin(seen):
            return None
        calls["n"] += 1
        return Reply(429, {"error": {"code": 429, "message": "Quota exceeded for quota metric",
                                     "status": "RESOURCE_EXHAUSTED"}}, {"Retry-After": value})

    w.fake.fault = throttled
    started = time.process_time()
    code, out, err = run(w.check_args(snap, *_outputs(tmp_path)), capsys)
    assert time.process_time() - started < 60
    assert code in (3, 4), err
    assert calls["n"] < 200  # each request asked once or twice, no retry loop
    assert_clean_run(out, err, _secrets(w))
    if code == 3:
        findings = json.loads((tmp_path / "out" / "report.json").read_text())["targets"][0]["findings"]
        assert any("retry after" in f["message"] or "429" in f["message"] for f in findings), \
            [f["message"] for f in findings]


@pytest.mark.parametrize("kind", ["oauth", "service-account"])
def test_login_creates_only_owner_only_folders_and_files(
        kind: str, world: AuthWorld, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    """Under the usual umask 022, every folder from the config root down (preflight/, google/, the profile, which
    names a customer) is 0700 and every file 0600."""
    old = os.umask(0o022)
    try:
        if kind == "oauth":
            code, _out, err = login_oauth(world, capsys, "acme", "admin@acme.example")
        else:
            key = sa_key(world)
            key.chmod(0o600)
            code, _out, err = world.run(["login", "google", "--auth", "service-account", "--key-file", str(key),
                                         "--admin", "admin@acme.example", "--profile", "acme"], capsys)
    finally:
        os.umask(old)
    assert code == 0, err
    root = world.tmp / "config"
    created = list(root.rglob("*"))
    assert any(p.is_file() for p in created), created
    for path in [root, *created]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"


def test_a_run_past_its_deadline_still_writes_the_report_with_unknowns(
        sample: tuple[World, dict[str, Any]], capsys: pytest.CaptureFixture[str],  # noqa: F811
        tmp_path: Path) -> None:
    import threading

    w, snap = sample
    release = threading.Event()

    def slow(seen: Seen) -> Reply | None:  # sign-in is quick; each admin API call takes 1.5 s
        if _admin(seen):
            release.wait(1.5)
        return None

    w.fake.fault = slow
    args = w.check_args(snap, *_outputs(tmp_path))
    args[args.index("--deadline") + 1] = "3"
    box: dict[str, tuple[int, str, str]] = {}
    worker = threading.Thread(target=lambda: box.update(r=run(args, capsys)), daemon=True)
    worker.start()
    worker.join(120)  # generous: the deadline is 3 s
    release.set()
    assert not worker.is_alive(), "the run did not end"
    code, out, err = box["r"]
    assert code == 3, err
    findings = json.loads((tmp_path / "out" / "report.json").read_text())["targets"][0]["findings"]
    late = [f for f in findings if f["status"] == "unknown" and "not read before the deadline" in f["message"]]
    assert late, [f["message"] for f in findings if f["status"] == "unknown"]
    assert_clean_run(out, err, _secrets(w))


@pytest.mark.parametrize("command", [["check", "google"], ["check", "microsoft"], ["audit"]])
def test_the_deadline_and_its_default_are_said_in_help_and_checked(
        command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _err = run([*command, "--help"], capsys)
    assert code == 0 and "--deadline" in out and "default 900" in " ".join(out.split()), out
    for bad in ("0", "-5", "soon"):
        needed = {"audit": ["inventory.toml"], "microsoft": ["--tenant", "contoso.com", "--mailbox",
                                                             "jobs@contoso.com"]}.get(command[-1], [])
        code, out, err = run([*command, "--deadline", bad, *needed], capsys)
        assert code == 2 and "--deadline" in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, err
