"""Validation of what the user types for Google: domains, customer ids, opt-ins (addresses and --from:
preflight.addresses). Bad input is one clear line."""

from __future__ import annotations

import re

from preflight.addresses import address, from_addresses, is_domain
from preflight.errors import InputError

__all__ = ["address", "customer_id", "domain", "from_addresses", "opt_ins"]

_CUSTOMER = re.compile(r"^[A-Za-z0-9]{3,32}$")


def domain(value: str | None) -> str | None:
    if value is None:
        return None
    if not is_domain(value.strip()):
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
