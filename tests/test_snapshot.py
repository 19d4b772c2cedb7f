from __future__ import annotations

import json
from pathlib import Path

import pytest

from preflight import snapshot as snap_io
from preflight.errors import InputError
from preflight.model import Method


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
    snap = snap_io.parse(minimal())
    assert snap.org_resource("securityDefaults")["isEnabled"] is True
    with pytest.raises(snap_io.Unavailable, match="403 Forbidden: denied"):
        snap.org_resource("transportConfig")
    with pytest.raises(snap_io.Unavailable, match="not collected"):
        snap.org_resource("namedLocations")
    with pytest.raises(snap_io.Unavailable, match="casMailbox of jobs@contoso.com"):
        snap.mailbox_resource("jobs@contoso.com", "casMailbox")


def test_a_payload_with_an_error_field_among_others_is_data_not_an_error() -> None:
    assert snap_io.error_of({"error": {"code": 1}, "value": []}) is None
    assert snap_io.error_of({"error": {"status": 404}}) == {"status": 404}


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
