"""An audit's output folder belongs to that run alone: a stale customer folder of an earlier run next to a
new report would be read as part of it."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from preflight.errors import InputError

# What an audit writes: the consolidated files, and per customer a folder holding only these.
AUDIT_FILES = frozenset({"report.html", "report.json", "action-plan.md", "action-plan.csv"})
CUSTOMER_FILES = AUDIT_FILES | {"snapshot.json", "snapshot.json.tmp"}
# Where an audit's workers write their tenants' files (output.Consolidated.staging): hidden, and no customer's
# folder (a key starts with a letter or digit).
STAGE_PREFIX = ".preflight-stage-"
MAX_TRIES = 1000


def claim(output_dir: Path | None, started: datetime, force: bool, cache_root: Path) -> Path:
    """The folder this run writes to, created now. A given folder must be new or empty (with force: an
    earlier audit's outputs in it are removed first, anything else is kept); without one, a new folder
    named after the start time, with a suffix when another run took that name in the same second."""
    if output_dir is not None:
        _not_the_cache(output_dir, cache_root)
        if output_dir.exists() and not output_dir.is_dir():
            raise InputError(f"{output_dir}: exists and is not a folder")
        entries = sorted(p.name for p in output_dir.iterdir()) if output_dir.is_dir() else []
        if entries and not force:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise InputError(f"{output_dir}: not empty ({shown}); choose a new folder, or pass --force to replace "
                             "an earlier audit's outputs in it")
        if entries:
            _clear(output_dir)
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{output_dir}: cannot create folder ({exc.strerror or type(exc).__name__})") from None
        return output_dir
    base = Path(f"preflight-audit-{started.strftime('%Y%m%d-%H%M%S')}")
    _not_the_cache(base, cache_root)
    for n in range(1, MAX_TRIES + 1):
        candidate = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            candidate.mkdir()  # atomic: of two runs started in the same second, one gets -2
        except FileExistsError:
            continue
        except OSError as exc:
            raise InputError(f"{candidate}: cannot create folder ({exc.strerror or type(exc).__name__})") from None
        return candidate
    raise InputError(f"{base}: {MAX_TRIES} folders of that name exist; pass --output-dir")


def _not_the_cache(out: Path, cache_root: Path) -> None:
    if out.resolve().is_relative_to(cache_root.resolve()) or cache_root.resolve().is_relative_to(out.resolve()):
        raise InputError(f"{out}: the output folder must not hold token caches; choose another folder")


def _clear(folder: Path) -> None:
    """Remove an earlier audit's outputs: the consolidated files and folders holding only a customer's."""
    for entry in folder.iterdir():
        if entry.is_file() and entry.name in AUDIT_FILES:
            entry.unlink()
        elif entry.is_dir() and not entry.is_symlink() and entry.name.startswith(STAGE_PREFIX):
            shutil.rmtree(entry)  # an audit's stage, left by one that was ended at once (a second Ctrl-C)
        elif entry.is_dir() and not entry.is_symlink() and all(
                p.is_file() and p.name in CUSTOMER_FILES for p in entry.iterdir()):
            shutil.rmtree(entry)
