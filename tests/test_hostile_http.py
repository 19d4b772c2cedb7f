"""preflight.http against a real local server sending Retry-After values no server should: characters str.isdigit
takes but float() refuses ("²", sent as the Latin-1 byte 0xB2 it is on the wire), digits of other scripts, HTTP
dates whose year or zone offset overflows, negative and fractional numbers, a number of 400 digits. Each is
either honoured as the number of seconds it spells in ASCII digits, or treated as absent (preflight's own
back-off); none raises, none makes a wait beyond the cap."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from preflight.http import ApiError, Http, retry_after
from tests.test_http import Server, ok

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
