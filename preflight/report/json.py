from __future__ import annotations

from preflight import jsontext
from preflight.model import Report

# Indented down to each verdict and finding, each on one line: a report of hundreds of findings reads (and greps)
# one finding per line, and the C encoder writes it (jsontext).
LAYOUT_DEPTH = 4


def render(report: Report) -> str:
    # NaN or Infinity would make the report invalid JSON; loaders refuse them, so one here is a defect to surface
    # (ValueError), not to print.
    return jsontext.dumps(report.to_dict(), LAYOUT_DEPTH, ensure_ascii=False)
