"""The provider plugin contract and its discovery through the `preflight.providers` entry points.

A plugin is an object named in the entry-point group `preflight.providers` (`name = "module:attribute"`).
The first-party providers register exactly as a third-party plugin would; the core never imports a
provider by name and never compares a provider's name with a literal: what it needs to know about one it
asks through the hooks below. (Model: simonw/llm's typed hook specifications with built-in plugins
registered like any other.)

Required, on every provider (`Provider`): `name`, `title`, `checks()`, `resources()`, `permissions()`,
`demo_snapshots()`, `commands()`, `collect()`.

Optional hooks: a provider that has the methods of one of these protocols takes part in that feature;
the core finds them with `Registry.hooked(Protocol)`, never with a name.
- `SmtpTokenSource`: `preflight probe --token-from NAME` gets an XOAUTH2 token the way a sending service does.
- `TokenIssuer`: the probe's token linter recognises this provider's access tokens and what its SMTP server
  will refuse about them.
- `MailDomainOwner`: `preflight check ADDRESS` asks it whether a domain is its customer's (a tenant lookup
  from public records) and which submission host serves that tenant.
- `MailboxChecker`: `preflight check ADDRESS` hands it a discovered mailbox to check with a sign-in of its own.

Facts about a provider that are data, not behaviour, stay in data files keyed by the provider's name:
remediation texts and error markers in preflight/data/causes.toml, submission hosts in smtp_hosts.toml, MX
hosts in discovery.toml. A provider missing from them gets the generic texts.

Every module of a plugin must be cheap to import: heavy libraries (msal, google-auth) load inside the
functions that sign in, so `preflight --help` and `preflight explain` start fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.abc import Traversable
from importlib.metadata import entry_points
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from preflight.checks import Check
from preflight.errors import InputError, SignInError
from preflight.memo import RunMemo
from preflight.model import Method
from preflight.runsecrets import RunSecrets

if TYPE_CHECKING:
    import requests

    from preflight.discovery import Discovery, Lookup, Mx, Submission, Tenant
    from preflight.discovery_cli import AddressCheck
    from preflight.resources import Schema

GROUP = "preflight.providers"
H = TypeVar("H")


@dataclass(frozen=True)
class CollectRequest:
    """Everything a collector needs for one tenant. Audits build one per customer; only `memo` is shared."""

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
    memo: RunMemo = field(default_factory=RunMemo)  # what the run learned once for all its tenants (preflight.memo)


class Provider(Protocol):
    """What every provider supplies. `name` is the snapshot's `provider` field, the inventory's `provider =`
    and the CLI subcommand (`check NAME`, `login NAME`); `title` is how reports and `check ADDRESS` name it
    to a person ("Microsoft 365")."""

    name: str
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


# -- optional hooks ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenOptions:
    """The `probe --token-from NAME` options a token source takes, by their ProbeArgs names (tenant,
    client_id, key_file...). A stray one is refused in one line before any network; `required` lists
    groups of alternatives, one of each must be given (the secret itself may still come from a prompt)."""

    allowed: tuple[str, ...]
    required: tuple[tuple[str, ...], ...] = ()


@runtime_checkable
class SmtpTokenSource(Protocol):
    """Hook: obtains an SMTP (XOAUTH2) access token the way a sending service does (`probe --token-from`).

    `settings` holds the sending service's own sign-in: ids, file paths and the *names* of environment
    variables, never a secret value. The token carries the sending app's SEND permission (SMTP.SendAsApp,
    https://mail.google.com/): it is used for one AUTH and never stored, logged or shown.
    `smtp_token` raises InputError for bad settings (before any network), TokenRefused when the token
    endpoint answers with an OAuth error, and SignInError when it cannot be asked at all.
    """

    def smtp_token_options(self) -> TokenOptions: ...

    def smtp_token(self, settings: Mapping[str, Any], user: str) -> str: ...


@runtime_checkable
class TokenIssuer(Protocol):
    """Hook: the probe's token linter (preflight.probe.token) reads this provider's access tokens.

    The linter reads a JWT's claims without verifying them, so everything said here is a warning about
    what the server will most likely answer; the AUTH reply stays the verdict.
    """

    def opaque_token(self, token: str) -> str | None:
        """A note for the reader when `token` is one of this provider's opaque (not JWT) access tokens."""
        ...

    def issued(self, claims: Mapping[str, Any]) -> bool:
        """Whether the (unverified) JWT claims say this provider issued the token (its `iss`)."""
        ...

    def token_problems(self, claims: Mapping[str, Any], user: str | None) -> list[str]:
        """What this provider's SMTP server will refuse about a JWT it issued (audience, scope, token kind);
        also asked when `--provider` names this provider and no issuer recognised the token."""
        ...


@runtime_checkable
class MailDomainOwner(Protocol):
    """Hook: `preflight check ADDRESS` learns from public records whether a domain is this provider's
    customer's, when its MX does not say so (mail passes a gateway first), and where that tenant submits."""

    def find_tenant(self, domain: str, session: requests.Session, timeout: tuple[float, float]) -> Tenant:
        """The tenant that holds `domain`, from public unauthenticated endpoints only; a lookup that fails
        is a Tenant with status "error" and a detail, never an exception."""
        ...

    def submission(self, tenant: Tenant, mx: Lookup[Mx]) -> Submission | None:
        """The SMTP submission host and port for this tenant (it may depend on the tenant's cloud)."""
        ...


@runtime_checkable
class MailboxChecker(Protocol):
    """Hook: `preflight check ADDRESS` hands a mailbox it found to be this provider's to its checks."""

    def check_discovered(self, request: AddressCheck, mailbox: str, found: Discovery, unchecked: list[str]) -> int:
        """Run the provider's checks for `mailbox` with a sign-in that needs no setup (a cached one, or one
        the user agrees to); return the exit code (DESIGN section 8). When it cannot check, append what
        was not checked and how to check it to `unchecked`, and return 3."""
        ...


# What `preflight providers` lists as a plugin's optional hooks, in the order above.
OPTIONAL_HOOKS: tuple[type, ...] = (SmtpTokenSource, TokenIssuer, MailDomainOwner, MailboxChecker)


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
    `data/permissions.toml` and `demo/*.json`. Each piece is imported only when it is used. A provider adds
    the optional hooks it implements as methods of a subclass, each delegating to a module of its own."""

    # What an audit imports once before it forks its worker processes (a leading dot: the provider's own module),
    # so that each worker shares them instead of importing them, and building every model, again.
    audit_imports: tuple[str, ...] = (".checks", ".resources", ".run")

    def __init__(self, package: str, name: str, title: str) -> None:
        self.package, self.name, self.title = package, name, title
        self._permissions: Mapping[str, str] | None = None

    def preload(self) -> None:
        """Import `audit_imports`, and warm what each of them offers as a module-level `preload()` (the data files
        its checks read), and the permissions file: each would otherwise be parsed again in every worker."""
        from importlib import import_module

        for name in self.audit_imports:
            warm = getattr(import_module(name, self.package), "preload", None)
            if callable(warm):
                warm()
        self.permissions()

    def warm(self, settings: Sequence[Mapping[str, Any]], memo: RunMemo) -> None:
        """Learn into `memo`, before an audit forks its workers, what each worker would otherwise learn again from
        these customers' settings (a provider's sign-in material parsed). Quiet, and never fails: a customer whose
        settings are wrong is reported by its own tenant's run."""

    def _attr(self, module: str, attr: str) -> Any:
        """`attr` of the provider's own `module`, imported on first use."""
        from importlib import import_module

        return getattr(import_module(f"{self.package}.{module}"), attr)

    def checks(self) -> Sequence[Check]:
        checks: Sequence[Check] = self._attr("checks", "ALL_CHECKS")
        return checks

    def resources(self) -> Schema:
        schema: Schema = self._attr("resources", "RESOURCES")
        return schema

    def permissions(self) -> Mapping[str, str]:
        """Read-only and read once per provider: every tenant's evaluation asks for it."""
        if self._permissions is None:
            from preflight.datafiles import load_toml

            table = load_toml(self.package, "data/permissions.toml")
            self._permissions = MappingProxyType({k: str(v) for k, v in table.items()})
        return self._permissions

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

    def hooked(self, hook: type[H]) -> dict[str, H]:
        """The providers implementing an optional hook (a runtime-checkable protocol above), by name."""
        return {p.name: p for p in self.all() if isinstance(p, hook)}

    def title(self, name: str) -> str:
        """How to name a provider to a person; a snapshot of a provider not installed keeps its name."""
        provider = self._by_name.get(name)
        return provider.title if provider is not None else name

    def get(self, name: str) -> Provider:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(self.names) or "none installed"
            raise InputError(f"unknown provider {name!r} (known: {known})") from None
