"""Exit codes (DESIGN §8)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import IntEnum

from preflight.model import Status, TargetResult


class Exit(IntEnum):
    OK = 0
    FAIL = 1
    USAGE = 2
    INCOMPLETE = 3
    SIGN_IN = 4


# DESIGN §8's precedence when several results make one exit code: a target that could not be read at all is
# the most urgent thing to say, then a failure, then what is incomplete.
PRECEDENCE = (Exit.SIGN_IN, Exit.FAIL, Exit.INCOMPLETE)


def worst(codes: Iterable[int]) -> Exit:
    """The exit code of several results (4 beats 1 beats 3 beats 0); other codes do not count."""
    given = set(codes)
    return next((code for code in PRECEDENCE if code in given), Exit.OK)


def exit_code(targets: Sequence[TargetResult], fail_on: str = "fail") -> Exit:
    """The report's exit code (PRECEDENCE)."""
    if any(t.errors for t in targets):
        return Exit.SIGN_IN
    live = [f for t in targets for f in t.findings if not f.accepted]
    failing = {Status.FAIL} | ({Status.WARN} if fail_on == "warn" else set())
    if any(f.status in failing for f in live):
        return Exit.FAIL
    if any(f.status is Status.UNKNOWN for f in live):
        return Exit.INCOMPLETE
    return Exit.OK
