"""The consultant's inventory file (TOML): one section per customer, a defaults section, accepted exceptions.

Validation errors name the file, the line and the key, so a consultant with fifty customers finds the typo.
"""

from __future__ import annotations

import ipaddress
import re
import sys
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from preflight.engine import Exception_
from preflight.errors import InputError
from preflight.model import Method

ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Keys whose value would be a secret: allowed only because a user insisted, and always warned about.
SECRET_KEYS = frozenset({"client_secret", "password", "certificate_password", "token", "refresh_token"})
COMMON_KEYS = frozenset({
    "name", "provider", "tenant", "domain", "customer_id", "snapshot", "mailboxes", "methods", "sender_ips",
    "from", "app_id", "exception", "cloud", "auth", "client_id", "certificate", "certificate_password_env",
    "client_secret_env", "key_file", "admin", "client_secrets", "profile", "with_sendas", "with_licenses",
    "with_tokens", "password_env", "skip", "account",
})
DEFAULT_KEYS = frozenset({"methods", "sender_ips", "workers", "provider", "cloud", "auth", "client_id", "app_id"})


@dataclass(frozen=True)
class Customer:
    key: str  # the section name: a stable, file-system safe id
    name: str
    provider: str
    settings: dict[str, Any]  # provider-specific sign-in settings, passed to the provider's collector
    mailboxes: tuple[str, ...]
    methods: tuple[Method, ...]
    sender_ips: tuple[str, ...] = ()
    from_addresses: dict[str, str] = field(default_factory=dict)
    app_id: str | None = None
    snapshot: Path | None = None  # evaluate a saved snapshot instead of signing in
    exceptions: tuple[Exception_, ...] = ()


@dataclass(frozen=True)
class Inventory:
    path: Path
    customers: tuple[Customer, ...]
    workers: int = 4


class _Locator:
    """Line numbers for keys, so semantic errors point into the file the way syntax errors do."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def line(self, section: str, key: str | None = None) -> int:
        header = re.compile(r"^\s*\[+\s*" + re.escape(section).replace(r"\.", r"\s*\.\s*") + r"\s*\]+")
        start = next((i for i, ln in enumerate(self.lines) if header.match(ln)), None)
        if start is None:
            return 1
        if key is None:
            return start + 1
        pattern = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
        for i in range(start + 1, len(self.lines)):
            if self.lines[i].lstrip().startswith("["):
                break
            if pattern.match(self.lines[i]):
                return i + 1
        return start + 1


def _fail(path: Path, line: int, where: str, problem: str) -> InputError:
    return InputError(f"{path}:{line}: {where}: {problem}")


def _str_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def load_inventory(path: Path, known_providers: list[str], warn: Any = None) -> Inventory:
    warn = warn or (lambda msg: sys.stderr.write(f"preflight: warning: {msg}\n"))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise InputError(f"{path}: cannot read inventory ({reason})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"at line (\d+)", str(exc))
        raise InputError(f"{path}:{match.group(1) if match else 1}: invalid TOML: {exc}") from None
    loc = _Locator(text)

    for top in data:
        if top not in ("defaults", "customer"):
            raise _fail(path, loc.line(top), top, "unknown section (expected [defaults] and [customer.NAME])")
    defaults = data.get("defaults", {})
    for key in defaults:
        if key not in DEFAULT_KEYS:
            raise _fail(path, loc.line("defaults", key), f"defaults.{key}", "unknown key")
    workers = defaults.get("workers", 4)
    if not isinstance(workers, int) or not 1 <= workers <= 64:
        raise _fail(path, loc.line("defaults", "workers"), "defaults.workers", "must be a whole number 1-64")

    sections = data.get("customer", {})
    if not isinstance(sections, dict) or not sections:
        raise InputError(f"{path}: no customers (add a [customer.NAME] section; `preflight audit init` writes one)")
    customers = []
    for key, raw in sections.items():
        customers.append(_customer(path, loc, key, raw, defaults, known_providers, warn))
    return Inventory(path, tuple(customers), workers)


def _customer(
    path: Path, loc: _Locator, key: str, raw: Any, defaults: dict[str, Any], known: list[str], warn: Any
) -> Customer:
    section = f"customer.{key}"

    def bad(k: str | None, problem: str) -> InputError:
        return _fail(path, loc.line(section, k), f"{section}.{k}" if k else section, problem)

    if not NAME.match(key):
        raise bad(None, "section names use letters, digits, '.', '_' and '-' (they name output folders)")
    if not isinstance(raw, dict):
        raise bad(None, "must be a table")
    merged = {**{k: v for k, v in defaults.items() if k != "workers"}, **raw}
    if "snapshot" in raw:
        ignored = sorted(k for k in ("mailboxes", "methods", "sender_ips", "from", "app_id") if k in raw)
        if ignored:
            raise bad(ignored[0], "comes from the snapshot for a customer with snapshot = ...; remove it")
    for k in raw:
        if k in SECRET_KEYS:
            warn(f"{path}:{loc.line(section, k)}: {section}.{k} holds a secret in the file; "
                 f"prefer {k}_env = \"VARIABLE\" so it stays out of files and backups")
        elif k not in COMMON_KEYS:
            raise bad(k, "unknown key")
    provider = merged.get("provider")
    if provider not in known:
        raise bad("provider", f"{provider!r} is not an installed provider ({', '.join(known)})")
    snapshot = merged.get("snapshot")
    if snapshot is not None and not isinstance(snapshot, str):
        raise bad("snapshot", "must be a file path")
    mailboxes = _str_list(merged.get("mailboxes", []))
    if mailboxes is None or (not mailboxes and snapshot is None):  # a snapshot names its own mailboxes
        raise bad("mailboxes", "list at least one mailbox address")
    for address in mailboxes:
        if not ADDRESS.match(address):
            raise bad("mailboxes", f"{address!r} is not an email address")
    try:
        methods = tuple(Method(m) for m in _str_list(merged.get("methods", [m.value for m in Method])) or [])
    except ValueError as exc:
        raise bad("methods", f"{exc} (valid: {', '.join(m.value for m in Method)})") from None
    if not methods:
        raise bad("methods", "list at least one sign-in method")
    ips = _str_list(merged.get("sender_ips", [])) or []
    for ip in ips:
        try:
            ipaddress.ip_network(ip, strict=False)
        except ValueError:
            raise bad("sender_ips", f"{ip!r} is not an IP address or CIDR range") from None
    froms = merged.get("from", {})
    if isinstance(froms, str):  # one From address for every mailbox
        froms = dict.fromkeys(mailboxes, froms)
    if not isinstance(froms, dict) or not all(ADDRESS.match(str(v)) for v in froms.values()):
        raise bad("from", "a From address, or a table of mailbox = From address")
    if snapshot is not None and not (path.parent / Path(snapshot).expanduser()).is_file():
        raise bad("snapshot", f"{snapshot!r}: no such file (paths are relative to the inventory)")
    skip = {"name", "provider", "mailboxes", "methods", "sender_ips", "from", "app_id", "snapshot", "exception"}
    return Customer(
        key=key,
        name=str(merged.get("name") or key),
        provider=provider,
        settings={k: v for k, v in merged.items() if k not in skip},
        mailboxes=tuple(a.lower() for a in mailboxes),
        methods=methods,
        sender_ips=tuple(ips),
        from_addresses={str(k).lower(): str(v) for k, v in froms.items()},
        app_id=merged.get("app_id"),
        snapshot=(path.parent / Path(snapshot).expanduser()) if snapshot else None,
        exceptions=tuple(_exceptions(raw.get("exception", []), bad, mailboxes, snapshot is not None)),
    )


def _exceptions(raw: Any, bad: Any, mailboxes: list[str], from_snapshot: bool) -> list[Exception_]:
    if not isinstance(raw, list):
        raise bad("exception", "use [[customer.NAME.exception]] tables")
    result = []
    for item in raw:
        if not isinstance(item, dict) or not item.get("match") or not item.get("reason"):
            raise bad("exception", "each exception needs match (a check or cause id) and reason")
        expires = item.get("expires")
        if expires is not None and (not isinstance(expires, date) or isinstance(expires, datetime)):
            raise bad("exception", f"expires must be a date like 2027-03-31, not {expires!r}")
        subject = item.get("subject")
        known = {m.lower() for m in mailboxes}
        unknown_box = isinstance(subject, str) and not from_snapshot and subject.lower() not in known
        if subject is not None and (not isinstance(subject, str) or unknown_box):
            raise bad("exception", f"subject {subject!r} is not one of this customer's mailboxes")
        result.append(Exception_(str(item["match"]), str(item["reason"]), item.get("subject"), expires))
    return result


TEMPLATE = """\
# preflight audit inventory: one [customer.NAME] section per customer tenant.
# NAME names the customer's output folder. Secrets never go in this file: name the environment
# variable that holds them (*_env keys) or a file only you can read.

[defaults]
methods = ["basic", "oauth-app"]        # basic, oauth-delegated, oauth-app
sender_ips = ["203.0.113.0/24"]         # the sending service's published egress ranges
workers = 4                             # tenants audited in parallel

[customer.contoso]
name = "Contoso Ltd"
provider = "microsoft"
tenant = "contoso.onmicrosoft.com"      # or the tenant id (GUID)
auth = "certificate"                    # certificate | secret | device-code
client_id = "00000000-0000-0000-0000-000000000000"
certificate = "~/.config/preflight/certs/contoso.pfx"
certificate_password_env = "CONTOSO_CERT_PASSWORD"
app_id = "11111111-1111-1111-1111-111111111111"   # the sending service's app, for oauth-app checks
mailboxes = ["jobs@contoso.com", "careers@contoso.com"]
from = { "jobs@contoso.com" = "no-reply@contoso.com" }

# An accepted exception shows as "accepted" instead of failed until it expires.
[[customer.contoso.exception]]
match = "basic-auth-retirement"         # a check id or a cause id
reason = "Vendor moves to OAuth in January; tracked in CHG-1042"
expires = 2027-01-31

[[customer.contoso.exception]]
match = "send-as-denied"
subject = "careers@contoso.com"         # optional: only this mailbox's findings
reason = "careers@ sends as itself from February"
expires = 2027-02-28

[customer.fabrikam]
name = "Fabrikam Inc"
provider = "google"
domain = "fabrikam.example"
auth = "service-account"
key_file = "~/.config/preflight/keys/fabrikam.json"
admin = "admin@fabrikam.example"        # the super admin the service account acts as
mailboxes = ["recruiting@fabrikam.example"]
methods = ["basic", "oauth-app"]

# A saved snapshot can stand in for a live sign-in (offline re-evaluation); its mailboxes, methods and
# options are the ones it was collected with:
# [customer.northwind]
# provider = "microsoft"
# snapshot = "snapshots/northwind.json"
"""
