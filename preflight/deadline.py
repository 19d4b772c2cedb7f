"""Time limits: a deadline for one tenant's whole run, and a total time limit for one HTTP exchange.

urllib3 (and requests over it) only has per-read timeouts: a server trickling one byte every two seconds never
trips a 60 s read timeout, and neither do headers sent a byte at a time. `time_limit` arms a timer for the whole
exchange (connect, TLS, headers, body); when it fires, the sockets the exchange uses are shut down, which wakes
the blocked read at once. Connections learn which exchange they serve through a thread-local set by
`time_limit`, so one pool can serve many threads, each with its own limit.

The connection classes serve both preflight.transport (every API request) and the requests sessions the
sign-in libraries use (`bounded_session`, `DeadlineAdapter`: msal and google-auth take a requests.Session).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import heapq
import math
import os
import queue
import select
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from requests import Session
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool, _close_pool_connections

if TYPE_CHECKING:
    from requests.adapters import _HostParams, _PoolKwargs
    from requests.sessions import _Settings

DEFAULT_TENANT_DEADLINE = 900.0  # seconds for one tenant's sign-in and collection (--deadline)
MAX_DEADLINE = 24 * 3600.0


class Deadline:
    """When one tenant's reading must be over; requests not started by then are recorded as not read."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - self._clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    @property
    def message(self) -> str:
        return f"not read before the deadline ({self.seconds:g} s; raise it with --deadline)"

    @staticmethod
    def unbounded() -> Deadline:
        return Deadline(math.inf)


def check_seconds(value: float, option: str = "--deadline") -> float:
    """A deadline given on the command line or in an inventory: a positive number of seconds."""
    from preflight.errors import InputError

    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_DEADLINE:
        raise InputError(f"{option}: {value!r} is not a number of seconds between 0 and {MAX_DEADLINE:g}")
    return float(value)


class Watch:
    """One exchange's time limit: expired once the timer fires; every socket it touched is then cut.

    Once the exchange is over the watch cuts nothing more: its connections go back to the pool and serve the
    next exchange with new sockets, which a late or repeated cut would break (a retry failing at once). A
    connection is cut only while this watch is the last to have claimed it: pools are shared by the tenants of a
    process, and a kept-alive connection already serving another tenant's exchange is not this one's to cut.
    """

    def __init__(self) -> None:
        self.expired = False
        self._over = False
        self._conns: list[Any] = []
        self._lock = threading.Lock()

    def attach(self, conn: Any) -> None:
        if conn is None:
            return
        with self._lock:
            if self._over:
                return
            conn._preflight_watch = self
            if not any(c is conn for c in self._conns):  # attached at connect and again at each request
                self._conns.append(conn)
            if self.expired:
                _cut(conn)

    def expire(self) -> None:
        with self._lock:
            if self._over:
                return
            self.expired = True
            for conn in self._conns:
                if getattr(conn, "_preflight_watch", None) is self:
                    _cut(conn)

    def end(self) -> None:
        """The exchange is over (waits for a cut under way): what it used is no longer its to cut."""
        with self._lock:
            self._over = True
            self._conns.clear()


def _cut(conn: Any) -> None:
    for sock in (getattr(conn, "sock", None), getattr(conn, "_preflight_raw", None)):
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                # The plain socket's shutdown, also for an SSLSocket: SSLSocket.shutdown would drop the TLS
                # object under the reading thread's feet. The reader sees EOF and gives up at once.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            return


_current = threading.local()


class _Alarms:
    """Expires watches when their time is up, all from one thread per process.

    A timer thread per exchange cost more CPU than many an exchange itself. The thread starts with the first
    alarm; a forked worker process starts its own (threads do not survive fork).
    """

    def __init__(self) -> None:
        self._started = False
        self._forks_watched = False
        self._cond = threading.Condition()
        self._heap: list[list[Any]] = []  # [when, sequence, watch or None once cancelled]
        self._seq = 0
        self._cancelled = 0

    def _after_fork(self) -> None:
        # The child has none of the parent's threads, and the lock may have been held by one of them.
        self._started, self._cond, self._heap, self._cancelled = False, threading.Condition(), [], 0

    def add(self, seconds: float, watch: Watch) -> list[Any]:
        entry = [time.monotonic() + seconds, 0, watch]
        with self._cond:
            if not self._started:
                if not self._forks_watched:
                    os.register_at_fork(after_in_child=self._after_fork)
                    self._forks_watched = True
                threading.Thread(target=self._run, name="preflight-alarms", daemon=True).start()
                self._started = True
            self._seq += 1
            entry[1] = self._seq
            heapq.heappush(self._heap, entry)
            if self._heap[0] is entry:
                self._cond.notify()
        return entry

    def cancel(self, entry: list[Any]) -> None:
        with self._cond:
            if entry[2] is not None:
                entry[2] = None  # drops the watch (and the connections it holds) now; the entry leaves lazily
                self._cancelled += 1
                if self._cancelled > 64 and self._cancelled * 2 > len(self._heap):
                    self._heap = [e for e in self._heap if e[2] is not None]
                    heapq.heapify(self._heap)
                    self._cancelled = 0

    def _run(self) -> None:
        while True:
            due: list[Watch] = []
            with self._cond:
                while self._heap and (self._heap[0][2] is None or self._heap[0][0] <= time.monotonic()):
                    _when, _seq, watch = heapq.heappop(self._heap)
                    if watch is None:
                        self._cancelled = max(0, self._cancelled - 1)
                    else:
                        due.append(watch)
                if not due:
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
            for watch in due:
                watch.expire()


_alarms = _Alarms()


class time_limit:
    """Everything this thread sends and reads through a DeadlineAdapter inside the block ends by `seconds`.

    A class rather than a generator-based context manager (`with time_limit(seconds) as watch`): every API
    request enters one, and a generator's set-up and tear-down cost more than the class's calls."""

    __slots__ = ("_alarm", "_outer", "_seconds", "_watch")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    def __enter__(self) -> Watch:
        watch = self._watch = Watch()
        self._alarm = _alarms.add(max(self._seconds, 0.0), watch)
        self._outer = getattr(_current, "watch", None)
        _current.watch = watch
        return watch

    def __exit__(self, *_exc: object) -> None:
        _alarms.cancel(self._alarm)
        self._watch.end()
        _current.watch = self._outer


def current_watch() -> Watch | None:
    """The watch of the exchange this thread is in, if any."""
    return getattr(_current, "watch", None)


def _attach_current(conn: Any) -> None:
    watch = getattr(_current, "watch", None)
    if watch is not None:
        watch.attach(conn)


class _Attach:
    """Mixed into urllib3's connections: each one reports to the exchange that is using it."""

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        self._preflight_raw = sock  # before TLS wraps it: a stalled handshake can be cut too
        _attach_current(self)  # cut at once when the exchange's time ran out while it connected
        return sock

    def connect(self) -> None:
        _attach_current(self)
        super().connect()  # type: ignore[misc]

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach_current(self)  # a kept-alive connection serves a new exchange
        super().request(*args, **kwargs)  # type: ignore[misc]

    @property
    def is_connected(self) -> bool:
        """urllib3's check before a kept connection serves again (its pool closes one that fails it): connected, no
        byte waiting on the socket (the server closed it, or sent what no request asked for) and, over TLS, none
        in the TLS layer either, where a reply read 8 KiB at a time can leave the rest of a hostile server's
        record, a second reply, that the socket's check cannot see. The socket is polled with its own poll
        object, kept with the connection, rather than one made and registered per request."""
        sock: Any = getattr(self, "sock", None)
        if sock is None:
            return False
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return False
        return not poller(self, sock).poll(0)


class _HTTPConnection(_Attach, HTTPConnection):
    pass


class _HTTPSConnection(_Attach, HTTPSConnection):
    pass


class _Slots:
    """A pool's idle connections (and None for each connection it may still make), last in first out: urllib3's
    LifoQueue without its lock and conditions, whose four acquisitions and notifications per request cost more
    than the list. For pools that never wait for a connection (block=False, as all of preflight's are): get and
    put never block; a deque's append and pop are atomic under the interpreter lock. Two threads putting back at
    once may keep one connection more than `maxsize`."""

    def __init__(self, drained: queue.LifoQueue[Any]) -> None:
        self.maxsize = drained.maxsize
        items: list[Any] = []
        with contextlib.suppress(queue.Empty):
            while True:
                items.append(drained.get_nowait())
        self._items = collections.deque(reversed(items))

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        try:
            return self._items.pop()
        except IndexError:
            raise queue.Empty from None

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if len(self._items) >= self.maxsize > 0:
            raise queue.Full
        self._items.append(item)

    def qsize(self) -> int:
        return len(self._items)


class _Unlocked:
    """Mixed into the pools: a pool that never waits for a connection keeps them in _Slots."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pool = getattr(self, "pool", None)
        if not getattr(self, "block", True) and isinstance(pool, queue.LifoQueue):
            slots = _Slots(pool)
            object.__setattr__(self, "pool", slots)
            weakref.finalize(self, _close_pool_connections, slots)  # type: ignore[arg-type]  # as urllib3 does


class _HTTPPool(_Unlocked, HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(_Unlocked, HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


def poller(conn: Any, sock: socket.socket) -> select.poll:
    """A poll object watching `sock`, the connection's socket, for bytes to read (or its end), kept with the
    connection until it has another socket. The socket is kept with it: its descriptor's number, which a later
    socket may reuse, is not what says the poll object is still the right one."""
    kept: tuple[socket.socket, select.poll] | None = conn.__dict__.get("_preflight_poll")
    if kept is None or kept[0] is not sock:
        watch = select.poll()
        watch.register(sock, select.POLLIN)
        kept = conn._preflight_poll = (sock, watch)
    return kept[1]


def pool_classes() -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes (a PoolManager's pool_classes_by_scheme) whose connections obey `time_limit`."""
    return {"http": _HTTPPool, "https": _HTTPSPool}


@functools.cache
def tls_context(where: str) -> ssl.SSLContext:
    """One client TLS context per trust store (a CA bundle file or a folder of them) and process.

    Its CA certificates are parsed once, and whether `where` is a folder is asked once: without it urllib3
    builds a context and parses the bundle for every new connection, and requests asks the file system about
    the bundle on every request (each call hands the interpreter lock to another thread and back). Sharing a
    context shares no connection: urllib3 only ever sets it to verify certificates and host names.
    """
    from urllib3.util.ssl_ import create_urllib3_context

    context = create_urllib3_context()  # urllib3's own defaults: certificate and host name required, TLS 1.2+
    if os.path.isdir(where):
        context.load_verify_locations(capath=where)
    else:
        context.load_verify_locations(cafile=where)
    return context


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections obey `time_limit`. Mount it on every session preflight uses.

    With the default trust (certificates verified against a CA bundle, no client certificate) a request costs
    no file system call: the pool key holds the trust store's shared context (`tls_context`) instead of its path.
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = pool_classes()

    def build_connection_pool_key_attributes(self, request: Any, verify: Any, cert: Any = None
                                             ) -> tuple[_HostParams, _PoolKwargs]:
        if not _shared_trust(verify, cert):
            return super().build_connection_pool_key_attributes(request, verify, cert)
        parts = urlsplit(request.url)  # what requests' own key takes from the URL (requests/adapters.py)
        host: _HostParams = {"scheme": parts.scheme.lower(), "host": parts.hostname, "port": parts.port}
        pool: _PoolKwargs = {"cert_reqs": "CERT_REQUIRED", "ssl_context": tls_context(trust_path(verify))}
        return host, pool

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        if not (url[:5].lower() == "https" and _shared_trust(verify, cert)):
            super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
            return
        # The trust store was found and read when its context was made (tls_context raises when it is missing,
        # before this is called); the connection defers to that context.
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = conn.ca_cert_dir = None


def _shared_trust(verify: Any, cert: Any) -> bool:
    return verify is not False and verify is not None and cert is None


def trust_path(verify: Any) -> str:
    """The CA bundle (file or folder) requests verifies against for a `verify` value: a path, or its default."""
    from requests.utils import DEFAULT_CA_BUNDLE_PATH

    return verify if isinstance(verify, str) else str(DEFAULT_CA_BUNDLE_PATH)


KEPT_PER_HOST = 64  # idle connections a process keeps per API host: its tenants' reading threads together


class _ProcessAdapter(DeadlineAdapter):
    def close(self) -> None:
        """Kept open: the process's pools outlive any one session (google-auth closes its session when the
        credentials object is collected)."""


class _SharedAdapter:
    """The one DeadlineAdapter of this process, so that its tenants share kept-alive connections per API host.

    A tenant's sessions stay its own (cookies, deadline, credentials); only connections are shared, which
    leaks nothing: every request carries its own bearer token in its header, and a connection serves one
    exchange at a time. The pools hold sockets, which a forked worker process must not share with its
    parent: the child makes its own adapter.
    """

    def __init__(self) -> None:
        self._adapter: _ProcessAdapter | None = None
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._adapter, self._lock = None, threading.Lock()

    def forget(self) -> None:
        """Close every connection kept alive; the pools serve on with new ones."""
        with self._lock:
            if self._adapter is not None:
                self._adapter.poolmanager.clear()

    def get(self, kept: int) -> DeadlineAdapter:
        with self._lock:
            if self._adapter is None:
                self._adapter = _ProcessAdapter(pool_connections=16, pool_maxsize=max(kept, KEPT_PER_HOST))
            pool_kw = self._adapter.poolmanager.connection_pool_kw
            if kept > pool_kw["maxsize"]:  # pools made from now on keep more
                pool_kw["maxsize"] = kept
            return self._adapter


_shared = _SharedAdapter()


def forget_shared_connections() -> None:
    """Close every connection the shared adapter keeps alive (see preflight.transport.forget_connections)."""
    _shared.forget()


def shared_adapter(kept: int = KEPT_PER_HOST) -> DeadlineAdapter:
    """This process's DeadlineAdapter (see _SharedAdapter), keeping at least `kept` idle connections per host."""
    return _shared.get(kept)


def _merged(request: Any, session: Any) -> Any:
    """requests' merge_setting (requests/sessions.py) without its typing-protocol isinstance checks, which
    cost more CPU than the rest of the merge: the request's value wins, a None in the merged mapping removes
    its key, and a value that is no mapping is taken whole."""
    if session is None:
        return request
    if request is None:
        return session
    if isinstance(request, Mapping) and isinstance(session, Mapping):
        return {k: v for k, v in {**session, **request}.items() if v is not None}
    return request


class _KeepHeaders:
    """A session's `auth` that leaves the request's own Authorization header as it is. Without one, requests
    looks for a ~/.netrc entry on every request (file system calls each time), and a matching entry would put
    its password in place of the bearer token."""

    def __call__(self, request: Any) -> Any:
        return request


# What requests' proxy lookup reads for an http(s) URL (urllib.request.getproxies_environment, proxy_bypass).
_PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY",
                    "no_proxy", "NO_PROXY", "REQUEST_METHOD")


def proxy_variables() -> tuple[str | None, ...]:
    """The proxy configuration now: the values of _PROXY_VARIABLES."""
    return tuple(os.environ.get(name) for name in _PROXY_VARIABLES)


@functools.lru_cache(maxsize=256)
def environ_proxies(origin: str, no_proxy: str | None, variables: tuple[str | None, ...]) -> dict[str, str]:
    """requests' get_environ_proxies for one scheme://host[:port], once per process for each proxy configuration
    (`variables`: the values of _PROXY_VARIABLES, so a changed environment is a new key). Read only."""
    return get_environ_proxies(origin, no_proxy=no_proxy)


class EnvironmentOnceSession(Session):
    """A requests.Session that reads the environment once: the proxy variables (HTTPS_PROXY, NO_PROXY...) when
    it is made, their effect once per host and process, the CA bundle variables (REQUESTS_CA_BUNDLE,
    CURL_CA_BUNDLE) when it is made, rather than on every request: each reading walks the whole environment
    twice, which cost more CPU than the rest of a request, and a tenant's sign-in and collection make new
    sessions. Otherwise requests' own merge_environment_settings (requests/sessions.py). Its connections are
    the process's shared ones (`shared_adapter`)."""

    def __init__(self, kept: int = KEPT_PER_HOST) -> None:
        super().__init__()
        self.auth = _KeepHeaders()
        self._proxy_variables = proxy_variables()
        self._ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        adapter = shared_adapter(kept)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
                                   ) -> _Settings:
        if self.trust_env:
            no_proxy = proxies.get("no_proxy") if proxies is not None else None
            parts = urlsplit(url)
            env = environ_proxies(f"{parts.scheme}://{parts.netloc}", no_proxy, self._proxy_variables)
            if proxies is not None:
                for name, value in env.items():
                    proxies.setdefault(name, value)
            if verify is True or verify is None:
                verify = self._ca_bundle or verify
        return {"proxies": _merged(proxies, self.proxies), "stream": _merged(stream, self.stream),
                "verify": _merged(verify, self.verify), "cert": _merged(cert, self.cert)}


def bounded_session(pool_maxsize: int = KEPT_PER_HOST) -> Any:
    """A requests.Session whose connections obey `time_limit`, drawn from the process's shared pools, which keep
    at least `pool_maxsize` idle connections per host."""
    return EnvironmentOnceSession(pool_maxsize)
