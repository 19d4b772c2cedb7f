"""The provider plugin contract and its discovery through the `preflight.providers` entry points.

A plugin module exposes `provider`, an object with the attributes below. The module must be cheap to
import: heavy libraries (msal, google-auth) are imported inside the functions that sign in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib.abc import Traversable
from importlib.metadata import entry_points
from typing import Any, Protocol

from preflight.checks import Check
from preflight.errors import InputError

GROUP = "preflight.providers"


class Provider(Protocol):
    name: str  # "microsoft", "google": the snapshot's provider field and the CLI subcommand
    title: str

    def checks(self) -> Sequence[Check]: ...

    def permissions(self) -> Mapping[str, str]:
        """Resource name -> what to grant so it can be read (scope, app role or admin role)."""
        ...

    def demo_snapshots(self) -> Sequence[Traversable]: ...

    def commands(self) -> Mapping[str, Callable[..., Any]]:
        """Typer command functions keyed by the CLI group they join: check, login, logout, auth-check."""
        ...


class Registry:
    """Providers by name. Built from entry points by default; tests pass their own."""

    def __init__(self, providers: Sequence[Provider]) -> None:
        self._by_name = {p.name: p for p in providers}

    @classmethod
    def from_entry_points(cls) -> Registry:
        found = []
        for ep in entry_points(group=GROUP):
            found.append(ep.load())
        return cls(found)

    @property
    def names(self) -> list[str]:
        return sorted(self._by_name)

    def all(self) -> list[Provider]:
        return [self._by_name[n] for n in self.names]

    def get(self, name: str) -> Provider:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(self.names) or "none installed"
            raise InputError(f"unknown provider {name!r} (known: {known})") from None
