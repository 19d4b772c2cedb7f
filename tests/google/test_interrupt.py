"""Ctrl-C during `check google` (tests/interrupts.py): exit 130 at once, one line, no secret, no half-written
report or snapshot."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.google.fake import Reply, Seen
from tests.google.test_collect_cli import World, env, sample  # noqa: F401  (fixtures)
from tests.interrupts import Stall, assert_interrupted, assert_nothing_half_written, interrupt, stalled

pytestmark = pytest.mark.slow  # real servers and sign-ins (a subprocess for each Ctrl-C)


@pytest.fixture
def stall() -> Iterator[Stall]:
    yield from stalled()


def test_ctrl_c_during_check_google(sample: tuple[World, dict[str, Any]], stall: Stall,  # noqa: F811
                                    tmp_path: Path) -> None:
    world, snap = sample

    def slow(seen: Seen) -> Reply | None:
        if seen.path.startswith("/admin/directory/"):
            stall.hold()
        return None

    world.fake.fault = slow
    args = ["--debug", *world.check_args(snap, "--format", "json", "--output", "report.json", "--save-snapshot",
                                         "snapshot.json")]
    code, out, err = interrupt(args, stall, tmp_path)
    secrets = [i for i in world.fake.issued if len(i) > 12]
    key = json.loads(world.key.read_text())["private_key"]
    assert_interrupted(code, out, err, [*secrets, key])
    assert not (tmp_path / "report.json").exists() and not (tmp_path / "snapshot.json").exists()
    assert_nothing_half_written(tmp_path, skip="config")


def test_ctrl_c_during_a_service_account_login(sample: tuple[World, dict[str, Any]], stall: Stall,  # noqa: F811
                                               tmp_path: Path) -> None:
    """Held at the token endpoint, the signed assertion in flight: no key, no token, no half-written profile."""
    world, _snap = sample

    def slow(seen: Seen) -> Reply | None:
        if seen.path == "/token":
            stall.hold()
        return None

    world.fake.fault = slow
    args = ["--debug", "login", "google", "--auth", "service-account", "--key-file", str(world.key), "--admin",
            world.admin, "--profile", "acme"]
    code, out, err = interrupt(args, stall, tmp_path)
    key = json.loads(world.key.read_text())["private_key"]
    assert_interrupted(code, out, err, [key, *(i for i in world.fake.issued if len(i) > 12)])
    assert_nothing_half_written(tmp_path, skip="nothing")
