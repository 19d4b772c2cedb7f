"""The JSON files' layout (preflight.jsontext) and what a tenant's files are rendered from: the same texts
whatever renders them, once per process what is per process."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from preflight import jsontext, pipeline
from preflight import snapshot as snap_io
from preflight.audit.inventory import Customer
from preflight.audit.output import tenant_files
from preflight.audit.runner import TenantRun
from preflight.causes import load_catalogue
from preflight.errors import InputError
from preflight.model import Finding, Report, Status
from preflight.output import make_report
from preflight.providers import Registry
from preflight.report import html, render
from preflight.report.common import Labels

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted((ROOT / "tests").glob("*/fixtures/*.json"))
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
TRICKY: list[Any] = [
    {}, [], 0, "", None, {"a": {}, "b": [], "c": [[]], "d": [{}]}, [1, 2.5, -0.0, 1e300, True, False, None],
    {"é": "naïve ☃ \u2028 \x00 \"quoted\" \\ </script>", "k": {"deep": [{"deeper": {"deepest": [1, [2, [3]]]}}]}},
    {7: "int key", 2.5: "float key", True: "bool key", None: "null key"},
]


def tenant(path: Path) -> TenantRun:
    snap = snap_io.load(path)
    registry = Registry.from_entry_points()
    result = pipeline.evaluate_snapshot(snap, registry.get(snap.provider), NOW, catalogue=load_catalogue())
    customer = Customer(key="c", name=snap.tenant_label, provider=snap.provider, settings={},
                        mailboxes=tuple(snap.mailboxes), methods=snap.options.methods)
    return TenantRun(customer, result, snap, 0.0)


@pytest.mark.parametrize("value", TRICKY + [json.loads(p.read_text(encoding="utf-8")) for p in FIXTURES[:12]])
@pytest.mark.parametrize("ascii_only", [True, False])
def test_deep_enough_it_is_json_dumps_indent_2_to_the_character(value: Any, ascii_only: bool) -> None:
    assert jsontext.dumps(value, 99, ensure_ascii=ascii_only) == \
        json.dumps(value, indent=2, ensure_ascii=ascii_only) + "\n"


@pytest.mark.parametrize("depth", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("value", TRICKY)
def test_any_depth_reads_back_as_the_same_value(value: Any, depth: int) -> None:
    text = jsontext.dumps(value, depth)
    assert json.loads(text) == json.loads(json.dumps(value)) and text.endswith("\n")
    assert all(len(line) - len(line.lstrip(" ")) <= 2 * depth for line in text.splitlines())


def _laid_out(value: Any, depth: int, newline: str = "\n") -> str:
    """The layout jsontext promises, spelled out slowly: indent=2 down to `depth`, json.dumps below it."""
    if depth <= 0 or not value or not isinstance(value, dict | list):
        return json.dumps(value)
    inner = newline + "  "
    if isinstance(value, dict):
        items = [json.dumps(k if isinstance(k, str) else json.dumps(k)) + ": " + _laid_out(v, depth - 1, inner)
                 for k, v in value.items()]
        return "{" + inner + ("," + inner).join(items) + newline + "}"
    return "[" + inner + ("," + inner).join(_laid_out(v, depth - 1, inner) for v in value) + newline + "]"


@pytest.mark.parametrize("depth", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("value", [*TRICKY, {"scalars": {"a": 1, "b": "x", "c": None, "d": (1, 2)}, "t": [(3, [4])]},
                                   *(json.loads(p.read_text(encoding="utf-8")) for p in FIXTURES[:12])])
def test_each_depth_is_laid_out_as_promised(value: Any, depth: int) -> None:
    """Its shortcuts (one C call for an object of scalars, a tuple written as an array) change no character."""
    assert jsontext.dumps(value, depth) == _laid_out(value, depth) + "\n"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("depth", [0, 3])
def test_nan_and_infinity_are_refused_at_any_depth(bad: float, depth: int) -> None:
    with pytest.raises(ValueError):
        jsontext.dumps({"a": [{"b": bad}]}, depth)
    with pytest.raises(ValueError):
        jsontext.dumps({bad: 1}, depth)


def test_keys_json_cannot_carry_are_refused() -> None:
    with pytest.raises(TypeError):
        jsontext.dumps({(1, 2): "tuple key"}, 2)


@pytest.mark.parametrize("depth", [0, 2, 9])
def test_a_value_holding_itself_is_refused_not_recursed_into(depth: int) -> None:
    loop: dict[str, Any] = {"a": [1]}
    loop["a"].append(loop)
    with pytest.raises(ValueError, match="Circular"):
        jsontext.dumps(loop, depth)


@pytest.mark.parametrize("depth", [0, 2])
def test_a_value_nested_too_deep_is_refused_as_json_dumps_refuses_it(depth: int) -> None:
    """The C encoders keep no record of the containers they are in: too deep, or holding itself, is told apart
    after the fact, and a value merely deep is still RecursionError, not taken for one holding itself."""
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(RecursionError):
        json.dumps(deep)
    with pytest.raises(RecursionError):
        jsontext.dumps({"a": deep}, depth)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_true_false_null_and_numbers_beside_containers_are_json_dumps_own(depth: int) -> None:
    value = {"x": {"b": True, "c": False, "n": None, "i": 1, "f": 1.0, "z": 0, "l": [True, 1], "d": {"e": None},
                   "big": 10**30, "neg": -0.0, "s": "true", "t": (), "u": {}}}
    assert jsontext.dumps(value, depth) == _laid_out(value, depth) + "\n"


def test_a_report_lists_one_verdict_and_one_finding_per_line() -> None:
    run = tenant(ROOT / "tests/microsoft/fixtures/several-layers.json")
    text = render(make_report([run.result], NOW), "json")
    data = json.loads(text)
    assert data == make_report([run.result], NOW).to_dict()
    lines = [line.strip().rstrip(",") for line in text.splitlines()]
    findings = [json.loads(line) for line in lines if line.startswith('{"check": ')]
    verdicts = [json.loads(line) for line in lines if line.startswith('{"address": ')]
    assert findings == data["targets"][0]["findings"] and verdicts == data["targets"][0]["mailboxes"]


def test_a_snapshot_file_reads_back_as_the_snapshot() -> None:
    snap = snap_io.load(ROOT / "tests/microsoft/fixtures/several-layers.json")
    text = snap_io.dumps(snap)
    assert snap_io.parse(json.loads(text)) == snap_io.parse(snap.to_dict())
    assert text.isascii()  # non-ASCII payload text is escaped, as before


def test_tenant_files_given_labels_read_no_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    run = tenant(ROOT / "tests/google/fixtures/gmail_group_override.json")
    labels = Labels.of(Registry.from_entry_points(), load_catalogue())
    expected = tenant_files(run, NOW)

    def refuse() -> Registry:
        raise AssertionError("the entry points were read again for one tenant's files")

    monkeypatch.setattr(Registry, "from_entry_points", refuse)
    assert tenant_files(run, NOW, labels=labels) == expected
    assert set(expected) == {"snapshot.json", "report.json", "report.html", "action-plan.md", "action-plan.csv"}


def test_the_html_page_is_the_same_in_every_run() -> None:
    """Source footnotes are numbered per target section, not by where an object happened to live in memory."""
    run = tenant(ROOT / "tests/microsoft/fixtures/several-layers.json")
    report: Report = make_report([run.result, run.result], NOW)
    page = html.render(report)
    assert 'href="#src-1-1"' in page and 'id="src-2-1"' in page
    assert page == html.render(make_report([run.result, run.result], NOW))


def test_html_escaping_is_the_same_with_or_without_its_shortcut() -> None:
    """e() skips the work for text with nothing to change; every character it must change still is."""
    from html import escape
    from itertools import product

    from preflight.report.common import clean

    alphabet = ["a", "&", "<", ">", '"', "'", "\r", "\n", "\t", "\x00", "\x1b", "\x7f", "\x85", "\x9f", "\xa0", "☃"]
    for chars in product(alphabet, repeat=2):
        text = "".join(chars)
        assert html.e(text) == escape(clean(text), quote=True)
    for value in (None, 7, 2.5, True, "plain text", "<b>bold</b>"):
        assert html.e(value) == escape(clean(value), quote=True)


def test_clean_is_the_same_with_or_without_its_shortcut() -> None:
    """clean() returns printable text as it is; any other text still has its controls replaced, CRLF folded."""
    from itertools import product

    from preflight.report.common import _CONTROL, clean

    alphabet = ["a", " ", "\r", "\n", "\t", "\x00", "\x1b", "\x7f", "\x85", "\x9f", "\xa0", "\u2028", "\u3000", "☃"]
    for chars in product(alphabet, repeat=3):
        text = "".join(chars)
        assert clean(text) == _CONTROL.sub("\ufffd", text.replace("\r\n", "\n")), repr(text)
    for value in (None, 7, 2.5, True, "plain", "a\r\nb"):
        assert clean(value) == _CONTROL.sub("\ufffd", str(value).replace("\r\n", "\n"))


def test_one_line_is_the_same_with_or_without_its_shortcut() -> None:
    """one_line() returns text already on one line as it is; any other text is still cleaned and folded."""
    from itertools import product

    from preflight.report.common import clean, one_line

    alphabet = ["a", " ", "\r", "\n", "\t", "\x00", "\x1b", "\x7f", "\x85", "\xa0", "\u2028", "\u3000", "☃"]
    for chars in product(alphabet, repeat=3):
        text = "".join(chars)
        assert one_line(text) == " ".join(clean(text).split()), repr(text)
    for value in (None, 7, 2.5, True, " padded ", "two  spaces"):
        assert one_line(value) == " ".join(clean(value).split())


def _loadable(paths: list[Path]) -> list[TenantRun]:
    runs = []
    for path in paths:
        try:
            runs.append(tenant(path))
        except InputError:
            continue  # a fixture of a malformed snapshot, for the loader's own tests
    return runs


def test_the_action_plan_names_the_verdicts_each_change_bears_on() -> None:
    """Each change unblocks the verdicts whose relevant findings include one of its own (in the target's order),
    and alone turns ready those whose open findings are all its own: checked against relevant() itself."""
    from preflight.report.common import relevant
    from preflight.report.plan import OAuthMove, build

    for run in _loadable(FIXTURES):
        t = run.result
        for step in build(t, load_catalogue()).steps:
            for change in step.resolves if isinstance(step, OAuthMove) else (step,):
                mine = {id(f) for f in change.findings}
                bearing = [(mv, [f for f in relevant(t, mv) if f.status in (Status.FAIL, Status.WARN,
                                                                                Status.UNKNOWN) and not f.accepted])
                           for mv in t.mailboxes]
                touched = [mv for mv, found in bearing if any(id(f) in mine for f in found)]
                ready = [mv for mv, found in bearing if found and all(id(f) in mine for f in found)]
                assert change.unblocks == tuple((mv.address, mv.method) for mv in touched), change.cause
                assert change.ready == tuple((mv.address, mv.method) for mv in ready), change.cause


def test_findings_alike_but_for_their_method_are_one_entry() -> None:
    from dataclasses import replace

    from preflight.model import Method
    from preflight.report.common import Entry, merged

    def folded(findings: list[Finding]) -> list[Entry]:  # the definition, spelled out
        entries: list[Entry] = []
        for f in findings:
            for i, entry in enumerate(entries):
                if f.method and entry.methods and replace(entry.finding, method=f.method) == f:
                    listed = (*entry.methods, f.method)
                    entries[i] = Entry(entry.finding, tuple(m for m in Method if m in listed))
                    break
            else:
                entries.append(Entry(f, (f.method,) if f.method else ()))
        return entries

    runs = _loadable(FIXTURES)
    assert any(len(merged(r.result.findings)) < len(r.result.findings) for r in runs)  # some do fold
    for run in runs:
        assert merged(run.result.findings) == folded(run.result.findings)
    basic = runs[0].result.findings[0]
    basic = replace(basic, method=Method.BASIC, evidence={"seen": 1}, subject="a@example.com")
    others = [replace(basic, method=Method.OAUTH_APP), replace(basic, method=Method.OAUTH_DELEGATED, evidence={}),
              replace(basic, method=None), replace(basic, method=Method.OAUTH_DELEGATED, remediation="other"),
              replace(basic, method=Method.OAUTH_DELEGATED)]
    assert [e.methods for e in merged([basic, *others])] == [
        (Method.BASIC, Method.OAUTH_DELEGATED, Method.OAUTH_APP), (Method.OAUTH_DELEGATED,), (),
        (Method.OAUTH_DELEGATED,)]
    assert merged([basic, *others]) == folded([basic, *others])


def test_a_findings_line_is_the_c_encoders_whatever_its_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """report.json writes a finding's line itself (report.json.FINDING_KEYS): the C encoder's text for any value
    in any field, and what the encoder refuses refused alike; a dict of other keys is left to the encoder."""
    from preflight.report import json as report_json

    run = tenant(ROOT / "tests/microsoft/fixtures/several-layers.json")
    finding = run.result.findings[0].to_dict()
    written: list[str | None] = []
    monkeypatch.setattr(report_json._FindingLines, "__call__", lambda self, d, call=report_json._FindingLines.__call__:
                        written.append(call(self, d)) or written[-1])
    report_json.target_text(run.result.to_dict())
    # the fast way is the one a report takes: every finding's line written by it
    assert len(written) == len(run.result.findings) + len(run.result.mailboxes) and \
        sum(1 for w in written if w is not None) == len(run.result.findings)
    monkeypatch.undo()

    def generic(findings: list[Any]) -> str:
        return jsontext.dumps({"findings": findings}, 2, ensure_ascii=False)[:-1].replace("\n", "\n    ")

    values: list[Any] = [None, "x", "é ☃ \u2028 \x00 \"q\" \\ </script>", 1, 1.5, -0.0, True, False, 10**30, [],
                         {}, (1, "t"), [1, {"b": None}], {"k": [True, None]}, {1: "int key"}]
    for key in report_json.FINDING_KEYS:
        for value in values:
            changed = {**finding, key: value}
            findings = [changed, finding, changed]
            assert report_json.target_text({"findings": findings}) == generic(findings), (key, value)
        for equal in ((True, 1, 1.0), (False, 0, 0.0, -0.0), ("1", 1)):  # equal as keys, not as JSON
            findings = [{**finding, key: value} for value in (*equal, *reversed(equal))]
            assert report_json.target_text({"findings": findings}) == generic(findings), (key, equal)
        for bad, error in ((math.nan, ValueError), (object(), TypeError), ({"a": math.inf}, ValueError)):
            with pytest.raises(error):
                report_json.target_text({"findings": [{**finding, key: bad}]})
    reordered = {k: finding[k] for k in reversed(report_json.FINDING_KEYS)}
    fewer = {k: v for k, v in finding.items() if k != "accepted"}
    assert report_json.target_text({"findings": [reordered, fewer]}) == generic([reordered, fewer])


def test_a_targets_text_from_its_findings_fields_is_the_text_of_its_dict() -> None:
    """report.json.result_text writes the findings from their fields: the text target_text writes from to_dict,
    and what that refuses refused alike, with the same error."""
    from dataclasses import replace

    from preflight.report import json as report_json

    for run in _loadable(FIXTURES):
        assert report_json.result_text(run.result) == report_json.target_text(run.result.to_dict())
    result = tenant(ROOT / "tests/microsoft/fixtures/several-layers.json").result
    # the fields it writes, in to_dict's order: a field added to to_dict must be added there too
    assert tuple(result.mailboxes[0].to_dict()) == ("address", "method", "verdict", "blocking")
    assert tuple(result.findings[0].to_dict()) == report_json.FINDING_KEYS
    odd = [replace(mv, blocking=[1.5, None, "é\u2028"], address="<é>") for mv in result.mailboxes]
    assert report_json.result_text(replace(result, mailboxes=odd)) == \
        report_json.target_text(replace(result, mailboxes=odd).to_dict())
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    for evidence in ({"a": math.nan}, {"a": object()}, {"a": deep}, {"a": (1, {"b": None})}, {7: True}):
        changed = replace(result, findings=[replace(f, evidence=evidence) for f in result.findings[:3]])
        try:
            expected: Any = report_json.target_text(changed.to_dict())
        except (TypeError, ValueError, RecursionError) as exc:
            expected = (type(exc), str(exc))
        try:
            got: Any = report_json.result_text(changed)
        except (TypeError, ValueError, RecursionError) as exc:
            got = (type(exc), str(exc))
        assert got == expected, evidence
