"""The raw-socket test servers' common parts: a loopback listener, a thread per accepted connection, and a
request head read off a connection. Each server decides how it answers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any


def listening(backlog: int = 16) -> socket.socket:
    """A TCP socket listening on a free loopback port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(backlog)
    return listener


def serve_each(listener: socket.socket, serve: Callable[[socket.socket], None]) -> None:
    """Until `listener` is closed, call `serve` with each connection it accepts, on a thread of its own."""

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


def read_head(conn: Any) -> bytes:
    """What the client sent up to and including a request head's blank line (and any bytes after it in the same
    reads); b"" when it closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            return b""
        data += more
    return data
