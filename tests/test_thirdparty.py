"""A third provider the core has never heard of (tests/thirdparty/tinymail.py), installed the way any plugin
is: a dist-info with an entry point in the `preflight.providers` group on sys.path, found by
importlib.metadata. It is listed, evaluated, reported in every format and audited; and no module of the
core names a provider (test_the_core_names_no_provider)."""

from __future__ import annotations

import ast
import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from preflight.cli import main
from preflight.output import Format
from preflight.providers import Registry
from tests.thirdparty.tinymail import NAME, TITLE, snapshot

CORE = Path(__file__).resolve().parents[1] / "preflight"


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TinyMail installed as a distribution of its own; nothing in preflight's registry is patched."""
    dist = tmp_path / "site" / "tinymail_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tinymail-plugin\nVersion: 1.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(f"[preflight.providers]\n{NAME} = tests.thirdparty.tinymail:provider\n",
                                           encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("NO_COLOR", "1")


def run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(args)
    return int(info.value.code or 0)


def snap_file(folder: Path, **kw: Any) -> Path:
    path = folder / "tinymail-snapshot.json"
    path.write_text(json.dumps(snapshot(**kw)), encoding="utf-8")
    return path


def test_it_is_found_through_its_entry_point_only(installed: None) -> None:
    registry = Registry.from_entry_points()
    assert NAME in registry.names and registry.title(NAME) == TITLE
    assert {"microsoft", "google"} <= set(registry.names)  # the first-party plugins, registered the same way


def test_it_is_listed(installed: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["providers", "--format", "json"]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert listed[NAME]["title"] == TITLE and listed[NAME]["checks"] == 2 and listed[NAME]["hooks"] == []
    assert run(["checks", "--format", "json"]) == 0
    mine = [c for c in json.loads(capsys.readouterr().out) if c["provider"] == NAME]
    assert {c["id"] for c in mine} == {"tinymail.sending-paused", "tinymail.account-enabled"}
    assert run(["checks", "tinymail.account-enabled"]) == 0
    assert "provider: tinymail" in capsys.readouterr().out
    assert run(["causes", "account-disabled"]) == 0
    assert "tinymail.account-enabled" in capsys.readouterr().out  # "checks that report it"


def test_it_is_evaluated_with_honest_verdicts(installed: None, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    assert run(["evaluate", str(snap_file(tmp_path)), "--format", "json", "--output", str(out)]) == 1
    target = json.loads(out.read_text(encoding="utf-8"))["targets"][0]
    assert (target["provider"], target["tenant"]) == (NAME, "tiny.example")
    verdicts = {m["address"]: (m["verdict"], m["blocking"]) for m in target["mailboxes"]}
    assert verdicts == {"ready@tiny.example": ("ready", []), "off@tiny.example": ("blocked", ["account-disabled"]),
                        "unread@tiny.example": ("incomplete", [])}
    unread = next(f for f in target["findings"] if f["subject"] == "unread@tiny.example")
    assert unread["status"] == "unknown" and "TinyMail admin role Reader" in unread["message"]
    # A paused tenant blocks every mailbox, the unreadable one included: a failure beats an unknown.
    paused = tmp_path / "paused"
    paused.mkdir()
    assert run(["evaluate", str(snap_file(paused, paused=True)), "--format", "json", "--output", str(out)]) == 1
    blocking = {m["address"]: m["blocking"][0] for m in json.loads(out.read_text(encoding="utf-8"))["targets"][0][
        "mailboxes"]}
    assert set(blocking.values()) == {"tenant-sending-blocked"}


@pytest.mark.parametrize("fmt", [f.value for f in Format])
def test_it_is_reported_in_every_format(installed: None, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"report.{fmt}"
    assert run(["evaluate", str(snap_file(tmp_path)), "--format", fmt, "--output", str(out)]) == 1
    text = out.read_text(encoding="utf-8")
    assert "off@tiny.example" in text
    if fmt == "html":
        assert TITLE in text  # the provider's own title, from its plugin
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        assert any(r.get("check") == "tinymail.account-enabled" and r.get("status") == "fail" for r in rows)
    elif fmt == "json":
        assert json.loads(text)["targets"][0]["provider"] == NAME
    else:
        assert "account-enabled" in text or "The account can sign in" in text


def test_it_is_audited_from_a_snapshot(installed: None, tmp_path: Path) -> None:
    snap = snap_file(tmp_path)
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(f'[customer.tiny]\nname = "Tiny Co"\nprovider = "{NAME}"\nsnapshot = "{snap.name}"\n',
                         encoding="utf-8")
    folder = tmp_path / "audit"
    assert run(["audit", str(inventory), "--output-dir", str(folder)]) == 1
    written = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    reports = [p for name, p in written.items() if name.endswith(".json") and "report" in name]
    assert reports, sorted(written)
    found = [json.loads(p.read_text(encoding="utf-8")) for p in reports]
    targets = [t for r in found if isinstance(r, dict) for t in r.get("targets", [])]
    assert targets and all(t["provider"] == NAME for t in targets)
    assert any(TITLE in p.read_text(encoding="utf-8") for name, p in written.items() if name.endswith(".html"))


# -- the core names no provider ------------------------------------------------------------------------------

# Provider names and the words that stand for one (their products, hosts, error prefixes, short forms).
NAMES = ("microsoft", "google", "gmail", "outlook", "office365", "entra", "gsmtp", "aadsts", "azure", NAME)
SHORT = ("ms", "gw")  # an identifier of its own or its first part (ms_fake, GW_SCOPES; elapsed_ms is milliseconds)
CODE_STRING = re.compile("|".join(NAMES) + r"|^preflight_providers\b|^(?:ms|gw)$", re.IGNORECASE)


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _identifiers(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.keyword) and node.arg:
        return [node.arg]
    if isinstance(node, ast.alias):
        return [node.name, node.asname or ""]
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    return []


def names_in_code(source: str) -> list[str]:
    """Where a provider is named as code. The rule: identifiers (variables, attributes, functions, classes,
    arguments, imported modules) never name one, and neither does a string that is code: one without
    whitespace (a key, an id, a module path, a host) or with a backslash (a regex). Docstrings, comments and
    prose strings (messages, help texts: words separated by spaces) may name providers: they are read by
    people, and the facts they state about a provider live in that provider's package or in data files."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        for ident in _identifiers(node):
            first = next((p for p in re.split(r"[_.]", ident.lower()) if p), "")
            if any(n in ident.lower() for n in NAMES) or first in SHORT or "preflight_providers" in ident:
                found.append(f"line {getattr(node, 'lineno', '?')}: identifier {ident}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value
            code = not re.search(r"\s", text) or "\\" in text
            if code and CODE_STRING.search(text):
                found.append(f"line {node.lineno}: string {text[:60]!r}")
    return found


def test_the_rule_catches_what_it_should() -> None:
    assert names_in_code('if provider == "microsoft":\n    pass\n')
    assert names_in_code('import_module("preflight_providers.google.run")\n')
    assert names_in_code("def _google(): ...\n")
    assert names_in_code('PATTERN = r"outlook\\.com|exchange online"\n')
    assert names_in_code("ms = 1\n")
    assert not names_in_code('"""Microsoft 365 and Google Workspace."""\nHELP = "microsoft or google: whose fixes"\n')
    assert not names_in_code("# google\nitems = 1\n")


def test_the_core_names_no_provider() -> None:
    found = {str(p.relative_to(CORE)): names_in_code(p.read_text(encoding="utf-8")) for p in sorted(CORE.rglob("*.py"))}
    assert {k: v for k, v in found.items() if v} == {}
