"""What every provider's `auth-check` shares: the JSON envelope, the exit code and the clock convention.

- JSON: `{"schema": "preflight.auth-check/v1", "provider": NAME, ...the provider's own fields...,
  "clock": {"ahead_seconds": S, "status": "pass|warn|fail|unknown", "warn_after_seconds": W,
  "fail_after_seconds": F}, "exit_code": N}`.
- Exit code: 0 when every probe could read and every grant is there; 3 when something cannot be read
  or is not granted (the checks that need it would be `unknown`: DESIGN §8's "incomplete"); 4 when no
  sign-in works at all (DESIGN §8's "could not sign in"). Microsoft used 0/3 and Google 0/1/4.
- Clock: `ahead_seconds` is how far the local clock is AHEAD of the provider's (negative: behind),
  measured from the Date header of one of its replies. Signed tokens and assertions are refused from a
  clock that is off; each provider states its limits in its own data file (`[clock]` table with
  `warn_after_seconds` and `fail_after_seconds`).
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from typing import Any

from preflight.exitcodes import Exit

SCHEMA = "preflight.auth-check/v1"


@dataclass(frozen=True)
class ClockLimits:
    warn_after_seconds: float
    fail_after_seconds: float


@dataclass(frozen=True)
class Clock:
    ahead_seconds: float | None  # None: no reply with a usable Date header
    limits: ClockLimits

    @property
    def status(self) -> str:
        if self.ahead_seconds is None:
            return "unknown"
        off = abs(self.ahead_seconds)
        return "pass" if off <= self.limits.warn_after_seconds else \
            "warn" if off <= self.limits.fail_after_seconds else "fail"

    def sentence(self, other: str) -> str:
        """"local clock is 12 s ahead of login.microsoftonline.com" (or "could not compare clocks")."""
        if self.ahead_seconds is None:
            return "could not compare clocks (no Date header)"
        way = "ahead of" if self.ahead_seconds > 0 else "behind"
        return f"local clock is {abs(self.ahead_seconds):.0f} s {way} {other}"

    def to_dict(self) -> dict[str, Any]:
        return {"ahead_seconds": self.ahead_seconds, "status": self.status,
                "warn_after_seconds": self.limits.warn_after_seconds,
                "fail_after_seconds": self.limits.fail_after_seconds}


def clock_limits(raw: dict[str, Any]) -> ClockLimits:
    """A provider data file's `[clock]` table."""
    table = raw["clock"]
    return ClockLimits(float(table["warn_after_seconds"]), float(table["fail_after_seconds"]))


def clock_ahead(date_header: str | None, sent: float, received: float) -> float | None:
    """Seconds the local clock is ahead of the server that stamped `date_header` between `sent` and
    `received` (local time.time()). Date has one-second resolution, truncated: the server's instant is
    on average half a second after the stamp."""
    if not date_header:
        return None
    try:
        server = email.utils.parsedate_to_datetime(date_header).timestamp()
    except (TypeError, ValueError):
        return None
    return round((sent + received) / 2 - server - 0.5, 1)


def exit_code(signed_in: bool, complete: bool) -> int:
    """4: no sign-in works; 3: something cannot be read or is not granted; 0: everything can be read."""
    if not signed_in:
        return int(Exit.SIGN_IN)
    return int(Exit.OK if complete else Exit.INCOMPLETE)


def envelope(provider: str, body: dict[str, Any], clock: Clock, code: int) -> dict[str, Any]:
    """The JSON document: schema and provider first, the provider's fields, then clock and exit code."""
    return {"schema": SCHEMA, "provider": provider, **body, "clock": clock.to_dict(), "exit_code": code}
