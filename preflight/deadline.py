"""Time limits: a deadline for one tenant's whole run, and a total time limit for one HTTP exchange.

requests only has per-read timeouts: a server trickling one byte every two seconds never trips a 60 s read
timeout, and neither do headers sent a byte at a time. `time_limit` arms a timer for the whole exchange
(connect, TLS, headers, body); when it fires, the sockets the exchange uses are shut down, which wakes the
blocked read at once. Connections learn which exchange they serve through a thread-local set by
`time_limit`, so one session and its pool can serve many threads, each with its own limit.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

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
    """One exchange's time limit: expired once the timer fires; every socket it touched is then cut."""

    def __init__(self) -> None:
        self.expired = False
        self._conns: list[Any] = []
        self._lock = threading.Lock()

    def attach(self, conn: Any) -> None:
        with self._lock:
            self._conns.append(conn)
            if self.expired:
                _cut(conn)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            for conn in self._conns:
                _cut(conn)


def _cut(conn: Any) -> None:
    for sock in (getattr(conn, "sock", None), getattr(conn, "_preflight_raw", None)):
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                # The plain socket's shutdown, also for an SSLSocket: SSLSocket.shutdown would drop the TLS
                # object under the reading thread's feet. The reader sees EOF and gives up at once.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            return


_current = threading.local()


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[Watch]:
    """Everything this thread sends and reads through a DeadlineAdapter inside the block ends by `seconds`."""
    watch = Watch()
    timer = threading.Timer(max(seconds, 0.0), watch.expire)
    timer.daemon = True
    outer = getattr(_current, "watch", None)
    _current.watch = watch
    timer.start()
    try:
        yield watch
    finally:
        timer.cancel()
        _current.watch = outer


def _attach_current(conn: Any) -> None:
    watch = getattr(_current, "watch", None)
    if watch is not None:
        watch.attach(conn)


class _Attach:
    """Mixed into urllib3's connections: each one reports to the exchange that is using it."""

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        self._preflight_raw = sock  # before TLS wraps it: a stalled handshake can be cut too
        return sock

    def connect(self) -> None:
        _attach_current(self)
        super().connect()  # type: ignore[misc]

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach_current(self)  # a kept-alive connection serves a new exchange
        super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Attach, HTTPConnection):
    pass


class _HTTPSConnection(_Attach, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections obey `time_limit`. Mount it on every session preflight uses."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def bounded_session(pool_maxsize: int = 10) -> Any:
    """A requests.Session whose connections obey `time_limit`."""
    import requests

    session = requests.Session()
    adapter = DeadlineAdapter(pool_connections=4, pool_maxsize=pool_maxsize)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
