"""`preflight causes` and `preflight checks`."""

from __future__ import annotations

import json
import sys
from typing import Any

from preflight.causes import load_catalogue
from preflight.output import color_enabled
from preflight.providers import Registry


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*r)
    Console(no_color=not color_enabled(), highlight=False).print(table)


def list_causes(fmt: str) -> None:
    cat = load_catalogue()
    if fmt == "json":
        data = [
            {"id": c.id, "layer": c.layer, "title": c.title, "explanation": c.explanation,
             "remediation": c.remediation, "docs": c.docs}
            for c in cat.causes
        ]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    _table("Cause catalogue", ["id", "layer", "title"], [[c.id, c.layer, c.title] for c in cat.causes])


def list_checks(registry: Registry, fmt: str) -> None:
    rows: list[dict[str, Any]] = [
        {"id": c.id, "provider": p.name, "scope": c.scope, "methods": [m.value for m in c.methods],
         "cause": c.cause, "severity": c.severity.value, "title": c.title, "reads": list(c.reads)}
        for p in registry.all()
        for c in p.checks()
    ]
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    _table(
        "Checks",
        ["id", "provider", "methods", "cause", "title"],
        [[r["id"], r["provider"], ", ".join(r["methods"]), r["cause"] or "", r["title"]] for r in rows],
    )
