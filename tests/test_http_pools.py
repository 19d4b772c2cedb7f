"""A process's kept-alive connections outlive the test server they were made to: a stopped server whose handler
threads keep their connections open still answers on them, and a later server given the same port number (the
kernel reuses port numbers under port pressure) would have its requests answered by the earlier one -- "an
earlier test's reply". forget_connections closes them all, for tests to call between tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from preflight.deadline import bounded_session
from preflight.http import Http
from preflight.transport import forget_connections


@contextmanager
def answering(body: bytes, port: int = 0) -> Iterator[int]:
    """A keep-alive server answering `body`, stopped as most test servers stop: its listener closed, the
    connections its handler threads serve left open."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)  # SO_REUSEADDR: the port of a stopped one binds
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("client", ["transport", "session"])
def test_a_server_on_an_earlier_one_s_port_answers_once_connections_are_forgotten(client: str) -> None:
    def get(port: int) -> Any:
        url = f"http://127.0.0.1:{port}/x"
        if client == "transport":
            return Http(timeout=(5.0, 5.0), max_retries=0).get(url)
        return bounded_session().get(url, timeout=5.0).json()

    with answering(b'{"server": "earlier"}') as port:
        assert get(port) == {"server": "earlier"}
    with answering(b'{"server": "later"}', port):
        assert get(port) == {"server": "earlier"}  # the hazard: the earlier server's kept connection answers
        forget_connections()
        assert get(port) == {"server": "later"}
        assert get(port) == {"server": "later"}  # and the pools serve on
