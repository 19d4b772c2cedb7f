"""Mutation testing of the shipped snapshots: garble one value inside one resource and re-evaluate.

The property (issue 11): no mutant moves a mailbox x method verdict to a better one (blocked < incomplete <
at-risk < ready; blocked -> incomplete is allowed, it is the honest `unknown`), turns a fail, warn or
unknown finding into `pass`, or softens a fail into a warn; no mutant crashes, makes the engine log an
internal error, or makes the JSON report invalid.

Mutations, inside any resource under `org` and `mailboxes` (the resource itself included): delete a key
of an object, set a value to null, change its JSON type (a string to a number, a boolean, a list of it or
an object; a list of strings to its first string; an object to a list ...), and change the spelling of an
enum-like string (upper, lower or first-letter case; an unknown value). Deleting or emptying a list element
is a legitimate edit (a policy removed), not a mutation. Setting to null a field the provider documents as
nullable, or to [] a list, when the model accepts the mutated resource, is a legitimate edit too (counted
apart, never a fail-open).

Used by tests/test_mutation.py (a fixed seed and a small budget) and benchmarks/mutation.py (all of them).
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight.causes import Catalogue, load_catalogue
from preflight.engine import evaluate
from preflight.errors import InputError
from preflight.model import Method, Report, Status, TargetResult, Verdict
from preflight.providers import Provider, Registry
from preflight.report import render
from preflight.resources import Schema
from preflight.snapshot import parse
from tests.conftest import NOW

ROOT = Path(__file__).resolve().parent.parent
ENUM_LIKE = re.compile(r"^[#A-Za-z][A-Za-z0-9_.#]*$")
UNKNOWN_VALUE = "mutatedUnknownValue"
RANK = {Verdict.BLOCKED: 0, Verdict.INCOMPLETE: 1, Verdict.AT_RISK: 2, Verdict.READY: 3}
DELETE = object()  # the "value" of a key deletion

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Mutant:
    snapshot: str  # file name, relative to the repository
    path: Path_  # ("org"|"mailboxes", [address,] resource, ...keys)
    kind: str  # delete | null | type | case | unknown-value
    value: Any  # the new value (DELETE for a deletion)

    def describe(self) -> str:
        where = ".".join(str(p) for p in self.path)
        shown = "deleted" if self.value is DELETE else json.dumps(self.value)[:60]
        return f"{self.snapshot}: {where} -> {shown} ({self.kind})"


@dataclass(frozen=True)
class Shipped:
    name: str
    provider: Provider
    data: dict[str, Any]


@dataclass
class Outcomes:
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, outcome) -> mutants
    problems: list[str] = field(default_factory=list)  # fail-open, crash, internal error, invalid JSON

    def outcome_counts(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (_, outcome), n in self.counts.items():
            out[outcome] += n
        return out


def shipped(registry: Registry) -> list[Shipped]:
    out = []
    for provider in registry.all():
        folders = [ROOT / "tests" / provider.name / "fixtures", ROOT / "providers" / provider.name / "demo"]
        for folder in folders:
            # Peers' cases (fixtures/peers, fixtures/scubagoggles) too; their expected results are not snapshots.
            for path in sorted(p for p in folder.rglob("*.json") if not p.name.endswith(".expected.json")):
                data = json.loads(path.read_text(encoding="utf-8"))
                out.append(Shipped(str(path.relative_to(ROOT)), provider, data))
    return out


def _type_changes(value: Any) -> Iterator[Any]:
    if isinstance(value, bool):
        yield from (int(value), str(value).lower() + "ish", [value], {})
    elif isinstance(value, int | float):
        yield from (str(value), True, [value], {})
    elif isinstance(value, str):
        # A boolean of the same meaning where the text is one ("False" -> false), so the edit is only a type.
        spelled = value.strip().lower().removeprefix("$")
        yield from (0, spelled == "true" if spelled in ("true", "false") else True, [value], {}, "")
    elif isinstance(value, list):
        strings = [v for v in value if isinstance(v, str)]
        yield from ((strings[0] if strings else "x"), {}, 0)
    elif isinstance(value, dict):
        yield from ([], "x", 0)
    elif value is None:
        # null has no type to change from: only containers, which no nullable scalar documents.
        yield from ([], {})


def _spellings(value: str) -> Iterator[str]:
    for other in (value.upper(), value.lower(), value[:1].swapcase() + value[1:], UNKNOWN_VALUE):
        if other != value:
            yield other


def _sites(value: Any, path: Path_) -> Iterator[tuple[Path_, str, Any]]:
    """(path, kind, new value) for every mutation of `value` and of everything inside it."""
    if value is not None:
        yield path, "null", None
    for other in _type_changes(value):
        yield path, "type", other
    if isinstance(value, str) and ENUM_LIKE.match(value):
        for spelled in _spellings(value):
            yield path, "case" if spelled != UNKNOWN_VALUE else "unknown-value", spelled
    if isinstance(value, dict):
        if value:
            yield path, "type", {}  # every key deleted at once: `users: {}`, an empty organizationConfig
        for key, item in value.items():
            yield (*path, key), "delete", DELETE
            yield from _sites(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _sites(item, (*path, i))


def mutants(item: Shipped) -> list[Mutant]:
    out = []
    for resource, value in item.data["org"].items():
        out += [Mutant(item.name, p, k, v) for p, k, v in _sites(value, ("org", resource))]
    for address, box in item.data["mailboxes"].items():
        for resource, value in box.items():
            out += [Mutant(item.name, p, k, v) for p, k, v in _sites(value, ("mailboxes", address, resource))]
    return out


def apply(data: Any, path: Path_, value: Any) -> Any:
    """A copy of `data` with the value at `path` replaced (or deleted), sharing everything off the path."""
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        copy: Any = dict(data)
    else:
        copy = list(data)
    if not rest:
        if value is DELETE:
            del copy[head]
        else:
            copy[head] = value
        return copy
    copy[head] = apply(data[head], rest, value)
    return copy


def _resource(data: dict[str, Any], path: Path_) -> tuple[str, Any]:
    if path[0] == "org":
        return str(path[1]), data["org"][path[1]]
    return str(path[2]), data["mailboxes"][path[1]][path[2]]


def _verdicts(result: TargetResult) -> dict[tuple[str, Method], Verdict]:
    return {(v.address, v.method): v.verdict for v in result.mailboxes}


def _statuses(result: TargetResult, methods: tuple[Method, ...]) -> dict[tuple[str, str | None, Method], Status]:
    out = {}
    for f in result.findings:
        for m in (methods if f.method is None else (f.method,)):
            out[(f.check, f.subject, m)] = f.status
    return out


def _json_valid(text: str) -> bool:
    def refuse(name: str) -> Any:
        raise ValueError(name)

    try:
        json.loads(text, parse_constant=refuse)
    except ValueError:
        return False
    return True


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@dataclass
class Runner:
    """Evaluates mutants of the shipped snapshots against each snapshot's unmutated results."""

    registry: Registry
    catalogue: Catalogue = field(default_factory=load_catalogue)
    _base: dict[str, tuple[TargetResult, tuple[Method, ...]]] = field(default_factory=dict)

    def _evaluate(self, item: Shipped, data: dict[str, Any]) -> TargetResult:
        p = item.provider
        snap = parse(data, item.name)
        return evaluate(snap, p.checks(), self.catalogue, NOW, p.permissions(), resources=p.resources())

    def base(self, item: Shipped) -> tuple[TargetResult, tuple[Method, ...]]:
        if item.name not in self._base:
            self._base[item.name] = (self._evaluate(item, item.data), parse(item.data).options.methods)
        return self._base[item.name]

    def run(self, item: Shipped, mutant: Mutant, out: Outcomes) -> None:
        base, methods = self.base(item)
        data = apply(item.data, mutant.path, mutant.value)
        errors = _Errors()
        logger = logging.getLogger("preflight.engine")
        logger.addHandler(errors)
        try:
            result = self._evaluate(item, data)
            text = render(Report([result], "2026-11-26T12:00:00Z", "0"), "json")
        except InputError:
            out.counts[(mutant.kind, "refused by the loader")] += 1
            return
        except Exception as exc:  # the property under test: no mutant may crash anything
            out.counts[(mutant.kind, "crash")] += 1
            out.problems.append(f"crash {type(exc).__name__}: {exc} <- {mutant.describe()}")
            return
        finally:
            logger.removeHandler(errors)
        if errors.messages:
            out.counts[(mutant.kind, "internal error")] += 1
            out.problems.append(f"internal error {errors.messages[0]} <- {mutant.describe()}")
            return
        if not _json_valid(text):
            out.counts[(mutant.kind, "invalid JSON")] += 1
            out.problems.append(f"invalid JSON report <- {mutant.describe()}")
            return
        opened = _fail_open(base, result, methods)
        if opened and (mutant.kind == "null" or mutant.value == []) and self._documented(item, data, mutant):
            # null where the provider documents null, or a list emptied of its elements: a real edit.
            out.counts[(mutant.kind, "documented value (legitimate edit)")] += 1
            return
        if opened:
            out.counts[(mutant.kind, "FAIL-OPEN")] += 1
            out.problems.append(f"fail-open {opened} <- {mutant.describe()}")
            return
        out.counts[(mutant.kind, _change(base, result, methods))] += 1

    def _documented(self, item: Shipped, data: dict[str, Any], mutant: Mutant) -> bool:
        schema: Schema = item.provider.resources()
        name, value = _resource(data, mutant.path)
        model = schema.get(name)
        if model is None:
            return False
        try:
            model.model_validate(value)
        except Exception:
            return False
        return True


def _fail_open(base: TargetResult, result: TargetResult, methods: tuple[Method, ...]) -> str | None:
    before, after = _verdicts(base), _verdicts(result)
    for key, was in before.items():
        now = after.get(key)
        if now is None:
            return f"verdict of {key[0]} {key[1].value} vanished"
        if RANK[now] > RANK[was] and not (was is Verdict.BLOCKED and now is Verdict.INCOMPLETE):
            return f"{key[0]} {key[1].value}: {was.value} -> {now.value}"
    old, new = _statuses(base, methods), _statuses(result, methods)
    for key, was in old.items():
        now_status = new.get(key)
        if now_status is Status.PASS and was in (Status.FAIL, Status.WARN, Status.UNKNOWN):
            return f"{key[0]} for {key[1]} {key[2].value}: {was.value} -> pass"
        if was is Status.FAIL and now_status is Status.WARN:
            return f"{key[0]} for {key[1]} {key[2].value}: fail -> warn"
    return None


def _change(base: TargetResult, result: TargetResult, methods: tuple[Method, ...]) -> str:
    if _verdicts(base) == _verdicts(result) and _statuses(base, methods) == _statuses(result, methods):
        return "no change"
    if any(f.status is Status.UNKNOWN for f in result.findings):
        return "unknown (honest)"
    return "worse or moved"


def sample(items: list[Shipped], budget: int | None, seed: int) -> list[tuple[Shipped, Mutant]]:
    every = [(item, m) for item in items for m in mutants(item)]
    if budget is None or budget >= len(every):
        return every
    return random.Random(seed).sample(every, budget)
