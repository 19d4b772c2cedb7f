"""The vocabulary every part shares: statuses, severities, sign-in methods, findings and verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


class Method(StrEnum):
    """How the sending service signs in to SMTP."""

    BASIC = "basic"
    OAUTH_DELEGATED = "oauth-delegated"
    OAUTH_APP = "oauth-app"


ALL_METHODS: tuple[Method, ...] = tuple(Method)


class Verdict(StrEnum):
    READY = "ready"
    BLOCKED = "blocked"
    AT_RISK = "at-risk"
    INCOMPLETE = "incomplete"


@dataclass
class Finding:
    """Treated as immutable. Not a frozen dataclass: hundreds are made per tenant, and a frozen one takes three
    times as long to make."""

    check: str
    title: str
    status: Status
    severity: Severity
    cause: str | None
    subject: str | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    remediation: str | None = None
    # None: the finding holds for every sign-in method the check covers.
    method: Method | None = None
    accepted: str | None = None  # reason, when an accepted exception turned a fail into "accepted"

    def to_dict(self) -> dict[str, Any]:
        # An enum's _value_ is its value, read without the `value` property (a report reads thousands of them).
        return {
            "check": self.check,
            "title": self.title,
            "status": self.status._value_,
            "severity": self.severity._value_,
            "cause": self.cause,
            "subject": self.subject,
            "method": self.method._value_ if self.method else None,
            "message": self.message,
            "evidence": self.evidence,
            "remediation": self.remediation,
            "accepted": self.accepted,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        return cls(
            check=d["check"],
            title=d["title"],
            status=Status(d["status"]),
            severity=Severity(d["severity"]),
            cause=d.get("cause"),
            subject=d.get("subject"),
            message=d["message"],
            evidence=d.get("evidence") or {},
            remediation=d.get("remediation"),
            method=Method(d["method"]) if d.get("method") else None,
            accepted=d.get("accepted"),
        )


@dataclass
class MailboxVerdict:
    """Treated as immutable; not frozen for the reason Finding is not."""

    address: str
    method: Method
    verdict: Verdict
    blocking: list[str]  # cause ids, in the order a sign-in meets them

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "method": self.method._value_,
            "verdict": self.verdict._value_,
            "blocking": self.blocking,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MailboxVerdict:
        return cls(d["address"], Method(d["method"]), Verdict(d["verdict"]), list(d.get("blocking") or []))


@dataclass
class TargetResult:
    """One tenant or Workspace: its verdicts, findings and the errors that kept it from being read."""

    name: str
    provider: str
    tenant: str
    mailboxes: list[MailboxVerdict] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # sign-in / reachability failures: exit code 4

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "provider": self.provider,
            "tenant": self.tenant,
            "mailboxes": [m.to_dict() for m in self.mailboxes],
            "findings": [f.to_dict() for f in self.findings],
            "errors": self.errors,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TargetResult:
        return cls(
            name=d["name"],
            provider=d["provider"],
            tenant=d["tenant"],
            mailboxes=[MailboxVerdict.from_dict(m) for m in d.get("mailboxes") or []],
            findings=[Finding.from_dict(f) for f in d.get("findings") or []],
            errors=list(d.get("errors") or []),
        )


REPORT_SCHEMA = "preflight.report/v1"


@dataclass
class Report:
    """What every report format renders (DESIGN §6 preflight.report/v1)."""

    targets: list[TargetResult]
    generated_at: str
    tool_version: str

    def summary(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for t in self.targets:
            for f in t.findings:
                counts[f.status._value_] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "tool": {"name": "preflight", "version": self.tool_version},
            "generated_at": self.generated_at,
            "targets": [t.to_dict() for t in self.targets],
            "summary": self.summary(),
        }
