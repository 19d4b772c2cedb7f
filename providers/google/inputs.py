"""Validation of what the user types for Google: addresses, domains, customer ids, opt-ins. One clear line."""

from __future__ import annotations

import re

from preflight.errors import InputError

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})+$")
_EMAIL = re.compile(rf"^[^@\s\"'<>,;]+@{_LABEL}(?:\.{_LABEL})+$")
_CUSTOMER = re.compile(r"^[A-Za-z0-9]{3,32}$")


def email(value: str, option: str) -> str:
    value = value.strip()
    if not _EMAIL.match(value):
        raise InputError(f"{option}: {value!r} is not an email address")
    return value.lower()


def domain(value: str | None) -> str | None:
    if value is None:
        return None
    if not _DOMAIN.match(value.strip()):
        raise InputError(f"--domain: {value!r} is not a domain name")
    return value.strip().lower()


def customer_id(value: str | None) -> str | None:
    if value is None:
        return None
    if not _CUSTOMER.match(value.strip()):
        raise InputError(f"--customer-id: {value!r} is not a Google customer id (like C01abc234)")
    return value.strip()


def opt_ins(with_sendas: bool, with_licenses: bool, with_tokens: bool, with_audit_log: bool = False) -> frozenset[str]:
    flags = {"--with-sendas": with_sendas, "--with-licenses": with_licenses, "--with-tokens": with_tokens,
             "--with-audit-log": with_audit_log}
    return frozenset(k for k, on in flags.items() if on)


def from_addresses(froms: list[str], mailboxes: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in froms:
        if "=" in item:
            box, addr = item.split("=", 1)
            box = email(box, "--from")
            if box not in mailboxes:
                raise InputError(f"--from: {box} is not one of the --mailbox addresses")
        elif len(mailboxes) == 1:
            box, addr = mailboxes[0], item
        else:
            raise InputError("--from: with several mailboxes, write MAILBOX=ADDR")
        out[box] = email(addr, "--from")
    return out
