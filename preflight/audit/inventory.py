"""The consultant's inventory file (TOML): one section per customer, a defaults section, accepted exceptions.

Validation errors name the file, the line and the key, so a consultant with fifty customers finds the typo.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import sys
import tomllib
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any

from preflight.addresses import is_address
from preflight.engine import Exception_
from preflight.errors import InputError
from preflight.files import read_text
from preflight.model import Method
from preflight.report.common import one_line

# Hundreds of customers take a few hundred KB; a file far larger than that is not an inventory.
MAX_BYTES = 8 * 1024 * 1024
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # fullmatch: with `$` a name could end in a line break
# Section names become folder names next to the consolidated outputs: none may be one of those files, a
# Windows device name, or differ from another section only in case (one folder on macOS and Windows).
RESERVED_NAMES = frozenset({"report.html", "report.json", "action-plan.md", "action-plan.csv", "con", "prn",
                            "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))})
# Keys whose value would be a secret: allowed only because a user insisted, and always warned about.
SECRET_KEYS = frozenset({"client_secret", "password", "certificate_password", "token", "refresh_token"})
# The type every key must have: str, bool, strs (a string or a list of strings), from (an address or a
# table of mailbox = address), exceptions (an array of tables).
KINDS: dict[str, str] = {
    "name": "str", "provider": "str", "tenant": "str", "domain": "str", "customer_id": "str", "snapshot": "str",
    "mailboxes": "strs", "methods": "strs", "sender_ips": "strs", "from": "from", "app_id": "str",
    "exception": "exceptions", "cloud": "str", "auth": "str", "client_id": "str", "certificate": "str",
    "certificate_password_env": "str", "client_secret_env": "str", "key_file": "str", "admin": "str",
    "client_secrets": "str", "profile": "str", "with_sendas": "bool", "with_licenses": "bool",
    "with_tokens": "bool", "with_audit_log": "bool", "account": "str", "api_root": "str", "deadline": "seconds",
    "sign_ins": "days", "sign_ins_tenant": "bool",
    **dict.fromkeys(SECRET_KEYS, "str"),
}
DEFAULT_KEYS = frozenset({"methods", "sender_ips", "workers", "provider", "cloud", "auth", "client_id", "app_id",
                          "deadline", "sign_ins", "sign_ins_tenant"})
SIGN_IN_DAYS = 30  # the longest window the sign-in evidence reads (check microsoft --sign-ins DAYS)
# Files a sign-in reads: they must exist before any tenant is signed in to (paths relative to the inventory).
FILE_KEYS = ("certificate", "key_file", "client_secrets")
EXCEPTION_KEYS = frozenset({"match", "reason", "subject", "expires"})


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

    def expired(self, today: date) -> list[Exception_]:
        """Accepted exceptions past their date: no longer applied, and the report says so."""
        return [x for x in self.exceptions if x.expires is not None and today > x.expires]


@dataclass(frozen=True)
class Inventory:
    path: Path
    customers: tuple[Customer, ...]
    workers: int = 4


class _Locator:
    """Line numbers for keys, so semantic errors point into the file the way syntax errors do."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def line(self, section: str, key: str | None = None, nth: int = 0) -> int:
        """The line of `key` in the nth [section] (or [[section]]) table, else of that table's header."""
        header = re.compile(r"^\s*\[+\s*" + re.escape(section).replace(r"\.", r"\s*\.\s*") + r"\s*\]+")
        starts = [i for i, ln in enumerate(self.lines) if header.match(ln)]
        if not starts:
            return 1
        start = starts[min(nth, len(starts) - 1)]
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


def _type_problem(kind: str, value: Any) -> str | None:
    """What is wrong with a value of this kind, or None."""
    if kind == "str":
        return None if isinstance(value, str) and value.strip() else "must be a non-empty string"
    if kind == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    if kind == "strs":
        return None if _str_list(value) is not None else "must be a list of strings"
    if kind == "from":
        ok = isinstance(value, str) or (isinstance(value, dict) and all(isinstance(v, str) for v in value.values()))
        return None if ok else "a From address, or a table of mailbox = From address"
    if kind == "exceptions":
        ok = isinstance(value, list) and all(isinstance(v, dict) for v in value)
        return None if ok else "use [[customer.NAME.exception]] tables"
    if kind == "days":  # sign_ins: the sign-in log's window
        ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= SIGN_IN_DAYS
        return None if ok else f"must be a whole number of days from 1 to {SIGN_IN_DAYS}"
    if kind == "seconds":  # deadline: one tenant's sign-in and collection
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 86400
        return None if ok else "must be a number of seconds from 1 to 86400"
    return None


def load_inventory(
    path: Path, known_providers: list[str], warn: Any = None, ids: Mapping[str, Collection[str]] | None = None,
) -> Inventory:
    """Read and validate the whole inventory: every error is found here, before any tenant is signed in to.

    `ids`: per provider, the check and cause ids an exception may match (None: not checked).
    """
    warn = warn or (lambda msg: sys.stderr.write(f"preflight: warning: {msg}\n"))
    text = read_text(path, MAX_BYTES, "an inventory")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"at line (\d+)", str(exc))
        raise InputError(f"{path}:{match.group(1) if match else 1}: invalid TOML: {one_line(exc)}") from None
    loc = _Locator(text)

    for top in data:
        if top not in ("defaults", "customer"):
            raise _fail(path, loc.line(top), top, "unknown section (expected [defaults] and [customer.NAME])")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise _fail(path, loc.line("defaults"), "defaults", "must be a [defaults] table")
    for key, value in defaults.items():
        if key not in DEFAULT_KEYS:
            raise _fail(path, loc.line("defaults", key), f"defaults.{key}", "unknown key")
        problem = _type_problem(KINDS.get(key, ""), value)
        if problem:
            raise _fail(path, loc.line("defaults", key), f"defaults.{key}", problem)
    workers = defaults.get("workers", 4)
    if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 64:
        raise _fail(path, loc.line("defaults", "workers"), "defaults.workers", "must be a whole number 1-64")

    sections = data.get("customer", {})
    if not isinstance(sections, dict) or not sections:
        raise InputError(f"{path}: no customers (add a [customer.NAME] section; `preflight audit init` writes one)")
    customers: list[Customer] = []
    folders: dict[str, str] = {}
    for key, raw in sections.items():
        where = f"customer.{key}"
        if key.lower() in RESERVED_NAMES:
            raise _fail(path, loc.line(where), where, f"{key!r} is reserved (it names an output file); "
                                                       "choose another section name")
        if key.lower() in folders:
            raise _fail(path, loc.line(where), where, f"differs from [customer.{folders[key.lower()]}] only in "
                                                       "case; their output folders would be one")
        folders[key.lower()] = key
        customers.append(_customer(path, loc, key, raw, defaults, known_providers, warn, ids))
    return Inventory(path, _distinct_names(customers), workers)


def _distinct_names(customers: list[Customer]) -> tuple[Customer, ...]:
    """Two customers of the same display name keep it, followed by their section name: every report,
    action plan and drift then tells them apart."""
    counts: dict[str, int] = {}
    for c in customers:
        counts[c.name.casefold()] = counts.get(c.name.casefold(), 0) + 1
    return tuple(replace(c, name=f"{c.name} ({c.key})") if counts[c.name.casefold()] > 1 else c for c in customers)


def _customer(
    path: Path, loc: _Locator, key: str, raw: Any, defaults: dict[str, Any], known: list[str], warn: Any,
    ids: Mapping[str, Collection[str]] | None,
) -> Customer:
    section = f"customer.{key}"

    def bad(k: str | None, problem: str) -> InputError:
        return _fail(path, loc.line(section, k), f"{section}.{k}" if k else section, problem)

    if not NAME.fullmatch(key):
        raise bad(None, "section names use letters, digits, '.', '_' and '-' (they name output folders)")
    if not isinstance(raw, dict):
        raise bad(None, "must be a table")
    for k, v in raw.items():
        if k in SECRET_KEYS:
            warn(f"{path}:{loc.line(section, k)}: {section}.{k} holds a secret in the file; "
                 f"prefer {k}_env = \"VARIABLE\" so it stays out of files and backups")
        elif k not in KINDS:
            raise bad(k, "unknown key")
        problem = _type_problem(KINDS[k], v)
        if problem:
            raise bad(k, problem)
    merged = {**{k: v for k, v in defaults.items() if k != "workers"}, **raw}
    if "snapshot" in raw:
        ignored = sorted(k for k in ("mailboxes", "methods", "sender_ips", "from", "app_id") if k in raw)
        if ignored:
            raise bad(ignored[0], "comes from the snapshot for a customer with snapshot = ...; remove it")
    provider = merged.get("provider")
    if provider not in known:
        raise bad("provider", f"{provider!r} is not an installed provider ({', '.join(known)})")
    snapshot = merged.get("snapshot")
    mailboxes = _str_list(merged.get("mailboxes", [])) or []
    if not mailboxes and snapshot is None:  # a snapshot names its own mailboxes
        raise bad("mailboxes", "list at least one mailbox address")
    for address in mailboxes:
        if not is_address(address):
            raise bad("mailboxes", f"{address!r} is not an email address")
    twice = [a for a, n in Counter(a.lower() for a in mailboxes).items() if n > 1]
    if twice:
        raise bad("mailboxes", f"{twice[0]!r} is listed twice")
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
    if not all(is_address(v) for v in froms.values()):
        raise bad("from", "a From address, or a table of mailbox = From address")
    settings = {k: v for k, v in merged.items() if k not in _NOT_SETTINGS}
    for k in FILE_KEYS:
        if k in settings:
            settings[k] = str(_existing_file(path, settings[k], partial(bad, k)))
    snap_path = _existing_file(path, snapshot, lambda p: bad("snapshot", p)) if snapshot is not None else None
    if snap_path is not None:
        _check_snapshot(snap_path, provider, lambda p: bad("snapshot", p))
    return Customer(
        key=key,
        name=one_line(merged.get("name") or key),
        provider=provider,
        settings=settings,
        mailboxes=tuple(a.lower() for a in mailboxes),
        methods=methods,
        sender_ips=tuple(ips),
        from_addresses={str(k).lower(): v for k, v in froms.items()},
        app_id=merged.get("app_id"),
        snapshot=snap_path,
        exceptions=tuple(_exceptions(path, loc, section, raw.get("exception", []), mailboxes, snap_path is not None,
                                     None if ids is None else ids.get(provider, ()))),
    )


_NOT_SETTINGS = frozenset({"name", "provider", "mailboxes", "methods", "sender_ips", "from", "app_id", "snapshot",
                           "exception"})


def _existing_file(inventory: Path, value: str, bad: Callable[[str], InputError]) -> Path:
    """A file path from the inventory (relative to it), which must name an existing file."""
    file = inventory.parent / Path(value).expanduser()
    if not file.is_file():
        raise bad(f"{value!r}: no such file (paths are relative to the inventory)")
    return file


def _check_snapshot(file: Path, provider: str, bad: Callable[[str], InputError]) -> None:
    """A snapshot standing in for a sign-in must be readable and of this customer's provider."""
    from preflight import snapshot as snap_io

    try:
        snap = snap_io.load(file)
    except InputError as exc:
        raise bad(str(exc)) from None
    if snap.provider != provider:
        raise bad(f"{str(file)!r} is a {snap.provider} snapshot, but provider = {provider!r}")


def _exceptions(
    path: Path, loc: _Locator, section: str, raw: list[dict[str, Any]], mailboxes: list[str], from_snapshot: bool,
    ids: Collection[str] | None,
) -> list[Exception_]:
    result = []
    where = f"{section}.exception"
    for n, item in enumerate(raw):

        def bad(k: str | None, problem: str, n: int = n) -> InputError:
            return _fail(path, loc.line(where, k, n), f"{where}[{n + 1}]" + (f".{k}" if k else ""), problem)

        for k in item:
            if k not in EXCEPTION_KEYS:
                raise bad(k, f"unknown key (an exception has {', '.join(sorted(EXCEPTION_KEYS))})")
        for k in ("match", "reason"):
            if not isinstance(item.get(k), str) or not item[k].strip():
                raise bad(k if k in item else None, f"{k} must be a non-empty string"
                          + (" (a check or cause id)" if k == "match" else ""))
        match = item["match"]
        if ids is not None and match not in ids:
            close = difflib.get_close_matches(match, list(ids), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else " (`preflight causes` lists the cause ids)"
            raise bad("match", f"{match!r} is no check or cause id of this provider{hint}")
        expires = item.get("expires")
        if expires is not None and (not isinstance(expires, date) or isinstance(expires, datetime)):
            raise bad("expires", f"must be a date like 2027-03-31, not {expires!r}")
        subject = item.get("subject")
        known = {m.lower() for m in mailboxes}
        if subject is not None and (not isinstance(subject, str) or not is_address(subject)
                                    or (not from_snapshot and subject.lower() not in known)):
            raise bad("subject", f"{subject!r} is not one of this customer's mailboxes")
        result.append(Exception_(match, item["reason"], subject.lower() if subject else None, expires))
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
# sign_ins = 30                         # also read the sign-in log of 30 days (AuditLog.Read.All, Entra ID P1)
# sign_ins_tenant = true                # ... for every user, to find Basic SMTP senders nobody listed
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
