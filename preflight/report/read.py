"""Reading a preflight.report/v1 back (for `diff`): every field checked against the shape the writer makes,
so a hand-edited or truncated report is one line naming the field, never a traceback or a guess."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

from preflight.errors import InputError
from preflight.masking import mask_secrets
from preflight.model import (
    REPORT_SCHEMA,
    Finding,
    MailboxVerdict,
    Method,
    Report,
    Severity,
    Status,
    TargetResult,
    Verdict,
)

SCHEMA = REPORT_SCHEMA
E = TypeVar("E", bound=StrEnum)


class _Bad(Exception):
    pass


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{where} must be an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Bad(f"{where} must be a list")
    return value


def _str(d: dict[str, Any], key: str, where: str, optional: bool = False) -> Any:
    value = d.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _Bad(f"{where}.{key} must be a string" + (" or null" if optional else ""))
    return value


def _enum(kind: type[E], d: dict[str, Any], key: str, where: str) -> E:
    value = d.get(key)
    if isinstance(value, str) and value in {m.value for m in kind}:
        return kind(value)
    raise _Bad(f"{where}.{key}: {value!r} is not one of {', '.join(m.value for m in kind)}")


def _opt_enum(kind: type[E], d: dict[str, Any], key: str, where: str) -> E | None:
    return None if d.get(key) is None else _enum(kind, d, key, where)


def _finding(raw: Any, where: str) -> Finding:
    d = _obj(raw, where)
    evidence = d.get("evidence", {})
    if evidence is None:
        evidence = {}
    return Finding(
        check=_str(d, "check", where),
        title=_str(d, "title", where),
        status=_enum(Status, d, "status", where),
        severity=_enum(Severity, d, "severity", where),
        cause=_str(d, "cause", where, optional=True),
        subject=_str(d, "subject", where, optional=True),
        message=mask_secrets(_str(d, "message", where)),  # from anywhere: no echoed token shown
        evidence=_obj(evidence, f"{where}.evidence"),
        remediation=_str(d, "remediation", where, optional=True),
        method=_opt_enum(Method, d, "method", where),
        accepted=_str(d, "accepted", where, optional=True),
    )


def _verdict(raw: Any, where: str) -> MailboxVerdict:
    d = _obj(raw, where)
    blocking = _list(d.get("blocking", []), f"{where}.blocking")
    if not all(isinstance(b, str) for b in blocking):
        raise _Bad(f"{where}.blocking must be a list of cause ids")
    return MailboxVerdict(
        _str(d, "address", where),
        _enum(Method, d, "method", where),
        _enum(Verdict, d, "verdict", where),
        list(blocking),
    )


def _target(raw: Any, where: str) -> TargetResult:
    d = _obj(raw, where)
    errors = _list(d.get("errors", []), f"{where}.errors")
    if not all(isinstance(e, str) for e in errors):
        raise _Bad(f"{where}.errors must be a list of strings")
    return TargetResult(
        name=_str(d, "name", where),
        provider=_str(d, "provider", where),
        tenant=_str(d, "tenant", where),
        mailboxes=[_verdict(m, f"{where}.mailboxes[{i}]")
                   for i, m in enumerate(_list(d.get("mailboxes", []), f"{where}.mailboxes"))],
        findings=[_finding(f, f"{where}.findings[{i}]")
                  for i, f in enumerate(_list(d.get("findings", []), f"{where}.findings"))],
        errors=[mask_secrets(e) for e in errors],
    )


def parse_report(data: Any, where: str) -> Report:
    """The Report in a decoded preflight.report/v1 document; InputError naming the first bad field."""
    try:
        d = _obj(data, "the report")
        if d.get("schema") != SCHEMA:
            raise _Bad(f"schema is {d.get('schema')!r}, expected {SCHEMA!r}")
        tool = _obj(d.get("tool"), "tool")
        targets = [_target(t, f"targets[{i}]") for i, t in enumerate(_list(d.get("targets"), "targets"))]
        return Report(targets, _str(d, "generated_at", "report"), _str(tool, "version", "tool"))
    except _Bad as exc:
        raise InputError(f"{where}: malformed report: {exc}") from None
