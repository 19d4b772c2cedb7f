from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preflight import snapshot as snap_io
from preflight.errors import InputError
from preflight.model import Method
from preflight.resources import Resources
from preflight_providers.microsoft.resources import RESOURCES


def minimal(**over: object) -> dict[str, object]:
    data: dict[str, object] = {
        "schema": "preflight.snapshot/v1",
        "provider": "microsoft",
        "collected_at": "2026-11-26T10:00:00Z",
        "tenant": {"id": "t", "domain": "contoso.com"},
        "options": {"methods": ["basic"], "sender_ips": ["203.0.113.0/24"], "app_id": None},
        "org": {"securityDefaults": {"id": "00000000-0000-0000-0000-000000000005", "isEnabled": True},
                "transportConfig": {"error": {"status": 403, "code": "Forbidden", "message": "denied"}}},
        "mailboxes": {"Jobs@Contoso.com": {"user": {"userPrincipalName": "jobs@contoso.com"}}},
    }
    data.update(over)
    return data


def test_round_trip(tmp_path: Path) -> None:
    snap = snap_io.parse(minimal())
    assert snap.options.methods == (Method.BASIC,)
    assert list(snap.mailboxes) == ["jobs@contoso.com"]  # addresses are case-insensitive
    path = tmp_path / "s.json"
    snap_io.save(snap, path)
    again = snap_io.load(path)
    assert again.org == snap.org and again.mailboxes == snap.mailboxes and again.options == snap.options


def test_resources_and_recorded_errors() -> None:
    resources = Resources(snap_io.parse(minimal()), RESOURCES)
    assert resources.org("securityDefaults").raw["isEnabled"] is True
    with pytest.raises(snap_io.Unavailable, match="403 Forbidden: denied"):
        resources.org("transportConfig")
    with pytest.raises(snap_io.Unavailable, match="not collected"):
        resources.org("namedLocations")
    with pytest.raises(snap_io.Unavailable, match="casMailbox of jobs@contoso.com"):
        resources.mailbox("jobs@contoso.com", "casMailbox")


def test_one_error_reader_that_fails_closed() -> None:
    # No documented payload has a top-level `error` field: with other keys beside it, it is still an error,
    # never data (checks and collectors read it alike), and a string error is its message.
    assert snap_io.error_of({"error": {"code": 1}, "value": []}) == {"code": 1}
    assert snap_io.error_of({"error": {"status": 404}}) == {"status": 404}
    assert snap_io.error_of({"error": "Forbidden"}) == {"message": "Forbidden"}
    assert snap_io.error_of({"value": []}) is None
    assert snap_io.describe_error({"message": "x"}) == "x"
    assert snap_io.describe_error({}) == "an error record without status or message"
    assert snap_io.describe_error({"status": 403, "code": "Forbidden", "message": " no "}) == "403 Forbidden: no"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON at line 1"),
        ("[]", "expected a JSON object"),
        (json.dumps(minimal(schema="preflight.snapshot/v0")), "schema is 'preflight.snapshot/v0'"),
        (json.dumps(minimal(provider="")), "'provider' must be a non-empty string"),
        (json.dumps(minimal(mailboxes=[])), "'mailboxes' must be an object"),
        (json.dumps(minimal(options={"methods": ["carrier-pigeon"]})), "options.methods"),
        ("[" * 100000 + "]" * 100000, "nested too deeply"),
    ],
)
def test_bad_files_give_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        snap_io.load(path)
    assert "\n" not in str(info.value)


def test_unreadable_and_huge_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="cannot read file"):
        snap_io.load(tmp_path / "missing.json")
    big = tmp_path / "big.json"
    big.write_text(json.dumps(minimal()))
    monkeypatch.setattr(snap_io, "MAX_BYTES", 100)
    with pytest.raises(InputError, match="larger than a snapshot can be"):
        snap_io.load(big)


# -- Loaders refuse what cannot be represented (issue 11) ------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (json.dumps(minimal()).replace('"t"', "NaN", 1), "NaN is not a JSON number"),
        (json.dumps(minimal()).replace('"t"', "Infinity", 1), "Infinity is not a JSON number"),
        (json.dumps(minimal()).replace('"t"', "-Infinity", 1), "-Infinity is not a JSON number"),
        (json.dumps(minimal()).replace('"t"', "9" * 5000, 1), "an integer of 5000 digits"),
        (json.dumps(minimal()).replace('"t"', '"\\ud800"', 1), "lone surrogate"),
        (json.dumps(minimal()).replace('"contoso.com"', '"x\\udfffy"', 1), "lone surrogate"),
        (json.dumps(minimal(mailboxes={})), "'mailboxes' is empty"),
        (json.dumps(minimal(options={"methods": "basic"})), "options.methods must be a non-empty list"),
        (json.dumps(minimal(options={"methods": 5})), "options.methods must be a non-empty list"),
        (json.dumps(minimal(options={"methods": {"basic": True}})), "options.methods must be a non-empty list"),
        (json.dumps(minimal(options={"methods": []})), "options.methods must be a non-empty list"),
        (json.dumps(minimal(options={"methods": [["basic"]]})), "options.methods: list is not a sign-in method"),
        (json.dumps(minimal(options={"methods": [None]})), "options.methods: None is not a sign-in method"),
        (json.dumps(minimal(options={"methods": ["BASIC"]})), "options.methods: 'BASIC' is not a sign-in method"),
        (json.dumps(minimal(options={"sender_ips": "203.0.113.0/24"})), "options.sender_ips must be a list"),
        (json.dumps(minimal(options={"sender_ips": [5]})), "options.sender_ips must be a list"),
        (json.dumps(minimal(options={"app_id": 5})), "options.app_id must be a string"),
        (json.dumps(minimal(options={"from_addresses": {"a@b.c": 5}})), "options.from_addresses must be an object"),
    ],
)
def test_what_no_output_could_carry_is_refused_in_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(message)) as info:
        snap_io.load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [(float("nan"), "nan is not a JSON number"), (float("inf"), "inf is not a JSON number"),
     ("\udc80", "lone surrogate"), (10**5000, "more digits")],
    ids=["nan", "inf", "surrogate", "huge-int"],
)
def test_a_snapshot_built_in_memory_is_held_to_the_same_rules(value: object, message: str) -> None:
    # A collector's payloads come from requests' .json(), which accepts NaN: parse() checks them too.
    data = minimal()
    data["org"] = {"securityDefaults": {"isEnabled": True, "x": [value]}}
    with pytest.raises(InputError, match=message):
        snap_io.parse(data)


def test_repeated_methods_count_once_so_evaluation_stays_linear() -> None:
    # A 92 KB snapshot of repeated options.methods entries took 65 s: each entry ran every check again.
    snap = snap_io.parse(minimal(options={"methods": ["basic", "oauth-app", "basic"] * 10_000}))
    assert snap.options.methods == (Method.BASIC, Method.OAUTH_APP)


@pytest.mark.parametrize(
    "options",
    [{"methods": "basic"}, {"methods": 5}, {"methods": []}],
)
def test_evaluate_on_a_bad_snapshot_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: dict[str, object]
) -> None:
    from preflight.cli import main

    path = tmp_path / "s.json"
    path.write_text(json.dumps(minimal(options=options)), encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(path), "--format", "json"])
    out, err = capsys.readouterr()
    assert info.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err and out == ""


# --- the quick look for what no output could carry (issue 19): the same answer as the walk, always ------------

class _Text(str):
    pass


class _Number(int):
    pass


_ODD = [float("nan"), float("inf"), -float("inf"), 10**20, -(10**20), 10**20 - 1, "\ud800", "a\udfffb", "é\ud83d",
        "\ud83d\ude00", "é", "\u2603", _Text("x"), _Text("\udc80"), _Number(5), _Number(10**25), True, None, 1.5,
        (1, 2), b"x", 0, -0.0]
_leaves = st.one_of(st.sampled_from(_ODD), st.text(max_size=4), st.integers(), st.floats(), st.booleans())
_keys = st.one_of(st.text(max_size=4), st.sampled_from(["\ud800", "é", 10**21, 7, float("nan"), None, True, (1,)]))
_trees = st.recursive(_leaves, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                       st.dictionaries(_keys, inner, max_size=5)), max_leaves=40)


@settings(max_examples=600, deadline=None)
@given(_trees)
def test_the_quick_look_names_what_the_walk_names(tree: object) -> None:
    expected = snap_io._first_unrepresentable(tree)
    assert snap_io._unrepresentable(tree) == expected
    if snap_io._plainly_representable(tree):
        assert expected is None


def test_the_quick_look_joins_strings_in_bounded_batches() -> None:
    # More strings than one batch, the lone surrogate in a later batch: still found.
    many = ["x"] * (snap_io._FLUSH * 3) + ["\ud800"] + ["y"] * 10
    assert snap_io._unrepresentable({"a": many}) is not None
    assert snap_io._unrepresentable({"a": many[:-11]}) is None


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["tenant", "collected_at", "address", "resource name", "extra"]), st.sampled_from(_ODD[:10]),
       st.booleans())
def test_a_collected_snapshot_is_refused_for_what_lies_outside_its_payloads_as_one_look_at_all_refuses_it(
    where: str, value: object, garbled_payload: bool
) -> None:
    # parse_collected looks at each payload, then parse at the rest only: the same answer as looking at all of it
    # once the payloads are made error records (what parse_collected did before it skipped them).
    data = minimal()
    if where == "tenant":
        data["tenant"] = {"id": value}
    elif where == "collected_at":
        data["collected_at"] = value
    elif where == "address" and isinstance(value, str):
        data["mailboxes"] = {value: {"user": {}}}
    elif where == "resource name" and isinstance(value, str):
        data["org"] = {value: {}}
    else:
        data["zzz"] = [value]
    if garbled_payload:
        data["mailboxes"] = {**data["mailboxes"], "b@contoso.com": {"user": {"x": [float("inf")]}}}  # type: ignore
    reference = copy.deepcopy(data)
    for section in [reference["org"], *reference["mailboxes"].values()]:  # type: ignore[attr-defined]
        for key, payload in section.items():
            if snap_io._first_unrepresentable(payload) is not None:
                section[key] = {"error": "garbled"}
    assert _refusal(lambda: snap_io.parse_collected(data, "s")) == _refusal(lambda: snap_io.parse(reference, "s"))


def _refusal(parse: Callable[[], snap_io.Snapshot]) -> str | None:
    try:
        parse()
    except InputError as exc:
        return str(exc)
    return None
