"""Files written whole or not at all, and files and folders only their owner can read: token caches, stored
sign-ins, snapshots, their folders."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable
from pathlib import Path


def private_dir(path: Path) -> Path:
    """Create `path` and every parent that is missing with mode 0700 (mkdir(parents=True) would give the
    parents the umask's mode, 0755 on most systems, and let other users list tenant and customer names).
    Folders that exist already keep their mode, except `path` itself, which is made 0700."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
        if os.name == "posix":
            os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
    if os.name == "posix" and path.is_dir():
        os.chmod(path, 0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Create or replace a file with mode 0600 from its first byte, atomically, in a 0700 folder."""
    private_dir(path.parent)
    write_whole(path, text, 0o600)


def write_whole(path: Path, text: str | Iterable[str], mode: int = 0o666, durable: bool = True) -> None:
    """Create or replace a file atomically: readers, and a run interrupted half-way, see the old file or the new
    one, never a part of it (at worst a `.NAME.*.tmp` file is left beside it). `text` may come in pieces (a file
    too large to hold whole in memory).

    The temporary file is created with `mode` (filtered by the umask) from its first byte (O_EXCL, O_NOFOLLOW: no
    chmod window, no symlink games), then renamed over the target. `durable`: its content is on the disk before
    the rename (fsync), so that even the operating system's crash leaves the old file or the new one. Without it
    the rename still makes it whole for readers and interrupted runs, for a file a crash may only cost the time to
    write it again (an audit's per-tenant files: their fsyncs were ~0.3 ms of CPU and ~3 ms of waiting each).
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            if isinstance(text, str):
                fh.write(text)
            else:
                fh.writelines(text)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def loose_permissions(path: Path) -> bool:
    """True when group or others may read the file (POSIX only)."""
    return os.name == "posix" and bool(path.stat().st_mode & 0o077)
