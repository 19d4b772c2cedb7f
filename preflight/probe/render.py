"""Show a probe: the swaks-style transcript and the findings (text), or everything as JSON."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from preflight import __version__
from preflight.model import Finding, Status
from preflight.probe.result import PHASE_EXIT, ProbeResult
from preflight.wrap import wrap

SCHEMA = "preflight.probe/v1"

_COLOURS = {
    Status.PASS: "32",
    Status.FAIL: "31",
    Status.WARN: "33",
    Status.UNKNOWN: "35",
    Status.SKIPPED: "2",
}


def _paint(text: str, status: Status, color: bool) -> str:
    return f"\x1b[{_COLOURS[status]}m{text}\x1b[0m" if color else text


def findings_text(result: ProbeResult, findings: list[Finding], color: bool = False) -> str:
    target = result.target
    provider = f", {target.provider}" if target.provider else ""
    out = ["", f"Findings for {target.display} ({target.tls.value}{provider}):"]
    hang = " " * 31  # under the message: 2 + status 8 + 1 + check 19 + 1
    for f in findings:
        status = f"{f.status.value.upper():<8}"
        # Wrapped at 80 columns between words (ids and addresses stay whole), then the status coloured.
        text = wrap(f.message, indent=hang, first=f"  {status} {f.check:<19} ")
        out.append(text.replace(status, _paint(status, f.status, color), 1))
        if f.cause:
            out.append(f"{hang}cause: {f.cause}")
        if f.remediation and f.status in (Status.FAIL, Status.WARN):
            out.append(wrap(f.remediation, indent=hang + "     ", first=f"{hang}fix: "))
    failure = result.first_failure
    code = result.exit_code
    if failure is None and any(f.check == "probe.send-as" and f.status is Status.SKIPPED for f in findings):
        out.append(wrap(f"Result: every phase that ran succeeded, but send-as was not tested: it needs "
                        f"--rcpt-to (exit {code})."))
    elif failure is None:
        out.append(f"Result: every phase that ran succeeded (exit {code}).")
    else:
        out.append(f"Result: stopped at {failure.phase.value} (exit {code}).")
    return "\n".join(out) + "\n"


def to_json(result: ProbeResult, findings: list[Finding], generated_at: datetime) -> dict[str, Any]:
    target = result.target
    return {
        "schema": SCHEMA,
        "tool": {"name": "preflight", "version": __version__},
        "generated_at": generated_at.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "target": {"host": target.host, "port": target.port, "tls": target.tls.value, "provider": target.provider,
                   "known_host": target.known},
        "addresses": result.addresses,
        "planned": [p.value for p in result.planned],
        "phases": [p.to_dict() for p in result.phases],
        "tls": result.tls.to_dict() if result.tls else _unverified_tls(result),
        "tls_error": ({"cause": result.tls_failure.cause, "message": result.tls_failure.message,
                       **result.tls_failure.detail} if result.tls_failure else None),
        "capabilities": {"before_tls": result.capabilities_before, "after_tls": result.capabilities_after},
        "auth": result.auth.to_dict(),
        "token": result.token.to_dict() if result.token else None,
        "transcript": [e.to_dict() for e in result.transcript.entries],
        "findings": [f.to_dict() for f in findings],
        "exit_code": result.exit_code,
        "exit_phase": result.first_failure.phase.value if result.first_failure else None,
    }


def _unverified_tls(result: ProbeResult) -> dict[str, Any] | None:
    """After a failed verification: what the server presented (read for display only), never as verified."""
    failure = result.tls_failure
    if failure is None or "certificate" not in failure.detail:
        return None
    return {"mode": result.target.tls.value, "version": None, "cipher": None, "bits": None, "verified": False,
            "verified_name": result.target.host, "certificate": failure.detail["certificate"]}


def json_text(result: ProbeResult, findings: list[Finding], generated_at: datetime) -> str:
    return json.dumps(to_json(result, findings, generated_at), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


__all__ = ["PHASE_EXIT", "SCHEMA", "findings_text", "json_text", "to_json"]
