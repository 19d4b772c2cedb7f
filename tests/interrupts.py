"""Ctrl-C in the middle of a run: a real SIGINT to a real `preflight` process whose servers (local fakes) hold
their replies. What every such run must show: one line, exit 130, no traceback, no secret, at once (not after
the held requests), and no half-written file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.leaks import assert_clean_run

STALL = 120.0  # how long a held call would keep its worker: far longer than a test waits for the exit


class Stall:
    """A fault hook holding every matching call until released; `reached` is set by the first one."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()

    def hold(self) -> None:
        self.reached.set()
        self.release.wait(STALL)


def stalled() -> Iterator[Stall]:
    """For a fixture: a Stall released when the test ends."""
    held = Stall()
    yield held
    held.release.set()


def interrupt(args: list[str], stall: Stall, cwd: Path) -> tuple[int, str, str]:
    """Start `preflight ARGS`, send SIGINT once it is held in the middle of collecting, and collect its exit."""
    proc = subprocess.Popen([sys.executable, "-m", "preflight", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"})
    try:
        reached = stall.reached.wait(120)  # generous: a cold start under load; the run itself is held
        if not reached:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"the run never reached the slow call: {err[-2000:]}")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)  # the held calls would take STALL seconds: this proves "at once"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


def assert_interrupted(code: int, out: str, err: str, secrets: list[str]) -> None:
    assert code == 130, err
    assert err.rstrip("\n").splitlines()[-1].startswith("preflight: interrupted"), err
    assert_clean_run(out, err, secrets)


def assert_nothing_half_written(root: Path, skip: str) -> None:
    """Every JSON file preflight wrote parses; no report exists in part."""
    for path in root.rglob("*.json"):
        if path.relative_to(root).parts[0] != skip:
            json.loads(path.read_text(encoding="utf-8"))
