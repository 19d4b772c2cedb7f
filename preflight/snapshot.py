"""Snapshot I/O (preflight.snapshot/v1): the raw API payloads a collector read, and what could not be read."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight import jsontext, strictjson
from preflight.errors import InputError
from preflight.masking import mask_secrets
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
    """A collector's record of a failed read: an object with an `error` key, whatever the error's own shape
    (a string error becomes its message), else None. No documented payload has a top-level `error` field, so
    the key alone marks it: the one reader for checks and collectors alike, and it fails closed (an error
    record with other keys beside it is still an error, never data)."""
    if not isinstance(value, dict) or "error" not in value:
        return None
    err = value["error"]
    if isinstance(err, dict):
        # A snapshot may come from anywhere (evaluate, redact): a token a server echoed into an error must not
        # reach a finding's message or evidence, so what looks like a credential is masked here, on the way in.
        return {k: mask_secrets(v) if isinstance(v, str) else v for k, v in err.items()}
    return {"message": mask_secrets(err[:200]) if isinstance(err, str) else f"error record holding {_short_type(err)}"}


def _short_type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def describe_error(err: Mapping[str, Any]) -> str:
    """An error record in one line: "403 Forbidden: message", or whichever of those parts it has."""
    parts = [str(err[k]) for k in ("status", "code") if isinstance(err.get(k), int | str) and err.get(k) != ""]
    msg = err.get("message")
    msg_text = msg.strip()[:200] if isinstance(msg, str) else ""
    if parts and msg_text:
        return f"{' '.join(parts)}: {msg_text}"
    return " ".join(parts) or msg_text or "an error record without status or message"


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


def _methods(raw: Any, where: str) -> tuple[Method, ...]:
    """A list of known method names, each once in the order given (the engine runs each check per method)."""
    if raw is None:
        return tuple(Method)
    valid = ", ".join(m.value for m in Method)
    if not isinstance(raw, list) or not raw:
        raise InputError(f"{where}: options.methods must be a non-empty list of sign-in methods ({valid})")
    known = {m.value: m for m in Method}
    out: dict[Method, None] = {}
    for item in raw:
        if not isinstance(item, str) or item not in known:
            shown = repr(item) if isinstance(item, str | int | float | bool) or item is None else type(item).__name__
            raise InputError(f"{where}: options.methods: {shown[:40]} is not a sign-in method (valid: {valid})")
        out[known[item]] = None
    return tuple(out)


def _options(raw: Any, where: str) -> Options:
    if raw is None:
        return Options()
    if not isinstance(raw, dict):
        raise InputError(f"{where}: 'options' must be an object")
    froms = raw.get("from_addresses") or {}
    ips = raw.get("sender_ips") or []
    app_id = raw.get("app_id")
    if not isinstance(froms, dict) or not all(isinstance(v, str) for v in froms.values()):
        raise InputError(f"{where}: options.from_addresses must be an object of addresses keyed by mailbox")
    if not isinstance(ips, list) or not all(isinstance(ip, str) for ip in ips):
        raise InputError(f"{where}: options.sender_ips must be a list of IP addresses or CIDR ranges")
    if app_id is not None and not isinstance(app_id, str):
        raise InputError(f"{where}: options.app_id must be a string or null")
    return Options(
        methods=_methods(raw.get("methods"), where),
        sender_ips=tuple(ips),
        app_id=app_id or None,
        from_addresses={str(k).lower(): v for k, v in froms.items()},
    )


def _unrepresentable(data: Any) -> str | None:
    """What in a parsed snapshot no JSON output could carry again (NaN, Infinity, a lone surrogate, an
    integer of more digits than any payload has), for snapshots that did not come through `load`."""
    return None if _plainly_representable(data) else _first_unrepresentable(data)


_INT_LIMIT = 10**strictjson.MAX_INT_DIGITS
_FLUSH = 4096  # strings joined per look at them: a bounded copy of a large snapshot's text


def _plainly_representable(data: Any) -> bool:
    """True when every value is of a plain JSON type (exactly str, dict with str keys, list, int, float, bool,
    None) and none is one `_first_unrepresentable` would name; False when one may be (it then names it, or
    finds none). About twice as fast as that walk: the strings are looked at joined, a few thousand at once
    (a string that cannot be encoded leaves their join unencodable), and each value's type is tested once."""
    strings: list[str] = []
    stack: list[Iterable[Any]] = [(data,)]
    push, pop, keep = stack.append, stack.pop, strings.append
    while stack:
        for item in pop():
            kind = type(item)
            if kind is str:
                keep(item)
            elif kind is dict:
                strings += item  # its keys: one that is not a str makes the join below fail
                push(item.values())
            elif kind is list:
                push(item)
            elif kind is int:
                if not -_INT_LIMIT < item < _INT_LIMIT:
                    return False
            elif kind is float:
                if not math.isfinite(item):
                    return False
            elif item is not None and kind is not bool:
                return False  # a subclass or another type: the walk decides
        if len(strings) > _FLUSH or not stack:
            if not _encodable(strings):
                return False
            strings.clear()
    return True


def _encodable(strings: list[Any]) -> bool:
    try:
        text = "".join(strings)
    except TypeError:  # a key that is not a str
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _first_unrepresentable(data: Any) -> str | None:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return "a string holds a lone surrogate escape (\\ud800-\\udfff), which is not text"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            return f"{item} is not a JSON number"
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) >= 10**strictjson.MAX_INT_DIGITS:
            return "an integer of more digits than any payload has"
    return None


def parse_collected(data: Any, where: str) -> Snapshot:
    """A provider's freshly collected data as a snapshot. A payload holding what no JSON output could carry (a
    lone surrogate escape, NaN, an integer of more digits than any payload has) is the server's fault in that one
    read: it becomes that resource's error record, so the checks reading it are unknown and name why, and the rest
    of the tenant is still evaluated (a file a person gave is refused whole, by `parse`)."""
    if isinstance(data, dict):
        sections = [data.get("org")]
        mailboxes = data.get("mailboxes")
        if isinstance(mailboxes, dict):
            sections += mailboxes.values()
        for section in sections:
            if isinstance(section, dict):
                for key, value in section.items():
                    problem = _unrepresentable(value)
                    if problem is not None:
                        section[key] = {"error": {"status": 200, "code": "MalformedResponse",
                                                  "message": f"unreadable reply: {problem}"}}
    return _parse(data, where, payloads_checked=True)


def parse(data: Any, where: str = "snapshot") -> Snapshot:
    return _parse(data, where, payloads_checked=False)


def _parse(data: Any, where: str, *, payloads_checked: bool) -> Snapshot:
    """`payloads_checked`: every payload of `org` and of each mailbox, if they are objects, was looked at for what
    no JSON output could carry (parse_collected did), so only the rest of `data` is looked at again."""
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
    if not mailboxes:
        raise InputError(f"{where}: 'mailboxes' is empty: a snapshot checks at least one mailbox")
    problem = _unrepresentable(_without_payloads(data) if payloads_checked else data)
    if problem is not None:
        raise InputError(f"{where}: {problem}")
    return Snapshot(
        provider=provider,
        tenant=tenant,
        collected_at=str(data.get("collected_at") or ""),
        options=_options(data.get("options"), where),
        org=org,
        mailboxes={str(k).lower(): v for k, v in mailboxes.items()},
        source=where,
    )


def _without_payloads(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with each resource of `org` and of each mailbox reduced to its name: what the walk meets in the same
    order, less the payloads (the walk names the first problem it meets, so the order matters)."""
    return {**data, "org": list(data["org"]), "mailboxes": {k: list(v) for k, v in data["mailboxes"].items()}}


def load(path: Path) -> Snapshot:
    from preflight.files import read_text

    where = str(path)
    return parse(strictjson.loads(read_text(path, MAX_BYTES, "a snapshot"), where), where)


LAYOUT_DEPTH = 4  # indented down to each field of a mailbox's resource payloads; what lies deeper is one line each


def dumps(snapshot: Snapshot) -> str:
    """The snapshot file's text: indented like json.dumps(indent=2) down to LAYOUT_DEPTH, each value deeper
    on one line (an item of assignedPlans, a policy's conditions), written by the C encoder (jsontext)."""
    return jsontext.dumps(snapshot.to_dict(), LAYOUT_DEPTH)


def save(snapshot: Snapshot, path: Path, text: str | None = None) -> None:
    """Write atomically so an interrupted run never leaves half a snapshot (`text`: dumps(snapshot), if known),
    readable by its owner only: it holds the tenant's settings, users, groups and addresses. The folder is the
    user's choice and keeps its mode."""
    from preflight.private import write_whole

    path.parent.mkdir(parents=True, exist_ok=True)
    write_whole(path, dumps(snapshot) if text is None else text, 0o600)
