"""Google Workspace provider plugin. Cheap to import: sign-in libraries load only when signing in."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib.abc import Traversable
from importlib.resources import files
from typing import Any

from preflight.checks import Check


class _Provider:
    name = "google"
    title = "Google Workspace"

    def checks(self) -> Sequence[Check]:
        return []

    def permissions(self) -> Mapping[str, str]:
        return {}

    def demo_snapshots(self) -> Sequence[Traversable]:
        demo = files(__name__).joinpath("demo")
        return sorted((f for f in demo.iterdir() if f.name.endswith(".json")), key=lambda f: f.name) \
            if demo.is_dir() else []

    def commands(self) -> Mapping[str, Callable[..., Any]]:
        return {}


provider = _Provider()
