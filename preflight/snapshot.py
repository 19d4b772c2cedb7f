"""Snapshot I/O (preflight.snapshot/v1): the raw API payloads a collector read, and what could not be read."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight.errors import InputError
from preflight.model import Method

SCHEMA = "preflight.snapshot/v1"
MAX_BYTES = 32 * 1024 * 1024  # a tenant of thousands of mailboxes is a few MB; refuse what cannot be one


class Unavailable(Exception):
    """A resource a check needs was not collected or could not be read: the check becomes `unknown`."""

    def __init__(self, resource: str, reason: str, error: dict[str, Any] | None = None) -> None:
        super().__init__(f"{resource}: {reason}")
        self.resource = resource
        self.reason = reason
        self.error = error


def error_of(value: Any) -> dict[str, Any] | None:
    """The recorded error when a resource could not be read ({"error": {...}} and nothing else), else None."""
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("error"), dict):
        err: dict[str, Any] = value["error"]
        return err
    return None


def describe_error(err: dict[str, Any]) -> str:
    parts = [str(err[k]) for k in ("status", "code") if err.get(k) not in (None, "")]
    msg = str(err.get("message") or "").strip()
    return " ".join(parts) + (f": {msg[:200]}" if msg else "")


@dataclass(frozen=True)
class Options:
    methods: tuple[Method, ...] = tuple(Method)
    sender_ips: tuple[str, ...] = ()
    app_id: str | None = None
    from_addresses: dict[str, str] = field(default_factory=dict)  # mailbox -> the From address it sends as

    def to_dict(self) -> dict[str, Any]:
        return {
            "methods": [m.value for m in self.methods],
            "sender_ips": list(self.sender_ips),
            "app_id": self.app_id,
            "from_addresses": dict(self.from_addresses),
        }


@dataclass(frozen=True)
class Snapshot:
    provider: str
    tenant: dict[str, Any]
    collected_at: str
    options: Options
    org: dict[str, Any]
    mailboxes: dict[str, dict[str, Any]]
    source: str = "<memory>"

    @property
    def tenant_label(self) -> str:
        return str(self.tenant.get("domain") or self.tenant.get("id") or "unknown tenant")

    def org_resource(self, name: str) -> Any:
        return _read(self.org, name, name)

    def mailbox_resource(self, address: str, name: str) -> Any:
        return _read(self.mailboxes.get(address, {}), name, f"{name} of {address}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "provider": self.provider,
            "collected_at": self.collected_at,
            "tenant": self.tenant,
            "options": self.options.to_dict(),
            "org": self.org,
            "mailboxes": self.mailboxes,
        }


def _read(container: dict[str, Any], name: str, label: str) -> Any:
    if name not in container:
        raise Unavailable(label, "not collected")
    value = container[name]
    err = error_of(value)
    if err is not None:
        raise Unavailable(label, describe_error(err), err)
    return value


def _options(raw: Any, where: str) -> Options:
    if raw is None:
        return Options()
    if not isinstance(raw, dict):
        raise InputError(f"{where}: 'options' must be an object")
    try:
        methods = tuple(Method(m) for m in raw.get("methods") or [m.value for m in Method])
    except ValueError as exc:
        valid = ", ".join(m.value for m in Method)
        raise InputError(f"{where}: options.methods: {exc} (valid: {valid})") from None
    froms = raw.get("from_addresses") or {}
    ips = raw.get("sender_ips") or []
    if not isinstance(froms, dict) or not isinstance(ips, list):
        raise InputError(f"{where}: options.from_addresses must be an object and sender_ips a list")
    return Options(
        methods=methods,
        sender_ips=tuple(str(ip) for ip in ips),
        app_id=raw.get("app_id"),
        from_addresses={str(k).lower(): str(v) for k, v in froms.items()},
    )


def parse(data: Any, where: str = "snapshot") -> Snapshot:
    if not isinstance(data, dict):
        raise InputError(f"{where}: not a preflight snapshot (expected a JSON object)")
    if data.get("schema") != SCHEMA:
        raise InputError(f"{where}: schema is {data.get('schema')!r}, expected {SCHEMA!r}")
    provider = data.get("provider")
    if not isinstance(provider, str) or not provider:
        raise InputError(f"{where}: 'provider' must be a non-empty string")
    tenant, org, mailboxes = data.get("tenant"), data.get("org"), data.get("mailboxes")
    if not isinstance(tenant, dict):
        raise InputError(f"{where}: 'tenant' must be an object")
    if not isinstance(org, dict):
        raise InputError(f"{where}: 'org' must be an object")
    if not isinstance(mailboxes, dict) or not all(isinstance(v, dict) for v in mailboxes.values()):
        raise InputError(f"{where}: 'mailboxes' must be an object of objects keyed by address")
    return Snapshot(
        provider=provider,
        tenant=tenant,
        collected_at=str(data.get("collected_at") or ""),
        options=_options(data.get("options"), where),
        org=org,
        mailboxes={str(k).lower(): v for k, v in mailboxes.items()},
        source=where,
    )


def load(path: Path) -> Snapshot:
    where = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(f"{where}: {size} bytes is larger than a snapshot can be ({MAX_BYTES} bytes)")
        text = path.read_text(encoding="utf-8")
    except InputError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise InputError(f"{where}: cannot read file ({reason})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply") from None
    return parse(data, where)


def save(snapshot: Snapshot, path: Path) -> None:
    """Write atomically so an interrupted run never leaves half a snapshot."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(snapshot.to_dict(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
