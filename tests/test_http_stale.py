"""A kept-alive connection the server closes as the next request goes out: the request is sent again, once, on a
new connection (the lean exchange), rather than failing -- token requests and a redirect's request are not retried
by preflight.http."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from preflight import deadline
from preflight.http import ApiError, Http
from tests.listener import listening, read_head, serve_each
from tests.test_http_lean import Tls, plain, tls  # noqa: F401  (fixture)

REDIRECT = b"HTTP/1.1 302 Found\r\nLocation: /landing\r\nContent-Length: 0\r\n\r\n"  # says nothing of closing
LANDED = plain(b'{"landed": true}')
ANSWERED = plain(b'{"answered": true}')


class ClosingServer:
    """Answers the first request on each connection (a redirect for /x, `ANSWERED` for /post, `LANDED` for
    /landing), keeps the connection open, and closes it once the next request on it has arrived, without a
    reply: a server whose close crosses the client's next request (deterministically, not by a race)."""

    def __init__(self, *, reset: bool = False, context: ssl.SSLContext | None = None) -> None:
        self.reset = reset  # close with a reset (SO_LINGER 0) rather than a FIN (and no TLS close_notify)
        self.tls = context
        self.connections = 0
        self.requests: list[bytes] = []
        self.sock = listening()
        self.url = f"{'https' if context else 'http'}://127.0.0.1:{self.sock.getsockname()[1]}"
        serve_each(self.sock, self._serve)

    def _request(self, conn: Any) -> bytes:
        data = read_head(conn)
        if data:
            self.requests.append(data)
        return data

    def _serve(self, raw: socket.socket) -> None:
        self.connections += 1
        with raw, contextlib.suppress(OSError):
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn: Any = raw if self.tls is None else self.tls.wrap_socket(raw, server_side=True)
            first = self._request(conn)
            path = first.split(b" ", 2)[1] if first else b""
            conn.sendall({b"/x": REDIRECT, b"/landing": LANDED}.get(path, ANSWERED))
            self._request(conn)
            if self.reset:
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            elif self.tls is not None:
                conn.unwrap()  # close_notify, then the FIN

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def closing_server(reset: bool = False, context: ssl.SSLContext | None = None) -> Iterator[ClosingServer]:
    server = ClosingServer(reset=reset, context=context)
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("over_tls", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_redirect_on_a_connection_the_server_closes_is_followed_on_a_new_one(reset: bool, over_tls: bool,
                                                                              tls: Tls) -> None:  # noqa: F811
    with closing_server(reset, tls.server if over_tls else None) as server:
        http = Http(timeout=(5.0, 5.0), total=10.0, max_retries=0, verify=str(tls.bundle))
        assert http.get(server.url + "/x") == {"landed": True}
    assert server.connections == 2 and len(server.requests) == 3  # /x, /landing on the closed one, /landing again
    assert http.stats.requests == 1 and http.stats.retries == 0


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_token_request_on_a_kept_connection_the_server_closes_is_sent_again_once(reset: bool) -> None:
    """A POST, as a token request is (preflight never sends a request that changes anything)."""
    with closing_server(reset) as server:
        http = Http(timeout=(5.0, 5.0), total=10.0, max_retries=0)
        assert http.post(server.url + "/post", {"grant_type": "x"}) == {"answered": True}
        assert http.post(server.url + "/post", {"grant_type": "x"}) == {"answered": True}
    assert server.connections == 2 and len(server.requests) == 3


def test_a_new_connection_the_server_closes_is_not_tried_again() -> None:
    """Only a kept connection is: a server that closes a new one without a reply fails the exchange as before."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    accepted = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            with conn, contextlib.suppress(OSError):
                conn.recv(65536)

    threading.Thread(target=serve, daemon=True).start()
    try:
        http = Http(timeout=(5.0, 5.0), total=10.0, max_retries=0)
        with pytest.raises(ApiError) as caught:
            http.get(f"http://127.0.0.1:{listener.getsockname()[1]}/x")
    finally:
        listener.close()
    assert caught.value.code == "ConnectionError" and len(accepted) == 1


def test_a_connection_the_deadline_cut_is_not_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The end of a reply the exchange's watch caused is no server's close: the exchange ends, no new connection."""
    with closing_server() as server:
        http = Http(timeout=(5.0, 5.0), total=10.0, max_retries=0)
        http.post(server.url + "/post", {})  # a kept connection, which the server will close on the next request
        expire = deadline.Watch.attach

        def expired(watch: deadline.Watch, conn: object) -> None:
            watch.expired = True
            expire(watch, conn)

        monkeypatch.setattr(deadline.Watch, "attach", expired)
        with pytest.raises(ApiError) as caught:
            http.post(server.url + "/post", {})
    assert caught.value.code == "Timeout" and server.connections == 1
