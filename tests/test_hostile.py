"""Hostile input: property-based tests that parsers raise only their documented error, never a traceback."""

from __future__ import annotations

import contextlib
import json
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preflight.audit.inventory import load_inventory
from preflight.causes import load_catalogue
from preflight.errors import InputError
from preflight.explain import explain, parse_reply
from preflight.snapshot import load, parse

pytestmark = pytest.mark.slow

CATALOGUE = load_catalogue()
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
SMTPISH = st.lists(
    st.sampled_from(["535", "-", " ", "5.7.", "8", "139", "334 ", "\n", "b'", "'", "(", ")", ",", "[", "]", "eyJ", "==",
                     "Authentication unsuccessful", "AADSTS", "gsmtp", "\\r\\n", "Expected response code", '"']),
    max_size=60,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=500), SMTPISH))
def test_explain_never_raises_and_ranks_sanely(text: str) -> None:
    result = explain(text, CATALOGUE)
    confidences = [m.confidence for m in result.matches]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0 < c <= 1 for c in confidences)
    assert len({m.cause for m in result.matches}) == len(result.matches)
    json.dumps(result.to_dict())
    parse_reply(text)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_snapshot_parser_raises_only_input_error(data: object) -> None:
    try:
        parse(data, "fuzz")
    except InputError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["schema", "provider", "tenant", "options", "org", "mailboxes"]), JSON))
def test_snapshot_parser_with_plausible_keys(data: dict[str, object]) -> None:
    data.setdefault("schema", "preflight.snapshot/v1")
    with contextlib.suppress(InputError):
        parse(data, "fuzz")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=400))
def test_inventory_loader_raises_only_input_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "inv.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_inventory(path, ["microsoft", "google"], warn=lambda _m: None)
    except InputError as exc:
        assert "\n" not in str(exc).strip()


def test_a_huge_snapshot_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as fh:  # 50 MB, sparse: costs no disk
        fh.seek(50 * 1024 * 1024)
        fh.write(b"}")
    tracemalloc.start()
    with pytest.raises(InputError, match="larger than a snapshot can be"):
        load(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5 * 1024 * 1024


def test_a_huge_error_text_is_handled_in_bounded_memory() -> None:
    text = ("535-5.7.8 Username and Password not accepted. " * 250_000)[: 10 * 1024 * 1024]
    tracemalloc.start()
    result = explain(text, CATALOGUE)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.matches and result.matches[0].cause == "wrong-credentials"
    assert peak < 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@settings(max_examples=300, deadline=None)
@given(
    header=st.one_of(st.binary(max_size=40), JSON.map(lambda v: json.dumps(v).encode())),
    claims=st.one_of(st.binary(max_size=80), JSON.map(lambda v: json.dumps(v).encode()),
                     st.dictionaries(st.sampled_from(["aud", "exp", "nbf", "scp", "roles", "upn", "tid", "iss"]),
                                     JSON, max_size=6).map(lambda v: json.dumps(v).encode())),
    user=st.one_of(st.none(), st.text(max_size=30)),
    provider=st.sampled_from([None, "microsoft", "google"]),
)
def test_jwt_linter_never_raises(header: bytes, claims: bytes, user: str | None, provider: str | None) -> None:
    from datetime import UTC, datetime

    from preflight.probe.token import lint

    token = f"{_b64(header)}.{_b64(claims)}.c2ln"
    result = lint(token, user, provider, datetime(2026, 11, 26, tzinfo=UTC))
    assert "c2ln" not in repr(result)  # the linter reports claims, never the token itself
