"""Assertions that no secret appears in any output, in any of the forms it can travel in."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from preflight.runsecrets import forms


def leaked(text: str, secrets: Iterable[str]) -> list[str]:
    """The forms of `secrets` found in `text` (empty when none leaked)."""
    return sorted({f for s in secrets for f in forms(s) if f in text})


def assert_no_leak(text: str, secrets: Iterable[str]) -> None:
    found = leaked(text, secrets)
    assert not found, f"secret leaked in these forms: {[f[:12] + '…' for f in found]}"


def files_text(root: Path, skip: str | None = None) -> str:
    """Every file under root, as text: reports, snapshots, logs; `skip`: a folder not to read (the token
    cache, which holds tokens by design, owner-only)."""
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in sorted(root.rglob("*"))
                     if p.is_file() and not (skip and p.relative_to(root).parts[0] == skip))


def assert_clean_run(out: str, err: str, secrets: Iterable[str]) -> None:
    """No traceback, no secret: what every run must satisfy, whatever went wrong."""
    assert "Traceback" not in out + err, err
    assert_no_leak(out + err, list(secrets))
