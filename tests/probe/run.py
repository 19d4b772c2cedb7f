"""The result of one `preflight probe` run through `preflight.cli.main`, for the probe tests."""

from __future__ import annotations

import json
from typing import Any


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.out)  # type: ignore[no-any-return]

    def finding(self, check: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = [f for f in self.json["findings"] if f["check"] == check]
        assert found, f"no {check} finding in {[f['check'] for f in self.json['findings']]}"
        return found[0]
