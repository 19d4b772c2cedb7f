"""What a check is: a pure function over a snapshot, with its metadata.

A check reads resources through its context (a resource that is missing or unreadable raises
`Unavailable`, which the engine turns into `unknown`), decides, and returns an Outcome. The engine adds
the check's id, title, subject, method and the catalogue's remediation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from preflight.model import ALL_METHODS, MailboxVerdict, Method, Severity, Status
from preflight.snapshot import Snapshot

if TYPE_CHECKING:
    from pydantic import BaseModel

    from preflight.resources import Parsed, Resources

    M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Outcome:
    status: Status
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    cause: str | None = None  # overrides the check's default cause
    severity: Severity | None = None  # overrides the check's default severity


def passed(message: str, evidence: Mapping[str, Any] | None = None) -> Outcome:
    return Outcome(Status.PASS, message, evidence or {})


def failed(message: str, evidence: Mapping[str, Any] | None = None, cause: str | None = None) -> Outcome:
    return Outcome(Status.FAIL, message, evidence or {}, cause)


def warned(message: str, evidence: Mapping[str, Any] | None = None, cause: str | None = None) -> Outcome:
    return Outcome(Status.WARN, message, evidence or {}, cause)


def unknown(message: str, evidence: Mapping[str, Any] | None = None) -> Outcome:
    return Outcome(Status.UNKNOWN, message, evidence or {})


def skipped(message: str) -> Outcome:
    return Outcome(Status.SKIPPED, message)


@dataclass(frozen=True)
class Context:
    """What a check sees. Every resource comes through here, parsed against its model first (see
    preflight.resources): `org`/`mailbox` give the validated payload, `org_as`/`mailbox_as` its model."""

    snapshot: Snapshot
    subject: str | None  # mailbox address, None for tenant-wide checks
    method: Method
    now: datetime
    resources: Resources
    configured: MailboxVerdict | None = None  # evidence checks only: the verdict of the configuration checks

    def org(self, name: str) -> Any:
        return self.resources.org(name).raw

    def mailbox(self, name: str) -> Any:
        return self._mailbox(name).raw

    def other_mailbox(self, address: str, name: str) -> Any:
        """A resource of another mailbox in the snapshot (send-as rights on a From address that is one)."""
        return self.resources.mailbox(address.lower(), name).raw

    def org_as(self, name: str, model: type[M]) -> M:
        return _typed(self.resources.org(name), name, model)

    def mailbox_as(self, name: str, model: type[M]) -> M:
        return _typed(self._mailbox(name), name, model)

    def _mailbox(self, name: str) -> Parsed:
        if self.subject is None:
            raise RuntimeError("mailbox() called from a tenant-wide check")
        return self.resources.mailbox(self.subject, name)

    @property
    def options(self) -> Any:
        return self.snapshot.options


def _typed(parsed: Parsed, name: str, model: type[M]) -> M:
    if not isinstance(parsed.model, model):
        raise TypeError(f"{name} is declared as {type(parsed.model).__name__}, not {model.__name__}")
    return parsed.model


CheckFunc = Callable[[Context], Outcome | None]


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    severity: Severity
    cause: str | None
    func: CheckFunc
    scope: Literal["tenant", "mailbox"] = "mailbox"
    methods: tuple[Method, ...] = ALL_METHODS
    order: int = 100  # where a sign-in meets this layer; orders the blocking causes of a verdict
    reads: tuple[str, ...] = ()  # resource names, for `preflight checks` and the permission hints
    provider: str = ""
    # Evidence (what the tenant's logs say happened) runs after the configuration checks and sees their verdict
    # for its mailbox and method (Context.configured), so it can say where the two disagree.
    evidence: bool = False

    def run(self, ctx: Context) -> Outcome | None:
        return self.func(ctx)


def check(
    id: str,
    title: str,
    *,
    severity: Severity,
    cause: str | None,
    scope: Literal["tenant", "mailbox"] = "mailbox",
    methods: tuple[Method, ...] = ALL_METHODS,
    order: int = 100,
    reads: tuple[str, ...] = (),
    provider: str = "",
    evidence: bool = False,
) -> Callable[[CheckFunc], Check]:
    """Turn a function into a Check. It registers nothing: a provider lists its checks explicitly."""

    def wrap(func: CheckFunc) -> Check:
        return Check(id, title, severity, cause, func, scope, methods, order, reads, provider, evidence)

    return wrap
