"""Shared by every command that writes a report: the format and --output options, colour, writing a file."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from preflight import __version__
from preflight.errors import InputError

if TYPE_CHECKING:  # the report model loads with the first report, not with every command's options
    from preflight.model import Report, TargetResult


class Format(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"
    html = "html"
    junit = "junit"
    csv = "csv"


class FailOn(StrEnum):
    fail = "fail"
    warn = "warn"


class TextFormat(StrEnum):
    """For commands whose output is not a report: a table for people, JSON for scripts."""

    table = "table"
    json = "json"


TextFormatOpt = Annotated[TextFormat, typer.Option("--format", "-f", help="Output format.")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Report format.")]
OutputOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write the report to this file instead of stdout.")
]
FailOnOpt = Annotated[
    FailOn, typer.Option("--fail-on", help="Lowest status that makes the exit code 1: fail (default) or warn.")
]


def utcnow() -> datetime:
    return datetime.now(UTC)


def color_enabled(stream: object = sys.stdout) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def write_text(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from preflight.private import write_whole

    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.exists() and not output.is_file():  # /dev/stdout, a named pipe: nothing to replace
            output.write_text(text, encoding="utf-8")
        else:  # whole or not at all: Ctrl-C never leaves half a report
            write_whole(output, text)
    except OSError as exc:
        raise InputError(f"{output}: cannot write report ({exc.strerror or type(exc).__name__})") from None


def make_report(targets: Sequence[TargetResult], now: datetime | None = None) -> Report:
    from preflight.model import Report

    stamp = (now or utcnow()).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return Report(list(targets), stamp, __version__)
