"""preflight.http's transport (urllib3, no requests Session) against real local HTTPS servers and a real CONNECT
proxy: the URL requests would send, the trust store and host name checks, proxies from the environment,
redirects that never carry the token to another origin, the body cap on the decoded size, and the time limits
still cutting what trickles."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import trustme

from preflight import http as http_module
from preflight import transport
from preflight.deadline import Deadline
from preflight.http import ApiError, Http
from preflight.transport import request_url
from tests.conftest import in_child
from tests.test_http_bounds import ends

TOKEN = "Bearer the-tenant-token-value"
Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Tls:
    ca: trustme.CA
    bundle: Path
    servers: list[Any] = field(default_factory=list)


class HttpsServer:
    """HTTPS with keep-alive on 127.0.0.1: scripted replies by path, every request recorded."""

    def __init__(self, tls: Tls, names: tuple[str, ...] = ("127.0.0.1", "localhost")) -> None:
        self.scripts: dict[str, list[Reply]] = {}
        self.seen: list[Seen] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                outer.seen.append(Seen(self.command, self.path, dict(self.headers), self.rfile.read(length)))
                script = outer.scripts.get(self.path.split("?")[0]) or [(404, {}, b'{"error": {"code": "NotFound"}}')]
                status, headers, body = script.pop(0) if len(script) > 1 else script[0]
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Transfer-Encoding" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *_args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.ca.issue_cert(*names).configure_cert(ctx)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        tls.servers.append(self)
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.port}"

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]


@pytest.fixture()
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tls]:
    """A CA the client trusts through REQUESTS_CA_BUNDLE (as a user's corporate CA would be), no proxy set."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY",
                 "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    made = Tls(ca, bundle)
    yield made
    for server in made.servers:
        server.httpd.shutdown()
        server.httpd.server_close()


def ok(body: Any) -> Reply:
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


def client(**kw: Any) -> Http:
    kw.setdefault("max_retries", 0)
    return Http(auth=lambda: {"Authorization": TOKEN}, timeout=(5.0, 5.0), **kw)


# --- the URL ---------------------------------------------------------------------------------------------------

URLS = [
    ("https://graph.microsoft.com/v1.0/users", {"$select": "id,mail", "$top": 999}),
    ("https://graph.microsoft.com/v1.0/users", {"$filter": "startswith(mail,'a b')", "x": None}),
    ("https://admin.googleapis.com/admin/directory/v1/users", {"customer": "my_customer", "pageToken": "tok/+=="}),
    ("https://admin.googleapis.com/admin/directory/v1/users", {"fields": ["a", "b", None], "maxResults": 500}),
    ("https://graph.microsoft.com/v1.0/users?$top=999&$skiptoken=RFNwdAIAAQAAACM6YWRt", {"extra": "1"}),
    ("https://graph.microsoft.com/v1.0/users?$skiptoken=X%27Y%7eZ%2f", None),
    ("https://graph.microsoft.com/v1.0/users?$filter=mail eq 'a@b.c'", None),
    ("https://graph.microsoft.com/v1.0/users?", {"a": "b"}),
    ("https://graph.microsoft.com/v1.0/users#frag", {"a": "b"}),
    ("https://graph.microsoft.com", {"a": "b"}),
    ("https://Graph.Microsoft.com:0443/v1.0/./a/../users", None),
    ("https://graph.microsoft.com//v1.0/users;x=1", {"a": ["1", "2"]}),
    ("https://graph.microsoft.com/v1.0/users('ä@b.c')", {"ü": "é"}),
    ("https://graph.microsoft.com/v1.0/users", {"empty": "", "none": None, "list": []}),
    ("https://graph.microsoft.com/v1.0/users", {}),
    ("http://127.0.0.1:8080/a/.well-known/b", {"t": True, "n": 0}),
]


@pytest.mark.parametrize(("url", "params"), URLS)
def test_the_url_is_the_one_requests_would_send(url: str, params: dict[str, Any] | None) -> None:
    expected = requests.Request("GET", url, params=params).prepare()
    target = request_url(url, params)
    assert (target.url, target.path) == (expected.url, expected.path_url)
    parts = urlsplit(str(expected.url))
    assert (target.host, target.port) == (parts.hostname, parts.port or {"https": 443, "http": 80}[parts.scheme])


def test_the_server_receives_the_query_requests_would_send(tls: Tls) -> None:
    server = HttpsServer(tls)
    server.scripts["/v1.0/users"] = [ok({"value": []})]
    base = server.url() + "/v1.0/users?$top=2&$skiptoken=abc"
    params = {"$select": "id,mail", "pageToken": None, "fields": ["a", "b"]}
    client().get(base, params=params)
    expected = requests.Request("GET", base, params=params).prepare().path_url
    assert server.paths() == [expected] == ["/v1.0/users?$top=2&$skiptoken=abc&%24select=id%2Cmail&fields=a&fields=b"]


def test_a_json_body_is_sent_as_requests_sends_it(tls: Tls) -> None:
    server = HttpsServer(tls)
    server.scripts["/$batch"] = [ok({"responses": []})]
    body = {"requests": [{"id": "1", "method": "GET", "url": "/users?$select=id"}], "name": "é"}
    client().post(server.url() + "/$batch", body)
    seen = server.seen[0]
    assert seen.method == "POST" and seen.body == requests.Request("POST", "https://x/", json=body).prepare().body
    assert seen.headers["Content-Type"] == "application/json" and seen.headers["Authorization"] == TOKEN
    assert seen.headers["Accept"] == "application/json" and seen.headers["Accept-Encoding"] == "gzip, deflate"
    assert seen.headers["User-Agent"].startswith("preflight/")


def test_a_callers_header_replaces_preflights_whatever_its_case(tls: Tls) -> None:
    server = HttpsServer(tls)
    server.scripts["/x"] = [ok({})]
    client().get(server.url() + "/x", headers={"accept": "application/json;odata.metadata=none"})
    accepts = [v for k, v in server.seen[0].headers.items() if k.lower() == "accept"]
    assert accepts == ["application/json;odata.metadata=none"]


# --- trust ----------------------------------------------------------------------------------------------------

def test_the_certificate_and_host_name_are_verified(tls: Tls, tmp_path: Path) -> None:
    named = HttpsServer(tls, names=("localhost",))  # a certificate that does not name 127.0.0.1
    named.scripts["/x"] = [ok({"fine": True})]
    assert client().get(named.url("localhost") + "/x") == {"fine": True}
    with pytest.raises(ApiError) as info:
        client().get(named.url("127.0.0.1") + "/x")
    assert info.value.code == "ConnectionError"
    stranger = trustme.CA()  # trusted by nobody here
    other = tmp_path / "other.pem"
    stranger.cert_pem.write_to_path(str(other))
    with pytest.raises(ApiError):
        client(verify=str(other)).get(named.url("localhost") + "/x")
    assert named.paths() == ["/x"]
    assert client(verify=str(tls.bundle)).get(named.url("localhost") + "/x") == {"fine": True}


def test_a_missing_trust_store_is_a_connection_error_not_a_crash(tls: Tls, tmp_path: Path) -> None:
    server = HttpsServer(tls)
    with pytest.raises(ApiError) as info:
        client(verify=str(tmp_path / "absent.pem")).get(server.url() + "/x")
    assert info.value.code == "ConnectionError" and server.seen == []


# --- redirects ------------------------------------------------------------------------------------------------

def test_the_token_never_follows_a_redirect_to_another_origin(tls: Tls) -> None:
    first, second = HttpsServer(tls), HttpsServer(tls)
    first.scripts["/same"] = [(302, {"Location": "/landing"}, b"")]
    first.scripts["/other-host"] = [(302, {"Location": first.url("localhost") + "/landing"}, b"")]
    first.scripts["/other-port"] = [(307, {"Location": second.url() + "/landing"}, b"")]
    for server in (first, second):
        server.scripts["/landing"] = [ok({"landed": True})]
    for path in ("/same", "/other-host", "/other-port"):
        assert client().get(first.url() + path) == {"landed": True}
    tokens = [(s.path, s.headers.get("Authorization")) for s in first.seen + second.seen]
    assert tokens == [("/same", TOKEN), ("/landing", TOKEN), ("/other-host", TOKEN), ("/landing", None),
                      ("/other-port", TOKEN), ("/landing", None)]


def test_a_redirected_post_is_rebuilt_as_requests_rebuilds_it(tls: Tls) -> None:
    server = HttpsServer(tls)
    server.scripts["/found"] = [(302, {"Location": "/landing"}, b"")]
    server.scripts["/temporary"] = [(307, {"Location": "/landing"}, b"")]
    server.scripts["/landing"] = [ok({})]
    for path in ("/found", "/temporary"):
        client().post(server.url() + path, {"q": 1})
    assert [(s.method, s.path, s.body, s.headers.get("Content-Type")) for s in server.seen] == [
        ("POST", "/found", b'{"q": 1}', "application/json"), ("GET", "/landing", b"", None),
        ("POST", "/temporary", b'{"q": 1}', "application/json"), ("POST", "/landing", b'{"q": 1}', "application/json")]


def test_redirects_are_bounded_and_can_be_refused(tls: Tls) -> None:
    server = HttpsServer(tls)
    server.scripts["/loop"] = [(302, {"Location": "/loop"}, b"")]
    with pytest.raises(ApiError) as info:
        client().get(server.url() + "/loop")
    assert info.value.code == "ConnectionError" and len(server.seen) == transport.MAX_REDIRECTS + 1
    status, headers, _body = client().request("GET", server.url() + "/loop", allow_redirects=False)
    assert status == 302 and headers["location"] == "/loop"


# --- compressed replies and the body cap ----------------------------------------------------------------------

def gzipped(body: bytes) -> Reply:
    return 200, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, gzip.compress(body)


def test_a_compressed_reply_is_decoded_and_capped_at_its_decoded_size(tls: Tls, monkeypatch: pytest.MonkeyPatch
                                                                      ) -> None:
    monkeypatch.setattr(http_module, "MAX_BODY", 1 << 20)
    server = HttpsServer(tls)
    small = json.dumps({"value": ["x" * 1000] * 500}).encode()  # 500 KB decoded
    server.scripts["/small"] = [gzipped(small)]
    assert client().get(server.url() + "/small") == json.loads(small)
    bomb = b'{"value": "' + b"x" * (4 << 20) + b'"}'  # 4 MB decoded from a few KB
    server.scripts["/bomb"] = [gzipped(bomb)]
    assert len(server.scripts["/bomb"][0][2]) < (64 << 10)
    with pytest.raises(ApiError) as info:
        client().get(server.url() + "/bomb")
    assert info.value.code == "ConnectionError"


def test_a_reply_declaring_more_than_the_cap_is_not_read(tls: Tls, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_module, "MAX_BODY", 1 << 16)
    server = HttpsServer(tls)
    server.scripts["/big"] = [ok({"value": "x" * (1 << 17)})]
    server.scripts["/fine"] = [ok({"value": "x" * (1 << 15)})]
    with pytest.raises(ApiError) as info:
        client().get(server.url() + "/big")
    assert info.value.code == "ConnectionError"
    assert client().get(server.url() + "/fine") == {"value": "x" * (1 << 15)}  # the pool still serves


# --- proxies --------------------------------------------------------------------------------------------------

class ConnectProxy:
    """An HTTP proxy that only tunnels (CONNECT), recording each request line and Proxy-Authorization; with
    `stall`, it reads the CONNECT and never answers."""

    def __init__(self, stall: bool = False) -> None:
        self.connects: list[tuple[str, str | None]] = []
        self.stall = stall
        self._stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(4096)
                if not data:
                    return
                head += data
            lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
            auth = next((line.split(":", 1)[1].strip() for line in lines[1:]
                         if line.lower().startswith("proxy-authorization:")), None)
            self.connects.append((lines[0].rsplit(" ", 1)[0], auth))  # without its HTTP version
            if self.stall:
                self._stop.wait(120)
                return
            method, where, _version = lines[0].split(" ")
            if method != "CONNECT":
                conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            host, port = where.rsplit(":", 1)
            with socket.create_connection((host, int(port))) as upstream:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                pipes = {conn: upstream, upstream: conn}
                while not self._stop.is_set():
                    ready, _, _ = select.select(list(pipes), [], [], 0.2)
                    for sock in ready:
                        data = sock.recv(65536)
                        if not data:
                            return
                        pipes[sock].sendall(data)

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


@pytest.fixture()
def proxy() -> Iterator[ConnectProxy]:
    running = ConnectProxy()
    yield running
    running.close()


def test_https_goes_through_the_environments_proxy_unless_no_proxy_says_otherwise(
        tls: Tls, proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    server = HttpsServer(tls)
    server.scripts["/x"] = [ok({"fine": True})]
    monkeypatch.setenv("HTTPS_PROXY", proxy.url.replace("http://", "http://svc%40corp:p%3Ass@"))
    monkeypatch.setenv("NO_PROXY", "example.invalid")
    http = client()
    for _ in range(2):  # one tunnel, kept alive for the second request
        assert http.get(server.url("localhost") + "/x") == {"fine": True}
    expected_auth = "Basic " + base64.b64encode(b"svc@corp:p:ss").decode()
    assert proxy.connects == [(f"CONNECT localhost:{server.port}", expected_auth)]
    assert [s.headers.get("Authorization") for s in server.seen] == [TOKEN, TOKEN]
    assert all("Proxy-Authorization" not in s.headers for s in server.seen)  # the proxy's, not the server's

    direct = HttpsServer(tls)  # a server no tunnel was opened to yet
    direct.scripts["/x"] = [ok({"direct": True})]
    monkeypatch.setenv("NO_PROXY", "localhost")
    assert client().get(direct.url("localhost") + "/x") == {"direct": True}
    assert len(proxy.connects) == 1 and direct.paths() == ["/x"]


@pytest.mark.slow
def test_the_deadline_cuts_a_proxy_that_never_opens_the_tunnel(tls: Tls, monkeypatch: pytest.MonkeyPatch) -> None:
    stalled = ConnectProxy(stall=True)
    try:
        monkeypatch.setenv("HTTPS_PROXY", stalled.url)
        http = Http(timeout=(60.0, 60.0), total=60.0, max_retries=0, deadline=Deadline(1.0))
        err = ends(lambda: http.get("https://localhost:9/x"), bound=30.0)
    finally:
        stalled.close()
    assert isinstance(err, ApiError) and err.code == "DeadlineExceeded", err
    assert stalled.connects == [("CONNECT localhost:9", None)]


@pytest.mark.slow
def test_the_total_limit_cuts_a_tls_reply_that_trickles(tls: Tls) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.ca.issue_cert("127.0.0.1").configure_cert(ctx)
    stop = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            raw, _ = sock.accept()
            with ctx.wrap_socket(raw, server_side=True) as conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
                while not stop.wait(0.2):
                    conn.sendall(b" ")

    threading.Thread(target=serve, daemon=True).start()
    try:
        http = Http(timeout=(60.0, 60.0), total=1.0, max_retries=0)
        err = ends(lambda: http.get(f"https://127.0.0.1:{sock.getsockname()[1]}/x"), bound=30.0)
    finally:
        stop.set()
        sock.close()
    assert isinstance(err, ApiError) and err.code == "Timeout" and "no complete reply within 1 s" in err.message


# --- processes ------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_process_starts_without_its_parents_pools(tls: Tls) -> None:
    server = HttpsServer(tls)
    server.scripts["/x"] = [ok({})]
    client().get(server.url() + "/x")
    assert transport._pools._pools  # the parent keeps a pool for the server
    assert in_child(lambda: b"none" if not transport._pools._pools else b"parent's") == b"none"


def test_a_process_keeps_the_connections_of_a_bounded_number_of_origins(tls: Tls) -> None:
    import gc

    from urllib3.connection import HTTPConnection

    servers = [HttpsServer(tls) for _ in range(transport.MAX_POOLS + 4)]
    http = client()
    for server in servers:
        server.scripts["/x"] = [ok({})]
        http.get(server.url() + "/x")
    gc.collect()  # a pool its manager let go of closes its connections once collected
    ports = {server.port for server in servers}
    kept = [c for c in gc.get_objects() if isinstance(c, HTTPConnection) and c.port in ports and c.sock is not None]
    assert 0 < len(kept) <= transport.MAX_POOLS
