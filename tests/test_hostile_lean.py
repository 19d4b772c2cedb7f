"""Hostile servers against preflight.transport's lean exchange: what it must never do that urllib3's path does not
(give one request's reply to another, hold memory or CPU out of proportion to the capped body)."""

from __future__ import annotations

import contextlib
import io
import socket
import ssl
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from preflight import transport
from preflight.http import ApiError, Http
from tests.listener import listening, read_head, serve_each
from tests.test_http_lean import HEAD, Tls, plain, tls  # noqa: F401  (fixture)


@contextlib.contextmanager
def scripted(answer: Callable[[socket.socket], None], context: ssl.SSLContext | None = None) -> Iterator[str]:
    """A server calling `answer` with the connection for each request it reads (keeping the connection open
    between them); yields its URL."""
    listener = listening(8)

    def serve(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with contextlib.suppress(OSError):
            if context is not None:
                conn = context.wrap_socket(conn, server_side=True)
            with conn:
                while read_head(conn):
                    answer(conn)

    serve_each(listener, serve)
    try:
        yield f"{'https' if context else 'http'}://127.0.0.1:{listener.getsockname()[1]}/x"
    finally:
        listener.close()


def outcome(http: Http, url: str) -> Any:
    try:
        return http.get(url)
    except ApiError as exc:
        return exc.code


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "urllib3"])
def test_bytes_beyond_a_body_over_tls_are_never_the_next_request_s_reply(
        lean: bool, tls: Tls) -> None:  # noqa: F811
    """The head comes first; the body and a second, unasked-for reply follow in one TLS record. The lean path
    read the body exactly, left the rest in the TLS layer (invisible to the pool's check for a dropped
    connection) and put the connection back: the next request (any tenant's: pools are shared) got the
    injected reply."""
    body = b'{"first": "' + b"a" * 200 + b'"}'

    def answer(conn: socket.socket) -> None:
        conn.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % len(body))
        time.sleep(0.05)
        conn.sendall(body + plain(b'{"injected": true}'))

    with scripted(answer, tls.server) as url:
        http = Http(timeout=(5.0, 5.0), total=10.0, max_retries=0, verify=str(tls.bundle))
        http.transport.lean = lean
        assert [outcome(http, url) for _ in range(3)] == [{"first": "a" * 200}] * 3


def test_a_long_prefix_handed_to_http_client_is_read_in_linear_time() -> None:
    """A chunked body read by the lean path up to a trailer it does not read is handed over with every byte read
    (up to the 32 MiB cap): http.client reads that prefix 8 KiB at a time, and each read copied what was left."""
    prefix = b"x" * (32 << 20)
    replay = transport._Replay(prefix, io.BytesIO(b"then the socket"))
    buffer = memoryview(bytearray(8192))
    started, read = time.process_time(), bytearray()
    while got := replay.readinto(buffer):
        read += buffer[:got]
    assert time.process_time() - started < 1.0  # about 0.01 s; 5 s or more when quadratic
    assert read == prefix + b"then the socket"


def tiny_chunks(size: int, extension: bytes = b"") -> bytes:
    body = b'"' + b"x" * (size - 2) + b'"'
    return HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + \
        b"".join(b"2%s\r\n%s\r\n" % (extension, body[i:i + 2]) for i in range(0, size, 2)) + b"0\r\n\r\n"


@pytest.mark.parametrize(("size", "extension"), [(1_000_000, b""), (20_000, b";" + b"e" * 1000)],
                         ids=["two-byte chunks", "chunk extensions of 1000 bytes"])
def test_a_body_of_tiny_chunks_takes_no_more_memory_than_on_urllib3_s_path(size: int, extension: bytes) -> None:
    """The lean path kept every byte of chunk framing and a bytes object per chunk: 66 MB for a 1 MB body of
    two-byte chunks (about 2 GB at the 32 MiB cap), 10 MB of size lines for 20 KB of payload; urllib3's path
    keeps the payload."""
    reply = tiny_chunks(size, extension)
    peaks, bodies = [], []
    for lean in (True, False):
        with scripted(lambda conn: conn.sendall(reply)) as url:
            http = Http(timeout=(30.0, 30.0), total=60.0, max_retries=0)
            http.transport.lean = lean
            tracemalloc.start()
            try:
                bodies.append(outcome(http, url))
                peaks.append(tracemalloc.get_traced_memory()[1])
            finally:
                tracemalloc.stop()
    assert bodies[0] == bodies[1] == "x" * (size - 2)
    assert peaks[0] < 1.5 * peaks[1] + (1 << 20), peaks
