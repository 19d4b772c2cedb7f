"""preflight.deadline's connections: shared by the tenants of a process, never across a fork, no file system
call per request, and a watch that cuts only what still serves its own exchange."""

from __future__ import annotations

import os
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from preflight.deadline import Deadline, Watch, shared_adapter
from preflight.http import Http
from tests.conftest import in_child
from tests.test_http import Server, ok, server  # noqa: F401  (fixture)


class KeepAliveServer:
    """HTTPS with keep-alive; counts the TLS connections it accepted and records each request's bearer token."""

    def __init__(self, ca: trustme.CA) -> None:
        self.connections = 0
        self.tokens: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.tokens.append(self.headers.get("Authorization", ""))
                body = b'{"value": []}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[socket.socket, Any]:
                outer.connections += 1
                return super().get_request()

        self.httpd = Server(("127.0.0.1", 0), Handler)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(ctx)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}/v1.0/users"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture()
def keepalive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KeepAliveServer]:
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    running = KeepAliveServer(ca)
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


def tenant(token: str, seconds: float = 600.0) -> Http:
    return Http(auth=lambda: {"Authorization": f"Bearer {token}"}, deadline=Deadline(seconds))


def test_the_tenants_of_a_process_share_one_kept_alive_connection_each_with_its_own_token(
        keepalive: KeepAliveServer) -> None:
    first, second = tenant("token-of-tenant-a"), tenant("token-of-tenant-b", seconds=300.0)
    for _ in range(3):
        assert first.get(keepalive.url) == {"value": []}
        assert second.get(keepalive.url) == {"value": []}
    assert keepalive.connections == 1  # one TLS handshake for both tenants' six requests
    assert keepalive.tokens == ["Bearer token-of-tenant-a", "Bearer token-of-tenant-b"] * 3


def test_a_request_asks_the_file_system_nothing(keepalive: KeepAliveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    http = tenant("token")
    http.get(keepalive.url)  # the trust store is read once, here
    asked: list[Any] = []
    real_stat = os.stat

    def stat(path: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(path)
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    for _ in range(3):
        http.get(keepalive.url)
    assert asked == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_process_does_not_use_its_parents_connections() -> None:
    parent = shared_adapter()
    assert in_child(lambda: b"own" if shared_adapter() is not parent else b"parent's") == b"own"
    assert shared_adapter() is parent


class Conn:
    """As much of a urllib3 connection as a watch touches: its socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock


def cut(sock: socket.socket) -> bool:
    """Whether the socket was shut down: its peer reads end of file at once."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False


def test_a_late_alarm_does_not_cut_a_connection_another_exchange_took_over() -> None:
    mine, peer = socket.socketpair()
    with mine, peer:
        conn = Conn(mine)
        late, current = Watch(), Watch()
        late.attach(conn)
        current.attach(conn)  # the connection went back to the pool and serves another exchange now
        late.expire()
        assert not cut(peer)
        current.expire()
        assert cut(peer)


def test_an_alarm_cuts_the_connection_its_exchange_still_uses() -> None:
    mine, peer = socket.socketpair()
    with mine, peer:
        watch = Watch()
        watch.attach(Conn(mine))
        watch.expire()
        assert cut(peer)


def test_a_proxy_variable_set_later_reaches_the_sessions_made_after_it(server: Server,  # noqa: F811
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # The proxies for a host are looked up once per process and proxy configuration.
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    server.scripts["/x"] = [ok({"via": "direct"})]
    server.scripts[server.url + "/x"] = [ok({"via": "proxy"})]  # a proxy is asked for the absolute URL
    assert Http().get(server.url + "/x") == {"via": "direct"}
    monkeypatch.setenv("HTTP_PROXY", server.url)
    assert Http().get(server.url + "/x") == {"via": "proxy"}
    monkeypatch.delenv("HTTP_PROXY")
    assert Http().get(server.url + "/x") == {"via": "direct"}
