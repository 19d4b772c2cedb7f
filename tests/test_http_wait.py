"""The lean exchange waits for a reply over TLS with its own poll (no first read that finds nothing) and still
within the read timeout: a server that takes the request and never answers is a Timeout after the read timeout,
on a new connection and on a kept one, not only once the exchange's total limit cuts it."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator

import pytest

from preflight.http import ApiError, Http
from tests.listener import listening, read_head, serve_each
from tests.test_http_lean import Tls, plain, tls  # noqa: F401  (fixture)


@contextlib.contextmanager
def answers_once(context: ssl.SSLContext) -> Iterator[str]:
    """An HTTPS server answering the first request on each connection, then silent (the connection kept open)."""
    listener = listening(8)
    done = threading.Event()

    def serve(raw: socket.socket) -> None:
        with raw, contextlib.suppress(OSError):
            conn = context.wrap_socket(raw, server_side=True)
            for answer in (True, False):
                if not read_head(conn):
                    return
                if answer:
                    conn.sendall(plain(b'{"first": true}'))
            done.wait(30)

    serve_each(listener, serve)
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}/x"
    finally:
        done.set()
        listener.close()


def timed_out(http: Http, url: str) -> float:
    started = time.monotonic()
    with pytest.raises(ApiError) as caught:
        http.get(url)
    assert caught.value.code == "Timeout" and "no complete reply" not in caught.value.message
    return time.monotonic() - started


def test_a_silent_server_over_tls_times_out_after_the_read_timeout(tls: Tls) -> None:  # noqa: F811
    with answers_once(tls.server) as url:
        http = Http(timeout=(4.0, 0.4), total=8.0, max_retries=0, verify=str(tls.bundle))
        assert http.get(url) == {"first": True}
        assert timed_out(http, url) < 3.0  # a kept connection: the read timeout, not the connect timeout or total
        assert http.get(url) == {"first": True}  # a new connection (the timed-out one was closed)
        assert timed_out(http, url) < 3.0
