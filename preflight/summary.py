"""--summary: a report reduced to its verdict counts per tenant, for a quick look or a dashboard."""

from __future__ import annotations

import json
from typing import Any

from preflight.model import Report
from preflight.report.common import occurring_verdicts, verdict_text


def summary_dict(report: Report) -> dict[str, Any]:
    targets = []
    for t in report.targets:
        targets.append({"name": t.name, "provider": t.provider, "tenant": t.tenant,
                        "verdicts": occurring_verdicts(t), "errors": len(t.errors)})
    return {"schema": "preflight.summary/v1", "generated_at": report.generated_at, "targets": targets,
            "findings": report.summary()}


def render_summary(report: Report, fmt: str) -> str:
    """JSON for `--format json`, otherwise one line per tenant and a total line."""
    data = summary_dict(report)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    lines = []
    for t in data["targets"]:
        verdicts = verdict_text(t["verdicts"])
        errors = f"; could not be read ({t['errors']} error(s))" if t["errors"] else ""
        lines.append(f"{t['name']} ({t['provider']}): {verdicts}{errors}")
    findings = ", ".join(f"{n} {s}" for s, n in data["findings"].items() if n) or "none"
    lines.append(f"Findings: {findings}.")
    return "\n".join(lines) + "\n"
