"""JSON input that can be represented again: what `diff` and `redact` read is refused, in one line, when it
holds a value no JSON output could carry (NaN, Infinity, a lone surrogate) or an integer no payload has."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from preflight.errors import InputError

MAX_BYTES = 64 * 1024 * 1024
MAX_INT_DIGITS = 20  # 2**64 has 20 digits: no payload, report or snapshot field needs more


class _Refused(ValueError):
    pass


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {len(text.lstrip('-'))} digits")
    return int(text)


def _strings(value: Any) -> Iterator[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def loads(text: str, where: str) -> Any:
    try:
        data = json.loads(text, parse_constant=_constant, parse_int=_integer)
    except _Refused as exc:
        raise InputError(f"{where}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. Python's own limit on integer digits
        raise InputError(f"{where}: invalid JSON ({exc})") from None
    for text_value in _strings(data):
        try:
            text_value.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(f"{where}: a string holds a lone surrogate escape (\\ud800-\\udfff), "
                             "which is not text") from None
    return data


def read(path: Path) -> Any:
    """The JSON value in a file, or InputError naming the file and the problem."""
    from preflight.files import read_text

    return loads(read_text(path, MAX_BYTES, "a JSON file preflight reads"), str(path))
