"""JSON files people open and programs read: indented to a depth, each value below it on one line.

`json.dumps(indent=2)` runs the standard library's pure-Python encoder (its C encoder has no indentation), and
for an audit's reports and snapshots that encoder cost more CPU than evaluating the tenant. Here only the outer
levels are laid out in Python, exactly as indent=2 lays them out; each value at `depth` (a snapshot's resource
payload, a report's finding) is one line from the C encoder, in its default separators (", ", ": ").
With a depth greater than the nesting, the text is json.dumps(value, indent=2)'s, character for character.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def dumps(value: Any, depth: int, *, ensure_ascii: bool = True) -> str:
    """`value` as JSON text ending in a newline; NaN and Infinity refused (ValueError), as allow_nan=False does."""
    encode = json.JSONEncoder(ensure_ascii=ensure_ascii, allow_nan=False).encode
    out: list[str] = []
    _layout(value, depth, "\n", out, encode)
    out.append("\n")
    return "".join(out)


def _layout(value: Any, depth: int, newline: str, out: list[str], encode: Callable[[Any], str]) -> None:
    if depth <= 0 or not value or not isinstance(value, dict | list):
        out.append(encode(value))
        return
    inner = newline + "  "
    between = "," + inner
    if isinstance(value, dict):
        out.append("{")
        for n, (key, item) in enumerate(value.items()):
            out.append(between if n else inner)
            out.append(encode(_key(key)))
            out.append(": ")
            _layout(item, depth - 1, inner, out, encode)
        out.append(newline + "}")
    else:
        out.append("[")
        for n, item in enumerate(value):
            out.append(between if n else inner)
            _layout(item, depth - 1, inner, out, encode)
        out.append(newline + "]")


def _key(key: object) -> str:
    """A key as json.dumps writes it: strings as they are, the scalars JSON converts, anything else refused."""
    if isinstance(key, str):
        return key
    if key is True or key is False or key is None:
        return json.dumps(key)
    if isinstance(key, int | float):
        text: str = json.dumps(key, allow_nan=False)
        return text
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
