"""Hashes of every output preflight renders, to show a renderer change leaves every byte as it was.

Usage: python benchmarks/render_hashes.py [--out FILE] [--verbose]

Every fixture snapshot of the tests (tests/**/fixtures/*.json that parse as snapshots), the providers' demo
tenants, the two benchmark tenants and a few hostile variants (markup, control characters, non-ASCII, long
values in names and payloads), each evaluated at two dates, rendered through each report format (json,
html, markdown, csv, junit, table plain and in colour), alone and all in one report, and through an audit:
every tenant's own files and its share of the consolidated files (render_tenant), the consolidated files as
the audit writes them from the shares and as write_consolidated renders them from the runs, and the
snapshot files. Prints one line per output, "sha256  name", and at the end the hash of all of them: run it
with two installations (python of each venv; the preflight the venv imports is the one measured) and diff.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
import tempfile
from dataclasses import fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import preflight

ROOT = Path(preflight.__file__).resolve().parent.parent  # the installation measured, not this file's
sys.path.insert(0, str(ROOT))

from benchmarks.audit import workspace_snapshot  # noqa: E402
from benchmarks.microsoft import tenant_snapshot  # noqa: E402
from preflight import pipeline  # noqa: E402
from preflight import snapshot as snap_io  # noqa: E402
from preflight.audit.inventory import Customer  # noqa: E402
from preflight.audit.output import Consolidated, render_tenant, write_consolidated, write_tenant  # noqa: E402
from preflight.audit.runner import TenantRun  # noqa: E402
from preflight.causes import load_catalogue  # noqa: E402
from preflight.engine import Exception_  # noqa: E402
from preflight.model import Method  # noqa: E402
from preflight.output import make_report  # noqa: E402
from preflight.providers import Registry  # noqa: E402
from preflight.report import FORMATS, render  # noqa: E402
from preflight.report.common import Labels  # noqa: E402

DATES = (datetime(2026, 11, 26, 12, tzinfo=UTC), datetime(2027, 9, 3, 8, 30, tzinfo=UTC))
GENERATED = datetime(2026, 12, 4, 16, 45, 12, tzinfo=UTC)
NASTY = "<b>Ünïcødé & \"quotes\" 'x'</b>\x1b[31m\ttab\u2028\x00|pipe|*md* `tick` =cmd()\r\n"


def _nasty(data: dict[str, Any], n: int) -> dict[str, Any]:
    """The snapshot with hostile text in its tenant's name and in every string of its first mailbox's data."""
    data = copy.deepcopy(data)
    tenant = data.setdefault("tenant", {})
    if isinstance(tenant, dict):
        tenant["name"] = NASTY + str(n)

    def spoil(value: Any) -> Any:
        if isinstance(value, str):
            return value + NASTY[n % len(NASTY):] + "x" * (n * 50)
        if isinstance(value, list):
            return [spoil(v) for v in value]
        if isinstance(value, dict):
            return {k: spoil(v) for k, v in value.items()}
        return value

    boxes = data.get("mailboxes")
    if isinstance(boxes, dict) and boxes:
        first = next(iter(boxes))
        boxes[first] = spoil(boxes[first])
    return data


def snapshots() -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(ROOT.glob("tests/**/fixtures/**/*.json")):
        found.append((str(path.relative_to(ROOT)), json.loads(path.read_text(encoding="utf-8"))))
    registry = Registry.from_entry_points()
    for provider in registry.all():
        for item in provider.demo_snapshots():
            found.append((f"demo/{provider.name}/{item.name}", json.loads(item.read_text(encoding="utf-8"))))
    microsoft = tenant_snapshot(20)
    microsoft["options"]["methods"] = [Method.BASIC.value, Method.OAUTH_APP.value]
    found.append(("bench/microsoft", microsoft))
    found.append(("bench/google", workspace_snapshot(20)))
    for n, name in enumerate(("tests/microsoft/fixtures/sign-ins.json", "tests/microsoft/fixtures/several-layers.json",
                              "tests/google/fixtures/gmail_group_override.json")):
        for label, data in list(found):
            if label == name:
                found.append((f"nasty{n}/{name}", _nasty(data, n)))
    return found


class Hashes:
    def __init__(self, verbose: bool) -> None:
        self.lines: list[str] = []
        self.verbose = verbose

    def add(self, name: str, data: str | bytes) -> None:
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        self.lines.append(f"{hashlib.sha256(raw).hexdigest()}  {name}")


def _stable(value: Any) -> Any:
    """A dataclass as a tuple of its fields, sets and mappings sorted: their order is no output's (a set's
    follows the hash seed)."""
    return tuple(sorted(v) if isinstance(v, frozenset | set) else sorted(v.items()) if isinstance(v, dict) else v
                 for v in (getattr(value, f.name) for f in fields(value)))


def _folder(hashes: Hashes, label: str, folder: Path) -> None:
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        hashes.add(f"{label}/{path.relative_to(folder)}", path.read_bytes())


def _exceptions(result: Any) -> tuple[Exception_, ...]:
    """An exception for a failing check that holds, one that expired, one for a mailbox: notices and accepted."""
    failing = [f for f in result.findings if f.status.value in ("fail", "warn")]
    out = [Exception_("no-such-check", "kept for the notice", None, date(2026, 1, 1))]
    if failing:
        out.append(Exception_(failing[0].check, "accepted <risk> & co", None, date(2027, 1, 1)))
        out.append(Exception_(failing[-1].cause or failing[-1].check, "old", failing[-1].subject, date(2026, 6, 1)))
    return tuple(out)


def main() -> None:
    if os.environ.get("PYTHONHASHSEED") != "0":  # a set's order (a MatrixRow's causes) follows the hash seed
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    registry = Registry.from_entry_points()
    catalogue = load_catalogue()
    labels = Labels.of(registry, catalogue)
    hashes = Hashes(args.verbose)
    parsed = []
    for label, data in snapshots():
        try:
            snap = snap_io.parse(copy.deepcopy(data), label)
            registry.get(snap.provider)
        except Exception as exc:
            hashes.add(f"{label}/refused", f"{type(exc).__name__}: {exc}")
            continue
        parsed.append((label, snap))
        hashes.add(f"{label}/snapshot.json", snap_io.dumps(snap))
    for now in DATES:
        stamp = now.date().isoformat()
        results, runs = [], []
        for n, (label, snap) in enumerate(parsed):
            provider = registry.get(snap.provider)
            plain = pipeline.evaluate_snapshot(snap, provider, now, None, (), catalogue)
            excepted = _exceptions(plain)
            name = str(snap.to_dict().get("tenant", {}).get("name") or label)
            result = pipeline.evaluate_snapshot(snap, provider, now, name, excepted, catalogue)
            results.append(result)
            report = make_report([result], GENERATED)
            for fmt in FORMATS:
                hashes.add(f"{stamp}/{label}/report.{fmt}", render(report, fmt))
            hashes.add(f"{stamp}/{label}/report.table-color", render(report, "table", color=True, width=100))
            customer = Customer(key=f"c{n:03d}", name=name, provider=snap.provider, settings={},
                                mailboxes=tuple(snap.to_dict().get("mailboxes", {})), methods=tuple(Method),
                                exceptions=excepted)
            run = TenantRun(customer, result, snap if n % 3 else None, 1.5)
            runs.append(run)
            rendered = render_tenant(run, now, GENERATED, labels, fail_on="warn" if n % 2 else "fail")
            for file, text in rendered.files.items():
                hashes.add(f"{stamp}/{label}/audit/{file}", text)
            for part, text in rendered.share.texts.items():
                hashes.add(f"{stamp}/{label}/share/{part}", text)
            share = rendered.share
            rest = (share.key, share.named.to_dict(), share.verdicts, share.status, share.accepted, _stable(share.row),
                    share.expired, share.basic, share.basic_rows, rendered.verdicts, rendered.code)
            hashes.add(f"{stamp}/{label}/share/rest", repr(rest))
        everything = make_report(results, GENERATED)
        for fmt in FORMATS:
            hashes.add(f"{stamp}/all/report.{fmt}", render(everything, fmt))
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            for subset, chosen in (("all", runs), ("one", runs[:1]), ("none", [])):
                for interrupted in (False, True):
                    where = out / f"from-runs-{subset}-{interrupted}"
                    write_consolidated(chosen, where, now, interrupted, GENERATED)
                    _folder(hashes, f"{stamp}/consolidated/{where.name}", where)
            where = out / "from-shares"
            with Consolidated(where, now, GENERATED, labels) as files:
                for i, run in reversed(list(enumerate(runs))):  # as tenants finish: out of order
                    files.add(render_tenant(run, now, GENERATED, labels).share, i)
                    write_tenant(run, where, now, GENERATED, labels=labels)
                files.write(False, positions=set(range(0, len(runs), 2)))
            _folder(hashes, f"{stamp}/consolidated/{where.name}", where)
    total = hashlib.sha256("\n".join(hashes.lines).encode()).hexdigest()
    text = "\n".join(hashes.lines) + f"\n{total}  ALL ({len(hashes.lines)} outputs)\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text if args.verbose else text.splitlines()[-1])


if __name__ == "__main__":
    main()
