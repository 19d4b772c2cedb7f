"""preflight.http against a real local server sending Retry-After values no server should: characters str.isdigit
takes but float() refuses ("²", sent as the Latin-1 byte 0xB2 it is on the wire), digits of other scripts, HTTP
dates whose year or zone offset overflows, negative and fractional numbers, a number of 400 digits. Each is
either honoured as the number of seconds it spells in ASCII digits, or treated as absent (preflight's own
back-off); none raises, none makes a wait beyond the cap."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from preflight.deadline import Deadline
from preflight.http import ApiError, Http, retry_after
from tests.test_http import Server, ok
from tests.test_http_bounds import dripping, ends

GARBAGE = ["²", "١٢", "Mon, 01 Jan 99999999999999999999 00:00:00 GMT",
           "Mon, 01 Jan 2030 00:00:00 -99999999999999999999", "-5", "1.5", "+3", "0x10", "", " ", "soon"]


@pytest.fixture()
def local() -> Iterator[Server]:
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.mark.parametrize("value", GARBAGE)
def test_a_garbage_retry_after_is_no_number(value: str) -> None:
    assert retry_after(value) is None


@pytest.mark.parametrize("value", [v for v in GARBAGE if v.isascii() or v == "²"])  # what Latin-1 can carry
def test_a_garbage_retry_after_on_the_wire_means_preflight_s_own_back_off(value: str, local: Server) -> None:
    local.scripts["/x"] = [(429, {"Retry-After": value}, b'{"error": {"code": "TooManyRequests"}}'), ok({"a": 1})]
    waits: list[float] = []
    assert Http(sleep=waits.append, timeout=(5, 5)).get(local.url + "/x") == {"a": 1}
    assert waits == [0.5]


def test_a_retry_after_of_400_digits_is_refused_not_waited_for(local: Server) -> None:
    local.scripts["/x"] = [(503, {"Retry-After": "9" * 400}, b""), ok({"a": 1})]
    waits: list[float] = []
    with pytest.raises(ApiError, match="asked to retry after inf s") as caught:
        Http(sleep=waits.append, timeout=(5, 5)).get(local.url + "/x")
    assert caught.value.status == 503 and waits == []


def stalling_tls(trickle: bool) -> contextlib.AbstractContextManager[str]:
    """A "TLS server" that takes the connection and the ClientHello, then never finishes the handshake: silent,
    or sending the start of a ServerHello one byte every 0.2 s, forever."""
    hello = b"\x16\x03\x03\x40\x00\x02\x00\x3f\xfc\x03\x03" + b"\x00" * 100000
    return dripping(b"", hello if trickle else b"", "https")


@pytest.mark.slow
@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "trickling"])
def test_a_tls_handshake_that_never_ends_is_cut_by_the_deadline(trickle: bool) -> None:
    http = Http(total=30.0, timeout=(30.0, 30.0), max_retries=3, sleep=lambda _s: None, deadline=Deadline(1.0),
                auth=lambda: {"Authorization": "Bearer never-sent"})
    with stalling_tls(trickle) as url:
        err = ends(lambda: http.get(url))
    assert isinstance(err, ApiError) and err.code == "DeadlineExceeded", err


@pytest.mark.parametrize("value", ["tok\r\nX-Injected: 1", "tok\nen", "tok\u2028en"])
def test_a_header_value_http_cannot_carry_is_an_api_error_never_sent(value: str, local: Server) -> None:
    """A token or routing hint from a sign-in service that holds a line break or a character beyond Latin-1:
    http.client refuses it (no header is injected); that is the request's ApiError, not quoting the value."""
    local.scripts["/x"] = [ok({"a": 1})]
    http = Http(auth=lambda: {"Authorization": f"Bearer {value}"}, sleep=lambda _s: None, timeout=(5, 5))
    with pytest.raises(ApiError) as caught:
        http.get(local.url + "/x")
    assert caught.value.code == "InvalidRequest" and value not in str(caught.value)
    assert local.hits == {} and http.stats.requests == 1  # nothing reached the server, nothing retried


class _Unwatched:
    """A time limit whose alarm never rings: only the socket's own timeouts can end the exchange."""

    expired = False

    def __enter__(self) -> _Unwatched:
        return self

    def __exit__(self, *_exc: object) -> None:
        pass


@pytest.mark.slow
def test_a_socket_timeout_cut_to_the_deadline_is_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under load the socket's timeout (cut to the deadline's time left) may fire before the deadline's alarm:
    that is still the deadline, never a plain Timeout."""
    monkeypatch.setattr("preflight.http.time_limit", lambda _seconds: _Unwatched())
    http = Http(total=30.0, timeout=(30.0, 30.0), max_retries=3, sleep=lambda _s: None, deadline=Deadline(1.0))
    with stalling_tls(False) as url:
        err = ends(lambda: http.get(url))
    assert isinstance(err, ApiError) and err.code == "DeadlineExceeded", err
