"""Reading a file the user named: bounded, and one message style for what goes wrong.

    PATH: cannot read file (No such file or directory)
    PATH: larger than a snapshot can be (32 MiB)
    PATH: not UTF-8 text

A regular file is measured before it is read, so a huge one costs no memory; anything else (a pipe, a
device) is read up to one byte past the limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from preflight.errors import InputError


def _size(limit: int) -> str:
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if limit >= factor and limit % factor == 0:
            return f"{limit // factor} {unit}"
    return f"{limit} bytes"


def read_text(path: Path, limit: int, what: str, *, where: str | None = None, encoding: str = "utf-8",
              errors: str = "strict") -> str:
    """The file's text. `what` names the kind of file ("a snapshot"); `where` replaces the path in messages
    ("--mailboxes-from FILE"). errors="replace" keeps undecodable bytes as U+FFFD instead of refusing."""
    where = where or str(path)
    try:
        with path.open("rb") as fh:
            info = os.fstat(fh.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > limit:
                raise InputError(f"{where}: larger than {what} can be ({_size(limit)})")
            raw = fh.read(limit + 1)
    except OSError as exc:
        raise InputError(f"{where}: cannot read file ({exc.strerror or type(exc).__name__})") from None
    if len(raw) > limit:
        raise InputError(f"{where}: larger than {what} can be ({_size(limit)})")
    try:
        return raw.decode(encoding, errors=errors)
    except UnicodeDecodeError:
        raise InputError(f"{where}: not UTF-8 text") from None
