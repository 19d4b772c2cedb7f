"""CLI commands this provider adds to the check, login, logout and auth-check groups."""

from collections.abc import Callable
from typing import Any

COMMANDS: dict[str, Callable[..., Any]] = {}
