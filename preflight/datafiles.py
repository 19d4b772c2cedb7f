"""The TOML data files packages ship (facts that change: dates, ids, endpoints, thresholds), read one way.

`load_toml("preflight_providers.google", "data/authcheck.toml")` parses a file once per process and hands
each caller its own copy, so no caller can change what the next one reads. `load_as` checks the file
against a typed shape (a dataclass, TypedDict or pydantic model) and fails with the file named.
"""

from __future__ import annotations

import copy
import tomllib
from functools import cache
from importlib.resources import files
from typing import Any, TypeVar

T = TypeVar("T")


@cache
def _parsed(package: str, name: str) -> dict[str, Any]:
    return tomllib.loads(files(package).joinpath(name).read_text(encoding="utf-8"))


def load_toml(package: str, name: str) -> dict[str, Any]:
    """The parsed file `name` (a path inside `package`); a packaging fault raises, as it is a defect."""
    return copy.deepcopy(_parsed(package, name))


def load_as(package: str, name: str, shape: type[T]) -> T:
    """The file checked against `shape`; ValueError naming the file and the first field that is off."""
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(shape).validate_python(_parsed(package, name))
    except ValidationError as exc:
        raise ValueError(f"{package}/{name}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None
