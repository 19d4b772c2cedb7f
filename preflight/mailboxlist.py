"""--mailboxes-from FILE: mailbox addresses one per line, or a CSV export (Microsoft 365 admin center,
Get-Mailbox | Export-Csv, GAM print users) with the address in a named column or the first one."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from preflight.addresses import is_address
from preflight.errors import InputError
from preflight.files import read_text

MAX_BYTES = 1024 * 1024
# Header names (case-insensitive) that hold the address in common exports, best first.
COLUMNS = ("mailbox", "email", "emailaddress", "primarysmtpaddress", "userprincipalname", "user principal name",
           "primaryemail", "address", "upn", "mail")


def read_mailboxes(path: Path) -> list[str]:
    """The addresses in the file, in order, without duplicates; blank lines and # comments are skipped."""
    text = read_text(path, MAX_BYTES, "a mailbox list", where=f"--mailboxes-from {path}", encoding="utf-8-sig",
                     errors="replace")
    rows = [r for r in csv.reader(io.StringIO(text)) if r and r[0].strip() and not r[0].lstrip().startswith("#")]
    column = 0
    if rows and "@" not in ",".join(rows[0]):
        header = [h.strip().lower() for h in rows[0]]
        named = [header.index(c) for c in COLUMNS if c in header]
        if not named:
            raise InputError(f"--mailboxes-from {path}: the first line is a header without an address column "
                             f"(expected one of: {', '.join(COLUMNS)})")
        column, rows = named[0], rows[1:]
    found: list[str] = []
    for n, row in enumerate(rows, 1):
        value = row[column].strip() if column < len(row) else ""
        if not is_address(value):
            raise InputError(f"--mailboxes-from {path}: entry {n} ({value[:80]!r}) is not an email address")
        if value.lower() not in (f.lower() for f in found):
            found.append(value)
    if not found:
        raise InputError(f"--mailboxes-from {path}: no mailbox addresses in the file")
    return found


def mailbox_options(flags: list[str] | None, path: Path | None, required: bool = True) -> list[str]:
    """--mailbox values followed by the --mailboxes-from file's, in order."""
    boxes = list(flags or []) + (read_mailboxes(path) if path is not None else [])
    if required and not boxes:
        raise InputError("give the mailboxes to check: --mailbox ADDR (repeatable) or --mailboxes-from FILE")
    return boxes
