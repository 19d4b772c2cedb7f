"""Text for a terminal: wrapped at 80 columns (or a narrower terminal) without splitting words or ids."""

from __future__ import annotations

import shutil
import textwrap

MAX_WIDTH = 80


def width() -> int:
    """80 columns, or fewer when the terminal is narrower (COLUMNS is honoured)."""
    return max(40, min(MAX_WIDTH, shutil.get_terminal_size((MAX_WIDTH, 24)).columns))


def wrap(text: str, indent: str = "", first: str | None = None, columns: int | None = None) -> str:
    """`text` on lines of at most `columns`; `first` prefixes the first line, `indent` the others.

    Words, cause ids, addresses and URLs are never broken or hyphenated: a token longer than the line
    stands on a line of its own.
    """
    wrapper = textwrap.TextWrapper(
        width=columns or width(), initial_indent=indent if first is None else first, subsequent_indent=indent,
        break_long_words=False, break_on_hyphens=False,
    )
    lines = [wrapper.fill(part) if part.strip() else part for part in text.split("\n")]
    return "\n".join(lines)
