"""Report renderers: one module per format, each `render(report) -> str`. They never re-derive verdicts."""

from __future__ import annotations

from importlib import import_module

from preflight.model import Report

FORMATS = ("table", "json", "markdown", "html", "junit", "csv")


def render(report: Report, fmt: str, *, color: bool = False, width: int | None = None) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    module = import_module(f"preflight.report.{fmt}")
    if fmt == "table":
        text: str = module.render(report, color=color, width=width)
    else:
        text = module.render(report)
    return text
