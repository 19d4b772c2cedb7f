"""The loopback redirect listener of an installed-app OAuth sign-in, bounded in total time.

google-auth-oauthlib's `run_local_server` bounds only the wait for the first connection: a browser's idle
pre-connection, a request that never finishes, or a stray request (`/favicon.ico`) ends or hangs the sign-in.
Here a small threaded server answers every request on its own thread (each with a socket timeout), and the
caller waits for the one redirect that carries this sign-in's `state`, at most until the deadline.

The request line holds the authorization code: it is never logged.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from preflight.deadline import Deadline
from preflight.runsecrets import RunSecrets

READ_TIMEOUT = 10.0  # seconds one connection may stay silent (a browser's spare pre-connection stays silent)
_PAGE = "<!doctype html><meta charset=utf-8><title>preflight</title><p>{}</p>"


class Redirect:
    """The one redirect this listener waits for: the query parameters it carried."""

    def __init__(self, state: str) -> None:
        self.state = state
        self.params: dict[str, str] | None = None
        self.arrived = threading.Event()


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a connection still trickling cannot keep the process alive
    expected: Redirect
    success_message: str
    secrets: RunSecrets

    def handle_error(self, request: Any, client_address: Any) -> None:
        """socketserver prints a traceback for a connection the browser dropped: that is no error here."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = READ_TIMEOUT

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(parts.query).items() if v}
        expected = self.server.expected
        if parts.path != "/" or not ({"code", "error"} & params.keys()):
            self._answer(404, "Not found.")
        elif params.get("state") != expected.state or expected.arrived.is_set():
            # Not this sign-in's redirect (another tab, a forged link): keep waiting for ours.
            self._answer(400, "This sign-in link is not the one preflight is waiting for.")
        else:
            self.server.secrets.add(params.get("code"))  # before anything (a log of this request) can show it
            expected.params = params
            expected.arrived.set()
            done = self.server.success_message if "code" in params else "The sign-in was not completed."
            self._answer(200, f"{done} You can close this window.")

    def _answer(self, status: int, text: str) -> None:
        body = _PAGE.format(text).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        """The default logs the request line, which holds the authorization code."""


class Listener:
    """A listener on 127.0.0.1; `redirect_uri` names it as `localhost`, as Google's Desktop-app clients expect."""

    def __init__(self, server: _Server) -> None:
        self._server = server

    @property
    def redirect_uri(self) -> str:
        return f"http://localhost:{self._server.server_address[1]}/"

    def expect(self, state: str) -> Redirect:
        self._server.expected = Redirect(state)
        return self._server.expected

    def wait(self, redirect: Redirect, deadline: Deadline) -> dict[str, str] | None:
        """The redirect's parameters, or None when the deadline passed first."""
        redirect.arrived.wait(deadline.remaining())
        return redirect.params


@contextmanager
def listening(success_message: str, secrets: RunSecrets) -> Iterator[Listener]:
    """A listener for one sign-in; the authorization code it receives joins `secrets`."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.expected = Redirect("")
    server.success_message = success_message
    server.secrets = secrets
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                              name="oauth-redirect")
    thread.start()
    try:
        yield Listener(server)
    finally:
        server.shutdown()
        server.server_close()
