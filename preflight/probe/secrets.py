"""Credentials for the probe: read from an environment variable, a file or a prompt, never argv.

A Secret never shows its value in repr/str, so it cannot slip into a log line, a traceback's locals
summary or a report by accident; only `reveal()` returns it, and only the AUTH encoder calls that.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path

from preflight.errors import InputError

MAX_TOKEN_FILE = 64 * 1024


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


def _clean(value: str, what: str) -> Secret:
    value = value.strip("\r\n")
    if not value:
        raise InputError(f"{what} is empty")
    if any(ch in value for ch in "\r\n\0"):
        raise InputError(f"{what} contains a line break or NUL character")
    return Secret(value)


def from_env(name: str, what: str) -> Secret:
    if not name or "=" in name:
        raise InputError(f"{what}: {name!r} is not an environment variable name")
    value = os.environ.get(name)
    if value is None:
        raise InputError(f"{what}: environment variable {name} is not set")
    return _clean(value, f"{what} (environment variable {name})")


def token_from_file(path: Path) -> Secret:
    """A bare access token, or a token endpoint response ({"access_token": ...}) as saved by many tools."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_TOKEN_FILE + 1)
    except OSError as exc:
        raise InputError(f"--token-file {path}: cannot read file ({exc.strerror or type(exc).__name__})") from None
    if len(raw) > MAX_TOKEN_FILE:
        raise InputError(f"--token-file {path}: larger than {MAX_TOKEN_FILE // 1024} KiB; is it a token?")
    text = raw.decode("utf-8", errors="replace").strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise InputError(f"--token-file {path}: looks like JSON but does not parse") from None
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str):
            raise InputError(f"--token-file {path}: JSON without an access_token string")
        text = token
    return _clean(text, f"--token-file {path}")


def prompt_password(user: str) -> Secret:
    if not sys.stdin.isatty():
        raise InputError("--password-prompt needs a terminal; use --password-env NAME in scripts")
    try:
        value = getpass.getpass(f"Password for {user}: ", stream=sys.stderr)
    except EOFError:
        raise InputError("no password entered") from None
    return _clean(value, "the password")
