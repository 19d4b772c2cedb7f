"""A connection made after its exchange's time ran out is cut as soon as its socket exists: the exchange ends at
once rather than running on, bounded only by its socket timeouts (a new connection after a kept one the server
closed, or the first one of an exchange whose alarm fired as it began)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from preflight import deadline, http
from preflight.http import ApiError, Http
from tests.test_http_lean import plain


class _Expired(deadline.time_limit):
    """A time limit whose watch has expired before the exchange connects (its alarm fired at once)."""

    def __enter__(self) -> deadline.Watch:
        watch = super().__enter__()
        watch.expire()
        return watch


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "urllib3"])
def test_a_connection_made_after_the_time_ran_out_is_cut_at_once(lean: bool, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.recv(65536)
                time.sleep(3.0)  # a slow reply, which an exchange whose time is up must not wait for
                conn.sendall(plain(b"{}"))

    threading.Thread(target=serve, daemon=True).start()
    monkeypatch.setattr(http, "time_limit", _Expired)
    client = Http(timeout=(10.0, 10.0), total=20.0, max_retries=0)
    client.transport.lean = lean
    started = time.monotonic()
    try:
        with pytest.raises(ApiError) as caught:
            client.get(f"http://127.0.0.1:{listener.getsockname()[1]}/fresh")
    finally:
        listener.close()
    assert caught.value.code == "Timeout" and time.monotonic() - started < 2.0

