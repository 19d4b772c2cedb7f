"""The typed resource layer: every resource a check reads has a model, and every shipped snapshot parses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from preflight.causes import load_catalogue
from preflight.engine import evaluate
from preflight.model import Status
from preflight.providers import Registry
from preflight.resources import Resources
from preflight.snapshot import Unavailable, parse
from tests.conftest import NOW, evaluate_data

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = Registry.from_entry_points()


def shipped() -> list[tuple[str, Path]]:
    out = []
    for name in ("microsoft", "google"):
        for folder in (ROOT / "tests" / name / "fixtures", ROOT / "providers" / name / "demo"):
            out += [(name, p) for p in sorted(folder.glob("*.json"))]
    return out


@pytest.mark.parametrize("name", ["microsoft", "google"])
def test_every_resource_a_check_declares_has_a_model(name: str) -> None:
    provider = REGISTRY.get(name)
    schema = provider.resources()
    declared = {r for c in provider.checks() for r in c.reads}
    assert declared - set(schema) == set()


@pytest.mark.parametrize(("name", "path"), shipped(), ids=lambda v: getattr(v, "name", v))
def test_every_shipped_resource_parses(name: str, path: Path) -> None:
    provider = REGISTRY.get(name)
    snap = parse(json.loads(path.read_text(encoding="utf-8")), str(path))
    parsed = Resources(snap, provider.resources())
    read = {r for c in provider.checks() for r in c.reads}
    problems = []
    for resource in sorted(read & set(snap.org)):
        try:
            parsed.org(resource)
        except Unavailable as exc:
            if exc.error is None:
                problems.append(str(exc))
    for address, box in snap.mailboxes.items():
        for resource in sorted(read & set(box)):
            try:
                parsed.mailbox(address, resource)
            except Unavailable as exc:
                if exc.error is None:
                    problems.append(str(exc))
    assert problems == []


@pytest.mark.parametrize(("name", "path"), shipped(), ids=lambda v: getattr(v, "name", v))
def test_no_check_reads_a_resource_without_a_model_or_fails_after_validation(name: str, path: Path) -> None:
    # The suite-wide guard (tests/conftest.py) fails this on any internal error the engine logs.
    result = evaluate_data(json.loads(path.read_text(encoding="utf-8")), where=str(path))
    assert all("internal error" not in f.evidence for f in result.findings if f.status is Status.UNKNOWN)


def test_a_read_of_an_unmodelled_resource_is_an_internal_error(internal_errors: list[object]) -> None:
    from preflight.checks import Context, Outcome, check, passed

    @check("t.unmodelled", "reads what has no model", severity="high", cause=None, scope="tenant")  # type: ignore[arg-type]
    def reads_unmodelled(ctx: Context) -> Outcome:
        ctx.org("somethingElse")
        return passed("never")

    snap = parse({"schema": "preflight.snapshot/v1", "provider": "microsoft", "tenant": {},
                  "org": {"somethingElse": {}}, "mailboxes": {"a@contoso.com": {}}})
    result = evaluate(snap, [reads_unmodelled], load_catalogue(), NOW, resources={})
    assert [f.status for f in result.findings] == [Status.UNKNOWN] * len(result.findings)
    assert "internal error" in result.findings[0].message
    assert internal_errors
