"""The mailboxes' Directory reads go out as batch requests (multipart/mixed, providers.google.api.BatchHttp):
the snapshot is the one the reads on their own give, whatever the batch endpoint answers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from preflight.memo import RunMemo
from preflight_providers.google.collect import collect
from tests.google.fake import FakeGoogle, Reply, Workspace, sample_snapshot
from tests.google.test_collect import ADMIN, ALL, api_for, target

pytestmark = pytest.mark.slow

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
World = tuple[FakeGoogle, Workspace, Path]


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    ws = Workspace.from_snapshot(sample_snapshot())
    ws.add_admin(ADMIN)
    with FakeGoogle([ws], tmp_path) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_file))
        key = fake.key_file(tmp_path)
        ws.grant("104857600000000000001", ALL)
        yield fake, ws, key


def _snapshot(fake: FakeGoogle, key: Path, *, batching: bool, memo: RunMemo | None = None,
              **cfg: Any) -> dict[str, Any]:
    fake.batching = batching
    return collect(api_for(fake, key, [], memo=memo, **cfg), target(), now=lambda: NOW).snapshot


@pytest.mark.parametrize("page", [2, 200])  # 2: every member's groups take pages, read on their own
def test_a_batched_collection_is_the_one_read_request_by_request(world: World, page: int) -> None:
    fake, _, key = world
    alone = _snapshot(fake, key, batching=False, groups_page_size=page)
    fake.log.clear()
    assert _snapshot(fake, key, batching=True, groups_page_size=page) == alone
    batches = fake.seen("/batch/")
    assert 2 <= len(batches) <= 3  # users; groups, or groups and hasMember together
    parts = [s for s in fake.log if s.batched]
    assert {s.path for s in parts if s.path.startswith("/admin/directory/v1/users/")} == {
        "/admin/directory/v1/users/" + a for a in target().mailboxes}
    assert fake.exchanges == len(fake.log) - len(parts)
    # A users.get of a batch is logged by the fake as the GET it stands for: each mailbox's once, and again for
    # the two that are no user (404: an answer other than 200 is left to the GET on its own).
    assert len([s for s in fake.log if s.path.startswith("/admin/directory/v1/users/") and s.path.count("/") == 5
                and s.method == "GET"]) == len(target().mailboxes) + 2


def _tag(body: bytes) -> bytes:
    """Each part's body with a field the reads on their own never give: a part taken from a garbled reply shows."""
    return re.sub(rb"Content-Length: (\d+)\r\n\r\n\{",
                  lambda m: b'Content-Length: %d\r\n\r\n{"x": 1, ' % (int(m.group(1)) + 8), body)


def _reframe(edit: Callable[[bytes], bytes] = lambda b: b, ctype: str | None = None,
             tag: bool = True) -> Callable[[Reply], Reply]:
    def change(reply: Reply) -> Reply:
        assert isinstance(reply.body, bytes)
        headers = dict(reply.headers) if ctype is None else {"Content-Type": ctype}
        return Reply(reply.status, edit(_tag(reply.body) if tag else reply.body), headers)
    return change


def _each_part_twice(body: bytes) -> bytes:
    parts = body.removesuffix(b"--batch_fake--\r\n").split(b"--batch_fake\r\n")
    twice = [half for part in parts[1:] for half in (part.replace(b'"x": 1', b'"y": 2'), part)]
    return b"--batch_fake\r\n".join([parts[0], *twice]) + b"--batch_fake--\r\n"


GARBLED: dict[str, Callable[[Reply], Reply]] = {
    "server error": lambda r: Reply(503, {"error": {"code": 503, "message": "backend"}}),
    "not found": lambda r: Reply(404, {"error": {"code": 404, "message": "Not Found"}}),
    "an HTML page": lambda r: Reply(200, b"<html>hello</html>", {"Content-Type": "text/html"}),
    "JSON, not multipart": lambda r: Reply(200, {"kind": "admin#directory#user"}),
    "not multipart/mixed": _reframe(ctype="text/plain; boundary=batch_fake"),
    "another boundary": _reframe(ctype="multipart/mixed; boundary=other"),
    "no boundary": _reframe(ctype="multipart/mixed"),
    "cut short": _reframe(lambda b: b[: len(b) * 2 // 3]),
    "no closing delimiter": _reframe(lambda b: b.replace(b"--batch_fake--", b"")),
    "each part twice, differently": _reframe(_each_part_twice),
    "ids out of range": _reframe(lambda b: re.sub(rb"response-item(\d+)", rb"response-item9\1", b)),
    "no ids": _reframe(lambda b: b.replace(b"Content-ID", b"X-Id")),
    "two ids a part": _reframe(lambda b: re.sub(rb"(Content-ID: <response-item\d+>)", rb"\1\r\n\1", b)),
    "half-bracketed ids": _reframe(lambda b: re.sub(rb"<(response-item\d+)>", rb"<\1", b)),
    "lengths that do not match": _reframe(lambda b: re.sub(rb"Content-Length: (\d+)", rb"Content-Length: 1\1", b)),
    "two lengths a part": _reframe(lambda b: re.sub(rb"(Content-Length: \d+)", rb"\1\r\n\1", b)),
    "answers that are not 200": _reframe(lambda b: b.replace(b"HTTP/1.1 200 OK", b"HTTP/1.1 500 OK")),
    "no status lines": _reframe(lambda b: b.replace(b"HTTP/1.1 ", b"HTTX/1.1 ")),
    "bodies that are no JSON": _reframe(lambda b: b.replace(b'{"x"', b'{x"')),
    "bodies that are no objects": _reframe(lambda b: re.sub(rb"Content-Length: \d+\r\n\r\n\{[^\r]*",
                                                            b"Content-Length: 3\r\n\r\n[1]", b)),
    "bodies that carry an error": _reframe(lambda b: re.sub(
        rb'Content-Length: (\d+)\r\n\r\n\{"x": 1, ',
        lambda m: b'Content-Length: %d\r\n\r\n{"error": 1, "x": 1, ' % (int(m.group(1)) + 12), b)),
    "undecodable bytes": _reframe(lambda b: b.replace(b'"x"', b'"\xff"')),
    "LF line ends": _reframe(lambda b: b.replace(b"\r\n", b"\n")),
}


def test_a_well_framed_reply_is_taken_as_it_is(world: World) -> None:
    """The check that the garbled replies below can fail: the same parts, well framed, are taken (and show)."""
    fake, _, key = world
    fake.batch_reply = _reframe()
    snap = _snapshot(fake, key, batching=True)
    users = [rec["user"] for rec in snap["mailboxes"].values() if "userGroups" in rec]
    assert users and all(u.get("x") == 1 for u in users)


@pytest.mark.parametrize("garble", list(GARBLED), ids=list(GARBLED))
def test_a_garbled_batch_reply_changes_nothing(world: World, garble: str) -> None:
    fake, _, key = world
    alone = _snapshot(fake, key, batching=False)
    fake.batch_reply = GARBLED[garble]
    assert _snapshot(fake, key, batching=True) == alone
    assert fake.seen("/batch/")


@pytest.mark.parametrize("frame", [
    lambda b: re.sub(rb"<(response-item\d+)>", rb"\1", b),  # ids without the angle brackets
    lambda b: b.replace(b"\r\n--batch_fake", b"\r\n\r\n\r\n--batch_fake"),  # line ends after each body
], ids=["bare ids", "line ends after the bodies"])
def test_framing_google_may_use_is_answered(world: World, frame: Callable[[bytes], bytes]) -> None:
    fake, _, key = world
    alone = _snapshot(fake, key, batching=False)
    fake.batch_reply = _reframe(frame, tag=False)
    fake.log.clear()
    assert _snapshot(fake, key, batching=True) == alone
    assert len([s for s in fake.log if s.path.endswith("/users/jobs@acme.example")]) == 1  # from the batch


def test_the_parts_in_any_order_are_still_answered(world: World) -> None:
    fake, _, key = world
    alone = _snapshot(fake, key, batching=False)

    def reverse(body: bytes) -> bytes:
        parts = body.removesuffix(b"--batch_fake--\r\n").split(b"--batch_fake\r\n")
        return b"--batch_fake\r\n" + b"--batch_fake\r\n".join(reversed(parts[1:])) + b"--batch_fake--\r\n"

    fake.batch_reply = _reframe(reverse, tag=False)
    fake.log.clear()
    assert _snapshot(fake, key, batching=True) == alone
    alone_gets = [s for s in fake.log if s.path.endswith("/users/jobs@acme.example")]
    assert len(alone_gets) == 1  # answered in the batch, not read again


def test_a_token_echoed_in_a_part_is_masked(world: World) -> None:
    fake, _, key = world

    def echo(body: bytes) -> bytes:
        token = fake.issued[-1].encode()
        return re.sub(rb'Content-Length: (\d+)\r\n\r\n\{', lambda m: b'Content-Length: %d\r\n\r\n{"echo": "%s", ' % (
            int(m.group(1)) + len(token) + 12, token), body, count=1)

    fake.batch_reply = _reframe(echo)
    snap = _snapshot(fake, key, batching=True)
    text = json.dumps(snap)
    assert '"echo"' in text and not any(t in text for t in fake.issued)


def test_a_refused_batch_endpoint_is_not_asked_again_this_run(world: World) -> None:
    fake, _, key = world
    memo = RunMemo()
    alone = _snapshot(fake, key, batching=False, memo=memo)
    assert len(fake.seen("/batch/")) == 1  # the users' batch, refused (404): the groups' is not tried
    assert _snapshot(fake, key, batching=True, memo=memo) == alone
    assert len(fake.seen("/batch/")) == 1


def test_a_large_workspace_goes_out_in_several_batches(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from preflight_providers.google import api as api_module
    from preflight_providers.google import collect as collect_module

    fake, _, key = world
    alone = _snapshot(fake, key, batching=False)
    for module in (api_module, collect_module):
        monkeypatch.setattr(module, "BATCH_SIZE", 2)
    fake.log.clear()
    assert _snapshot(fake, key, batching=True) == alone
    # users: 5 mailboxes in batches of 2, 2 and 1 (one alone is no batch); groups: 3 users in batches of 2 and 1
    assert len(fake.seen("/batch/")) >= 3
