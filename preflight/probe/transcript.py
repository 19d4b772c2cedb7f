"""The conversation as it happened, in swaks style, with secrets kept out of it.

Only already-masked text ever enters a transcript: the session hands `sent()` the line to show, never
the credential itself, so nothing downstream (renderers, JSON, logs) can leak it. Every entry, received
lines included (a hostile server may echo the password or token back), also passes the run's masking.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from preflight.runsecrets import RunSecrets

Direction = Literal["info", "error", "sent", "recv"]

# swaks prefixes: `===` info, `***` error, ` ->`/`<- ` plain, ` ~>`/`<~ ` inside TLS.
_PREFIX: dict[tuple[str, bool], str] = {
    ("info", False): "===",
    ("info", True): "===",
    ("error", False): "***",
    ("error", True): "***",
    ("sent", False): " ->",
    ("sent", True): " ~>",
    ("recv", False): "<- ",
    ("recv", True): "<~ ",
}


@dataclass(frozen=True)
class Entry:
    direction: Direction
    text: str
    tls: bool
    at_ms: float  # since the probe started

    def line(self) -> str:
        return f"{_PREFIX[(self.direction, self.tls)]} {self.text}"

    def to_dict(self) -> dict[str, Any]:
        return {"dir": self.direction, "tls": self.tls, "text": self.text, "at_ms": round(self.at_ms, 1)}


@dataclass
class Transcript:
    on_entry: Callable[[Entry], None] | None = None
    entries: list[Entry] = field(default_factory=list)
    tls: bool = False  # set once TLS is up: later lines are marked as protected
    secrets: RunSecrets = field(default_factory=RunSecrets)  # the run's: the credential and any issued token
    _start: float = field(default_factory=time.monotonic)

    def _add(self, direction: Direction, text: str) -> None:
        entry = Entry(direction, _printable(self.mask(text)), self.tls, (time.monotonic() - self._start) * 1000)
        self.entries.append(entry)
        if self.on_entry is not None:
            self.on_entry(entry)

    def mask(self, text: str) -> str:
        return self.secrets.mask(text)

    def info(self, text: str) -> None:
        self._add("info", text)

    def error(self, text: str) -> None:
        self._add("error", text)

    def sent(self, shown: str) -> None:
        """A line the client sent, as it may be shown (the caller masks credentials)."""
        self._add("sent", shown)

    def received(self, line: str) -> None:
        self._add("recv", line)

    def lines(self) -> list[str]:
        return [e.line() for e in self.entries]


def _printable(text: str) -> str:
    """Control characters from a hostile server must not drive the terminal."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
