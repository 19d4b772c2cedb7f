"""preflight_providers.google.api._batch_parts against hostile framing: a part is taken only when its reply names
its id in one part alone, in one Content-ID header of the canonical form, the whole reply framed by its boundary;
checked case by case and against a model of the rules over a few thousand seeded random replies."""

from __future__ import annotations

import random
import re
import time

import pytest

from preflight_providers.google.api import _batch_parts
from tests.google.test_batch import World, _reframe, _snapshot, world  # noqa: F401  (world: a fixture)

CT = "multipart/mixed; boundary=b1"
END = b"--b1--\r\n"


def _part(index: int, status: bytes = b"200 OK", body: bytes = b'{"a": 1}', cid: bytes | None = None,
          length: bool = True) -> bytes:
    head = b"Content-ID: " + (cid if cid is not None else b"<response-item%d>" % index)
    size = b"Content-Length: %d\r\n" % len(body) if length else b""
    return (b"--b1\r\nContent-Type: application/http\r\n" + head + b"\r\n\r\nHTTP/1.1 " + status +
            b"\r\nContent-Type: application/json\r\n" + size + b"\r\n" + body + b"\r\n")


def test_a_well_framed_reply_is_taken() -> None:  # what the cases below can fail against
    assert _batch_parts(_part(0) + _part(1, body=b"{}") + END, CT, 2) == {0: b'{"a": 1}', 1: b"{}"}


@pytest.mark.parametrize("reply", [
    _part(0, b"404 Not Found", b'{"error": {}}') + _part(0) + END,  # the same id twice, the first no answer
    _part(0, b"200 OK", b'{"a"}', length=False) + _part(0) + END,  # ... the first garbled
    _part(0, cid=b"<response-item0") + _part(0) + END,  # ... the first half-bracketed
    _part(0) + _part(0, cid=b"<response-item00>") + END,  # ... the second with a leading zero
    _part(0, b"404 Not Found", cid=b"\r\n <response-item0>") + _part(0) + END,  # ... the first folded
    _part(0, cid=b"<response-item00>") + END,  # an id not as it was sent
    _part(0).replace(b"Content-ID", b"Content-ID: <response-item0\r\nContent-ID") + END,  # a second, garbled id
    _part(0).replace(b"Content-ID", b"Content-ID: <other>\r\nContent-ID") + END,  # a second id, not Google's
    _part(0).replace(b"--b1\r\n", b"--b1xyz\r\n") + END,  # a longer boundary is no delimiter of this one
    _part(1) + END + _part(0) + END,  # a part after the close delimiter
    _part(0) + END + b"\r\n" + _part(0)[2:] + END,  # ... the same id after it
], ids=["twice, first 404", "twice, first garbled", "twice, first half-bracketed", "twice, leading zero",
        "twice, first folded", "leading zero", "a second garbled id", "a second other id", "longer boundary",
        "after the close", "after the close, twice"])
def test_a_garbled_reply_leaves_the_part_to_its_own_read(reply: bytes) -> None:
    assert 0 not in _batch_parts(reply, CT, 2)


def _model(parts: list[dict[str, object]], count: int) -> dict[int, bytes]:
    """The rules, stated plainly: an index is answered by the one well-formed part naming it, and by no other."""
    named: dict[int, int] = {}
    good: dict[int, bytes] = {}
    for p in parts:
        for index in p["names"]:  # type: ignore[attr-defined]
            named[index] = named.get(index, 0) + 1
        if p["ok"]:
            good[p["index"]] = p["body"]  # type: ignore[index,assignment]
    return {i: b for i, b in good.items() if named[i] == 1 and i < count}


def _random_part(rng: random.Random, count: int) -> tuple[bytes, dict[str, object]]:
    index = rng.randrange(count + 2)
    body = rng.choice([b"{}", b'{"a": 1}', b'{\r\n "a": "--b1"\r\n}', b"[1]", b""])
    digits = b"%d" % index
    form = rng.choice(["bracket", "bare", "half", "zero", "none", "two", "other"])
    status = rng.choice([b"200 OK", b"200 OK", b"404 Not Found", b"500 x"])
    length = rng.choice(["right", "right", "none", "wrong", "two"])
    lines = {
        "bracket": [b"Content-ID: <response-item" + digits + b">"],
        "bare": [b"content-id:  response-item" + digits],
        "half": [b"Content-ID: <response-item" + digits],
        "zero": [b"Content-ID: <response-item0" + digits + b">"],
        "none": [],
        "two": [b"Content-ID: <response-item" + digits + b">"] * 2,
        "other": [b"Content-ID: <response-item" + digits + b">", b"Content-ID: <x>"],
    }[form]
    right = b"Content-Length: %d" % len(body)
    wrong = b"Content-Length: %d" % (len(body) + 1)
    size = {"right": [right], "none": [], "wrong": [wrong], "two": [right] * 2}[length]
    text = (b"--b1\r\nContent-Type: application/http\r\n" + b"".join(x + b"\r\n" for x in lines) +
            b"\r\nHTTP/1.1 " + status + b"\r\n" + b"".join(x + b"\r\n" for x in size) + b"\r\n" + body + b"\r\n")
    names = [] if form == "none" else [index] * (2 if form == "two" else 1)
    ok = form in ("bracket", "bare") and status.startswith(b"200") and length in ("right", "none")
    return text, {"names": names, "ok": ok, "index": index, "body": body}


def test_random_replies_answer_as_the_rules_say() -> None:
    rng = random.Random(19)
    started = time.process_time()
    for _ in range(3000):
        count = rng.randrange(1, 6)
        made = [_random_part(rng, count) for _ in range(rng.randrange(0, 8))]
        reply = b"".join(text for text, _ in made) + END
        assert _batch_parts(reply, CT, count) == _model([p for _, p in made], count), reply
    assert time.process_time() - started < 20


def test_random_damage_never_raises_and_takes_only_parts_named_once() -> None:
    rng = random.Random(27)
    whole = b"".join(_part(i, body=b'{"n": %d}' % i) for i in range(6)) + END
    for _ in range(3000):
        reply = bytearray(whole)
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(reply))
            what = rng.randrange(3)
            if what == 0:
                reply[at] = rng.randrange(256)
            elif what == 1:
                del reply[at:at + rng.randrange(1, 40)]
            else:
                reply[at:at] = rng.choice([b"\r\n", b"--b1", b"\r\n--b1\r\n", b"--b1--", b"0", b"\r\n\r\n"])
        got = _batch_parts(bytes(reply), CT, 6)
        for index in got:  # its Content-ID header lines, the damaged ones too
            naming = re.compile(rb"^content-id:[^\r\n]*response-item0*%d(?!\d)" % index, re.I | re.M)
            assert len(naming.findall(reply)) == 1, bytes(reply)


def _each_part_twice_the_first_refused(body: bytes) -> bytes:
    parts = body.removesuffix(b"--batch_fake--\r\n").split(b"--batch_fake\r\n")
    twice = [half for part in parts[1:] for half in (part.replace(b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found"), part)]
    return b"--batch_fake\r\n".join([parts[0], *twice]) + b"--batch_fake--\r\n"


@pytest.mark.slow
def test_a_collection_whose_batch_answers_each_read_twice_the_first_refused_is_the_one_read_alone(
        world: World) -> None:  # noqa: F811
    """Which of the two is the answer only the read on its own can say: before, the second (taken) showed."""
    fake, _, key = world
    alone = _snapshot(fake, key, batching=False)
    fake.batch_reply = _reframe(_each_part_twice_the_first_refused)
    assert _snapshot(fake, key, batching=True) == alone
    assert fake.seen("/batch/")


@pytest.mark.slow
def test_a_user_answered_for_another_address_is_read_on_its_own(world: World) -> None:  # noqa: F811
    """A batch whose users come back under each other's ids (jobs@ as ops@'s answer, and back): a user object
    none of whose addresses is the one asked for is no answer to that users.get."""
    fake, _, key = world
    alone = _snapshot(fake, key, batching=False)

    def swapped(body: bytes) -> bytes:
        if b'"primaryEmail"' not in body:  # the users' batch only: the groups' replies do not say whose they are
            return body
        swap = {b"0": b"3", b"3": b"0"}
        return re.sub(rb"response-item([03])>", lambda m: b"response-item" + swap[m.group(1)] + b">", body)

    fake.batch_reply = _reframe(swapped, tag=False)
    assert _snapshot(fake, key, batching=True) == alone
