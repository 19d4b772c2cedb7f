"""The provider plugin contract and its discovery through the `preflight.providers` entry points.

A plugin module exposes `provider`, an object with the attributes below. The module must be cheap to
import: heavy libraries (msal, google-auth) are imported inside the functions that sign in.

Optional: `smtp_token(settings, user) -> str` (see SmtpTokenSource). `preflight probe --token-from NAME`
looks it up with getattr, so a provider without it still satisfies Provider.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.abc import Traversable
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from preflight.checks import Check
from preflight.errors import InputError, SignInError
from preflight.model import Method
from preflight.runsecrets import RunSecrets

if TYPE_CHECKING:
    from preflight.resources import Schema

GROUP = "preflight.providers"


@dataclass(frozen=True)
class CollectRequest:
    """Everything a collector needs for one tenant. Audits build one per customer; nothing is shared."""

    settings: Mapping[str, Any]  # provider-specific: tenant/domain, auth method, client id, key paths, *_env names
    mailboxes: Sequence[str]
    methods: Sequence[Method]
    sender_ips: Sequence[str] = ()
    from_addresses: Mapping[str, str] = field(default_factory=dict)
    app_id: str | None = None
    cache_dir: Path | None = None  # this tenant's own token cache folder
    now: datetime | None = None
    progress: Callable[[str], None] = lambda _msg: None
    interactive: bool = False  # may it prompt (device code, browser)? Never in unattended audits.
    secrets: RunSecrets | None = None  # this tenant's registry (a child of the run's): every secret it learns
    deadline: float | None = None  # seconds for this tenant's sign-in and collection; None: the default


class Provider(Protocol):
    name: str  # "microsoft", "google": the snapshot's provider field and the CLI subcommand
    title: str

    def checks(self) -> Sequence[Check]: ...

    def resources(self) -> Schema:
        """Resource name -> the pydantic model of its documented shape, for every resource a check reads.
        The engine parses each resource with it before any check sees it (preflight.resources)."""
        ...

    def permissions(self) -> Mapping[str, str]:
        """Resource name -> what to grant so it can be read (scope, app role or admin role)."""
        ...

    def demo_snapshots(self) -> Sequence[Traversable]: ...

    def commands(self) -> Mapping[str, Callable[..., Any]]:
        """Typer command functions keyed by the CLI group they join: check, login, logout, auth-check."""
        ...

    def collect(self, request: CollectRequest) -> dict[str, Any]:
        """Sign in and read the tenant: a preflight.snapshot/v1 dict. Raises SignInError when it cannot."""
        ...


class SmtpTokenSource(Protocol):
    """A provider that can obtain an SMTP (XOAUTH2) access token the way a sending service does.

    `settings` holds the sending service's own sign-in: ids, file paths and the *names* of environment
    variables, never a secret value. The token carries the sending app's SEND permission (SMTP.SendAsApp,
    https://mail.google.com/): it is used for one AUTH and never stored, logged or shown.
    Raises InputError for bad settings (before any network), TokenRefused when the token endpoint answers
    with an OAuth error, and SignInError when it cannot be asked at all (unreachable, timed out).
    """

    def smtp_token(self, settings: Mapping[str, Any], user: str) -> str: ...


class TokenRefused(SignInError):
    """The token endpoint refused: `code` is the OAuth error (invalid_client, unauthorized_client...) and
    `description` the provider's first line for it (AADSTS7000215: ..., Client is unauthorized...)."""

    def __init__(self, code: str, description: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.status = status


class PackagedProvider:
    """A provider laid out by convention, as both first-party plugins are: `<package>.checks.ALL_CHECKS`,
    `<package>.resources.RESOURCES`, `<package>.commands.COMMANDS`, `<package>.run.collect_request`,
    `<package>.smtptoken.smtp_token`, `data/permissions.toml` and `demo/*.json`. Each piece is imported only
    when it is used."""

    def __init__(self, package: str, name: str, title: str) -> None:
        self.package, self.name, self.title = package, name, title

    def _attr(self, module: str, attr: str) -> Any:
        from importlib import import_module

        return getattr(import_module(f"{self.package}.{module}"), attr)

    def checks(self) -> Sequence[Check]:
        checks: Sequence[Check] = self._attr("checks", "ALL_CHECKS")
        return checks

    def resources(self) -> Schema:
        schema: Schema = self._attr("resources", "RESOURCES")
        return schema

    def permissions(self) -> Mapping[str, str]:
        from preflight.datafiles import load_toml

        return {k: str(v) for k, v in load_toml(self.package, "data/permissions.toml").items()}

    def demo_snapshots(self) -> Sequence[Traversable]:
        from importlib.resources import files

        demo = files(self.package).joinpath("demo")
        if not demo.is_dir():
            return []
        return sorted((f for f in demo.iterdir() if f.name.endswith(".json")), key=lambda f: f.name)

    def commands(self) -> Mapping[str, Callable[..., Any]]:
        commands: Mapping[str, Callable[..., Any]] = self._attr("commands", "COMMANDS")
        return commands

    def collect(self, request: CollectRequest) -> dict[str, Any]:
        snapshot: dict[str, Any] = self._attr("run", "collect_request")(request)
        return snapshot

    def smtp_token(self, settings: Mapping[str, Any], user: str) -> str:
        token: str = self._attr("smtptoken", "smtp_token")(settings, user)
        return token


class Registry:
    """Providers by name. Built from entry points by default; tests pass their own."""

    def __init__(self, providers: Sequence[Provider]) -> None:
        self._by_name = {p.name: p for p in providers}

    @classmethod
    def from_entry_points(cls) -> Registry:
        found = []
        for ep in entry_points(group=GROUP):
            try:
                found.append(ep.load())
            except Exception as exc:  # one broken plugin must not take every command down with it
                sys.stderr.write(f"preflight: warning: provider plugin {ep.name!r} failed to load "
                                 f"({type(exc).__name__}: {exc}); it is skipped\n")
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
