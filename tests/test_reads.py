"""Check metadata is true: every resource a check reads over every fixture and demo is declared in its `reads`
and has an entry in its provider's permission list (what `unknown` tells the admin to grant).

The reads are recorded at the one door every check goes through (preflight.resources.Resources), and
attributed to the check the engine is running, wrappers (a Guard, a second opinion, RBAC) included.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from preflight.causes import load_catalogue
from preflight.checks import Check, Context, Outcome
from preflight.engine import evaluate
from preflight.providers import PackagedProvider, Registry
from preflight.resources import Parsed, Resources
from preflight.snapshot import parse
from tests.conftest import NOW

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = Registry.from_entry_points()
PROVIDERS = ("microsoft", "google")


def _snapshots(name: str) -> list[Path]:
    """Every snapshot shipped for the provider: fixtures (peer cases in subfolders too) and demos; not the
    `.expected.json` sidecars of peer cases."""
    folders = (ROOT / "tests" / name / "fixtures", ROOT / "providers" / name / "demo")
    found = [p for folder in folders for p in sorted(folder.rglob("*.json")) if not p.name.endswith(".expected.json")]
    assert len(found) > 10
    return found


@dataclasses.dataclass
class Recorder:
    running: list[str] = dataclasses.field(default_factory=list)
    reads: dict[str, set[str]] = dataclasses.field(default_factory=dict)

    def watch(self, check: Check) -> Check:
        def run(ctx: Context) -> Outcome | None:
            self.running.append(check.id)
            try:
                return check.run(ctx)
            finally:
                self.running.pop()

        return dataclasses.replace(check, func=run)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    rec = Recorder()
    get = Resources.get

    def recording(self: Resources, address: str | None, name: str) -> Parsed:
        assert rec.running, f"{name} read outside a check"
        rec.reads.setdefault(rec.running[0], set()).add(name)
        return get(self, address, name)

    monkeypatch.setattr(Resources, "get", recording)
    yield rec


def _record(name: str, recorder: Recorder) -> dict[str, set[str]]:
    provider = REGISTRY.get(name)
    checks = [recorder.watch(c) for c in provider.checks()]
    for path in _snapshots(name):
        snap = parse(json.loads(path.read_text(encoding="utf-8")), str(path))
        evaluate(snap, checks, load_catalogue(), NOW, provider.permissions(), resources=provider.resources())
    return recorder.reads


@pytest.mark.parametrize("name", PROVIDERS)
def test_every_resource_a_check_reads_is_declared_and_has_a_permission(name: str, recorder: Recorder) -> None:
    provider = REGISTRY.get(name)
    reads = _record(name, recorder)
    declared = {c.id: set(c.reads) for c in provider.checks()}
    undeclared = {check: sorted(got - declared[check]) for check, got in reads.items() if got - declared[check]}
    assert undeclared == {}
    permissions = set(provider.permissions())
    no_grant = {check: sorted(got - permissions) for check, got in reads.items() if got - permissions}
    assert no_grant == {}
    # Declarations have an entry too: `preflight checks` lists them and a missing one reads as unknown.
    assert {c.id: sorted(set(c.reads) - permissions) for c in provider.checks() if set(c.reads) - permissions} == {}


@pytest.mark.parametrize("name", PROVIDERS)
def test_the_recording_sees_the_checks_reads(name: str, recorder: Recorder) -> None:
    # The recorder itself can fail: it attributes reads to nearly every check over the shipped snapshots.
    provider = REGISTRY.get(name)
    reads = _record(name, recorder)
    tenant_only = {c.id for c in provider.checks() if not c.reads}
    assert set(reads) >= {c.id for c in provider.checks()} - tenant_only - {"google.dwd-grant"}


def test_a_read_that_is_not_declared_is_caught(recorder: Recorder) -> None:
    from preflight.checks import check, passed
    from preflight.model import Severity

    @check("t.sloppy", "declares less than it reads", severity=Severity.LOW, cause=None, scope="tenant")
    def sloppy(ctx: Context) -> Outcome:
        ctx.org("securityDefaults")
        return passed("read it")

    provider = REGISTRY.get("microsoft")
    snap = parse(json.loads(_snapshots("microsoft")[0].read_text(encoding="utf-8")))
    evaluate(snap, [recorder.watch(sloppy)], load_catalogue(), NOW, resources=provider.resources())
    assert recorder.reads == {"t.sloppy": {"securityDefaults"}}
    assert set(recorder.reads["t.sloppy"]) - set(sloppy.reads)


@pytest.mark.parametrize("name", PROVIDERS)
def test_each_check_lives_in_its_providers_package(name: str) -> None:
    # The provider of a check is the plugin listing it: nothing else names it, so nothing can disagree.
    provider = REGISTRY.get(name)
    assert isinstance(provider, PackagedProvider)
    package = provider.package
    assert all(getattr(c.func, "__module__", "").startswith(package) for c in provider.checks())
