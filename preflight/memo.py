"""What one run learns once and each of its tenants reuses, in memory only.

An audit gives one RunMemo to every tenant a worker process (or, on threads, the run) audits; a single command
makes its own. Providers keep in it what costs CPU or requests to learn again and is the same for every tenant:
a service-account key parsed (the same key file serves many Workspaces), an API's refusal of a request form.
It lives as long as the run and is never written anywhere. A provider keys its entries with its own name first,
so two providers never share one; the core never reads them. The one thing all share is the process's reading
threads (`reading_threads`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

T = TypeVar("T")

READING_THREADS = 1024  # a bound never reached: each provider holds each tenant to its own few reads at a time


class RunMemo:
    def __init__(self) -> None:
        self._values: dict[Hashable, Any] = {}
        self._making: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def __repr__(self) -> str:  # what is kept may be a parsed private key: never shown
        return f"RunMemo({len(self._values)} entries)"

    def get(self, key: Hashable) -> Any:
        """What was kept for `key`, or None."""
        with self._guard:
            return self._values.get(key)

    def set(self, key: Hashable, value: Any) -> None:
        with self._guard:
            self._values[key] = value

    def once(self, key: Hashable, make: Callable[[], T]) -> T:
        """The value kept for `key`, made by the first caller that asks: the tenants that start together wait
        for it rather than each making it. A `make` that raises keeps nothing, so the next caller tries again."""
        with self._guard:
            if key in self._values:
                kept: T = self._values[key]
                return kept
            lock = self._making.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._values:
                    kept = self._values[key]
                    return kept
            value = make()
            with self._guard:
                self._values[key] = value
                self._making.pop(key, None)
            return value

    def reading_threads(self) -> ThreadPoolExecutor:
        """The threads this process reads tenants on, started as first needed and kept for the run's next tenants
        (starting and ending a pool per tenant cost more CPU than its sign-in). A provider holds each tenant to
        its own bound over them and never lets one read wait on another, so sharing them cannot deadlock. A
        forked process (an audit's worker) starts its own: its parent's threads are not in it."""
        from concurrent.futures import ThreadPoolExecutor

        return self.once(("reading threads", os.getpid()),
                         lambda: ThreadPoolExecutor(READING_THREADS, thread_name_prefix="preflight-read"))
