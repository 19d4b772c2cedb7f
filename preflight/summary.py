"""--summary: a report reduced to its verdict counts per tenant, for a quick look or a dashboard."""

from __future__ import annotations

import json
from typing import Any

from preflight.model import Report, Verdict


def summary_dict(report: Report) -> dict[str, Any]:
    targets = []
    for t in report.targets:
        counts = {v.value: 0 for v in Verdict}
        for mv in t.mailboxes:
            counts[mv.verdict.value] += 1
        targets.append({"name": t.name, "provider": t.provider, "tenant": t.tenant,
                        "verdicts": {k: n for k, n in counts.items() if n}, "errors": len(t.errors)})
    return {"schema": "preflight.summary/v1", "generated_at": report.generated_at, "targets": targets,
            "findings": report.summary()}


def render_summary(report: Report, fmt: str) -> str:
    """JSON for `--format json`, otherwise one line per tenant and a total line."""
    data = summary_dict(report)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    lines = []
    for t in data["targets"]:
        verdicts = ", ".join(f"{n} {v}" for v, n in t["verdicts"].items()) or "no mailboxes"
        errors = f"; could not be read ({t['errors']} error(s))" if t["errors"] else ""
        lines.append(f"{t['name']} ({t['provider']}): {verdicts}{errors}")
    findings = ", ".join(f"{n} {s}" for s, n in data["findings"].items() if n) or "none"
    lines.append(f"Findings: {findings}.")
    return "\n".join(lines) + "\n"
