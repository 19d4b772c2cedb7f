"""JSON files people open and programs read: indented to a depth, each value below it on one line.

`json.dumps(indent=2)` runs the standard library's pure-Python encoder (its C encoder has no indentation), and
for an audit's reports and snapshots that encoder cost more CPU than evaluating the tenant. Here only the outer
levels are laid out in Python, exactly as indent=2 lays them out; each value at `depth` (a snapshot's resource
payload, a report's finding) is one line from the C encoder, in its default separators (", ", ": ").
With a depth greater than the nesting, the text is json.dumps(value, indent=2)'s, character for character.

The C encoder is called directly (JSONEncoder.encode builds a new one on every call: most of the cost of a
short value), and an object at the last laid-out level whose values are all scalars (most resource payloads'
fields) is one call too, its items separated by the line break and indentation of that level. The encoders keep
no record of the containers they are in (check_circular=False: a quarter of their time on a finding's line); a
value holding itself is told from one merely too deep once RecursionError is raised, and refused as before.
"""

from __future__ import annotations

import json
from _json import encode_basestring, encode_basestring_ascii, make_encoder
from collections.abc import Callable
from typing import Any

_CONTAINERS = (dict, list, tuple)  # what the C encoder writes as an array or object


def refuse(value: Any) -> Any:
    """As JSONEncoder.default: only JSON's own types are written."""
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


class _Keys(dict[Any, str]):
    """Keys as JSON text followed by ": ", each string key encoded once per file (a snapshot repeats its payloads'
    field names)."""

    def __init__(self, string: Callable[[str], str]) -> None:
        super().__init__()
        self.string = string

    def __missing__(self, key: Any) -> str:
        if type(key) is not str:  # never kept: True, 1 and 1.0 are one dict key but three JSON keys
            return self.string(_key(key)) + ": "
        text = self[key] = self.string(key) + ": "
        return text


class _Writer:
    """The C encoders and the encoded keys of one dumps call."""

    def __init__(self, ensure_ascii: bool) -> None:
        self.string = encode_basestring_ascii if ensure_ascii else encode_basestring
        self.line = self._encoder(", ")
        self.keys = _Keys(self.string)
        self.spread: dict[str, Callable[[Any, int], Any]] = {}  # by indentation: items one a line
        self.custom: Callable[[Any], str | None] | None = None  # dumps' `items`

    def _encoder(self, item_separator: str) -> Callable[[Any, int], Any]:
        # allow_nan=False: NaN or Infinity would make the file invalid JSON (ValueError), as json.dumps refuses it
        return make_encoder(None, refuse, self.string, None, ": ", item_separator, False, False, False)

    def encode(self, value: Any) -> str:
        if isinstance(value, str):
            return self.string(value)
        return "".join(self.line(value, 0))

    def scalars(self, value: dict[Any, Any], inner: str) -> str:
        """An object of scalar values laid out one item a line at indentation `inner`, in one C call."""
        spread = self.spread.get(inner)
        if spread is None:
            spread = self.spread[inner] = self._encoder("," + inner)
        return "".join(spread(value, 0))


def dumps(value: Any, depth: int, *, ensure_ascii: bool = True, items: Callable[[Any], str | None] | None = None,
          ) -> str:
    """`value` as JSON text ending in a newline; NaN and Infinity refused (ValueError), as allow_nan=False does.
    `items`: the one-line text of an array's item at `depth`, for the items it knows (None: the C encoder's),
    character for character the C encoder's."""
    out: list[str] = []
    writer = _Writer(ensure_ascii)
    writer.custom = items
    try:
        _layout(value, depth, "\n", out, writer)
    except RecursionError:  # the C encoders keep no record of the containers they are in (faster): was it a
        json.dumps(value, ensure_ascii=ensure_ascii, allow_nan=False)  # value holding itself? ValueError if so
        raise
    out.append("\n")
    return "".join(out)


def _layout(value: Any, depth: int, newline: str, out: list[str], writer: _Writer) -> None:
    if depth <= 0 or not value or not isinstance(value, dict | list):
        out.append(writer.encode(value))
        return
    inner = newline + "  "
    between = "," + inner
    if depth == 1:  # the last level laid out: each item one line
        if isinstance(value, list):
            encode, custom = writer.encode, writer.custom
            items = between.join([encode(item) for item in value] if custom is None else
                                 [custom(item) or encode(item) for item in value])
            out.append("[" + inner + items + newline + "]")
        elif any(isinstance(v, _CONTAINERS) for v in value.values()):
            keys, string, line = writer.keys, writer.string, writer.line
            # true, false and null written here, not by a call of the C encoder: a payload holds many of them
            items = between.join([keys[k] + (string(v) if type(v) is str else "true" if v is True else "false"
                                             if v is False else "null" if v is None else "".join(line(v, 0)))
                                  for k, v in value.items()])
            out.append("{" + inner + items + newline + "}")
        else:
            out.append("{" + inner + writer.scalars(value, inner)[1:-1] + newline + "}")
    elif isinstance(value, dict):
        out.append("{")
        for n, (key, item) in enumerate(value.items()):
            out.append(between if n else inner)
            out.append(writer.keys[key])
            _layout(item, depth - 1, inner, out, writer)
        out.append(newline + "}")
    else:
        out.append("[")
        for n, item in enumerate(value):
            out.append(between if n else inner)
            _layout(item, depth - 1, inner, out, writer)
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
