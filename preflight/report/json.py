from __future__ import annotations

from _json import encode_basestring, make_encoder
from collections.abc import Iterable, Iterator
from typing import Any

from preflight import jsontext
from preflight.model import Finding, MailboxVerdict, Report, TargetResult

# Indented down to each verdict and finding, each on one line: a report of hundreds of findings reads (and greps)
# one finding per line, and the C encoder writes it (jsontext).
LAYOUT_DEPTH = 4

# Stands for the targets in a report's "targets" while the rest is encoded: no name or stamp before them holds it.
TARGETS = "\x00targets\x00"


def render(report: Report) -> str:
    # NaN or Infinity would make the report invalid JSON; loaders refuse them, so one here is a defect to surface
    # (ValueError), not to print.
    return jsontext.dumps(report.to_dict(), LAYOUT_DEPTH, ensure_ascii=False)


def target_text(target: dict[str, Any]) -> str:
    """A target's dict (TargetResult.to_dict) as report.json lays it out in its "targets", without the line break
    that ends it: two levels deeper than alone, so each of its line breaks indented four more."""
    return jsontext.indented(target, LAYOUT_DEPTH - 2, "    ", ensure_ascii=False, items=_FindingLines())


def result_text(result: TargetResult) -> str:
    """target_text(result.to_dict()), its findings written from their fields, not from a dict made for each."""
    shell = TargetResult(result.name, result.provider, result.tenant, errors=result.errors).to_dict()
    shell["mailboxes"], shell["findings"] = result.mailboxes, result.findings
    try:
        return jsontext.indented(shell, LAYOUT_DEPTH - 2, "    ", ensure_ascii=False, items=_FindingLines())
    except (TypeError, ValueError, RecursionError):  # what the encoder refuses: refused as target_text refuses it
        return target_text(result.to_dict())


def with_targets(data: dict[str, Any], targets: Iterable[str]) -> Iterator[str]:
    """render's text, a piece at a time, of a report whose dict is `data` with "targets" [TARGETS] and whose
    targets' texts (target_text) are `targets`, at least one: each target encoded once, never all held at once."""
    before, _, after = jsontext.dumps(data, LAYOUT_DEPTH, ensure_ascii=False).partition(
        jsontext.dumps(TARGETS, 0)[:-1])
    yield before
    for n, text in enumerate(targets):
        yield (",\n    " if n else "") + text
    yield after


# Finding.to_dict's keys in their order: a Finding or a dict with these is written by _FindingLines, any other
# dict by jsontext.
FINDING_KEYS = ("check", "title", "status", "severity", "cause", "subject", "method", "message", "evidence",
                "remediation", "accepted")


class _FindingLines(dict[Any, str]):
    """A finding's line in one piece, as the C encoder writes it: a target's findings (hundreds) repeat their
    checks, titles, statuses and causes, each encoded once here (the encoder would encode every key and value
    of every finding); `self[value]` is a value's JSON text, kept for strings, and `self.heads` the line up to
    its subject, by check, title, status, severity and cause."""

    def __init__(self) -> None:
        super().__init__()
        # as jsontext writes a line: ensure_ascii=False, allow_nan=False, no other types
        self.line = make_encoder(None, jsontext.refuse, encode_basestring, None, ": ", ", ", False, False, False)
        self.heads: dict[tuple[Any, ...], str] = {}

    def __missing__(self, value: Any) -> str:
        if type(value) is not str:  # never kept: True, 1 and 1.0 are one dict key but three JSON values
            return "".join(self.line(value, 0))
        text = self[value] = encode_basestring(value)
        return text

    def __call__(self, d: Any) -> str | None:
        if type(d) is MailboxVerdict:  # its to_dict's line
            try:
                return (f'{{"address": {self[d.address]}, "method": {self[d.method._value_]}, '
                        f'"verdict": {self[d.verdict._value_]}, "blocking": {"".join(self.line(d.blocking, 0))}}}')
            except TypeError:
                return None
        if type(d) is Finding:  # its to_dict's values, read as to_dict reads them
            check, title, status, severity, cause, subject, method, message, evidence, remediation, accepted = (
                d.check, d.title, d.status._value_, d.severity._value_, d.cause, d.subject,
                d.method._value_ if d.method else None, d.message, d.evidence, d.remediation, d.accepted)
        elif type(d) is dict and tuple(d) == FINDING_KEYS:
            check, title, status, severity, cause, subject, method, message, evidence, remediation, accepted = (
                d.values())
        else:
            return None
        try:  # self[x] is None's, a number's or a container's text too; an unhashable one is left to jsontext
            key = (check, title, status, severity, cause)
            head = self.heads.get(key)
            if head is None:
                head = (f'{{"check": {self[check]}, "title": {self[title]}, "status": {self[status]}, '
                        f'"severity": {self[severity]}, "cause": {"null" if cause is None else self[cause]}, '
                        '"subject": ')
                if all(type(v) is str for v in key[:4]) and (cause is None or type(cause) is str):
                    self.heads[key] = head  # kept only for strings (and None), as True, 1 and 1.0 are equal
            return (f'{head}{"null" if subject is None else self[subject]}, '
                    f'"method": {"null" if method is None else self[method]}, '
                    # a message is most often the finding's own, an evidence too: not kept
                    f'"message": {encode_basestring(message) if type(message) is str else self[message]}, '
                    f'"evidence": {"".join(self.line(evidence, 0))}, '
                    f'"remediation": {"null" if remediation is None else self[remediation]}, '
                    f'"accepted": {"null" if accepted is None else self[accepted]}}}')
        except TypeError:
            return None
