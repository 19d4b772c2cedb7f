"""Files only their owner can read: token caches and stored sign-ins."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Create or replace a file with mode 0600 from its first byte, atomically: readers see old or new.

    The temporary file is created 0600 (O_EXCL, O_NOFOLLOW: no chmod window, no symlink games) in a 0700
    folder, then renamed over the target.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name == "posix":
        os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def loose_permissions(path: Path) -> bool:
    """True when group or others may read the file (POSIX only)."""
    return os.name == "posix" and bool(path.stat().st_mode & 0o077)
