"""Ctrl-C: one line, exit 130, at once, with nothing half-written.

A run's worker threads may be waiting on a slow server (up to a request's total time limit, or a
Retry-After): unwinding with KeyboardInterrupt would wait for each of them, then for them again at
interpreter exit (concurrent.futures joins its workers). So by default SIGINT ends the process at once.
That is safe because every file preflight writes is written whole or not at all: a temporary file beside
the target, then renamed over it (preflight/private.py), so an interrupted write leaves the target as it
was (a token cache intact, a report absent or complete) and at most a `.NAME.*.tmp` file.

`preflight audit` keeps what finished: it asks for KeyboardInterrupt instead (`graceful`), writes the
report of the tenants that finished, then ends the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

EXIT_CODE = 130  # 128 + SIGINT, what shells report for a Ctrl-C
MESSAGE = "preflight: interrupted\n"


def exit_now(message: str = MESSAGE) -> None:
    """Say so on stderr and end the process with 130, skipping the joins of threads still waiting on servers."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(Exception):
        sys.stderr.write(message)
        sys.stderr.flush()
    os._exit(EXIT_CODE)


def _exit_on_signal(_signum: int, _frame: FrameType | None) -> None:
    exit_now()


@contextlib.contextmanager
def _handler(handler: Callable[[int, FrameType | None], Any] | int) -> Iterator[None]:
    # Only the main thread may set signal handlers (tests run commands on other threads too).
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def immediate() -> contextlib.AbstractContextManager[None]:
    """For a whole run: Ctrl-C ends it at once (see the module's docstring)."""
    return _handler(_exit_on_signal)


def _interrupt_once(_signum: int, _frame: FrameType | None) -> None:
    signal.signal(signal.SIGINT, _exit_on_signal)  # a second Ctrl-C: the user wants out now
    raise KeyboardInterrupt


def graceful() -> contextlib.AbstractContextManager[None]:
    """Inside: the first Ctrl-C raises KeyboardInterrupt, for code that keeps what finished before it ends; a
    second one ends the process at once."""
    return _handler(_interrupt_once)
