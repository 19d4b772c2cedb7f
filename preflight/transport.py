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
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import ssl
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from urllib3 import BaseHTTPResponse, Timeout
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.poolmanager import PoolManager, ProxyManager
from urllib3.util import Retry, make_headers

from preflight import __version__
from preflight.deadline import KEPT_PER_HOST, environ_proxies, pool_classes, proxy_variables, tls_context, trust_path

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


class Transport:
    """The HTTP side of one preflight.http.Http: its trust store, its view of the proxy variables (taken when it
    is made, as a requests.Session took them), and the process's pools."""

    def __init__(self, verify: bool | str = True, kept: int = KEPT_PER_HOST) -> None:
        self.verify = verify
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
            resp = self._open(method, target, body, headers, timeout)
            location = resp.headers.get("Location") if allow_redirects and resp.status in REDIRECTS else None
            if location is None:
                return Reply(resp.status, resp.headers, read_capped(resp, max_body), target.url)
            read_capped(resp, max_body)  # the connection serves again once the reply is read
            try:
                new = request_url(redirect_url(target.url, location))
            except ValueError as exc:
                raise TransportError(f"a redirect to an unusable URL ({exc})") from None
            method, body, headers = redirected(resp.status, method, body, headers, target, new)
            target = new
        raise TransportError(f"more than {MAX_REDIRECTS} redirects")

    def _open(self, method: str, target: Target, body: bytes | None, headers: Mapping[str, str],
              timeout: Timeout) -> BaseHTTPResponse:
        proxy = self._proxy(target)
        pool = _pools.get(target, self.context(), proxy)
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
