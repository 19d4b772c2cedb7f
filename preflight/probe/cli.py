"""`preflight probe` command (placeholder until the probe lands)."""

from __future__ import annotations

from typing import Annotated

import typer


def probe(target: Annotated[str, typer.Argument(help="HOST[:PORT]")]) -> None:
    """Test an SMTP server phase by phase (DNS, TCP, TLS, EHLO, AUTH)."""
    raise typer.Exit(2)
