from __future__ import annotations

import json

from preflight.model import Report


def render(report: Report) -> str:
    # allow_nan=False: a NaN or Infinity would make the report invalid JSON; loaders refuse them, so one here
    # is a defect to surface, not to print.
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
