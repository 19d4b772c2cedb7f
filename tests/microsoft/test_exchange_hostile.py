"""The Exchange admin API's $batch and InvokeCommand as a hostile or broken server answers them, from a real local
HTTPS server (trustme): sub-responses with ids of the wrong type, missing or repeated; a status that is a string,
a boolean or absent; bodies that are lists, null, strings, nested past the parser's depth or an HTML page; headers
that are not an object; redirects and next-page links to another host, another scheme or no URL at all; redirect
and paging loops. Every cmdlet ends with an ApiError naming why (its resource becomes an error record, so the
checks that need it are `unknown`), never with another exception, another cmdlet's data or an unbounded wait; and
the bearer token is never sent anywhere but the Exchange host."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from preflight.deadline import Deadline
from preflight.http import ApiError, Http
from preflight.runsecrets import RunSecrets
from preflight_providers.microsoft.exchange import Cmdlet, Exchange
from tests.conftest import run_cli
from tests.jwts import unsigned_jwt
from tests.leaks import assert_clean_run, assert_no_leak
from tests.microsoft.conftest import SECRET as CLIENT_SECRET
from tests.microsoft.conftest import load_fixture, tenant_for
from tests.microsoft.fake import Call, FakeMicrosoft, Reply
from tests.microsoft.test_hostile_signin import check

TOKEN = "eyJ0eXAiOiJKV1QifQ.hostile-exchange-token.c2lnbmF0dXJl"
SECRET = "Qx8~hostile.client-secret_VALUE/42+"
Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any
    method: str = "POST"


@dataclass
class ExchangeServer:
    """HTTPS on 127.0.0.1 whose every GET and POST `answer` replies to; `seen` records what was asked."""

    url: str
    ca: Path
    answer: Callable[[Seen], Answer] = field(default=lambda seen: (404, {}, b""))
    seen: list[Seen] = field(default_factory=list)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return context, path


@pytest.fixture()
def server(tls: tuple[ssl.SSLContext, Path]) -> Iterator[ExchangeServer]:
    context, ca = tls
    state: list[ExchangeServer] = []
    stopping = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.do_POST()

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen = Seen(self.path, dict(self.headers), json.loads(raw) if raw else None, self.command)
            state[0].seen.append(seen)
            status, headers, body = state[0].answer(seen)
            if status == 0:  # a reply that drips: its headers, then a byte of its body every 0.2 s, forever
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                while not stopping.wait(0.2):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                return
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    state.append(ExchangeServer(f"https://localhost:{httpd.server_address[1]}", ca))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state[0]
    stopping.set()
    httpd.shutdown()
    httpd.server_close()


def read(server: ExchangeServer, answer: Callable[[Seen], Answer], names: tuple[str, ...] = ("Get-A", "Get-B"),
         *, batching: bool = True, deadline: float = 60.0) -> list[Any]:
    """Each cmdlet's result or the exception it ended with. The futures must all be done within a generous
    bound: a hang fails the test instead of stalling the suite (nothing here is timed)."""
    server.answer = answer
    secrets = RunSecrets()
    secrets.add(TOKEN, SECRET)
    http = Http(auth=lambda: {"Authorization": f"Bearer {TOKEN}"}, verify=str(server.ca), sleep=lambda _s: None,
                timeout=(5, 5), deadline=Deadline(deadline), secrets=secrets)
    exchange = Exchange(http, server.url, "contoso.onmicrosoft.com", "APP:SystemMailbox@contoso")
    exchange.batching = batching
    with ThreadPoolExecutor(4) as pool:
        futures = exchange.submit(pool, [Cmdlet(name) for name in names])
        return [f.exception(timeout=120) or f.result() for f in futures]


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


def each(sub: Callable[[dict[str, Any]], Any]) -> Callable[[Seen], Answer]:
    """A $batch reply of `sub(request)` for each request; InvokeCommand on its own is not expected."""
    def answer(seen: Seen) -> Answer:
        assert seen.path.endswith("/$batch"), seen.path
        return 200, {}, body({"responses": [sub(r) for r in seen.body["requests"]]})
    return answer


def ok(request: dict[str, Any], value: list[Any]) -> dict[str, Any]:
    return {"id": request["id"], "status": 200, "headers": {}, "body": {"value": value}}


def errors(results: list[Any]) -> list[tuple[int | None, str]]:
    assert all(isinstance(r, ApiError) for r in results), results
    return [(r.status, r.code) for r in results]


SUB_RESPONSES: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "id as an integer": (lambda r: {**ok(r, [1]), "id": 1}, "MalformedResponse"),
    "id as a list": (lambda r: {**ok(r, [1]), "id": [r["id"]]}, "MalformedResponse"),
    "no id": (lambda r: {k: v for k, v in ok(r, [1]).items() if k != "id"}, "MalformedResponse"),
    "status as a string": (lambda r: {**ok(r, [1]), "status": "200"}, "MalformedResponse"),
    "status as a boolean": (lambda r: {**ok(r, [1]), "status": True}, "MalformedResponse"),
    "status as a float": (lambda r: {**ok(r, [1]), "status": 200.0}, "MalformedResponse"),
    "status as a list": (lambda r: {**ok(r, [1]), "status": [200]}, "MalformedResponse"),
    "no status": (lambda r: {k: v for k, v in ok(r, [1]).items() if k != "status"}, "MalformedResponse"),
    "body a list": (lambda r: {**ok(r, []), "body": [{"Identity": "x"}]}, "MalformedResponse"),
    "body null": (lambda r: {**ok(r, []), "body": None}, "MalformedResponse"),
    "body a string": (lambda r: {**ok(r, []), "body": "<html>error</html>"}, "MalformedResponse"),
    "value an object": (lambda r: {**ok(r, []), "body": {"value": {"Identity": "x"}}}, "MalformedResponse"),
    "warnings not a list": (lambda r: {**ok(r, []), "body": {"@adminapi.warnings": "only a warning"}},
                            "MalformedResponse"),
    "the response not an object": (lambda r: [r["id"], 200], "MalformedResponse"),
    "a status that is no HTTP status": (lambda r: {**ok(r, [1]), "status": 999}, "HTTP999"),
}


@pytest.mark.parametrize("case", sorted(SUB_RESPONSES))
def test_an_off_shape_sub_response_is_its_cmdlet_s_error_never_data(case: str, server: ExchangeServer) -> None:
    sub, code = SUB_RESPONSES[case]
    assert [c for _s, c in errors(read(server, each(sub)))] == [code, code]


def test_repeated_and_foreign_ids_match_no_cmdlet(server: ExchangeServer) -> None:
    def answer(seen: Seen) -> Answer:
        first, second = seen.body["requests"]
        # The first cmdlet answered twice (once with the second's data), the second not at all, and a stranger.
        return 200, {}, body({"responses": [ok(first, ["mine"]), {**ok(second, ["theirs"]), "id": first["id"]},
                                            ok({"id": "someone-else"}, ["stray"])]})

    assert errors(read(server, answer)) == [(200, "MalformedResponse"), (200, "MalformedResponse")]
    first, second = read(server, answer)
    assert "2 responses" in first.message and "no response" in second.message


OUTER: dict[str, Answer] = {
    "an HTML error page with status 200": (200, {"Content-Type": "text/html"}, b"<html><body>Sorry</body></html>"),
    "truncated JSON": (200, {}, b'{"responses": [{"id": "x", "status": 200, "body": {"val'),
    "JSON nested past the parser's depth": (200, {}, b"[" * 200_000 + b"]" * 200_000),
    "a JSON string": (200, {}, b'"responses"'),
}


@pytest.mark.parametrize("case", sorted(OUTER))
def test_an_outer_reply_that_is_not_json_fails_every_cmdlet_of_the_batch(case: str, server: ExchangeServer) -> None:
    assert errors(read(server, lambda _seen: OUTER[case])) == [(200, "MalformedResponse")] * 2


def test_a_batch_reply_without_a_responses_list_falls_back_to_one_cmdlet_per_request(
        server: ExchangeServer) -> None:
    def answer(seen: Seen) -> Answer:
        if seen.path.endswith("/$batch"):
            return 200, {}, body({"responses": {"not": "a list"}})
        return 200, {}, body({"value": [seen.body["CmdletInput"]["CmdletName"]]})

    assert read(server, answer) == [["Get-A"], ["Get-B"]]
    assert [s.path.rsplit("/", 1)[-1] for s in server.seen].count("InvokeCommand") == 2


ELSEWHERE = {  # {port}: the Exchange server's own, so that only the part under test differs
    "another host": "https://evil.example:{port}/adminapi/beta/contoso/InvokeCommand",
    "plain http on the same host": "http://localhost:{port}/adminapi/beta/contoso/InvokeCommand",
    "another port on the same host": "https://localhost:1/adminapi/beta/contoso/InvokeCommand",
    "a look-alike host": "https://localhost.evil.example:{port}/x",
    "user info naming the host": "https://localhost:{port}@evil.example:{port}/x",
    "no URL at all (a broken IPv6 literal)": "https://[::1/x",
    "a port out of range": "https://localhost:99999/x",
    "another scheme": "file:///etc/passwd",
}


@pytest.mark.parametrize("case", sorted(ELSEWHERE))
@pytest.mark.parametrize("how", ["redirect", "next-page link"])
def test_a_redirect_or_next_page_link_off_the_exchange_host_is_not_followed(
        how: str, case: str, server: ExchangeServer) -> None:
    link = ELSEWHERE[case].replace("{port}", server.url.rsplit(":", 1)[1])
    if how == "redirect":
        sub = lambda r: {"id": r["id"], "status": 302, "headers": {"Location": link}, "body": None}  # noqa: E731
    else:
        sub = lambda r: {**ok(r, [1]), "body": {"value": [1], "@odata.nextLink": link}}  # noqa: E731
    results = read(server, each(sub))
    assert [c for _s, c in errors(results)] == ["UntrustedRedirect"] * 2
    assert all("not followed" in r.message for r in results)
    assert len(server.seen) == 1  # the one $batch: nothing else was asked for, anywhere


@pytest.mark.parametrize("batching", [True, False], ids=["batched", "one by one"])
def test_a_broken_location_on_invoke_command_itself_is_an_error(batching: bool, server: ExchangeServer) -> None:
    def answer(seen: Seen) -> Answer:
        if seen.path.endswith("/$batch"):
            moved = {"status": 307, "headers": {"Location": "https://[::1/x"}}
            return 200, {}, body({"responses": [{"id": r["id"], **moved} for r in seen.body["requests"]]})
        return 307, {"Location": "https://[::1/x"}, b""

    assert [c for _s, c in errors(read(server, answer, batching=batching))] == ["UntrustedRedirect"] * 2


def test_a_redirect_loop_on_the_exchange_host_ends(server: ExchangeServer) -> None:
    sub = lambda r: {"id": r["id"], "status": 302, "headers": {"Location": "/adminapi/loop"}, "body": None}  # noqa: E731
    assert [c for _s, c in errors(read(server, each(sub)))] == ["TooManyRedirects"] * 2
    assert len(server.seen) <= 3


def test_a_paging_loop_ends(server: ExchangeServer) -> None:
    def sub(r: dict[str, Any]) -> Any:
        return {**ok(r, []), "body": {"value": [1], "@odata.nextLink": "/adminapi/beta/contoso/InvokeCommand?p=1"}}

    assert [c for _s, c in errors(read(server, each(sub)))] == ["PagingLoop"] * 2


def escaped(secret: str) -> str:
    """`secret` as JSON text with its first character as a \\u escape: the same string once parsed, a spelling
    no masking of the reply's text looks for."""
    return f"\\u{ord(secret[0]):04x}{json.dumps(secret)[2:-1]}"


def echoing(status: int) -> bytes:
    """Exchange's failed-cmdlet shape, its reason quoting the token and the client secret, JSON-escaped."""
    said = f"token {escaped(TOKEN)} and secret {escaped(SECRET)} refused"
    return ('{"error": {"code": "BadRequest", "message": "Error executing cmdlet", "details": [{"code": "Context", '
            f'"message": "Ex6F9304|Microsoft.Exchange.Configuration.Tasks.TaskException|{said}"}}]}}}}').encode()


@pytest.mark.parametrize("status", [400, 403, 503])
@pytest.mark.parametrize("batching", [True, False], ids=["batched", "one by one"])
def test_a_cmdlet_error_quoting_the_token_or_secret_json_escaped_is_masked(
        batching: bool, status: int, server: ExchangeServer) -> None:
    def answer(seen: Seen) -> Answer:
        if not seen.path.endswith("/$batch"):
            return status, {"Retry-After": "0"}, echoing(status)
        subs = [f'{{"id": "{r["id"]}", "status": {status}, "headers": {{"Retry-After": "0"}}, '
                f'"body": {echoing(status).decode()}}}' for r in seen.body["requests"]]
        return 200, {}, f'{{"responses": [{", ".join(subs)}]}}'.encode()

    results = read(server, answer, batching=batching)
    assert errors(results) == [(status, "TaskException")] * 2
    for err in results:
        shown = json.dumps(err.to_error()) + str(err)
        assert "refused" in shown, shown
        assert_no_leak(shown, [TOKEN, SECRET])


@pytest.mark.parametrize("value", ["²", "١٢", "Mon, 01 Jan 99999999999999999999 00:00:00 GMT", "-5", 7, None, ["1"]])
def test_a_throttled_sub_response_with_a_garbage_retry_after_is_retried_on_preflight_s_own_back_off(
        value: Any, server: ExchangeServer) -> None:
    def sub(r: dict[str, Any]) -> Any:
        if len(server.seen) == 1:
            return {"id": r["id"], "status": 429, "headers": {"Retry-After": value}, "body": None}
        return ok(r, [r["body"]["CmdletInput"]["CmdletName"]])

    assert read(server, each(sub)) == [["Get-A"], ["Get-B"]]
    assert len(server.seen) == 2


@pytest.mark.parametrize("batching", [True, False], ids=["batched", "one by one"])
def test_a_reply_that_drips_is_cut_by_the_deadline(batching: bool, server: ExchangeServer) -> None:
    results = read(server, lambda _seen: (0, {}, b""), batching=batching, deadline=1.0)
    assert [c for _s, c in errors(results)] == ["DeadlineExceeded"] * 2


TOKENS = {  # what a sign-in service answers as the access token: each claims the fake tenant's audience
    "a line break in the token": "abc\r\nX-Injected: 1",
    "a character beyond Latin-1 in the token": "abc\u2028def",
    "a line break in the tenant id (the Exchange routing hint)": {"tid": "x\r\nX-Injected: 1"},
    "a number as the tenant id": {"tid": 5},
    "a list as the tenant id": {"tid": ["x"]},
}


@pytest.mark.parametrize("case", sorted(TOKENS))
@pytest.mark.usefixtures("isolated", "secret_env")
def test_a_token_that_cannot_be_sent_makes_unknowns_not_an_internal_error(
        case: str, microsoft_fake: FakeMicrosoft, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    shape = TOKENS[case]
    token = shape if isinstance(shape, str) else unsigned_jwt({"aud": "https://graph.fake.test", **shape})

    def issue(call: Call) -> Reply | None:
        if call.api != "token":
            return None
        return Reply(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": token})

    microsoft_fake.fault = issue
    report = tmp_path / "out" / "report.json"
    code, out, err = run_cli([*check(str(snapshot["tenant"]["domain"])), "--format", "json", "--output",
                              str(report)], capsys)
    assert code in (3, 4) and "internal error" not in err, err
    assert_clean_run(out, err, [CLIENT_SECRET, token])
    target = json.loads(report.read_text())["targets"][0]
    assert not [f["check"] for f in target["findings"] if f["status"] in ("pass", "fail")]
    whys = target["errors"] + [f["message"] for f in target["findings"]]
    assert any("cannot be sent" in why or "no tenant id" in why for why in whys), whys
    assert "X-Injected" not in repr(microsoft_fake.calls())
