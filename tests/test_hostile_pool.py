"""A pooled connection is never handed to the next request with bytes no request asked for waiting in its TLS
layer, whichever path read the reply before (the lean exchange, or http.client for a reply handed over to it)."""

from __future__ import annotations

import socket
import time

import pytest

from preflight.http import Http
from tests.test_hostile_lean import outcome, scripted
from tests.test_http_lean import HEAD, Tls, plain, tls  # noqa: F401  (fixture)

FIRST = b'{"first": true}'
# A chunked body with a trailer: the lean path hands such a reply over to http.client, which reads it 8 KiB at
# a time from the TLS layer and leaves the rest of the record there.
CHUNKED = HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n0\r\nX-Trailer: y\r\n\r\n" % (len(FIRST), FIRST)


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "urllib3"])
@pytest.mark.parametrize("padding", [0, 10_000], ids=["short", "one record past 8 KiB"])
def test_an_unasked_reply_in_the_tls_record_of_a_handed_over_one_never_answers_the_next_request(
        lean: bool, padding: int, tls: Tls) -> None:  # noqa: F811
    injected = plain(b'{"injected": "' + b"i" * padding + b'"}')

    def answer(conn: socket.socket) -> None:
        conn.sendall(CHUNKED[:len(HEAD)])
        time.sleep(0.05)
        conn.sendall(CHUNKED[len(HEAD):] + injected)

    with scripted(answer, tls.server) as url:
        http = Http(timeout=(5.0, 5.0), total=10.0, max_retries=0, verify=str(tls.bundle))
        http.transport.lean = lean
        assert [outcome(http, url) for _ in range(3)] == [{"first": True}] * 3
