"""Time bounds of preflight.http against real local servers: a total limit per exchange however slowly the
server trickles, Retry-After honoured only up to a cap, a retry budget, and the tenant's deadline."""

from __future__ import annotations

import contextlib
import email.utils
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from preflight.deadline import Deadline
from preflight.http import ApiError, Http
from preflight.runsecrets import RunSecrets
from tests.leaks import assert_no_leak
from tests.test_http import Server, server  # noqa: F401  (fixture)


def ends(fn: Callable[[], Any], bound: float = 60.0) -> Any:
    """fn's result or exception; fails when fn has not ended within a bound far above the limit under test."""
    box: dict[str, Any] = {}

    def go() -> None:
        try:
            box["value"] = fn()
        except Exception as exc:
            box["error"] = exc

    worker = threading.Thread(target=go, daemon=True)
    worker.start()
    worker.join(bound)
    assert not worker.is_alive(), "the request did not end"
    return box.get("error", box.get("value"))


@contextlib.contextmanager
def dripping(first: bytes, drip: bytes, scheme: str = "http") -> Iterator[str]:
    """A server that takes each connection's first bytes (a request, a ClientHello), sends `first` at once, then
    `drip` one byte every 0.2 s, then nothing, forever. Its URL has `scheme` (no TLS is spoken either way)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    stop = threading.Event()

    def talk(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.recv(65536)
            conn.sendall(first)
            for byte in drip:
                if stop.wait(0.2):
                    return
                conn.sendall(bytes([byte]))
            stop.wait()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = sock.accept()
                threading.Thread(target=talk, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"{scheme}://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        stop.set()
        sock.close()


def trickling(what: str) -> contextlib.AbstractContextManager[str]:
    """A server that sends its headers (or its body) one byte every 0.2 s, forever."""
    if what == "body":
        return dripping(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
                        b" " * 100000)
    return dripping(b"", b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100000)


@pytest.mark.slow
@pytest.mark.parametrize("what", ["body", "headers"])
def test_a_trickling_reply_is_cut_at_the_total_limit(what: str) -> None:
    waits: list[float] = []
    http = Http(total=1.0, timeout=(5.0, 5.0), max_retries=1, sleep=waits.append)
    with trickling(what) as url:
        err = ends(lambda: http.get(url))
    assert isinstance(err, ApiError) and err.code == "Timeout", err
    assert "no complete reply within 1 s" in err.message
    assert http.stats.requests == 2  # the retry was cut too


@pytest.mark.slow
def test_the_deadline_cuts_a_trickle_and_ends_every_later_request() -> None:
    http = Http(total=30.0, timeout=(5.0, 5.0), max_retries=3, sleep=lambda _s: None, deadline=Deadline(1.0))
    with trickling("body") as url:
        err = ends(lambda: http.get(url))
    assert isinstance(err, ApiError) and err.code == "DeadlineExceeded"
    assert "not read before the deadline" in err.message
    later = ends(lambda: http.get("http://127.0.0.1:9/never"))
    assert isinstance(later, ApiError) and later.code == "DeadlineExceeded"


def http_date(seconds_ahead: float) -> str:
    return email.utils.formatdate(time.time() + seconds_ahead, usegmt=True)


@pytest.mark.parametrize("header", ["120", "3600", "http-date"])
def test_a_retry_after_beyond_the_cap_is_not_waited_for(server: Server, header: str) -> None:  # noqa: F811
    value = http_date(3600) if header == "http-date" else header
    server.scripts["/t"] = [(429, {"Retry-After": value}, b'{"error": {"code": "TooManyRequests", "message": "x"}}')]
    waits: list[float] = []
    http = Http(max_wait=30.0, sleep=waits.append)
    err = ends(lambda: http.get(server.url + "/t"))
    assert isinstance(err, ApiError) and err.status == 429
    assert "asked to retry after" in err.message and "waits at most 30 s" in err.message
    assert waits == [] and server.hits["/t"] == 1


def test_a_short_retry_after_is_honoured(server: Server) -> None:  # noqa: F811
    server.scripts["/t"] = [(429, {"Retry-After": "2"}, b"{}"), (200, {}, b'{"ok": true}')]
    waits: list[float] = []
    assert Http(sleep=waits.append).get(server.url + "/t") == {"ok": True}
    assert waits == [2.0]


def test_the_retry_budget_bounds_the_waits_of_one_request(server: Server) -> None:  # noqa: F811
    server.scripts["/t"] = [(503, {"Retry-After": "20"}, b"{}")]
    waits: list[float] = []
    http = Http(max_wait=30.0, retry_budget=50.0, max_retries=10, sleep=waits.append)
    err = ends(lambda: http.get(server.url + "/t"))
    assert isinstance(err, ApiError) and err.status == 503 and "still failing" in err.message
    assert waits == [20.0, 20.0] and sum(waits) <= 50.0


def test_a_wait_longer_than_the_deadline_is_not_started(server: Server) -> None:  # noqa: F811
    server.scripts["/t"] = [(503, {"Retry-After": "20"}, b"{}")]
    waits: list[float] = []
    http = Http(max_wait=30.0, sleep=waits.append, deadline=Deadline(5.0))
    err = ends(lambda: http.get(server.url + "/t"))
    assert isinstance(err, ApiError) and "not read before the deadline" in err.message and waits == []


def test_an_error_body_echoing_a_secret_is_masked(server: Server) -> None:  # noqa: F811
    secrets = RunSecrets()
    secrets.add("S3cret-token-value-xyz")
    body = (b'{"error": {"code": "Unauthorized", "message": "token S3cret-token-value-xyz is bad; '
            b'Bearer eyJabcdef.eyJabcdef.sig"}}')
    server.scripts["/t"] = [(401, {}, body)]
    err = ends(lambda: Http(secrets=secrets).get(server.url + "/t"))
    assert isinstance(err, ApiError)
    assert_no_leak(str(err.to_error()), ["S3cret-token-value-xyz"])
    assert "eyJabcdef" not in err.message


def test_a_payload_echoing_a_secret_is_masked_before_it_is_kept(server: Server) -> None:  # noqa: F811
    secrets = RunSecrets()
    secrets.add("S3cret/token+value")
    server.scripts["/t"] = [(200, {}, b'{"displayName": "S3cret\\/token+value", "ok": true}')]
    assert Http(secrets=secrets).get(server.url + "/t") == {"displayName": "********", "ok": True}


def test_a_watch_cuts_nothing_once_its_exchange_is_over() -> None:
    # The alarm may fire after the exchange ended, or cut a connection a second time: by then the pooled
    # connection serves the next exchange (a retry) with a new socket, which must stay whole.
    from preflight.deadline import time_limit

    ours, theirs = socket.socketpair()
    conn = type("Conn", (), {"sock": ours})()
    with ours, theirs:
        with time_limit(60.0) as watch:
            watch.attach(conn)
            watch.attach(conn)
        watch.expire()
        theirs.sendall(b"x")
        assert ours.recv(1) == b"x" and not watch.expired

