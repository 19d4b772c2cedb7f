"""The audit's live display on stderr: one line per tenant with its state, and an overall bar."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

DONE_STATES = ("done", "failed")


class AuditProgress:
    def __init__(self, keys: Sequence[str], enabled: bool) -> None:
        self.keys = list(keys)
        self.enabled = enabled
        self._lock = threading.Lock()
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        self._overall: Any = None
        self._finished: set[str] = set()

    def __enter__(self) -> AuditProgress:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.fields[name]:<24}"), BarColumn(bar_width=20), MofNCompleteColumn(),
            TextColumn("{task.description}"), TimeElapsedColumn(),
            console=Console(file=sys.stderr), transient=False,
        )
        self._progress.__enter__()
        self._overall = self._progress.add_task("", total=len(self.keys), name="all tenants")
        for key in self.keys:
            self._tasks[key] = self._progress.add_task("queued", total=1, name=key[:24])
        return self

    def update(self, key: str, state: str) -> None:
        with self._lock:
            if self._progress is None:
                return
            finished = state in DONE_STATES
            self._progress.update(self._tasks[key], description=state, completed=1 if finished else 0)
            if finished and key not in self._finished:
                self._finished.add(key)
                self._progress.update(self._overall, completed=len(self._finished))

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.__exit__(et, ev, tb)
