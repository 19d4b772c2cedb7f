"""preflight.http against a real local HTTP server: retries, Retry-After, errors as data, paging."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from preflight.http import ApiError, Http, follow_pages, mask_url, record, retry_after

Script = list[tuple[int, dict[str, str], bytes]]


class Server:
    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.hits: dict[str, int] = {}
        self.headers: dict[str, dict[str, str]] = {}  # path -> the last request's headers
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                outer.hits[path] = outer.hits.get(path, 0) + 1
                outer.headers[path] = dict(self.headers)
                script = outer.scripts.get(path) or [(404, {}, b'{"error": {"code": "NotFound"}}')]
                status, headers, body = script.pop(0) if len(script) > 1 else script[0]
                if status == 0:  # drop the connection without a reply
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture()
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.httpd.shutdown()


def ok(body: Any) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


def client(waits: list[float], retries: int = 4) -> Http:
    return Http(sleep=waits.append, max_retries=retries, timeout=(2, 2))


def test_429_waits_as_long_as_retry_after_says(server: Server) -> None:
    server.scripts["/x"] = [(429, {"Retry-After": "7"}, b'{"error": {"code": "TooManyRequests"}}'), ok({"a": 1})]
    waits: list[float] = []
    http = client(waits)
    assert http.get(server.url + "/x") == {"a": 1}
    assert waits == [7.0] and http.stats.requests == 2 and http.stats.retries == 1


def test_server_errors_back_off_then_give_up_with_the_error(server: Server) -> None:
    server.scripts["/x"] = [(503, {}, b'{"error": {"code": "ServiceUnavailable", "message": "busy"}}')]
    waits: list[float] = []
    with pytest.raises(ApiError) as info:
        client(waits, retries=2).get(server.url + "/x")
    assert info.value.status == 503 and info.value.code == "ServiceUnavailable"
    assert len(waits) == 2 and server.hits["/x"] == 3


def test_graph_and_google_error_bodies_become_recorded_errors(server: Server) -> None:
    server.scripts["/graph"] = [(403, {}, json.dumps({"error": {
        "code": "Authorization_RequestDenied", "message": "Insufficient privileges to complete the operation.",
        "innerError": {"date": "2026-11-26T10:00:00", "request-id": "r"}}}).encode())]
    server.scripts["/google"] = [(403, {}, json.dumps({"error": {
        "code": 403, "message": "Not Authorized to access this resource/api",
        "errors": [{"message": "Not Authorized to access this resource/api", "domain": "global",
                    "reason": "forbidden"}], "status": "PERMISSION_DENIED"}}).encode())]
    http = client([])
    graph = record(lambda: http.get(server.url + "/graph"))
    google = record(lambda: http.get(server.url + "/google"))
    assert graph == {"error": {"status": 403, "code": "Authorization_RequestDenied",
                               "message": "Insufficient privileges to complete the operation."}}
    assert google["error"]["code"] == "PERMISSION_DENIED" and google["error"]["status"] == 403


def test_truncated_json_is_retried_and_then_reported_as_malformed(server: Server) -> None:
    server.scripts["/x"] = [(200, {}, b'{"value": [1, 2')]
    with pytest.raises(ApiError, match="MalformedResponse"):
        client([], retries=1).get(server.url + "/x")
    server.scripts["/y"] = [(200, {}, b'{"value": [1, 2'), ok({"value": [1, 2]})]
    assert client([]).get(server.url + "/y") == {"value": [1, 2]}


def test_dropped_connections_are_retried(server: Server) -> None:
    server.scripts["/x"] = [(0, {}, b""), ok({"fine": True})]
    assert client([]).get(server.url + "/x") == {"fine": True}


def test_unreachable_host_is_a_connection_error_not_a_crash() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    err = record(lambda: client([], retries=1).get(f"http://127.0.0.1:{port}/x"))
    assert err["error"]["code"] == "ConnectionError"


def test_paging_follows_next_links_and_refuses_loops(server: Server) -> None:
    server.scripts["/p1"] = [ok({"value": [1], "@odata.nextLink": server.url + "/p2"})]
    server.scripts["/p2"] = [ok({"value": [2]})]
    assert follow_pages(client([]), server.url + "/p1") == [1, 2]
    server.scripts["/loop"] = [ok({"value": [1], "@odata.nextLink": server.url + "/loop"})]
    with pytest.raises(ApiError, match="PagingLoop"):
        follow_pages(client([]), server.url + "/loop")


def test_google_page_tokens(server: Server) -> None:
    calls: list[str] = []

    class Counting(Http):
        def get(self, url: str, **kw: Any) -> Any:
            calls.append(str((kw.get("params") or {}).get("pageToken")))
            token = (kw.get("params") or {}).get("pageToken")
            return {"policies": [token or "first"], **({} if token else {"nextPageToken": "t2"})}

    items = follow_pages(Counting(), server.url, items_key="policies",
                         next_params=lambda b: {"pageToken": b["nextPageToken"]} if b.get("nextPageToken") else None)
    assert items == ["first", "t2"] and calls == ["None", "t2"]


def test_retry_after_parsing_and_url_masking() -> None:
    assert retry_after("12") == 12.0
    assert retry_after("Thu, 26 Nov 2026 10:00:30 GMT", now=1795687200.0) == pytest.approx(30.0, abs=1)
    assert retry_after("soon") is None
    masked = mask_url("https://x/token?client_secret=abc&code=def&$select=id")
    assert "abc" not in masked and "def" not in masked and "$select=id" in masked


def test_a_netrc_entry_never_replaces_the_bearer_token(server: Server, tmp_path: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    server.scripts["/x"] = [ok({"a": 1})]
    Http(auth=lambda: {"Authorization": "Bearer the-token"}, timeout=(2, 2)).get(server.url + "/x")
    assert server.headers["/x"]["Authorization"] == "Bearer the-token"


def test_the_proxy_variables_are_honoured(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    # Read once per host, not per request: still the proxy for its host, and NO_PROXY still bypasses it.
    monkeypatch.setenv("HTTP_PROXY", server.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server.scripts["http://api.invalid/x"] = [ok({"via": "proxy"})]
    server.scripts["/direct"] = [ok({"via": "direct"})]
    http = Http(timeout=(2, 2), max_retries=0)
    for _ in range(2):
        assert http.get("http://api.invalid/x") == {"via": "proxy"}
        assert http.get(server.url + "/direct") == {"via": "direct"}
    assert server.hits == {"http://api.invalid/x": 2, "/direct": 2}

