"""CSV: one row per finding, for a spreadsheet or a ticket import.

An empty subject means tenant-wide; method "all" means every sign-in method the check covers. A cell that
a spreadsheet would read as a formula (= + - @, or a leading tab or carriage return) gets a leading
single quote: payload values reach this file, and a customer opens it in Excel.
"""

from __future__ import annotations

import csv
from io import StringIO

from preflight.model import Report
from preflight.report.common import clean, fix_text

COLUMNS = ("target", "provider", "tenant", "subject", "method", "check", "status", "severity", "cause", "message",
           "remediation", "accepted")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe(value: object) -> str:
    text = "" if value is None else clean(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def render(report: Report) -> str:
    out = StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for t in report.targets:
        for error in t.errors:
            # A target that was never read must not vanish from the sheet: one row says so.
            writer.writerow([safe(v) for v in (t.name, t.provider, t.tenant, "", "all", "sign-in", "unknown", "",
                                               "", f"Not evaluated: {error}", "", "")])
        for f in t.findings:
            writer.writerow([safe(v) for v in (
                t.name, t.provider, t.tenant, f.subject, f.method.value if f.method else "all", f.check,
                f.status.value, f.severity.value, f.cause, f.message, fix_text(f), f.accepted,
            )])
    return out.getvalue()
