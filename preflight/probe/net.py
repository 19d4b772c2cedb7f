"""Name resolution for the probe: getaddrinfo with a timeout, and what a failed connect means."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

from preflight.errors import InputError

Address = tuple[int, Any]  # (family, sockaddr)
Resolver = Callable[[str, int, float], list[Address]]


def resolve(host: str, port: int, timeout: float) -> list[Address]:
    """getaddrinfo with a timeout (it has none of its own): an unresolvable host is bad input (exit 2)."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as exc:
            box["error"] = exc

    worker = threading.Thread(target=work, name="preflight-resolve", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise InputError(f"{host}: host name did not resolve within {timeout:g} s (DNS not answering) [dns-failure]")
    if "error" in box:
        exc = box["error"]
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise InputError(f"{host}: host name does not resolve ({reason}) [dns-failure]")
    seen: list[Address] = []
    for family, _type, _proto, _canon, sockaddr in box["result"]:
        if (family, sockaddr) not in seen:
            seen.append((family, sockaddr))
    return seen
