"""SMTP on a socket: send a line, read one reply, with every read bounded.

A reply is bounded in line length, number of lines, total size and time (a deadline per phase), so a
server that never answers, trickles bytes or sends an endless reply cannot hang the probe.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from preflight.deadline import Deadline
from preflight.errors import seconds
from preflight.probe.transcript import Transcript

_LINE = re.compile(r"^(?P<code>[2-5]\d\d)(?P<sep>[ -]|$)(?P<text>.*)$")
_ENHANCED = re.compile(r"^(?P<enh>[245]\.\d{1,3}\.\d{1,3})(?:\s|$)")


@dataclass(frozen=True)
class Limits:
    timeout: float = 30.0  # seconds per phase: connect, TLS handshake, or one command and its reply
    max_line: int = 4096  # RFC 5321 allows 512 per reply line; real servers stay far below this
    max_lines: int = 100
    max_reply: int = 64 * 1024


class WireError(Exception):
    """The conversation broke: no usable reply."""


class PhaseTimeout(WireError):
    pass


class DeadlinePassed(PhaseTimeout):
    """The probe's overall deadline (--deadline) passed, whatever was left of the phase's own bound."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the probe's deadline of {seconds:g} s passed (raise it with --deadline)")
        self.seconds = seconds


class Closed(WireError):
    """The server closed the connection."""


class ProtocolError(WireError):
    """The server sent something that is not an SMTP reply, or too much of it."""


@dataclass(frozen=True)
class Reply:
    code: int
    lines: list[str]  # the text after the code and separator, one per reply line
    raw: list[str] = field(default_factory=list)  # the lines as received

    @property
    def enhanced(self) -> str | None:
        m = _ENHANCED.match(self.lines[0]) if self.lines else None
        return m.group("enh") if m else None

    @property
    def text(self) -> str:
        return "\n".join(self.raw)

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 400

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "enhanced": self.enhanced, "lines": list(self.raw)}


class Wire:
    def __init__(self, sock: socket.socket, limits: Limits, transcript: Transcript,
                 overall: Deadline | None = None) -> None:
        self.sock = sock
        self.limits = limits
        self.transcript = transcript
        self.overall = overall or Deadline.unbounded()  # the probe's own deadline: no wait goes past it
        self._buf = bytearray()

    @property
    def pending(self) -> bool:
        """Bytes received but not read yet (after STARTTLS they would be a response injection)."""
        return bool(self._buf)

    def deadline(self) -> float:
        return time.monotonic() + min(self.limits.timeout, self.overall.remaining())

    def send(self, line: str, shown: str | None = None, *, deadline: float) -> None:
        """Send one command line; `shown` is what the transcript records instead (for credentials)."""
        self.transcript.sent(line if shown is None else shown)
        data = line.encode("utf-8") + b"\r\n"
        self._settimeout(deadline)
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise self._timeout(f"sending timed out after {self.limits.timeout:g} s") from None
        except OSError as exc:
            raise Closed(f"connection lost while sending ({_os_error(exc)})") from None

    def command(self, line: str, shown: str | None = None) -> Reply:
        deadline = self.deadline()
        self.send(line, shown, deadline=deadline)
        return self.read_reply(deadline)

    def read_reply(self, deadline: float) -> Reply:
        code: str | None = None
        lines: list[str] = []
        raw: list[str] = []
        size = 0
        while True:
            line = self._read_line(deadline)
            size += len(line) + 2
            if size > self.limits.max_reply:
                raise ProtocolError(f"reply larger than {self.limits.max_reply} bytes")
            self.transcript.received(line)
            m = _LINE.match(line)
            if m is None:
                raise ProtocolError(f"not an SMTP reply line: {line[:80]!r}")
            if code is not None and m.group("code") != code:
                raise ProtocolError(f"reply code changed from {code} to {m.group('code')} inside one reply")
            code = m.group("code")
            lines.append(m.group("text"))
            raw.append(line)
            if m.group("sep") != "-":
                return Reply(int(code), lines, raw)
            if len(lines) >= self.limits.max_lines:
                raise ProtocolError(f"reply longer than {self.limits.max_lines} lines")

    def _read_line(self, deadline: float) -> str:
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                if end > self.limits.max_line:
                    raise ProtocolError(f"reply line longer than {self.limits.max_line} bytes")
                line = bytes(self._buf[:end]).rstrip(b"\r")
                del self._buf[: end + 1]
                # Masked before anything sees it: the reply, its transcript entry, errors quoting it.
                return self.transcript.mask(line.decode("utf-8", errors="replace"))
            if len(self._buf) > self.limits.max_line:
                raise ProtocolError(f"reply line longer than {self.limits.max_line} bytes")
            self._recv(deadline, f"no complete reply within {seconds(self.limits.timeout)} s")

    def wait_readable(self, deadline: float) -> None:
        """Return once the server has sent something (kept for the next read); PhaseTimeout if it stays quiet."""
        if self._buf:
            return
        self._recv(deadline, "the server sent nothing")

    def _recv(self, deadline: float, quiet: str) -> None:
        """Append what the server sends next to the buffer; PhaseTimeout(`quiet`) if nothing comes in time."""
        self._settimeout(deadline)
        try:
            chunk = self.sock.recv(4096)
        except TimeoutError:
            raise self._timeout(quiet) from None
        except ssl.SSLError as exc:
            raise Closed(f"TLS error while reading ({exc.reason or exc})") from None
        except OSError as exc:
            raise Closed(f"connection lost while reading ({_os_error(exc)})") from None
        if not chunk:
            raise Closed("the server closed the connection")
        self._buf += chunk

    def _settimeout(self, deadline: float) -> None:
        remaining = min(deadline - time.monotonic(), self.overall.remaining())
        if remaining <= 0:
            raise self._timeout(f"no complete reply within {seconds(self.limits.timeout)} s")
        self.sock.settimeout(remaining)

    def _timeout(self, text: str) -> PhaseTimeout:
        return DeadlinePassed(self.overall.seconds) if self.overall.expired else PhaseTimeout(text)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _os_error(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
