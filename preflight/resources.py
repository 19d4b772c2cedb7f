"""The typed resource layer: every resource a check reads is parsed once against its documented shape.

A provider declares one pydantic model per resource name (its plugin's `resources()`, see
preflight.providers). Before a check sees a resource, the engine parses it: a payload that is not the
documented shape, or an error record of any shape, raises `Unavailable`, so every check reading it is
`unknown`, and the message names the field, the value found and what was expected. Checks never decide
on a guess made from a garbled payload.

Conventions the models follow (`Payload`): unknown extra fields are ignored (real payloads carry more than
the checks read); types are strict (no "1" for 1, no 0 for false: a JSON type the provider does not
document is a shape error); a field is optional only where the provider documents it as nullable or
absent. Graph's evolvable enums accept `unknownFutureValue`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from preflight.snapshot import Snapshot, Unavailable, describe_error, error_of

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
A = TypeVar("A")
Schema = Mapping[str, type[BaseModel]]  # resource name -> the model of its documented shape
_NOT_YET = object()  # Resources.derived: no value made yet (None is a value)


class Payload(BaseModel):
    """Base of provider payload models."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, populate_by_name=True)


class UnmodelledResource(RuntimeError):
    """A check read a resource its provider declares no model for: a programming error, never `unknown`."""


def short(value: Any, limit: int = 40) -> str:
    """A value for a message: its JSON type and a short prefix (payloads hold no secrets, but keep it brief)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object" if value else "{}"
    if isinstance(value, list):
        return f"a list of {len(value)}" if value else "[]"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_TAGS = {"str", "int", "float", "bool", "list", "dict", "none", "literal", "model", "constrained-str"}


def _models() -> set[str]:
    out: set[str] = set()
    todo: list[type[BaseModel]] = [BaseModel]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__name__ not in out:
                out.add(sub.__name__)
                todo.append(sub)
    return out


def _path(label: str, loc: tuple[int | str, ...]) -> str:
    """pydantic's error location without the union-branch tags it interleaves (`bool`, `function-after[...]`)."""
    models = _models()
    out = label
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _TAGS or part in models or "[" in part or part.startswith("#"):
            continue
        else:
            out += f".{part}" if out else part
    return out


def describe(label: str, err: ValidationError) -> str:
    """The first problem pydantic found: the field path, the value found and what was expected."""
    first = err.errors(include_url=False)[0]
    where = _path(label, tuple(first["loc"]))
    msg = str(first["msg"]).removeprefix("Value error, ")
    more = err.error_count() - 1
    extra = f" (and {more} more)" if more > 0 else ""
    if first["type"] == "missing":
        return f"{where} is missing{extra}"
    if first["type"] == "value_error":
        return f"{where}: {msg}{extra}"
    return f"{where}: found {short(first.get('input'))} ({msg}){extra}"


@dataclass(slots=True)
class Parsed:
    """Treated as immutable; not frozen, as one is made per resource a tenant's checks read, and a frozen dataclass
    takes twice as long to make."""

    raw: Any
    model: BaseModel


@dataclass
class Resources:
    """The resources of one snapshot, each parsed at most once per evaluation."""

    snapshot: Snapshot
    schema: Schema
    _cache: dict[tuple[str | None, str], Parsed | tuple[str, str, dict[str, Any] | None]] = field(
        default_factory=dict
    )
    _derived: dict[Hashable, Any] = field(default_factory=dict)

    def org(self, name: str) -> Parsed:
        return self.get(None, name)

    def derived(self, key: Hashable, compute: Callable[[], T]) -> T:
        """What `compute` makes of this snapshot's resources, made once per evaluation however many checks ask
        (a user's effective policy: every mailbox check, for every method). `key` names everything the result
        depends on besides the snapshot. An exception is not kept: the next caller computes afresh."""
        got = self._derived.get(key, _NOT_YET)
        if got is _NOT_YET:
            got = self._derived[key] = compute()
        kept: T = got
        return kept

    def derived_of(self, key: Hashable, compute: Callable[[A], T], arg: A) -> T:
        """`derived(key, lambda: compute(arg))` without making a function per call: asked per check run."""
        got = self._derived.get(key, _NOT_YET)
        if got is _NOT_YET:
            got = self._derived[key] = compute(arg)
        kept: T = got
        return kept

    def mailbox(self, address: str, name: str) -> Parsed:
        return self.get(address, name)

    def get(self, address: str | None, name: str) -> Parsed:
        """The resource `name` of a mailbox (`address`) or of the tenant (None), parsed; Unavailable if it cannot be."""
        key = (address, name)
        got = self._cache.get(key)
        if got is None:
            got = self._cache[key] = self._parse(address, name)
        if isinstance(got, Parsed):
            return got
        # A fresh exception each time: re-raising one instance would chain every traceback onto it.
        raise Unavailable(*got)

    def _parse(self, address: str | None, name: str) -> Parsed | tuple[str, str, dict[str, Any] | None]:
        model = self.schema.get(name)
        if model is None:
            raise UnmodelledResource(f"a check read {name!r}, for which the provider declares no model")
        container = self.snapshot.org if address is None else self.snapshot.mailboxes.get(address, {})
        if name not in container:
            return (_label(address, name), "not collected", None)
        raw = container[name]
        err = error_of(raw)
        if err is not None:
            return (_label(address, name), describe_error(err), err)
        try:
            return Parsed(raw, model.model_validate(raw))
        except ValidationError as exc:
            return (_label(address, name), f"not in the documented shape: {describe(name, exc)}", None)
        except RecursionError:
            return (_label(address, name), "not in the documented shape: nested too deeply", None)


def _label(address: str | None, name: str) -> str:
    return name if address is None else f"{name} of {address}"
