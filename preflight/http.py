"""HTTP for collectors: time-bounded requests, retries that honour Retry-After, errors as snapshot data.

Time is bounded at every level: each exchange (connect, headers, body) has a total limit however slowly
the server trickles; a Retry-After longer than `max_wait` is not waited for (the resource is recorded as
throttled); the waits of one request share a retry budget; and the tenant's Deadline ends every request
not finished by then ("not read before the deadline").

Only collectors use this; checks never see the network. Headers (which carry tokens) are never logged;
bodies pass the run's secret masking before they are parsed, so an echoed token never reaches a snapshot.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from preflight.deadline import KEPT_PER_HOST, Deadline, time_limit
from preflight.errors import seconds
from preflight.runsecrets import RunSecrets
from preflight.transport import (
    ACCEPT_ENCODING,
    FAILURES,
    USER_AGENT,
    Transport,
    is_timeout,
    request_url,
)

log = logging.getLogger("preflight.http")

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_BODY = 32 * 1024 * 1024
_SECRET_PARAM = re.compile(r"([?&](?:[^=&]*(?:token|secret|code|key|assertion|password|sig)[^=&]*)=)[^&]*", re.I)


def mask_url(url: str) -> str:
    return _SECRET_PARAM.sub(r"\1***", url)


class ApiError(Exception):
    """A request that did not succeed, after retries. Becomes the resource's recorded error."""

    def __init__(self, status: int | None, code: str, message: str, body: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body  # the parsed error reply, for a caller that knows its API's own error shape

    def to_error(self) -> dict[str, Any]:
        return {"error": {"status": self.status, "code": self.code, "message": self.message}}


def parse_error_body(status: int, body: Any) -> ApiError:
    """Graph: {"error": {"code", "message"}}; Google: {"error": {"code": 403, "message", "status", "errors"}}."""
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        code = err.get("status") if isinstance(err.get("code"), int) else err.get("code")
        reasons = [e.get("reason") for e in err.get("errors") or [] if isinstance(e, dict) and e.get("reason")]
        if reasons and not code:
            code = reasons[0]
        return ApiError(status, str(code or status), str(err.get("message") or ""), body)
    if isinstance(err, str):  # OAuth token endpoints: {"error": "invalid_grant", "error_description": ...}
        return ApiError(status, err, str(body.get("error_description") or ""), body)
    return ApiError(status, f"HTTP{status}", "", body)


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit takes "²" and "١٢" too, which float() refuses or reads
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a year or zone offset of 20 digits
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def batch_header(headers: Any, name: str) -> str | None:
    """A header of a JSON $batch sub-response (Graph's, Exchange's): its names in any case, and None when the
    sub-response's headers are not an object."""
    if not isinstance(headers, Mapping):
        return None
    for key, value in headers.items():
        if str(key).lower() == name.lower():
            return str(value)
    return None


@dataclass
class Stats:
    requests: int = 0
    retries: int = 0


class Throttled(Exception):
    """The server asked for a longer wait than this request may spend."""


class Http:
    def __init__(
        self,
        *,
        auth: Callable[[], Mapping[str, str]] | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
        max_retries: int = 4,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        verify: bool | str = True,
        total: float = 120.0,
        retry_budget: float = 180.0,
        deadline: Deadline | None = None,
        secrets: RunSecrets | None = None,
        kept: int = KEPT_PER_HOST,
    ) -> None:
        self.transport = Transport(verify, kept)  # kept: idle connections kept per API host, at least
        self.auth = auth
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_wait = max_wait  # the longest single wait (Retry-After or back-off) honoured
        self.sleep = sleep
        self.total = total  # one exchange: connect + headers + body
        self.retry_budget = retry_budget  # all waits of one request together
        self.deadline = deadline or Deadline.unbounded()
        self.secrets = secrets or RunSecrets()
        self.stats = Stats()
        self._lock = threading.Lock()

    def _count(self, retry: bool = False) -> None:
        with self._lock:
            self.stats.requests += 1
            if retry:
                self.stats.retries += 1

    def backoff(self, attempt: int, header: str | None) -> float:
        wait = retry_after(header)
        if wait is None:
            wait = min(2.0**attempt * 0.5, 30.0)
        return min(wait, self.max_wait)

    def retry_wait(self, attempt: int, status: int, headers: Mapping[str, str], body: bytes) -> float | None:
        """Seconds to wait before asking again, or None when the reply is final. An API whose quota replies are
        not 429/5xx (Google's 403 rateLimitExceeded) overrides this."""
        return self.backoff(attempt, headers.get("Retry-After")) if status in RETRY_STATUS else None

    def _wait(self, attempt: int, header: str | None, waited: float, delay: float | None = None) -> float:
        """Sleep before the next attempt and return the new total waited; Throttled when it may not."""
        asked = retry_after(header)
        if asked is not None and asked > self.max_wait:
            raise Throttled(f"asked to retry after {asked:.0f} s; preflight waits at most {self.max_wait:g} s")
        wait = self.backoff(attempt, header) if delay is None else delay
        if waited + wait > self.retry_budget:
            raise Throttled(f"still failing after {attempt + 1} attempts and {waited:.0f} s of waiting")
        if wait >= self.deadline.remaining():
            raise Throttled(self.deadline.message)
        self.sleep(wait)
        return waited + wait

    def _expired(self) -> ApiError:
        return ApiError(None, "DeadlineExceeded", self.deadline.message)

    def _headers(self, extra: Mapping[str, str] | None, json: bool) -> dict[str, str]:
        """The headers of one attempt: preflight's, the bearer token's (fresh: a token may be renewed between
        attempts), the caller's; a caller's header replaces preflight's of the same name in any case."""
        headers = dict(_JSON_HEADERS if json else _HEADERS)
        if self.auth is not None:
            headers.update(self.auth())
        if extra:
            for name in extra:
                if name not in headers and (same := _DEFAULT_NAMES.get(name.lower())) is not None:
                    headers.pop(same, None)
            headers.update((k, v) for k, v in extra.items() if v is not None)
        return headers

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        allow_redirects: bool = True,
    ) -> tuple[int, Mapping[str, str], Any]:
        """(status, headers, parsed JSON body) of a successful reply; ApiError otherwise."""
        try:
            target = request_url(url, params)
        except ValueError:
            raise self.masked(ApiError(None, "ConnectionError", f"not a usable URL: {mask_url(url)}")) from None
        body = None
        if json_body is not None:
            try:  # as requests encodes it: json.dumps' own separators, ASCII, no NaN
                body = json.dumps(json_body, allow_nan=False).encode("utf-8")
            except (TypeError, ValueError) as exc:
                raise ApiError(None, "InvalidRequest", f"the request body is not JSON: {exc}") from None
        waited = 0.0
        for attempt in range(self.max_retries + 1):
            limit = min(self.total, self.deadline.remaining())
            if limit <= 0:
                raise self._expired()
            all_headers = self._headers(headers, body is not None)
            timeout = self.transport.timeout(min(self.timeout[0], limit), min(self.timeout[1], limit))
            self._count(retry=attempt > 0)
            started = time.monotonic()
            with time_limit(limit) as watch:
                try:
                    reply = self.transport.send(method, target, body, all_headers, timeout,
                                                allow_redirects=allow_redirects, max_body=MAX_BODY)
                    failure: BaseException | None = None
                except FAILURES as exc:
                    failure = exc
                except ValueError:  # http.client's refusal of a header value (a token, an anchor) it cannot send
                    # Never retried, and the value is not quoted: it may be the bearer token.
                    raise ApiError(None, "InvalidRequest", "the request cannot be sent: a header holds a line "
                                   "break or a character HTTP cannot carry") from None
            if failure is not None or watch.expired:
                timed_out = watch.expired or (failure is not None and is_timeout(failure))
                log.debug("%s %s -> %s", method, mask_url(url), "Timeout" if watch.expired else type(failure).__name__)
                kind = "Timeout" if timed_out else "ConnectionError"
                # The socket's timeouts were cut to the deadline's time left: one that fired ran that long, so
                # the deadline is what ended the exchange, whichever of it and the watch noticed first.
                if timed_out and limit < self.total and (watch.expired or limit < min(self.timeout)):
                    raise self._expired()
                if attempt < self.max_retries:
                    try:
                        waited = self._wait(attempt, None, waited)
                        continue
                    except Throttled:
                        pass
                what = f"no complete reply within {seconds(limit)} s" if watch.expired else kind
                raise ApiError(None, kind, f"{what} after {attempt + 1} attempts") from None
            if log.isEnabledFor(logging.DEBUG):  # masking the URL costs a regular expression per request
                log.debug("%s %s -> %s (%d ms)", method, mask_url(reply.url), reply.status,
                          (time.monotonic() - started) * 1000)
            status, reply_headers, body_bytes = reply.status, reply.headers, reply.body
            text = _text(body_bytes)
            parsed = _parse_json(self.secrets.mask_known(text) if isinstance(text, str) else text)
            delay = self.retry_wait(attempt, status, reply_headers, body_bytes)
            if delay is not None and attempt < self.max_retries:
                try:
                    waited = self._wait(attempt, reply_headers.get("Retry-After"), waited, delay)
                    continue
                except Throttled as exc:
                    err = parse_error_body(status, None if parsed is _MALFORMED else parsed)
                    raise self.masked(ApiError(status, err.code, f"{exc}", err.body)) from None
            if 200 <= status < 400:
                if parsed is _MALFORMED:
                    if attempt < self.max_retries:  # a truncated reply is worth another try
                        try:
                            waited = self._wait(attempt, None, waited)
                            continue
                        except Throttled:
                            pass
                    raise ApiError(status, "MalformedResponse", "reply is not valid JSON")
                return status, reply_headers, parsed
            raise self.masked(parse_error_body(status, None if parsed is _MALFORMED else parsed))
        raise AssertionError("unreachable")

    def masked(self, err: ApiError) -> ApiError:
        """An error as the snapshot keeps it: its text masked (servers echo what they were sent). Also for a
        reason a caller took from a parsed body (a $batch sub-response, a failed cmdlet), where a JSON escape
        ("\\u0051x8~...") no longer hides a secret from the mask, as it did in the reply's text."""
        return ApiError(err.status, self.secrets.mask(err.code), self.secrets.mask(err.message), err.body)

    def get(self, url: str, **kw: Any) -> Any:
        return self.request("GET", url, **kw)[2]

    def post(self, url: str, body: Any, **kw: Any) -> Any:
        return self.request("POST", url, json_body=body, **kw)[2]


# What every request says: JSON is wanted, who asks (as requests said python-requests), and that a compressed
# reply is welcome (requests' own default; urllib3 decodes it, preflight caps the decoded size).
_HEADERS = {"Accept": "application/json", "User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING}
_JSON_HEADERS = {**_HEADERS, "Content-Type": "application/json"}
_DEFAULT_NAMES = {name.lower(): name for name in _JSON_HEADERS}


_MALFORMED = object()


def _text(raw: bytes) -> str | bytes:
    """The body as text for masking; undecodable bytes stay bytes (and will not parse as JSON anyway)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _parse_json(raw: str | bytes) -> Any:
    if not raw or raw.isspace():  # what strip() would leave empty, without copying the body
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return _MALFORMED


def record(fetch: Callable[[], Any]) -> Any:
    """The resource, or its error in snapshot form: one unreadable resource never ends a collection."""
    try:
        return fetch()
    except ApiError as exc:
        return exc.to_error()


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, for messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def same_origin(base: str, link: Any) -> bool:
    """Whether `link` is a URL on `base`'s scheme, host and port (what a request carrying a token may follow)."""
    if not isinstance(link, str):
        return False
    try:
        home, there = urlsplit(base), urlsplit(link)
        return (there.scheme, there.hostname, there.port) == (home.scheme, home.hostname, home.port)
    except ValueError:  # not a URL at all ("https://[::1/", a port out of range)
        return False


def follow_pages(
    http: Http,
    url: str,
    *,
    params: Mapping[str, Any] | None = None,
    items_key: str = "value",
    next_link: Callable[[Any], str | None] = lambda body: body.get("@odata.nextLink"),
    next_params: Callable[[Any], Mapping[str, Any] | None] | None = None,
    max_pages: int = 1000,
    headers: Mapping[str, str] | None = None,
    origin: str | None = None,
) -> list[Any]:
    """All items of a paged collection. Graph pages by @odata.nextLink; Google by pageToken (next_params).
    A next-page link is followed only on `origin`'s scheme, host and port (default: `url`'s): each request
    carries the bearer token, which must never go where a reply points it."""
    home = origin or url
    items: list[Any] = []
    seen: set[str] = set()
    cur_url, cur_params = url, dict(params or {})
    for _ in range(max_pages):
        if cur_url is not home and not same_origin(home, cur_url):
            raise ApiError(200, "UntrustedRedirect", f"the next-page link points outside {origin_of(home)}: "
                                                     "not followed")
        body = http.get(cur_url, params=cur_params or None, headers=headers)
        if not isinstance(body, dict) or not isinstance(body.get(items_key, []), list):
            raise ApiError(200, "MalformedResponse", f"page has no {items_key!r} list")
        items.extend(body.get(items_key, []))
        if next_params is not None:
            nxt = next_params(body)
            if not nxt:
                return items
            key = json.dumps(nxt, sort_keys=True)
            cur_params = {**dict(params or {}), **nxt}
        else:
            link = next_link(body)
            if not link:
                return items
            if not isinstance(link, str):
                raise ApiError(200, "MalformedResponse", "the next-page link is not a URL")
            key, cur_url, cur_params = link, link, {}
        if key in seen:
            raise ApiError(200, "PagingLoop", "the next-page link repeats an earlier page")
        seen.add(key)
    raise ApiError(200, "TooManyPages", f"more than {max_pages} pages")
