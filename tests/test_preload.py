"""The checks' `preload()` reads what they would otherwise read on first use in each process (issue 19): an audit
calls it before it forks its workers, so no worker parses a data file again."""

from __future__ import annotations

import importlib
import json
import tomllib

import pytest

from preflight import datafiles
from preflight.causes import load_catalogue
from preflight.engine import evaluate
from preflight.providers import Registry
from preflight.snapshot import parse
from tests.conftest import NOW

google_facts = importlib.import_module("preflight_providers.google.checks.facts")
microsoft_values = importlib.import_module("preflight_providers.microsoft.checks.values")


def _forget_what_was_read() -> None:
    datafiles._parsed.cache_clear()
    microsoft_values.data.cache_clear()
    google_facts.facts.cache_clear()


@pytest.mark.parametrize("name", ["microsoft", "google"])
def test_after_preload_evaluating_every_demo_parses_no_data_file(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    provider = Registry.from_entry_points().get(name)
    demos = [parse(json.loads(d.read_text(encoding="utf-8")), d.name) for d in provider.demo_snapshots()]
    _forget_what_was_read()
    catalogue, permissions = load_catalogue(), provider.permissions()  # what the audit has before it forks
    importlib.import_module(f"preflight_providers.{name}.checks").preload()
    parsed: list[str] = []
    loads = tomllib.loads
    monkeypatch.setattr(datafiles.tomllib, "loads", lambda text: parsed.append(text[:40]) or loads(text))
    for snap in demos:
        evaluate(snap, provider.checks(), catalogue, NOW, permissions, resources=provider.resources())
    assert demos and parsed == []


def test_without_preload_the_first_evaluation_parses_the_data_files(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the test above rules out does happen without preload (else it could not fail).
    provider = Registry.from_entry_points().get("google")
    snap = parse(json.loads(provider.demo_snapshots()[0].read_text(encoding="utf-8")))
    _forget_what_was_read()
    catalogue, permissions = load_catalogue(), provider.permissions()
    parsed: list[str] = []
    loads = tomllib.loads
    monkeypatch.setattr(datafiles.tomllib, "loads", lambda text: parsed.append(text[:40]) or loads(text))
    evaluate(snap, provider.checks(), catalogue, NOW, permissions, resources=provider.resources())
    assert parsed
