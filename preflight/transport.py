"""One HTTP exchange for preflight.http, straight over urllib3's connection pools.

requests' Session and adapters cost more CPU per request than the rest of preflight's work on a reply (cookie
jars, setting merges, hooks, typing-protocol checks, a pool key rebuilt for every request); this keeps what
preflight relied on them for and nothing else:

- the URL as requests prepares it (`request_url`: query parameters appended to the URL's own query, lists as
  repeated keys, None values dropped, the whole URL re-quoted); an unusual URL goes through requests' own
  preparation, so the result is the same either way;
- the trust store requests would use (verify=path, else REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE, else certifi's
  bundle), certificates and host names verified, one TLS context per trust store and process;
- the proxy requests would use for a host (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY), looked up once per
  host, process and proxy configuration; HTTPS through a proxy goes through a CONNECT tunnel;
- redirects followed as requests follows them (a 301/302/303 turns into a bodiless GET), at most
  MAX_REDIRECTS of them, and the Authorization header never follows one to another origin;
- gzip and deflate replies decoded, the decoded size capped while reading (`max_body`).

Connections come from the process's pools (`Pools`): one per API origin, trust store and proxy, shared by all
tenants of the process, new ones in a forked child. They obey preflight.deadline's `time_limit`: each
connection reports to the exchange using it, whose watch can cut it.

Without a proxy, an exchange skips urllib3's urlopen and http.client's request and reply objects (see "the lean
exchange" below): it writes the request head itself and reads a plain reply off the socket; any other reply is
handed to http.client and urllib3, which read it as they always did. tests/test_http_lean.py compares the two
paths reply by reply.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import http.client
import io
import logging
import os
import re
import ssl
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from http.client import (  # type: ignore[attr-defined]
    HTTPException,
    IncompleteRead,
    InvalidURL,
    _is_illegal_header_value,
    _is_legal_header_name,
    _strip_ipv6_iface,
)
from ssl import CertificateError
from ssl import SSLError as BaseSSLError
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from urllib3 import BaseHTTPResponse, HTTPHeaderDict, HTTPResponse, Timeout
from urllib3.connection import _get_default_user_agent, _normalize_header_values, _url_from_connection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import (
    HeaderParsingError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ProxySchemeUnsupported,
    ReadTimeoutError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.poolmanager import PoolManager, ProxyManager
from urllib3.util import SKIP_HEADER, Retry, make_headers
from urllib3.util.response import assert_header_parsing

from preflight import __version__
from preflight.deadline import (
    KEPT_PER_HOST,
    _attach_current,
    current_watch,
    environ_proxies,
    forget_shared_connections,
    poller,
    pool_classes,
    proxy_variables,
    tls_context,
    trust_path,
)

MAX_REDIRECTS = 10
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_POOLS = 16  # origins (scheme, host, port) whose connections a process keeps, per proxy
MAX_PROXIES = 4  # proxies whose connections a process keeps (the environment names one, or a few)
USER_AGENT = f"preflight/{__version__}"
ACCEPT_ENCODING = "gzip, deflate"  # what requests asked for: the decoders urllib3 always has
_CHUNK = 65536

# A URL that requests' preparation (urllib3's parse_url, urlunparse, requote_uri) leaves exactly as it is: a
# lower-case http(s) scheme and host name, a port without leading zeros, a non-empty path with no dot segment
# and no percent sign, and only characters that need no quoting. Anything else takes requests' own path.
_PLAIN = re.compile(r"(https?)://([a-z0-9][a-z0-9.-]*)(?::([1-9][0-9]{0,4}))?"
                    r"(/[A-Za-z0-9._~!$&'()*+,;=:@/-]*)(\?[A-Za-z0-9._~!$&'()*+,;=:@/?-]+)?\Z")
_DOT_SEGMENT = re.compile(r"/\.\.?(?:/|\Z)")
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~-]*")  # what quote_plus leaves as it is


class TransportError(Exception):
    """An exchange that failed on preflight's side of the wire: a reply too large, a redirect loop, a URL or
    proxy that cannot be used."""


# What Transport.send can fail with on the wire: urllib3's errors (connection, TLS, proxy, protocol, timeouts,
# decoding), the socket's, http.client's, and preflight's own (a reply too large, a redirect loop).
FAILURES = (HTTPError, OSError, HTTPException, TransportError, ProxySchemeUnsupported)


def is_timeout(exc: BaseException) -> bool:
    """A connect or read timeout; not a refused connection, which urllib3 files under its connect timeouts."""
    return isinstance(exc, (Urllib3Timeout, TimeoutError)) and not isinstance(exc, NewConnectionError)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str


def encode_params(params: Mapping[str, Any]) -> str:
    """requests' RequestEncodingMixin._encode_params for a mapping: a list or other iterable value is one
    key=value pair per item, None values are left out, the rest as urlencode spells it. A pair of a plain key and
    a plain string or integer (`projection=full`, `maxResults=200`) is written as it is: urlencode would leave
    it so, at several times the cost."""
    parts: list[str] = []
    for key, values in params.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = [values]
        for value in values:
            if value is None:
                continue
            if type(key) is str and _UNQUOTED.fullmatch(key) and (
                    type(value) is int or (type(value) is str and _UNQUOTED.fullmatch(value))):
                parts.append(f"{key}={value}")
            elif encoded := urlencode([(key.encode("utf-8") if isinstance(key, str) else key,
                                        value.encode("utf-8") if isinstance(value, str) else value)], doseq=True):
                parts.append(encoded)
    return "&".join(parts)


@dataclass(frozen=True, slots=True)
class Target:
    """Where one request goes: the URL as requests would send it, split into its origin and request target."""

    url: str
    scheme: str
    host: str
    port: int
    path: str  # path and query: the request target sent to the origin


_DEFAULT_PORTS = {"http": 80, "https": 443}


def request_url(url: str, params: Mapping[str, Any] | None = None) -> Target:
    """The URL requests would send for `url` and `params` (PreparedRequest.prepare_url), split up.
    ValueError for a URL that cannot be sent (no http(s) scheme, no host, a bad port)."""
    plain = _PLAIN.match(url)
    if plain is not None and not _DOT_SEGMENT.search(plain[4]):
        scheme, host, port, path, query = plain.groups()
        if params:
            # urlencode's output is made of unreserved characters, '+' and upper-case %XX escapes of reserved
            # ones: requote_uri leaves it as it is.
            extra = encode_params(params)
            if extra:
                url = f"{url}&{extra}" if query else f"{url}?{extra}"
                query = f"{query}&{extra}" if query else f"?{extra}"
        return Target(url, scheme, host, int(port) if port else _DEFAULT_PORTS[scheme], path + (query or ""))
    return _split(_prepared(url, params))


def _prepared(url: str, params: Mapping[str, Any] | None) -> str:
    from requests.exceptions import RequestException
    from requests.models import PreparedRequest

    prepared = PreparedRequest()
    try:
        prepared.prepare_url(url, params)
    except RequestException as exc:  # InvalidURL, MissingSchema: ValueErrors already, but say so
        raise ValueError(str(exc)) from None
    return str(prepared.url)


def _split(url: str) -> Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("not an http(s) URL with a host")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, scheme, parts.hostname, parts.port or _DEFAULT_PORTS[scheme], path)


def redirect_url(current: str, location: str) -> str:
    """The URL a Location header sends the request to, as requests' resolve_redirects works it out."""
    from requests.utils import requote_uri

    with contextlib.suppress(UnicodeError):  # http.client decodes header bytes as Latin-1; requests, as UTF-8
        location = location.encode("latin-1").decode("utf-8")
    parts = urlsplit(current)
    if location.startswith("//"):
        location = f"{parts.scheme}:{location}"
    new = urlsplit(location)
    if not new.fragment and parts.fragment:
        location = new._replace(fragment=parts.fragment).geturl()
    return urljoin(current, requote_uri(location)) if not new.netloc else requote_uri(location)


def redirected(status: int, method: str, body: bytes | None, headers: dict[str, str], old: Target, new: Target
               ) -> tuple[str, bytes | None, dict[str, str]]:
    """The method, body and headers of the request a redirect asks for (requests' rebuild_method and
    resolve_redirects): 302 and 303 become GET (301 too, from a POST), and all but 307 and 308 lose the body.
    The Authorization header goes only where its token was meant to go: the same scheme, host and port."""
    if (status in (302, 303) and method != "HEAD") or (status == 301 and method == "POST"):
        method = "GET"
    drop = set()
    if status not in (307, 308):
        body = None
        drop |= {"content-length", "content-type", "transfer-encoding"}
    if (old.scheme, old.host, old.port) != (new.scheme, new.host, new.port):
        drop |= {"authorization", "cookie", "proxy-authorization"}
    return method, body, {k: v for k, v in headers.items() if k.lower() not in drop}


@functools.lru_cache(maxsize=1024)
def _proxy_for(origin: str, variables: tuple[str | None, ...]) -> str | None:
    """The proxy requests would use for one scheme://host[:port] (get_environ_proxies, then select_proxy), once
    per process and proxy configuration (`variables`: preflight.deadline.proxy_variables())."""
    from requests.utils import select_proxy

    return select_proxy(origin, environ_proxies(origin, None, variables))


@functools.cache
def _unverified_context() -> ssl.SSLContext:
    from urllib3.util.ssl_ import create_urllib3_context

    return create_urllib3_context(cert_reqs=ssl.CERT_NONE)


class Pools:
    """This process's connection pools: one per origin, trust store and proxy, shared by all its tenants.

    Sharing leaks nothing: every request carries its own bearer token, and a connection serves one exchange at a
    time. urllib3's managers keep the MAX_POOLS most recent pools each and drop the rest, which close their
    connections once collected; this only indexes them (weakly, so as not to keep a dropped pool's sockets open),
    because a manager's own lookup rebuilds a pool key per request. Pools hold sockets, which a forked worker
    process must not share with its parent: the child starts with none.
    """

    def __init__(self) -> None:
        self._pools: weakref.WeakValueDictionary[tuple[Any, ...], HTTPConnectionPool] = weakref.WeakValueDictionary()
        self._managers: dict[str | None, PoolManager] = {}
        self._kept = KEPT_PER_HOST
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._pools, self._managers, self._lock = weakref.WeakValueDictionary(), {}, threading.Lock()

    def forget(self) -> None:
        """Close every connection kept alive (the managers close their pools); new pools serve from now on."""
        with self._lock:
            for manager in self._managers.values():
                manager.clear()
            self._pools = weakref.WeakValueDictionary()  # a closed pool, still referenced, must not serve again

    def keep(self, kept: int) -> None:
        """Pools made from now on keep at least `kept` idle connections."""
        with self._lock:
            if kept > self._kept:
                self._kept = kept
                for manager in self._managers.values():
                    manager.connection_pool_kw["maxsize"] = kept

    def get(self, target: Target, context: ssl.SSLContext, proxy: str | None) -> HTTPConnectionPool:
        key = (target.scheme, target.host, target.port, context, proxy)
        pool = self._pools.get(key)
        if pool is not None:
            return pool
        with self._lock:
            manager = self._managers.get(proxy)
            if manager is None:
                manager = self._manager(proxy)
            tls = {"ssl_context": context, "cert_reqs": context.verify_mode}
            pool = manager.connection_from_host(target.host, target.port, target.scheme, pool_kwargs=tls)
            self._pools[key] = pool
            return pool

    def _manager(self, proxy: str | None) -> PoolManager:
        kw: dict[str, Any] = {"num_pools": MAX_POOLS, "maxsize": self._kept, "block": False}
        manager: PoolManager
        if proxy is None:
            manager = PoolManager(**kw)
        else:
            manager = ProxyManager(_proxy_url(proxy), proxy_headers=_proxy_headers(proxy), **kw)
            if len(self._managers) > MAX_PROXIES:  # the oldest proxy's pools go (closed once collected)
                self._managers.pop(next(p for p in self._managers if p is not None)).clear()
        manager.pool_classes_by_scheme = pool_classes()
        self._managers[proxy] = manager
        return manager


def _proxy_url(proxy: str) -> str:
    """requests' prepend_scheme_if_needed and its check: SOCKS needs PySocks, which preflight does not ship."""
    url = proxy if "://" in proxy else f"http://{proxy}"
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise TransportError(f"unsupported proxy scheme {scheme!r}")
    if not urlsplit(url).hostname:
        raise TransportError("the proxy URL has no host")
    return url


def _proxy_headers(proxy: str) -> dict[str, str]:
    """A Proxy-Authorization header from the proxy URL's user name and password (requests' proxy_headers)."""
    from urllib.parse import unquote

    parts = urlsplit(_proxy_url(proxy))
    if not parts.username:
        return {}
    return make_headers(proxy_basic_auth=f"{unquote(parts.username)}:{unquote(parts.password or '')}")


_pools = Pools()


def forget_connections() -> None:
    """Close every connection this process keeps alive (Transport's pools and the requests sessions' shared
    adapter): the next request to any host connects anew. For tests, between them: a stopped test server whose
    handlers keep their connections open still answers on them, and a later test's server given the same port
    number would have its requests answered by the earlier one (port numbers are reused under port pressure)."""
    _pools.forget()
    forget_shared_connections()


class Transport:
    """The HTTP side of one preflight.http.Http: its trust store, its view of the proxy variables (taken when it
    is made, as a requests.Session took them), and the process's pools."""

    def __init__(self, verify: bool | str = True, kept: int = KEPT_PER_HOST, *, lean: bool = True) -> None:
        self.verify = verify
        self.lean = lean  # exchanges without a proxy go through _lean_exchange rather than urllib3's urlopen
        # (False: urlopen for every exchange, as the tests comparing the two paths ask)
        self._ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        self._variables = proxy_variables()
        self._context: ssl.SSLContext | None = None
        self._proxies: dict[str, str | None] = {}
        self._timeouts: dict[tuple[float, float], Timeout] = {}
        _pools.keep(kept)

    def context(self) -> ssl.SSLContext:
        """The TLS context of this transport's trust store; OSError when it cannot be read."""
        if self._context is None:
            if self.verify is False:
                self._context = _unverified_context()
            else:
                verify = self.verify if isinstance(self.verify, str) else self._ca_bundle or True
                self._context = tls_context(trust_path(verify))
        return self._context

    def _proxy(self, target: Target) -> str | None:
        origin = f"{target.scheme}://{target.host}:{target.port}"
        try:
            return self._proxies[origin]
        except KeyError:
            if len(self._proxies) > 256:
                self._proxies.clear()
            found = self._proxies[origin] = _proxy_for(origin, self._variables)
            return found

    def timeout(self, connect: float, read: float) -> Timeout:
        key = (connect, read)
        found = self._timeouts.get(key)
        if found is None:
            if len(self._timeouts) > 64:
                self._timeouts.clear()
            found = self._timeouts[key] = Timeout(connect=connect, read=read)
        return found

    def send(self, method: str, target: Target, body: bytes | None, headers: dict[str, str], timeout: Timeout,
             *, allow_redirects: bool = True, max_body: int) -> Reply:
        """The final reply, its body read whole (at most `max_body` bytes once decoded)."""
        for _ in range(MAX_REDIRECTS + 1):
            resp = self._open(method, target, body, headers, timeout, max_body)
            location = resp.headers.get("Location") if allow_redirects and resp.status in REDIRECTS else None
            if location is None:
                if isinstance(resp, Reply):
                    return resp
                return Reply(resp.status, resp.headers, read_capped(resp, max_body), target.url)
            if not isinstance(resp, Reply):
                read_capped(resp, max_body)  # the connection serves again once the reply is read
            try:
                new = request_url(redirect_url(target.url, location))
            except ValueError as exc:
                raise TransportError(f"a redirect to an unusable URL ({exc})") from None
            method, body, headers = redirected(resp.status, method, body, headers, target, new)
            target = new
        raise TransportError(f"more than {MAX_REDIRECTS} redirects")

    def _open(self, method: str, target: Target, body: bytes | None, headers: Mapping[str, str],
              timeout: Timeout, max_body: int) -> BaseHTTPResponse | Reply:
        proxy = self._proxy(target)
        pool = _pools.get(target, self.context(), proxy)
        if self.lean and proxy is None:
            head = _request_head(method, target.path, body, headers)
            if head is not None:
                return _lean_exchange(pool, method, target, head, body, timeout, max_body)
        # A proxy forwarding plain HTTP is asked for the absolute URL; through a CONNECT tunnel, the path.
        path = target.url if proxy is not None and target.scheme == "http" else target.path
        return pool.urlopen(method, path, body=body, headers=headers, retries=_NO_RETRIES, redirect=False,
                            assert_same_host=False, timeout=timeout, preload_content=False, decode_content=True)


# What urllib3 makes of retries=False, redirect=False on every request (Retry.from_int): made once. A Retry is
# never changed in place (increment returns a new one).
_NO_RETRIES = Retry(False, redirect=False)


def read_capped(resp: BaseHTTPResponse, max_body: int) -> bytes:
    """The whole (decoded) body; TransportError once it grows beyond `max_body` bytes."""
    length = resp.length_remaining
    if length is not None and "content-encoding" not in resp.headers:
        if length <= max_body:
            return resp.read()  # one read of a known length: the common case
        resp.close()
        resp.release_conn()
        raise TransportError(f"reply larger than {max_body} bytes")
    chunks, size = [], 0
    while chunk := resp.read(_CHUNK):
        size += len(chunk)
        if size > max_body:
            resp.close()
            resp.release_conn()
            raise TransportError(f"reply larger than {max_body} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# --- the lean exchange ------------------------------------------------------------------------------------------
#
# urllib3's urlopen and http.client cost more CPU per API request than the rest of preflight's work on a small reply
# (Retry and Timeout objects, header validation call by call, a socket file per reply, email.parser for the reply's
# headers, response wrapping). For a request sent without a proxy (preflight.http's, and the sign-in libraries'
# through their preflight.transport clients), this writes the request itself
# and reads a plain reply itself: an HTTP/1.1 status line, at most 99 header lines of a token name and a value of
# printable characters, each ended by CRLF, one Content-Length, no Transfer-Encoding or Content-Encoding. Any other
# reply (chunked, compressed, folded or odd headers, bare LFs, no length, 1xx/204/304, a head too long or cut short)
# is handed to http.client and urllib3 with the bytes already read in front of the socket, and parsed by them as
# before: every reply preflight.http gets is the one urllib3 gave it, and fails the same way. Connections are still
# urllib3's, from the same pools (connect, TLS, verification, the deadline's watch).

_LEAN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE", "TRACE", "OPTIONS", "CONNECT"})  # urllib3's: no Content-Length
_URL_CONTROL = re.compile("[\x00-\x20\x7f]")  # http.client's _contains_disallowed_url_pchar_re
_FRAMING = frozenset({"host", "content-length", "transfer-encoding"})  # headers that make urllib3 frame differently
_HEAD_READ = 65536
_MAX_HEAD = 65536  # a head not ended within this many bytes goes to http.client, which enforces its own limits
_MAX_HEADER_LINES = 99  # http.client counts the blank line too: a 100th header line is "more than 100 headers"
# A reply's status line and header lines as the lean path takes them (bytes without their CRLF). A value holds
# printable ASCII, tab and Latin-1 letters only: no CR, LF or other control character, which email.parser might
# read as a line end or http.client keep as it is; a name is an RFC 9110 token, which email.parser splits at its
# first colon as this does.
_STATUS_LINE = re.compile(r"HTTP/1\.1 ([0-9]{3})(?: [\t\x20-\x7e\x80-\xff]*)?")
_HEADER_LINE = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*"
_HEADER_BLOCK = re.compile(f"{_HEADER_LINE}(?:\r\n{_HEADER_LINE})*")
_u3_pool_log = logging.getLogger("urllib3.connectionpool")
_u3_conn_log = logging.getLogger("urllib3.connection")


_legal_names: set[str] = set()


def _check_name(name: str) -> None:
    """http.client's putheader check of a header name (ASCII, no colon, no line break, no leading space)."""
    if name in _legal_names:
        return
    if not _is_legal_header_name(name.encode("ascii")):
        raise ValueError("Invalid header name")
    if len(_legal_names) < 256:
        _legal_names.add(name)


def _host_header(conn: Any) -> bytes:
    """The Host header http.client's putrequest writes for a direct (no proxy) connection, kept per connection."""
    found: bytes | None = conn.__dict__.get("_preflight_host")
    if found is None:
        host, port = conn.host, conn.port
        if _URL_CONTROL.search(host):
            raise InvalidURL("the host holds a control character")
        try:
            encoded = host.encode("ascii")
        except UnicodeEncodeError:
            encoded = host.encode("idna")
        if ":" in host:
            encoded = _strip_ipv6_iface(b"[" + encoded + b"]")
        if port != conn.default_port:
            encoded = b"%s:%d" % (encoded, port)
        found = conn._preflight_host = b"Host: " + encoded + b"\r\n"
    return found


def _request_head(method: str, path: str, body: bytes | None, headers: Mapping[str, str]
                  ) -> tuple[bytes, bytes] | None:
    """The request head urllib3's HTTPConnection.request and http.client write, in their order, with their checks
    (ValueError for a name HTTP cannot carry, a line break in a value or a character beyond Latin-1, a control
    character in the path): its request line, and the headers that follow the Host header. None for a request
    the lean path leaves to urllib3: an unusual method, a body other than bytes, a header that is not a string or
    that frames the body or names the host, urllib3's SKIP_HEADER marker."""
    if method not in _LEAN_METHODS or not (body is None or type(body) is bytes):
        return None
    lines = []
    accept_encoding = user_agent = False
    refused: ValueError | None = None
    for name, value in headers.items():
        if type(name) is not str or type(value) is not str or value == SKIP_HEADER:
            return None
        key = name.lower()
        if key in _FRAMING:
            return None
        accept_encoding = accept_encoding or key == "accept-encoding"
        user_agent = user_agent or key == "user-agent"
        if refused is None:
            try:
                _check_name(name)
                if ("\r" in value or "\n" in value) and _is_illegal_header_value(value.encode("latin-1")):
                    raise ValueError("Invalid header value")
            except ValueError as exc:  # raised once the request is known to be the lean path's
                refused = exc
        lines.append(f"{name}: {value}")
    if refused is not None:
        raise refused
    if _URL_CONTROL.search(path):
        raise InvalidURL("URL can't contain control characters")
    request_line = f"{method} {path} HTTP/1.1\r\n".encode("ascii")  # UnicodeEncodeError, as http.client's
    framing = []
    if not accept_encoding:
        framing.append("Accept-Encoding: identity")
    if body is not None:
        framing.append(f"Content-Length: {len(body)}")
    elif method not in _NO_BODY_METHODS:
        framing.append("Content-Length: 0")
    if not user_agent:
        framing.append(f"User-Agent: {_get_default_user_agent()}")
    lines[:0] = framing
    lines.append("\r\n")
    return request_line, "\r\n".join(lines).encode("latin-1")


def _lean_exchange(pool: HTTPConnectionPool, method: str, target: Target, head: tuple[bytes, bytes],
                   body: bytes | None,
                   timeout: Timeout, max_body: int) -> Reply | BaseHTTPResponse:
    """One request on one of the pool's connections, failing as urlopen(retries=False) fails: a urllib3 timeout
    or connection error, ProtocolError for what the socket or http.client raised, SSLError for TLS; ValueError for
    a request that cannot be sent; TransportError for a reply larger than `max_body`."""
    conn: Any = pool._get_conn()
    clean = False
    try:
        _attach_current(conn)  # the exchange's watch may cut this connection
        request = b"".join((head[0], _host_header(conn), head[1], body or b""))
        kept = conn.sock is not None  # it served an earlier exchange (a new connection connects in _converse)
        try:
            result = _converse(pool, conn, method, target, request, timeout, max_body, kept)
        except _Closed:
            # The server closed the kept connection as the request went out (its idle limit, or its close after
            # a reply that said nothing of it, which a redirect followed at once can beat the pool's check to):
            # no byte of a reply, so the request is sent again once, on a new connection. preflight's requests
            # only read (token requests too: another token is asked for), so sending one again changes nothing.
            conn.close()
            result = _converse(pool, conn, method, target, request, timeout, max_body, False)
        clean = True
        return result
    except (Urllib3Timeout, HTTPException, OSError, ProtocolError, BaseSSLError, SSLError, CertificateError) as exc:
        if isinstance(exc, (BaseSSLError, CertificateError)):
            raise SSLError(exc) from exc
        if isinstance(exc, (OSError, HTTPException)):
            raise ProtocolError("Connection aborted.", exc) from exc
        raise
    finally:
        if not clean:
            conn.close()
            pool._put_conn(None)


def _connect(pool: HTTPConnectionPool, conn: Any) -> None:
    """A new connection connects (TLS handshake and certificate checks for HTTPS), as urllib3's _make_request."""
    try:
        try:
            pool._validate_conn(conn)  # HTTPS: connects, or warns about an unverified connection
            if conn.sock is None:
                conn.connect()  # plain HTTP, which http.client would connect on sending
        except (TimeoutError, BaseSSLError) as exc:
            pool._raise_timeout(err=exc, url="", timeout_value=conn.timeout)
            raise
    except (BaseSSLError, CertificateError) as exc:
        raise SSLError(exc) from exc


class _Closed(Exception):
    """A kept connection the server closed before any byte of the reply: the request is worth sending again."""


def _converse(pool: HTTPConnectionPool, conn: Any, method: str, target: Target, request: bytes, timeout: Timeout,
              max_body: int, kept: bool) -> Reply | BaseHTTPResponse:
    conn.timeout = timeout.connect_timeout
    _connect(pool, conn)
    sock = conn.sock
    _set_timeout(sock, conn.timeout)  # sending is bounded by the connect timeout, as in urllib3
    try:
        sock.sendall(request)
    except BrokenPipeError:
        pass  # the server may have answered and closed already: its reply is still read
    except OSError as exc:
        if exc.errno not in (errno.EPROTOTYPE, errno.ECONNRESET):
            raise
    read_timeout = timeout.read_timeout
    if read_timeout == 0:
        raise ReadTimeoutError(pool, target.path, f"Read timed out. (read timeout={read_timeout})")
    conn.timeout = read_timeout
    _set_timeout(sock, read_timeout)
    try:
        _await_reply(conn, sock)
        try:
            first = sock.recv(_HEAD_READ)
        except ConnectionError:
            if kept and _may_resend():
                raise _Closed from None
            raise
        if not first and kept and _may_resend():
            raise _Closed
        data, end = _read_head(sock, first)
        plain = _plain_head(data, end) if end >= 0 else None
        if plain is None:
            return _handed_over(pool, conn, method, target.path, bytes(data))
    except (BaseSSLError, OSError) as exc:
        pool._raise_timeout(err=exc, url=target.path, timeout_value=read_timeout)
        raise
    status, headers, length, close, encoded = plain
    if _u3_pool_log.isEnabledFor(logging.DEBUG):
        _u3_pool_log.debug('%s://%s:%s "%s %s %s" %s %s', pool.scheme, pool.host, pool.port, method, target.path,
                           "HTTP/1.1", status, length if length >= 0 else None)
    if length > max_body:
        if not encoded:
            raise TransportError(f"reply larger than {max_body} bytes")
        return _handed_over(pool, conn, method, target.path, bytes(data))  # capped once decoded, as urllib3 reads
    try:
        read = _read_chunked(sock, data, end + 4, max_body) if length < 0 else \
            _read_body(sock, data, end, length, encoded)
    except TimeoutError as exc:
        raise ReadTimeoutError(pool, None, "Read timed out.") from exc
    except BaseSSLError as exc:
        raise SSLError(exc) from exc
    except (IncompleteRead, OSError) as exc:
        raise ProtocolError(f"Connection broken: {exc!r}", exc) from exc
    if read is None:  # framing the lean path does not read itself: `data` holds every byte read so far
        return _handed_over(pool, conn, method, target.path, bytes(data))
    body, extra = read
    if encoded:
        body = _decoded(headers, body, max_body)
    if close or extra:  # a server that sends more than it declared is not asked again on this connection
        conn.close()
    pool._put_conn(conn)
    return Reply(status, headers, body, target.url)


def _set_timeout(sock: Any, seconds: float | None) -> None:
    """The socket's timeout, set only when it changes: each setting is a system call (and a hand-over of the
    interpreter lock to another thread), and a new connection already has the connect timeout."""
    if sock.gettimeout() != seconds:
        sock.settimeout(seconds)


def _await_reply(conn: Any, sock: Any) -> None:
    """Wait, within the socket's timeout, until the reply begins to arrive over TLS. The TLS layer's own first read
    would find nothing yet, then wait and read again: a system call more (and a hand-over of the interpreter lock)
    per request. TimeoutError as the TLS read's own. A plain socket waits before it reads already."""
    if not isinstance(sock, ssl.SSLSocket) or sock.pending():
        return  # bytes already in the TLS layer (a server that spoke first): read at once, as before
    wait = sock.gettimeout()
    if not poller(conn, sock).poll(None if wait is None else wait * 1000):
        raise TimeoutError("The read operation timed out")


def _may_resend() -> bool:
    """Whether the exchange may send its request again: not once its time is up, when the watch has cut the
    connection (the end of the reply read is the watch's doing, not the server's)."""
    watch = current_watch()
    return watch is None or not watch.expired


def _read_head(sock: Any, first: bytes) -> tuple[bytearray, int]:
    """What the server sent up to the end of its reply's head and a little beyond, from its `first` bytes read; and
    where the head ends (the index of its blank line's CRLF), or -1 when it is not a CRLF head ended within
    _MAX_HEAD bytes or the server closed the connection first. Either way http.client can take over from these
    bytes."""
    data = bytearray(first)
    start = 0
    while data:
        found = data.find(b"\n\r\n", start)
        bare = data.find(b"\n\n", start)
        if found >= 0 and (bare < 0 or found < bare):
            # Each line of a head within _MAX_HEAD bytes is within http.client's limit (65536 with its CRLF).
            crlf = found >= 1 and data[found - 1] == 13 and found + 1 <= _MAX_HEAD
            return data, found - 1 if crlf else -1
        if bare >= 0 or len(data) > _MAX_HEAD:
            return data, -1
        start = max(0, len(data) - 2)
        more = sock.recv(_HEAD_READ)
        if not more:
            return data, -1
        data += more
    return data, -1


def _plain_head(data: bytearray, end: int) -> tuple[int, HTTPHeaderDict, int, bool, bool] | None:
    """(status, headers, Content-Length or -1 for a chunked body, whether the server closes, whether the body is
    gzip or deflate encoded) of a head the lean path reads as http.client and urllib3 would; None for any other,
    which they are handed."""
    head = data[:end].decode("latin-1")  # as http.client decodes it; the checks below keep to what it reads alike
    status_end = head.find("\r\n")
    status_line = _STATUS_LINE.fullmatch(head, 0, status_end if status_end >= 0 else len(head))
    if status_line is None:
        return None
    status = int(status_line[1])
    if status < 200 or status in (204, 304):
        return None
    if status_end < 0:
        return None  # no Content-Length
    block = head[status_end + 2:]
    if not _HEADER_BLOCK.fullmatch(block) or block.count("\r\n") >= _MAX_HEADER_LINES:
        return None
    headers = HTTPHeaderDict()
    container = headers._container  # filled as HTTPHeaderDict.add fills it, without its per-call checks
    for line in block.split("\r\n"):
        name, _, value = line.partition(":")
        value = value.lstrip(" \t")  # email.parser's compat32 policy: the value as sent, less leading blanks
        key = name.lower()
        values = container.get(key)
        if values is None:
            container[key] = [name, value]
        else:
            values.append(value)
    encodings = container.get("content-encoding")
    if encodings is not None and (len(encodings) != 2 or encodings[1] not in ("gzip", "deflate")):
        return None
    lengths = container.get("content-length")
    transfer = container.get("transfer-encoding")
    if transfer is not None:  # one "chunked" and no length: urllib3 warns of a length beside it
        if len(transfer) != 2 or transfer[1] != "chunked" or lengths is not None:
            return None
        length = -1
    else:
        if lengths is None or len(lengths) != 2:
            return None
        declared = lengths[1]
        if not (declared.isascii() and declared.isdigit()) or len(declared) > 15:  # "²" is a digit to str.isdigit
            return None
        length = int(declared)
    connection = container.get("connection")
    close = connection is not None and "close" in connection[1].lower()  # http.client reads the first one only
    return status, headers, length, close, encodings is not None


def _read_body(sock: Any, data: bytearray, end: int, length: int, encoded: bool) -> tuple[bytes, bool] | None:
    """The body of `length` bytes following the head (`data` holds its start), and whether more than it came. A
    short body raises IncompleteRead; an encoded one is None instead, the bytes read added to `data`, for urllib3
    to read it as it reads it (a decoding error in its first part comes first)."""
    start = end + 4
    have = len(data) - start
    if have >= length:
        return bytes(data[start:start + length]), have > length
    body = bytearray(length)
    body[:have] = data[start:]
    view = memoryview(body)
    try:
        while have < length:
            got = sock.recv_into(view[have:])
            if not got:
                if encoded:
                    data += view[len(data) - start:have]
                    return None
                raise IncompleteRead(bytes(body[:have]), length - have)
            have += got
    finally:
        view.release()
    # Over TLS, the last read may have taken only part of a record: what the server sent beyond the body waits
    # in the TLS layer, where the pool's check for a dropped connection cannot see it, and the next request on
    # this connection would read it as its reply.
    return bytes(body), _pending(sock)


def _pending(sock: Any) -> bool:
    """Whether the socket's TLS layer holds bytes already received but not read."""
    pending = getattr(sock, "pending", None)
    return pending is not None and pending() > 0


_CHUNK_SIZE = re.compile(rb"([0-9a-fA-F]{1,15})(?:;[\t\x20-\x7e]*)?")  # a size, perhaps an extension
# The chunk framing (size lines, extensions, CRLFs) the lean path reads before it hands a body over: every byte read
# is kept for http.client, which would read a body of a million tiny chunks in bounded memory; the lean path's
# pieces and bytes would be tens of times the capped body.
_MAX_FRAMING = 256 * 1024


def _read_chunked(sock: Any, data: bytearray, start: int, max_body: int) -> tuple[bytes, bool] | None:
    """The payload of a chunked body beginning at data[start], every chunk's size a plain hex number, each chunk
    ended by CRLF, no trailer; and whether more came after it. None, with every byte read so far in `data`, for
    any other framing, a body cut short, one beyond `max_body` or one with more than _MAX_FRAMING bytes of
    framing: http.client and urllib3 read it as before."""
    pieces: list[bytes] = []
    pos, total = start, 0
    while True:
        line_end = data.find(b"\r\n", pos)
        while line_end < 0:
            if len(data) - pos > 1024 or not _more(sock, data):
                return None
            line_end = data.find(b"\r\n", pos)
        size_line = _CHUNK_SIZE.fullmatch(data, pos, line_end)
        if size_line is None:
            return None
        size = int(size_line[1], 16)
        begin = line_end + 2
        total += size
        if total > max_body:
            return None
        while len(data) < begin + size + 2:
            if not _more(sock, data):
                return None
        if data[begin + size:begin + size + 2] != b"\r\n":
            return None
        if size == 0:
            return b"".join(pieces), len(data) > begin + 2
        pieces.append(bytes(data[begin:begin + size]))
        pos = begin + size + 2
        if pos - start - total > _MAX_FRAMING:
            return None


def _more(sock: Any, data: bytearray) -> bool:
    """More of the reply added to `data`; False once the server has closed the connection."""
    more = sock.recv(_HEAD_READ)
    data += more
    return bool(more)


def _decoded(headers: HTTPHeaderDict, raw: bytes, max_body: int) -> bytes:
    """A gzip or deflate body decoded as urllib3 decodes it on the other path, in the same pieces: its
    DecodeError, and TransportError once the decoded size passes `max_body`."""
    return read_capped(HTTPResponse(body=io.BytesIO(raw), headers=headers, preload_content=False,
                                    decode_content=True), max_body)


class _Replay(io.RawIOBase):
    """The bytes the lean path already read, then the socket's: what http.client reads a handed-over reply from."""

    def __init__(self, prefix: bytes, raw: Any) -> None:
        super().__init__()
        self._prefix = memoryview(prefix)  # read from an offset: slicing off what was read copies the rest
        self._offset = 0                   # each time, quadratic in a long prefix read 8 KiB at a time
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        if self._offset < len(self._prefix):
            taken = self._prefix[self._offset:self._offset + len(buffer)]
            buffer[:len(taken)] = taken
            self._offset += len(taken)
            if self._offset == len(self._prefix):
                self._prefix = memoryview(b"")  # the prefix's memory goes once it is read
            return len(taken)
        result: int | None = self._raw.readinto(buffer)
        return result

    def close(self) -> None:
        if not self.closed:
            self._raw.close()  # the socket's file: the socket closes once the connection has let go of it too
        super().close()


class _Filed:
    """A socket as http.client.HTTPResponse sees it: only its file is read."""

    def __init__(self, fp: io.BufferedReader) -> None:
        self._fp = fp

    def makefile(self, _mode: str) -> io.BufferedReader:
        return self._fp


def _handed_over(pool: HTTPConnectionPool, conn: Any, method: str, path: str, prefix: bytes) -> BaseHTTPResponse:
    """The reply as urllib3's HTTPConnection.getresponse makes it (http.client parsing it from `prefix`, then the
    socket), holding the connection until its body is read, as urlopen(preload_content=False) leaves it."""
    sock = conn.sock
    shutdown = sock.shutdown
    fp = io.BufferedReader(_Replay(prefix, sock.makefile("rb", buffering=0)))
    original = http.client.HTTPResponse(_Filed(fp), method=method)  # type: ignore[arg-type]
    try:
        original.begin()
    except ConnectionError:
        conn.close()
        raise
    if original.will_close:
        conn.close()  # the reply keeps the socket's file: the socket closes once it is read
    try:
        assert_header_parsing(original.msg)
    except (HeaderParsingError, TypeError) as hpe:
        _u3_conn_log.warning("Failed to parse headers (url=%s): %s", _url_from_connection(conn, path), hpe,
                             exc_info=True)
    headers = HTTPHeaderDict(_normalize_header_values(original.msg))
    response = HTTPResponse(body=original, headers=headers, status=original.status, version=original.version,
                            version_string="HTTP/1.1", reason=original.reason, preload_content=False,
                            decode_content=True, original_response=original, enforce_content_length=True,
                            request_method=method, request_url=path, sock_shutdown=shutdown)
    response.retries = _NO_RETRIES
    response._connection = conn
    response._pool = pool
    if _u3_pool_log.isEnabledFor(logging.DEBUG):
        _u3_pool_log.debug('%s://%s:%s "%s %s %s" %s %s', pool.scheme, pool.host, pool.port, method, path,
                           "HTTP/1.1", response.status, response.length_remaining)
    return response
