"""preflight.transport's lean exchange (its own request writer and reply parser) against urllib3's urlopen, the
path it stands in for: for every reply a raw server sends (plain, hostile, odd), preflight.http gives the same
status, headers and body, or fails with the same error; the server receives the same request bytes. Each case
also says which path read the reply: the lean parser, or http.client and urllib3 handed the bytes already read."""

from __future__ import annotations

import contextlib
import gzip
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from preflight import transport
from preflight.http import ApiError, Http
from tests.listener import listening, serve_each

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


def plain(body: bytes, head: bytes = HEAD) -> bytes:
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def chunked(*chunks: bytes) -> bytes:
    return HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + \
        b"0\r\n\r\n"


ZIPPED = gzip.compress(b'{"zipped": true}')

# name: (what the server sends, whether the lean parser reads it itself)
REPLIES: dict[str, tuple[bytes, bool]] = {
    "plain": (plain(b'{"a": 1}'), True),
    "empty body": (plain(b""), True),
    "error status": (plain(b'{"error": {"code": "Nope"}}', b"HTTP/1.1 403 Forbidden\r\n"), True),
    "no reason": (plain(b"{}", b"HTTP/1.1 200\r\n"), True),
    "latin-1 value": (plain(b"{}", HEAD + b"Retry-After: \xb2\r\nX-Name: caf\xe9 \t\r\n"), True),
    "repeated header": (plain(b"{}", HEAD + b"Link: <a>\r\nlink: <b>\r\n"), True),
    "odd case": (b"HTTP/1.1 200 OK\r\ncontent-LENGTH: 2\r\n\r\n{}", True),
    "99 headers": (plain(b"{}", HEAD + b"".join(b"X-%d: v\r\n" % i for i in range(97))), True),
    "100 headers": (plain(b"{}", HEAD + b"".join(b"X-%d: v\r\n" % i for i in range(98))), False),
    "150 headers": (plain(b"{}", HEAD + b"".join(b"X-%d: v\r\n" % i for i in range(148))), False),
    "huge header line": (plain(b"{}", HEAD + b"X-Big: " + b"a" * 70000 + b"\r\n"), False),
    "long head": (plain(b"{}", HEAD + b"".join(b"X-%d: %s\r\n" % (i, b"b" * 1000) for i in range(80))), False),
    "bare LF": (b"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}", False),
    "bare LF in one line": (b"HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 2\r\n\r\n{}", False),
    "bare LF ending the head": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\n{}", False),
    "bare CR in a value": (plain(b"{}", HEAD + b"X-A: 1\r2\r\n"), False),
    "folded header": (plain(b"{}", HEAD + b"X-Folded: one\r\n two\r\n\tthree\r\n"), False),
    "line without a colon": (plain(b"{}", HEAD + b"Nonsense\r\n"), False),
    "space before the colon": (plain(b"{}", HEAD + b"X-A : 1\r\n"), False),
    "control character": (plain(b"{}", HEAD + b"X-A: 1\x002\r\n"), False),
    "vertical tab": (plain(b"{}", HEAD + b"X-A: 1\x0b2\r\n"), False),
    "duplicate length, same": (HEAD + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", False),
    "duplicate length, different": (HEAD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{} ", False),
    "negative length": (HEAD + b"Content-Length: -2\r\n\r\n{}", False),
    "garbage length": (HEAD + b"Content-Length: two\r\n\r\n{}", False),
    "signed length": (HEAD + b"Content-Length: +2\r\n\r\n{}", False),
    "spaced length": (HEAD + b"Content-Length: 2 \r\n\r\n{}", False),
    "listed length": (HEAD + b"Content-Length: 2, 2\r\n\r\n{}", False),
    "superscript length": (HEAD + b"Content-Length: \xb2\r\n\r\n{}", False),
    "status line alone": (b"HTTP/1.1 200 OK\r\n\r\n{}", False),
    "huge length": (HEAD + b"Content-Length: 99999999999999999999\r\n\r\n{}", False),
    "no length": (HEAD + b"\r\n{}", False),
    "truncated body": (HEAD + b"Content-Length: 20\r\n\r\n{\"a\":", True),
    "more than declared": (HEAD + b"Content-Length: 2\r\n\r\n{}garbage", True),
    "connection close": (plain(b"{}", HEAD + b"Connection: close\r\n"), True),
    "chunked": (chunked(b'{"a": ', b"1}"), True),
    "chunked, empty": (chunked(), True),
    "chunked, big": (chunked(*[b'{"a": "' + b"x" * 20000] + [b"y" * 8192] * 5 + [b'"}']), True),
    "chunk extension": (HEAD + b"Transfer-Encoding: chunked\r\n\r\n2;x=y\r\n{}\r\n0\r\n\r\n", True),
    "upper-case chunk size": (HEAD + b"Transfer-Encoding: chunked\r\n\r\nA\r\n" + b"[1,2,3,40]" + b"\r\n0\r\n\r\n",
                              True),
    "chunk size with blanks": (HEAD + b"Transfer-Encoding: chunked\r\n\r\n 2 \r\n{}\r\n0\r\n\r\n", False),
    "chunk size 0x": (HEAD + b"Transfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n", False),
    "negative chunk size": (HEAD + b"Transfer-Encoding: chunked\r\n\r\n-2\r\n{}\r\n0\r\n\r\n", False),
    "chunk size with underscore": (HEAD + b"Transfer-Encoding: chunked\r\n\r\n0_2\r\n{}\r\n0\r\n\r\n", False),
    "chunk without its CRLF": (HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n", False),
    "chunk longer than said": (HEAD + b"Transfer-Encoding: chunked\r\n\r\n1\r\n{}\r\n0\r\n\r\n", False),
    "chunk size line bare LF": (HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\n{}\r\n0\r\n\r\n", False),
    "trailer": (HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-Trailer: 1\r\n\r\n", False),
    "no last chunk": (HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n", False),
    "huge chunk cut short": (HEAD + b"Transfer-Encoding: chunked\r\n\r\nfffffffffff\r\n{}", False),
    "chunked twice": (HEAD + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", False),
    "chunked in capitals": (HEAD + b"Transfer-Encoding: Chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", False),
    "gzip, chunked": (HEAD + b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" +
                      b"%x\r\n%s\r\n0\r\n\r\n" % (len(ZIPPED), ZIPPED), True),
    "deflate": (plain(zlib.compress(b'{"deflated": 1}'), HEAD + b"Content-Encoding: deflate\r\n"), True),
    "raw deflate": (plain(zlib.compress(b'{"raw": 1}')[2:-4], HEAD + b"Content-Encoding: deflate\r\n"), True),
    "gzip twice": (plain(ZIPPED + ZIPPED, HEAD + b"Content-Encoding: gzip\r\n"), True),
    "gzip, then garbage": (plain(ZIPPED + b"garbage", HEAD + b"Content-Encoding: gzip\r\n"), True),
    "gzip cut short": (HEAD + b"Content-Encoding: gzip\r\nContent-Length: 100\r\n\r\n" + ZIPPED, False),
    "gzip, x-gzip": (plain(ZIPPED, HEAD + b"Content-Encoding: x-gzip\r\n"), False),
    "gzip and identity": (plain(ZIPPED, HEAD + b"Content-Encoding: gzip, identity\r\n"), False),
    "chunk-size garbage": (HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", False),
    "chunked and a length": (HEAD + b"Content-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                             False),
    "truncated chunk": (HEAD + b"Transfer-Encoding: chunked\r\n\r\n10\r\n{}", False),
    "gzip": (plain(ZIPPED, HEAD + b"Content-Encoding: gzip\r\n"), True),
    "bad gzip": (plain(b"not gzip", HEAD + b"Content-Encoding: gzip\r\n"), True),
    "identity encoding": (plain(b"{}", HEAD + b"Content-Encoding: identity\r\n"), False),
    "HTTP/1.0": (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", False),
    "HTTP/2": (b"HTTP/2 200\r\nContent-Length: 2\r\n\r\n{}", False),
    "status of four digits": (b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}", False),
    "status not a number": (b"HTTP/1.1 OK\r\nContent-Length: 2\r\n\r\n{}", False),
    "not HTTP": (b"SSH-2.0-OpenSSH\r\n\r\n", False),
    "continue first": (b"HTTP/1.1 100 Continue\r\n\r\n" + plain(b'{"after": 1}'), False),
    "no content": (b"HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\n{}", False),
    "nothing": (b"", False),
    "head cut short": (b"HTTP/1.1 200 OK\r\nContent-Le", False),
    "redirect": (b"HTTP/1.1 302 Found\r\nLocation: /landing\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", True),
}


class RawServer:
    """Answers each request (its head and declared body read) with the scripted bytes, then closes the
    connection (with `keep`, leaves it open and answers nothing more on it); records every request's bytes and
    counts connections. "/landing" always answers a plain reply. With `tls`, it speaks HTTPS; with `split`, it
    sends its reply that many bytes at a time, a millisecond apart (heads and bodies arriving in pieces)."""

    def __init__(self, reply: bytes, keep: bool = False, tls: ssl.SSLContext | None = None, split: int = 0) -> None:
        self.reply = reply
        self.keep = keep
        self.tls = tls
        self.split = split
        self.connections = 0
        self.requests: list[bytes] = []
        self.sock = listening()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.sock.getsockname()[1]}"
        serve_each(self.sock, self._serve)

    def _serve(self, conn: socket.socket) -> None:
        self.connections += 1
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
        with conn, contextlib.suppress(OSError):
            data = b""
            while b"\r\n\r\n" not in data:
                more = conn.recv(65536)
                if not more:
                    return
                data += more
            head, _, rest = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(rest) < length:
                rest += conn.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + rest)
            reply = plain(b'{"landed": true}') if head.startswith(b"GET /landing ") else self.reply
            for start in range(0, len(reply), self.split or len(reply) or 1):
                conn.sendall(reply[start:start + (self.split or len(reply))])
                if self.split:
                    time.sleep(0.001)
            if not self.keep:
                conn.shutdown(socket.SHUT_WR)
            conn.recv(1)  # until the client closes: no reset to lose the reply in

    def close(self) -> None:
        self.sock.close()


@pytest.fixture()
def paths(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often the lean path wrote a request head ("head"), sent it ("lean"), and handed a reply over
    ("handed"); a case the lean path does not take counts no "head"."""
    counts = {"lean": 0, "handed": 0}
    lean, handed, head = transport._lean_exchange, transport._handed_over, transport._request_head

    def counting_lean(*args: Any, **kw: Any) -> Any:
        counts["lean"] += 1
        return lean(*args, **kw)

    def counting_handed(*args: Any, **kw: Any) -> Any:
        counts["handed"] += 1
        return handed(*args, **kw)

    def counting_head(*args: Any, **kw: Any) -> Any:
        counts["head"] = counts.get("head", 0) + 1
        return head(*args, **kw)

    monkeypatch.setattr(transport, "_request_head", counting_head)
    monkeypatch.setattr(transport, "_lean_exchange", counting_lean)
    monkeypatch.setattr(transport, "_handed_over", counting_handed)
    return counts


def outcome(http: Http, url: str, **kw: Any) -> Any:
    """What preflight.http makes of the reply: (status, header items, parsed body), or the error's code."""
    try:
        status, headers, body = http.request("GET", url, **kw)
    except ApiError as exc:
        return exc.code, exc.status
    return status, list(headers.items()), body


def both(reply: bytes, tls: Tls | None = None, split: int = 0, **kw: Any) -> tuple[Any, Any]:
    """The outcome through the lean exchange and through urllib3's urlopen, each from a server of its own (a
    connection the other left in the pool could meet the server's close)."""
    results = []
    for lean in (True, False):
        server = RawServer(reply, tls=tls.server if tls else None, split=split)
        try:
            http = Http(timeout=(5.0, 5.0), total=10.0, max_retries=0, verify=str(tls.bundle) if tls else True)
            http.transport.lean = lean
            results.append(outcome(http, server.url + "/x", **kw))
        finally:
            server.close()
    return results[0], results[1]


@dataclass
class Tls:
    server: ssl.SSLContext
    bundle: Path


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    bundle = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return Tls(context, bundle)


PIECES = ["plain", "latin-1 value", "99 headers", "bare LF", "bare LF ending the head", "folded header", "chunked",
          "truncated body", "more than declared", "gzip", "continue first", "head cut short", "nothing"]


@pytest.mark.parametrize("split", [0, 1, 5], ids=["whole", "bytewise", "in pieces"])
@pytest.mark.parametrize("name", PIECES)
def test_a_reply_over_tls_reads_as_urllib3_reads_it(name: str, split: int, tls: Tls, paths: dict[str, int]) -> None:
    """TLS records and pieces of a reply split heads and bodies anywhere, line ends and the blank line too."""
    reply, read_lean = REPLIES[name]
    if split == 1 and len(reply) > 500:  # a millisecond a byte: long replies go a few bytes at a time
        split = 7
    lean, urllib3 = both(reply, tls=tls, split=split)
    assert lean == urllib3
    assert paths["lean"] >= 1 and (paths["handed"] == 0) is read_lean, paths


@pytest.mark.parametrize("name", list(REPLIES))
def test_a_reply_reads_as_urllib3_reads_it(name: str, paths: dict[str, int]) -> None:
    reply, read_lean = REPLIES[name]
    lean, urllib3 = both(reply)
    assert lean == urllib3
    assert paths["lean"] >= 1
    assert (paths["handed"] == 0) is read_lean, paths


def test_the_cases_cover_successes_and_failures() -> None:
    """The comparison means something only if the cases reach both: replies read, and replies refused."""
    results = {name: both(reply)[1] for name, (reply, _lean) in REPLIES.items()
               if name in ("plain", "folded header", "truncated body", "chunk-size garbage", "bare LF", "nothing")}
    assert results["plain"] == (200, [("Content-Type", "application/json"), ("Content-Length", "8")], {"a": 1})
    assert results["folded header"][2] == {} and ("X-Folded", "one two three") in results["folded header"][1]
    assert results["bare LF"][:2] == (200, [("Content-Length", "2")])
    for failed in ("truncated body", "chunk-size garbage", "nothing"):
        assert results[failed] == ("ConnectionError", None)


@pytest.mark.parametrize("name", ["bare LF", "bare LF ending the head"])
def test_a_head_ended_by_a_bare_lf_is_read_at_once(name: str, paths: dict[str, int]) -> None:
    """Not waited on until the read timeout: the server keeps the connection open after such a reply."""
    server = RawServer(REPLIES[name][0], keep=True)
    try:
        http = Http(timeout=(5.0, 5.0), total=10.0, max_retries=0)
        started = time.monotonic()
        assert http.get(server.url + "/x") == {}
        assert time.monotonic() - started < 4.0
    finally:
        server.close()
    assert paths == {"head": 1, "lean": 1, "handed": 1}


def test_a_server_saying_it_closes_gets_a_new_connection(paths: dict[str, int]) -> None:
    """Even one that leaves the connection open: "Connection: close" means that connection serves no more."""
    server = RawServer(REPLIES["connection close"][0], keep=True)
    try:
        http = Http(timeout=(2.0, 2.0), total=4.0, max_retries=0)
        assert [http.get(server.url + "/x") for _ in range(3)] == [{}, {}, {}]
    finally:
        server.close()
    assert server.connections == 3 and paths == {"head": 3, "lean": 3, "handed": 0}


def test_a_redirect_is_followed_on_the_lean_path(paths: dict[str, int]) -> None:
    lean, urllib3 = both(REPLIES["redirect"][0])
    assert lean == urllib3 == (200, [("Content-Type", "application/json"), ("Content-Length", "16")],
                               {"landed": True})
    assert paths == {"head": 2, "lean": 2, "handed": 0}


BOMB = gzip.compress(b'{"a": "' + b"x" * 1000 + b'"}')  # 1 KB decoded from a few dozen bytes

CAPPED = {  # replies beyond a cap of 100 bytes: (reply, whether the lean parser reads it itself)
    "plain": (plain(b"x" * 101), True),
    "chunked": (chunked(b"x" * 60, b"x" * 41), False),
    "gzip": (plain(BOMB, HEAD + b"Content-Encoding: gzip\r\n"), True),
    "gzip, chunked": (HEAD + b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" +
                      b"%x\r\n%s\r\n0\r\n\r\n" % (len(BOMB), BOMB), True),
    "gzip, declared beyond the cap": (plain(gzip.compress(bytes(range(256)) * 2), HEAD + b"Content-Encoding: gzip\r\n"),
                                      False),
}


@pytest.mark.parametrize("name", list(CAPPED))
def test_a_reply_larger_than_the_cap_is_refused(name: str, monkeypatch: pytest.MonkeyPatch, paths: dict[str, int]
                                                ) -> None:
    monkeypatch.setattr("preflight.http.MAX_BODY", 100)
    reply, read_lean = CAPPED[name]
    lean, urllib3 = both(reply)
    assert lean == urllib3 == ("ConnectionError", None)
    assert (paths["handed"] == 0) is read_lean, paths


def test_a_reply_just_within_the_cap_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("preflight.http.MAX_BODY", 100)
    body = b'{"a": "' + b"x" * 91 + b'"}'
    zipped = plain(gzip.compress(body), HEAD + b"Content-Encoding: gzip\r\n")
    for reply in (plain(body), chunked(body[:50], body[50:]), zipped):
        lean, urllib3 = both(reply)
        assert lean == urllib3 and lean[2] == {"a": "x" * 91}


def sent(method: str, **kw: Any) -> list[bytes]:
    """The bytes of the request as the lean exchange sends it, then as urllib3 sends it (the port as PORT)."""
    requests = []
    for lean in (True, False):
        server = RawServer(plain(b"{}"))
        try:
            http = Http(auth=lambda: {"Authorization": "Bearer t"}, timeout=(5.0, 5.0), max_retries=0)
            http.transport.lean = lean
            http.request(method, server.url + "/v1.0/users?$top=1", **kw)
        finally:
            server.close()
        port = server.url.rsplit(":", 1)[1].encode()
        assert len(server.requests) == 1
        requests.append(server.requests[0].replace(b":" + port + b"\r\n", b":PORT\r\n"))
    return requests


@pytest.mark.parametrize(("method", "kw"), [
    ("GET", {}),
    ("GET", {"params": {"a": "b c"}, "headers": {"ConsistencyLevel": "eventual", "X-Folded": "a\r\n\tb"}}),
    ("POST", {"json_body": {"q": "é"}}),
    ("POST", {}),
    ("DELETE", {}),
    ("GET", {"headers": {"accept-encoding": None, "user-agent": "other/1"}}),
], ids=["get", "params and headers", "post", "post without body", "delete", "no accept-encoding"])
def test_the_server_receives_the_bytes_urllib3_sends(method: str, kw: dict[str, Any], paths: dict[str, int]
                                                     ) -> None:
    lean, urllib3 = sent(method, **kw)
    assert lean == urllib3
    assert paths["lean"] == 1


@pytest.mark.parametrize("headers", [{"X-A": "1\r\nX-Injected: 1"}, {"X-A": "1\n"}, {"X-A": "\u2028"},
                                     {"X:A": "1"}, {"é": "1"}, {" X": "1"}])
def test_a_header_http_cannot_carry_is_refused_as_urllib3_refuses_it(headers: dict[str, str],
                                                                     paths: dict[str, int]) -> None:
    lean, urllib3 = both(plain(b"{}"), headers=headers)
    assert lean == urllib3 == ("InvalidRequest", None)
    assert paths["head"] == 1 and paths["lean"] == 0  # refused by the lean path before taking a connection


def test_an_odd_header_http_can_carry_is_sent_as_urllib3_sends_it(paths: dict[str, int]) -> None:
    lean, urllib3 = sent("GET", headers={"X A": "1", "X\tB": "2", "X-B": "", "X-C": " padded \t", "X-D": "caf\xe9"})
    assert lean == urllib3 and b"\r\nX A: 1\r\n" in lean and b"X-D: caf\xe9" in lean


@contextlib.contextmanager
def keep_alive_server() -> Iterator[tuple[str, list[int]]]:
    """Plain replies on kept-alive connections; yields its URL and the number of connections accepted so far."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    accepted = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            accepted[0] += 1
            super().setup()

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", accepted
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_kept_alive_connection_serves_again(paths: dict[str, int]) -> None:
    with keep_alive_server() as (url, accepted):
        http = Http(timeout=(5.0, 5.0), max_retries=0)
        for _ in range(5):
            assert http.get(url + "/x") == {}
    assert accepted[0] == 1 and paths == {"head": 5, "lean": 5, "handed": 0}
