"""Errors that end a command with one clear line instead of a traceback."""


class InputError(Exception):
    """Bad user input (option, file, address): exit code 2, one line naming the problem."""


class SignInError(Exception):
    """Could not sign in or reach the admin APIs: exit code 4."""


def seconds(limit: float) -> str:
    """A time limit as a person reads it in a message: whole seconds from 10 up, one decimal below, never 0
    (a limit left over from a deadline is 1.98093 s to the machine and "2 s" to the admin)."""
    return f"{limit:.0f}" if limit >= 10 else f"{max(limit, 0.1):.1f}".removesuffix(".0")


def first_line(exc: BaseException, empty: str | None = None) -> str:
    """The first line of an exception's text: what a one-line message shows of it (later lines of library
    errors carry traces, ids, sometimes request data). With no text: `empty`, or the exception's type name."""
    text = str(exc).strip()
    if text:
        return text.splitlines()[0]
    return type(exc).__name__ if empty is None else empty
