"""JSON files people open and programs read: indented to a depth, each value below it on one line.

`json.dumps(indent=2)` runs the standard library's pure-Python encoder (its C encoder has no indentation), and
for an audit's reports and snapshots that encoder cost more CPU than evaluating the tenant. Here only the outer
levels are laid out in Python, exactly as indent=2 lays them out; each value at `depth` (a snapshot's resource
payload, a report's finding) is one line from the C encoder, in its default separators (", ", ": ").
With a depth greater than the nesting, the text is json.dumps(value, indent=2)'s, character for character.

The C encoder is called directly (JSONEncoder.encode builds a new one on every call: most of the cost of a
short value), for the containers below the last laid-out level only: a string (encode_basestring), true, false
or null is written here at less than a call's cost, each string key once per file. The encoder keeps no record
of the containers it is in (check_circular=False: a quarter of its time on a finding's line); a value holding
itself is told from one merely too deep once RecursionError is raised, and refused as before.
"""

from __future__ import annotations

import json
from _json import encode_basestring, encode_basestring_ascii, make_encoder
from collections.abc import Callable
from typing import Any

_LAID_OUT = (dict, list)  # what is laid out over lines above `depth` (a tuple is one line at any depth)


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
        # allow_nan=False: NaN or Infinity would make the file invalid JSON (ValueError), as json.dumps refuses it
        self.line = make_encoder(None, refuse, self.string, None, ": ", ", ", False, False, False)
        self.keys = _Keys(self.string)
        self.custom: Callable[[Any], str | None] | None = None  # dumps' `items`

    def encode(self, value: Any) -> str:
        if isinstance(value, str):
            return self.string(value)
        if value is True or value is False or value is None:
            return "true" if value else "false" if value is False else "null"
        return "".join(self.line(value, 0))


def dumps(value: Any, depth: int, *, ensure_ascii: bool = True, items: Callable[[Any], str | None] | None = None,
          ) -> str:
    """`value` as JSON text ending in a newline; NaN and Infinity refused (ValueError), as allow_nan=False does.
    `items`: the one-line text of an array's item at `depth`, for the items it knows (None: the C encoder's),
    character for character the C encoder's."""
    return indented(value, depth, "", ensure_ascii=ensure_ascii, items=items) + "\n"


def indented(value: Any, depth: int, margin: str, *, ensure_ascii: bool = True,
             items: Callable[[Any], str | None] | None = None) -> str:
    """dumps' text without its last line break, each line after the first indented by `margin` too (the text of
    a value inside another's, laid out at its place)."""
    out: list[str] = []
    writer = _Writer(ensure_ascii)
    writer.custom = items
    try:
        _layout(value, depth, "\n" + margin, out, writer)
    except RecursionError:  # the C encoder keeps no record of the containers it is in (faster): was it a
        json.dumps(value, ensure_ascii=ensure_ascii, allow_nan=False)  # value holding itself? ValueError if so
        raise
    return "".join(out)


def _layout(value: Any, depth: int, newline: str, out: list[str], writer: _Writer) -> None:
    if depth <= 0 or not value or not isinstance(value, _LAID_OUT):
        out.append(writer.encode(value))
        return
    inner = newline + "  "
    between = "," + inner
    if depth == 1:  # the last level laid out: each item one line
        keys, string, line = writer.keys, writer.string, writer.line
        if isinstance(value, list):
            custom = writer.custom
            items = [string(item) if type(item) is str else "".join(line(item, 0)) for item in value] \
                if custom is None else [custom(item) or writer.encode(item) for item in value]
            out += ("[", inner, between.join(items), newline, "]")
        else:
            # strings, true, false and null written here, not by a call of the C encoder (as costly as writing
            # a string here): a payload holds many of them
            items = [keys[k] + (string(v) if type(v) is str else "true" if v is True else "false" if v is False
                                else "null" if v is None else "".join(line(v, 0))) for k, v in value.items()]
            out += ("{", inner, between.join(items), newline, "}")
    elif isinstance(value, dict):
        keys, encode, separator = writer.keys, writer.encode, inner
        out.append("{")
        for key, item in value.items():
            if item and isinstance(item, _LAID_OUT):
                out += (separator, keys[key])
                _layout(item, depth - 1, inner, out, writer)
            else:  # one line whatever the depth: written here, not by a call of _layout
                out += (separator, keys[key], encode(item))
            separator = between
        out.append(newline + "}")
    else:
        encode, separator = writer.encode, inner
        out.append("[")
        for item in value:
            if item and isinstance(item, _LAID_OUT):
                out.append(separator)
                _layout(item, depth - 1, inner, out, writer)
            else:
                out += (separator, encode(item))
            separator = between
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
