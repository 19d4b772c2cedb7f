"""`preflight causes [ID]` and `preflight checks [ID]`: the catalogue and the checks, listed or in full."""

from __future__ import annotations

import difflib
import inspect
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from preflight.causes import Cause, load_catalogue
from preflight.errors import InputError
from preflight.output import color_enabled, write_text
from preflight.providers import Provider, Registry
from preflight.wrap import width, wrap


def _table(title: str, columns: list[str], rows: list[list[str]], output: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for i, c in enumerate(columns):
        # Ids never wrap; the other columns wrap between words.
        table.add_column(c, no_wrap=i == 0, overflow="ellipsis" if i == 0 else "fold")
    for r in rows:
        table.add_row(*r)
    if output is None:
        Console(width=width(), no_color=not color_enabled(), highlight=False).print(table)
        return
    buffer = io.StringIO()
    Console(width=width(), no_color=True, highlight=False, file=buffer).print(table)
    write_text(buffer.getvalue(), output)


def _unknown(kind: str, wanted: str, known: Sequence[str]) -> InputError:
    close = difflib.get_close_matches(wanted, known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else f"; `preflight {kind}s` lists them"
    return InputError(f"{wanted!r} is not a known {kind}{hint}")


def _cause_dict(c: Cause) -> dict[str, Any]:
    return {"id": c.id, "layer": c.layer, "title": c.title, "explanation": c.explanation,
            "remediation": c.remediation, "docs": c.docs}


def _cause_text(c: Cause, checks: list[str], keys: list[str]) -> str:
    out = [c.title, f"id: {c.id}   layer: {c.layer}", "", wrap(c.explanation), ""]
    for key in keys:
        if key in c.remediation:
            out.append(wrap(c.remediation[key].replace("{subject}", "<mailbox>"), indent="  ",
                            first=f"Fix ({key}): "))
    if c.docs:
        out += ["", "Docs:", *(f"  {d}" for d in c.docs)]
    if checks:
        out += ["", wrap(", ".join(checks), indent="  ", first="Checks that report it: ")]
    if c.patterns:
        out += ["", f"`preflight explain` recognises it by {len(c.patterns)} error pattern(s)."]
    return "\n".join(out) + "\n"


def list_causes(fmt: str, cause_id: str | None = None, output: Path | None = None,
                registry: Callable[[], Registry] = Registry.from_entry_points) -> None:
    cat = load_catalogue()
    if cause_id is not None:
        if cause_id not in cat:
            raise _unknown("cause", cause_id, [c.id for c in cat.causes])
        cause = cat.get(cause_id)
        if fmt == "json":
            write_text(json.dumps(_cause_dict(cause), indent=2) + "\n", output)
            return
        checks = [c.id for p in registry().all() for c in p.checks() if c.cause == cause_id]
        write_text(_cause_text(cause, checks, cat.remediation_keys), output)
        return
    if fmt == "json":
        write_text(json.dumps([_cause_dict(c) for c in cat.causes], indent=2) + "\n", output)
        return
    _table("Cause catalogue", ["id", "layer", "title"], [[c.id, c.layer, c.title] for c in cat.causes], output)


def _check_rows(registry: Registry) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "provider": p.name, "scope": c.scope, "methods": [m.value for m in c.methods],
         "cause": c.cause, "severity": c.severity.value, "title": c.title, "reads": list(c.reads),
         "description": inspect.getdoc(c.func) or ""}
        for p in registry.all()
        for c in p.checks()
    ]


def list_checks(registry: Registry, fmt: str, check_id: str | None = None, output: Path | None = None) -> None:
    rows = _check_rows(registry)
    if check_id is not None:
        found = [r for r in rows if r["id"] == check_id]
        if not found:
            raise _unknown("check", check_id, [r["id"] for r in rows])
        row = found[0]
        if fmt == "json":
            write_text(json.dumps(row, indent=2, allow_nan=False) + "\n", output)
            return
        out = [row["title"], f"id: {row['id']}   provider: {row['provider']}   scope: {row['scope']}   "
               f"severity: {row['severity']}", wrap(", ".join(row["methods"]), indent="  ", first="Methods: ")]
        if row["cause"]:
            out.append(f"Cause: {row['cause']} (`preflight causes {row['cause']}` shows its fix)")
        if row["reads"]:
            out.append(wrap(", ".join(row["reads"]), indent="  ", first="Reads: "))
        if row["description"]:
            out += ["", wrap(" ".join(row["description"].split()))]
        write_text("\n".join(out) + "\n", output)
        return
    if fmt == "json":
        write_text(json.dumps([{k: v for k, v in r.items() if k != "description"} for r in rows], indent=2) + "\n",
                   output)
        return
    # A list, not a table: check ids and cause ids are long, and neither may be split across lines.
    out = []
    for r in rows:
        out.append(f"{r['id']}  ({r['provider']}, {', '.join(r['methods'])})")
        out.append(wrap(r["title"] + (f" -> {r['cause']}" if r["cause"] else ""), indent="    "))
    write_text("\n".join(out) + "\n", output)


def _hooks(provider: Provider) -> list[str]:
    from preflight import providers as contract

    return [h.__name__ for h in contract.OPTIONAL_HOOKS if isinstance(provider, h)]


def list_providers(registry: Registry, fmt: str, output: Path | None = None) -> None:
    """The installed provider plugins: name, title, how many checks, which optional hooks they implement."""
    found = [(p, len(p.checks()), _hooks(p)) for p in registry.all()]
    if fmt == "json":
        rows = [{"name": p.name, "title": p.title, "checks": n, "hooks": hooks} for p, n, hooks in found]
        write_text(json.dumps(rows, indent=2) + "\n", output)
        return
    _table("Providers (entry-point group preflight.providers)", ["name", "title", "checks", "optional hooks"],
           [[p.name, p.title, str(n), ", ".join(hooks) or "none"] for p, n, hooks in found], output)
