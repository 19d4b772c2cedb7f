"""What a check is: a pure function over a snapshot, with its metadata.

A check reads resources through its context (a resource that is missing or unreadable raises
`Unavailable`, which the engine turns into `unknown`), decides, and returns an Outcome. The engine adds
the check's id, title, subject, method and the catalogue's remediation.

Metadata is stated once. The provider a check belongs to is the plugin whose `checks()` lists it (its
package), never an argument. `reads` names every resource the check reads, including what wrappers read
for it (`Guard`, a second opinion): tests/test_reads.py records the reads over every fixture and demo and
fails on one that is not declared or has no entry in the provider's permission list.

One rule for an address that does not exist (or is no user account: a Google group): the provider's
address check (ms.mailbox-exists, google.address) is the one finding about it, and every other mailbox
check gives no finding for it. A provider states how it tells, and what it reads to tell, once: a `Guard`.

Exceptions a check raises, as the engine reads them: `Unavailable` (a resource not collected, unreadable or
off its documented shape) and `Uninterpretable` (a documented value the check cannot interpret) are
`unknown` naming why; anything else is a defect in preflight, still `unknown` for the user but logged as an
internal error (traceback under --debug), which fails the test suite.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from preflight.model import ALL_METHODS, MailboxVerdict, Method, Severity, Status
from preflight.snapshot import Snapshot, Unavailable

if TYPE_CHECKING:
    from pydantic import BaseModel

    from preflight.resources import Parsed, Resources

    M = TypeVar("M", bound=BaseModel)

# Read from the class once (the engine explains why): every check run makes an Outcome with one of them.
_PASS, _FAIL, _WARN, _UNKNOWN, _SKIPPED = Status.PASS, Status.FAIL, Status.WARN, Status.UNKNOWN, Status.SKIPPED


@dataclass
class Outcome:
    """Treated as immutable (a new one with `noted` or dataclasses.replace). Not a frozen dataclass: one is made
    per check run, and a frozen one takes twice as long to make."""

    status: Status
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    cause: str | None = None  # overrides the check's default cause
    severity: Severity | None = None  # overrides the check's default severity


class Uninterpretable(Exception):
    """A documented value the check cannot interpret (unknownFutureValue, a member added after the check was
    written): the check is `unknown`, naming it. Not for off-shape payloads: the models refuse those first."""


def passed(message: str, evidence: Mapping[str, Any] | None = None) -> Outcome:
    return Outcome(_PASS, message, evidence or {})


def failed(message: str, evidence: Mapping[str, Any] | None = None, cause: str | None = None) -> Outcome:
    return Outcome(_FAIL, message, evidence or {}, cause)


def warned(
    message: str,
    evidence: Mapping[str, Any] | None = None,
    cause: str | None = None,
    severity: Severity | None = None,
) -> Outcome:
    return Outcome(_WARN, message, evidence or {}, cause, severity)


def unknown(message: str, evidence: Mapping[str, Any] | None = None) -> Outcome:
    return Outcome(_UNKNOWN, message, evidence or {})


def skipped(message: str, evidence: Mapping[str, Any] | None = None) -> Outcome:
    return Outcome(_SKIPPED, message, evidence or {})


def unreadable(exc: Unavailable, grant: str | None = None) -> Outcome:
    """`unknown` for a resource that could not be read, naming it, why, and what to grant when known."""
    hint = f" Grant {grant}." if grant else ""
    return Outcome(
        _UNKNOWN,
        f"Could not read {exc.resource} ({exc.reason}).{hint}",
        {"resource": exc.resource, "error": exc.error or exc.reason, "grant": grant},
    )


E = TypeVar("E", bound=BaseException)


def detached(exc: E) -> E:
    """The exception without its traceback, nor those of the exceptions it chains to: to keep one (in a variable, a
    list, a cached value) after handling it. Its traceback holds the frames it passed, and the frame that keeps it
    holds it: a reference cycle, which kept the frames of the whole evaluation, and everything they refer to, alive
    until a garbage collection found it (a Workspace with unreadable group memberships: all of its objects)."""
    todo: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while todo:
        one = todo.pop()
        if one is not None and id(one) not in seen:
            seen.add(id(one))
            one.__traceback__ = None
            todo += (one.__context__, one.__cause__)
    return exc


def noted(out: Outcome, text: str, evidence: Mapping[str, Any] | None = None) -> Outcome:
    """The same outcome with a note in parentheses after its message, and more evidence."""
    return Outcome(out.status, f"{out.message} ({text})", {**out.evidence, **(evidence or {})}, out.cause, out.severity)


@dataclass(slots=True)
class Context:
    """What a check sees. Every resource comes through here, parsed against its model first (see
    preflight.resources): `org`/`mailbox` give the validated payload, `org_as`/`mailbox_as` its model.

    `method` and `configured` note that they were read: a check is pure, so a run that read neither gives
    the same outcome for every method, and the engine runs it once (`method_blind`). Not frozen, as one is
    made per check run and a frozen dataclass takes three times as long to make; nothing assigns to it."""

    snapshot: Snapshot
    subject: str | None  # mailbox address, None for tenant-wide checks
    _method: Method
    now: datetime
    resources: Resources
    _configured: MailboxVerdict | None = None  # evidence checks only: the verdict of the configuration checks
    # Whether a run read its method (or the verdict for it), as one flag in a list: shared with the contexts a check
    # derives from this one (dataclasses.replace copies the list's reference), and cheaper to make than an object.
    _reads: list[bool] = field(default_factory=lambda: [False], repr=False, compare=False)

    @property
    def method(self) -> Method:
        self._reads[0] = True
        return self._method

    @property
    def configured(self) -> MailboxVerdict | None:
        self._reads[0] = True  # the verdict of this mailbox for this method
        return self._configured

    @property
    def method_blind(self) -> bool:
        """Nothing run with this context (or one derived from it) read the method so far."""
        return not self._reads[0]

    # The readers below go straight to Resources.get: they run a few hundred times per tenant, and each layer
    # of calls between a check and the parsed resource cost more than the cache lookup itself.

    def org(self, name: str) -> Any:
        return self.resources.get(None, name).raw

    def mailbox(self, name: str) -> Any:
        return self.resources.get(self._address(), name).raw

    def other_mailbox(self, address: str, name: str) -> Any:
        """A resource of another mailbox in the snapshot (send-as rights on a From address that is one)."""
        return self.resources.get(address.lower(), name).raw

    def other_mailbox_as(self, address: str, name: str, model: type[M]) -> M:
        return _typed(self.resources.get(address.lower(), name), name, model)

    def org_as(self, name: str, model: type[M]) -> M:
        got = self.resources.get(None, name).model
        if not isinstance(got, model):
            raise _declared_as(name, got, model)
        return got

    def mailbox_as(self, name: str, model: type[M]) -> M:
        if self.subject is None:
            raise _tenant_wide()
        got = self.resources.get(self.subject, name).model
        if not isinstance(got, model):
            raise _declared_as(name, got, model)
        return got

    def _address(self) -> str:
        if self.subject is None:
            raise _tenant_wide()
        return self.subject

    @property
    def options(self) -> Any:
        return self.snapshot.options


def _typed(parsed: Parsed, name: str, model: type[M]) -> M:
    if not isinstance(parsed.model, model):
        raise _declared_as(name, parsed.model, model)
    return parsed.model


def _declared_as(name: str, got: BaseModel, model: type[BaseModel]) -> TypeError:
    return TypeError(f"{name} is declared as {type(got).__name__}, not {model.__name__}")


def _tenant_wide() -> RuntimeError:
    return RuntimeError("mailbox() called from a tenant-wide check")


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
    reads: tuple[str, ...] = ()  # every resource name it reads: `preflight checks`, the permission hints
    # Evidence (what the tenant's logs say happened) runs after the configuration checks and sees their verdict
    # for its mailbox and method (Context.configured), so it can say where the two disagree.
    evidence: bool = False

    def run(self, ctx: Context) -> Outcome | None:
        return self.func(ctx)

    def wrapped(self, func: CheckFunc, reads: tuple[str, ...] = ()) -> Check:
        """The same check running `func` (which calls this one), reading what it read and `reads` too."""
        return dataclasses.replace(self, func=func, reads=tuple(dict.fromkeys((*self.reads, *reads))))


@dataclass(frozen=True)
class Guard:
    """How a provider tells that a mailbox address does not exist (or is no user account), and what it reads
    to tell. Applied over `@check`, it gives the check no finding for such an address (the one rule above)."""

    missing: Callable[[Context], bool]  # reads the address's resources only: it is asked once per address
    reads: tuple[str, ...]

    def __call__(self, own: Check) -> Check:
        missing, func = self.missing, own.func

        @functools.wraps(func)
        def run(ctx: Context) -> Outcome | None:
            return None if ctx.resources.derived_of((missing, ctx.subject), missing, ctx) else func(ctx)

        return own.wrapped(run, self.reads)


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
    evidence: bool = False,
) -> Callable[[CheckFunc], Check]:
    """Turn a function into a Check. It registers nothing: a provider lists its checks explicitly."""

    def wrap(func: CheckFunc) -> Check:
        return Check(id, title, severity, cause, func, scope, methods, order, reads, evidence)

    return wrap
