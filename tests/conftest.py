"""Suite-wide guard: an exception a check raises after its resources were parsed is a defect in preflight.

The engine still turns it into `unknown` (a user never gets a guess or a crash), and logs it on
preflight.engine at ERROR; here any such record fails the test that caused it, so the catch-all can never
hide a programming error (a TypeError, KeyError or AttributeError from check code, or a read of a resource
with no model). A test that provokes one on purpose asks for the `internal_errors` fixture.

Shared by the whole suite (import them from `tests.conftest`):
- `run_cli`: the command line as a user runs it, (exit code, stdout, stderr);
- `NOW`: the fixed clock of every evaluation; `fixture_data`: a fixture snapshot of tests/PROVIDER/fixtures;
- `evaluate_data`, `evaluate_fixture`: a snapshot through its provider's checks, as `preflight evaluate` does;
- `finding`: the one finding a test asserts on;
- fixtures `isolated` (caches and config under tmp_path, no colour) and `internal_errors`.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from preflight.causes import Catalogue, load_catalogue
from preflight.cli import main
from preflight.engine import evaluate
from preflight.model import Finding, TargetResult
from preflight.providers import Registry
from preflight.snapshot import parse

TESTS = Path(__file__).parent

# The fixed clock of every evaluation: before Microsoft disables Basic SMTP AUTH by default, so dated checks
# give stable answers.
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`preflight ARGS` through the real entry point: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main(args)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def in_child(report: Callable[[], bytes]) -> bytes:
    """What `report` returns in a forked child process (fork only), which leaves at once, running nothing of
    pytest's."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, report())
        os._exit(0)
    os.close(write)
    said = os.read(read, 64)
    os.close(read)
    os.waitpid(pid, 0)
    return said


def fixture_data(provider: str, name: str) -> dict[str, Any]:
    """A fixture snapshot of tests/PROVIDER/fixtures, as JSON data (a fresh copy on every call)."""
    data: dict[str, Any] = json.loads((TESTS / provider / "fixtures" / f"{name}.json").read_text(encoding="utf-8"))
    return data


@cache
def _registry() -> Registry:
    return Registry.from_entry_points()


@cache
def _catalogue() -> Catalogue:
    return load_catalogue()


def evaluate_data(data: dict[str, Any], now: datetime = NOW, where: str = "test") -> TargetResult:
    """A snapshot given as JSON data, evaluated by its provider's checks as `preflight evaluate` does (on a
    copy: a test may change `data` afterwards)."""
    snap = parse(copy.deepcopy(data), where)
    provider = _registry().get(snap.provider)
    return evaluate(snap, provider.checks(), _catalogue(), now, provider.permissions(),
                    resources=provider.resources())


def evaluate_fixture(provider: str, name: str, now: datetime = NOW) -> TargetResult:
    """A fixture snapshot of tests/PROVIDER/fixtures, evaluated (see evaluate_data)."""
    return evaluate_data(fixture_data(provider, name), now, name)


def finding(result: TargetResult, check: str, subject: str | None = None, method: str | None = None) -> Finding:
    """The one finding of `check` on `subject` (None: the tenant), for `method` when given (a finding for
    every method matches any); more than one match is an error, so a test never asserts on a guess."""
    hits = [f for f in result.findings if f.check == check and f.subject == subject
            and (method is None or f.method is None or f.method == method)]
    assert len(hits) == 1, (check, subject, method, [h.to_dict() for h in hits])
    return hits[0]


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Token caches, profiles and config under tmp_path and no colour: a CLI run that touches neither the
    user's folders nor depends on the terminal."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _collecting() -> Iterator[list[logging.LogRecord]]:
    logger = logging.getLogger("preflight.engine")
    handler = _Collect()
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def internal_errors() -> Iterator[list[logging.LogRecord]]:
    """The engine's internal-error records, for a test that provokes one on purpose (not then a failure)."""
    yield from _collecting()


@pytest.fixture(autouse=True)
def _no_connection_outlives_its_test() -> Iterator[None]:
    """A stopped test server's handler threads may still answer on the connections the process keeps alive; a
    later test's server bound to the same port number (reused under port pressure) would then have its requests
    answered by the earlier one. Each test's first request connects anew."""
    yield
    from preflight.transport import forget_connections

    forget_connections()


@pytest.fixture(autouse=True)
def _no_internal_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    if "internal_errors" in request.fixturenames:
        yield
        return
    collecting = _collecting()
    records = next(collecting)
    yield
    collecting.close()
    if records:
        pytest.fail("internal error in a check (preflight.engine):\n" +
                    "\n".join(r.getMessage() for r in records), pytrace=False)
