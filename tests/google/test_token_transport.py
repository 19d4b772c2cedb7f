"""The transport google-auth signs in through (providers.google.auth.transport): preflight.transport underneath,
each exchange bounded in total and by the deadline, failures as google-auth's TransportError."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from google.auth import exceptions as gex

from preflight.deadline import Deadline
from preflight_providers.google.auth import token_error, transport
from tests.test_http_bounds import trickling


@pytest.fixture
def token_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
            reply = json.dumps({"access_token": "ya29.token-from-the-fake", "expires_in": 3599}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token", seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_token_exchange_sends_the_form_and_reads_status_headers_and_bytes(
        token_server: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = token_server
    request = transport(10.0)
    reply = request(url, method="POST", body="grant_type=x&assertion=y",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 200 and request.last.status == 200
    assert json.loads(reply.data)["access_token"] == "ya29.token-from-the-fake"
    assert reply.headers["Content-Type"].startswith("application/json")
    (sent,) = seen
    assert sent["body"] == b"grant_type=x&assertion=y"
    assert sent["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent["headers"]["User-Agent"].startswith("preflight/")


@pytest.mark.slow
def test_a_trickling_token_reply_is_cut_at_the_exchange_bound() -> None:
    with trickling("body") as url:
        request = transport(1.0)
        started = time.monotonic()
        with pytest.raises(gex.TransportError) as caught:
            request(url + "token", method="POST", body=b"grant_type=x")
        assert time.monotonic() - started < 5.0
    assert "timeout" in str(caught.value) and request.last.status is None
    assert token_error(caught.value, None).code == "Timeout"


def test_a_passed_deadline_sends_nothing(token_server: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = token_server
    with pytest.raises(gex.TransportError, match="deadline"):
        transport(10.0, Deadline(0.0))(url, method="POST", body=b"grant_type=x")
    assert seen == []


def test_a_refused_connection_is_a_transport_error_not_a_timeout() -> None:
    with socket.socket() as sock:  # a port nothing listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/token"
        with pytest.raises(gex.TransportError) as caught:
            transport(5.0)(url, method="POST", body=b"grant_type=x")
    assert token_error(caught.value, None).code == "ConnectionError"


def test_a_url_that_cannot_be_sent_is_a_transport_error() -> None:
    with pytest.raises(gex.TransportError, match="cannot be used"):
        transport(5.0)("ftp://127.0.0.1/token", method="POST", body=b"x")
