"""Mailbox addresses as the user gives them, and `--from`: one rule for every provider and the audit.

An address is what Exchange Online and Gmail accept as a mailbox: a local part of RFC 5322 `atext`
characters and dots (no quoted local part, no spaces), one `@`, a dotted domain of letter-digit-hyphen
labels, at most 320 characters. It is compared and stored lower-case.

`--from` says which From address the sending service uses, when it is not the mailbox itself:
- `--from MAILBOX=ADDR`: that mailbox sends as ADDR (MAILBOX must be one of the mailboxes checked);
- `--from ADDR` (at most once): every other mailbox sends as ADDR — with one mailbox, that mailbox.
Both providers follow it (Google refused a bare ADDR with several mailboxes; one From address for a
service that sends through several mailboxes is common, so the Microsoft rule is the one kept).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from preflight.errors import InputError

FROM_HELP = "The From address the service sends as, if not the mailbox: ADDR (every mailbox) or MAILBOX=ADDR."
MAX_LENGTH = 320  # RFC 3696 errata: 64 for the local part, @, 255 for the domain
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"^[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+$")
_DOMAIN = re.compile(rf"^(?=.{{3,253}}$){_LABEL}(?:\.{_LABEL})+$")


def is_address(value: str) -> bool:
    return len(value) <= MAX_LENGTH and _ADDRESS.match(value) is not None


def address(value: str, option: str = "--mailbox") -> str:
    """The address, stripped and lower-case; InputError naming the option otherwise."""
    value = value.strip()
    if not is_address(value):
        raise InputError(f"{option}: {value!r} is not an email address")
    return value.lower()


def is_domain(value: str) -> bool:
    return _DOMAIN.match(value) is not None


def from_addresses(values: Sequence[str], mailboxes: Sequence[str]) -> dict[str, str]:
    """--from values (the rule above) -> {mailbox: From address}; `mailboxes` are already validated."""
    result: dict[str, str] = {}
    if sum("=" not in v for v in values) > 1:
        raise InputError("--from: give one address for every mailbox, or MAILBOX=ADDR pairs")
    for value in values:
        if "=" in value:
            box, _, sender = value.partition("=")
            box = address(box, "--from")
            if box not in mailboxes:
                raise InputError(f"--from: {box} is not one of the --mailbox addresses")
            result[box] = address(sender, "--from")
    bare = [v for v in values if "=" not in v]
    if bare:
        sender = address(bare[0], "--from")
        result.update({m: sender for m in mailboxes if m not in result})
    return result


def from_table(pairs: Mapping[str, str], option: str = "from") -> dict[str, str]:
    """An inventory's `from` table ({mailbox: From address}), both sides validated."""
    return {address(k, option): address(v, option) for k, v in pairs.items()}
