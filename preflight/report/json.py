from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from preflight import jsontext
from preflight.model import Report

# Indented down to each verdict and finding, each on one line: a report of hundreds of findings reads (and greps)
# one finding per line, and the C encoder writes it (jsontext).
LAYOUT_DEPTH = 4

# Stands for the targets in a report's "targets" while the rest is encoded: no name or stamp before them holds it.
TARGETS = "\x00targets\x00"


def render(report: Report) -> str:
    # NaN or Infinity would make the report invalid JSON; loaders refuse them, so one here is a defect to surface
    # (ValueError), not to print.
    return jsontext.dumps(report.to_dict(), LAYOUT_DEPTH, ensure_ascii=False)


def target_text(target: dict[str, Any]) -> str:
    """A target's dict (TargetResult.to_dict) as report.json lays it out in its "targets", without the line break
    that ends it: two levels deeper than alone, so each of its line breaks indented four more."""
    return jsontext.dumps(target, LAYOUT_DEPTH - 2, ensure_ascii=False)[:-1].replace("\n", "\n    ")


def with_targets(data: dict[str, Any], targets: Iterable[str]) -> Iterator[str]:
    """render's text, a piece at a time, of a report whose dict is `data` with "targets" [TARGETS] and whose
    targets' texts (target_text) are `targets`, at least one: each target encoded once, never all held at once."""
    before, _, after = jsontext.dumps(data, LAYOUT_DEPTH, ensure_ascii=False).partition(
        jsontext.dumps(TARGETS, 0)[:-1])
    yield before
    for n, text in enumerate(targets):
        yield (",\n    " if n else "") + text
    yield after
