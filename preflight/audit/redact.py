"""Redaction for sharing: personal and customer data (addresses, domains, names, ids) becomes stable pseudonyms.

Two passes make it complete: `learn` first collects every address, domain, local part, name and id the inputs
hold (a snapshot, a report, an inventory's customers); `value` then replaces each of them wherever it occurs,
also inside free text (a distinguished name, an etag, a message, an evidence list), besides the patterns
(addresses, GUIDs, Google customer ids) it recognises anyway. The same value always gets the same pseudonym
within one key, so a redacted snapshot still evaluates to the same verdicts and a redacted report still lines
up with it. Without a key, a fresh random one is used.

IP addresses (a sign-in's source, a sender range, a named location) are pseudonymised prefix-preserving, in the
manner of Crypto-PAn: two addresses sharing their first k bits still do after redaction, so an address inside a
range stays inside that range's pseudonym, and checks that match sources against ranges decide the same.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import tomllib
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from preflight.masking import mask_secrets

EMAIL = re.compile(r"(?<![\w.+-])([\w.+-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
GUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
CUSTOMER_ID = re.compile(r"\bC0[0-9a-z]{6,}\b")  # a Google Workspace customer id
URL = re.compile(r"https?://[^\s\"'<>]+")
# An IPv4 address or range, or an IPv6 one (at least two colons), inside text; ipaddress decides what really is.
IP = re.compile(r"(?<![\w.:])(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})(?:/\d{1,3})?"
                r"(?![\w.:])")
DOMAIN = re.compile(r"^(?=.{4,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")
PSEUDONYM = re.compile(r"^(?:user-[0-9a-f]{8}|name-[0-9a-f]{8}|(?:org|tenant)-[0-9a-f]{6}\.\S+)$")
# Keys whose whole value names a person or an organisation.
NAME_KEYS = frozenset({"displayName", "givenName", "surname", "DisplayName", "Name", "fullName", "familyName",
                       "name", "Alias", "SamAccountName", "customerDomain", "domain", "Identity", "User",
                       "Trustee", "tenant", "domainName", "organizationName", "postalAddress", "customer"})
# Keys whose value is a domain of the customer's.
DOMAIN_KEYS = frozenset({"domain", "domainName", "customerDomain", "domains", "DomainName", "tenant"})
# Keys whose value is an opaque id of the customer's objects (a Google user, group or org unit, a customer):
# the id itself is learned, so "id:03ph8a2z1" and "orgUnits/03ph8a2z1" keep pointing at the same unit.
ID_KEYS = frozenset({"id", "orgUnitId", "parentOrgUnitId", "customerId", "customer_id", "groupId", "userKey"})
ID_PREFIX = re.compile(r"^(?:id:|[A-Za-z]+/)")
# Keys of preflight's own vocabulary (ids of checks and causes, enums): never personal, never rewritten.
STRUCTURAL_KEYS = frozenset({"schema", "provider", "status", "severity", "cause", "check", "method", "verdict",
                             "blocking", "collected_at", "generated_at"})
# Well-known ids are facts about Microsoft or Google, not about the customer: keep them readable.
KEEP_GUIDS = frozenset({"00000002-0000-0ff1-ce00-000000000000", "00000003-0000-0000-c000-000000000000",
                        "00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000005"})
KEEP_NAME_VALUES = frozenset({"", "All", "None", "Default", "NT AUTHORITY\\SELF", "Office 365 Exchange Online"})
MIN_LEARNED = 3  # shorter values (a local part "hr") only go where the patterns find them


@cache
def provider_domains() -> tuple[str, ...]:
    """The providers' own public domains (data/redact.toml): a tenant's subdomain of one keeps the suffix."""
    text = resources.files("preflight.audit").joinpath("data/redact.toml").read_text(encoding="utf-8")
    return tuple(str(d) for d in tomllib.loads(text)["provider_domains"])


class Redactor:
    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(32)
        self._learned: dict[str, str] = {}  # casefolded value -> pseudonym
        self._pattern: re.Pattern[str] | None = None

    def _h(self, kind: str, value: str, n: int = 8) -> str:
        return hmac.new(self.key, f"{kind}:{value.lower()}".encode(), hashlib.sha256).hexdigest()[:n]

    def email(self, local: str, domain: str) -> str:
        if PSEUDONYM.match(local) and PSEUDONYM.match(domain):
            return f"{local}@{domain}"  # already redacted
        return f"user-{self._h('local', local + '@' + domain)}@{self.domain(domain)}"

    def domain(self, domain: str) -> str:
        low = domain.lower()
        suffix = next((k for k in provider_domains() if low == k or low.endswith("." + k)), None)
        if suffix is not None:
            return domain if low == suffix else f"tenant-{self._h('domain', domain, 6)}.{suffix}"
        return f"org-{self._h('domain', domain, 6)}.example"

    def guid(self, value: str) -> str:
        if value.lower() in KEEP_GUIDS:
            return value
        h = self._h("guid", value, 32)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"

    def ip(self, value: str) -> str:
        """An address or CIDR range -> its prefix-preserving pseudonym (a range keeps its length, host bits
        zero); anything ipaddress does not read is returned as it was."""
        return _ip_pseudonym(self.key, value)

    def folder(self, key: str) -> str:
        """A customer's output folder under --redact: its section name would name the customer."""
        return f"customer-{self._h('customer-key', key)}"

    def file_name(self, kind: str, original: str) -> str:
        """The name of a redacted copy: the original's name may be the customer's."""
        return f"{kind}-{self._h('file', original)}.json"

    # --- learning ----------------------------------------------------------------------------------------

    def _teach(self, value: str, pseudonym: str) -> None:
        value = value.strip()
        if len(value) < MIN_LEARNED or value in KEEP_NAME_VALUES or PSEUDONYM.match(value):
            return
        # A value learned as two kinds ("jobs": a local part and an org unit's name) keeps the lesser pseudonym,
        # whichever came first: tenants finish, and teach, in any order, and the same key must give the same file.
        folded = value.casefold()
        kept = self._learned.get(folded)
        if kept is None or pseudonym < kept:
            self._learned[folded] = pseudonym
            self._pattern = None

    def learn_address(self, address: str) -> None:
        local, _, domain = address.partition("@")
        self._teach(address, self.email(local, domain))
        self._teach(local, f"user-{self._h('local', local)}")
        self.learn_domain(domain)

    def learn_domain(self, domain: str) -> None:
        if DOMAIN.match(domain) and domain.lower() not in provider_domains():
            self._teach(domain, self.domain(domain))
            label = domain.split(".")[0]
            if label.lower() not in ("www", "mail", "smtp") and "." in domain:
                # the organisation's name as its domain spells it ("contoso", "tailspintoys")
                self._teach(label, f"org-{self._h('domain', label, 6)}")

    def learn_id(self, value: str) -> None:
        token = ID_PREFIX.sub("", value)
        if len(token) >= 6 and any(ch.isdigit() for ch in token) and not GUID.fullmatch(token):
            self._teach(token, f"id{self._h('id', token, 12)}")

    def learn_name(self, name: str) -> None:
        if EMAIL.search(name) or GUID.search(name):
            return
        if DOMAIN.match(name) and " " not in name:
            self.learn_domain(name)
        else:
            self._teach(name, f"name-{self._h('name', name, 8)}")

    def learn(self, data: Any, key: str | None = None) -> None:
        """Collect every address, domain, name and id the data holds, to replace them wherever they occur."""
        stack: list[tuple[Any, str | None]] = [(data, key)]
        while stack:
            item, k = stack.pop()
            if isinstance(item, dict):
                stack.extend((v, kk) for kk, v in item.items() if kk not in STRUCTURAL_KEYS)
                stack.extend((kk, None) for kk in item if isinstance(kk, str) and EMAIL.search(kk))
            elif isinstance(item, list):
                stack.extend((v, k) for v in item)
            elif isinstance(item, str):
                for m in EMAIL.finditer(item):
                    self.learn_address(m.group(0))
                if k in DOMAIN_KEYS:
                    self.learn_domain(item)
                if k in NAME_KEYS and item not in KEEP_NAME_VALUES:
                    self.learn_name(item)
                if k in ID_KEYS:
                    self.learn_id(item)

    # --- replacing ---------------------------------------------------------------------------------------

    def _learned_sub(self, value: str) -> str:
        if not self._learned:
            return value
        if self._pattern is None:
            words = sorted(self._learned, key=len, reverse=True)
            self._pattern = re.compile(r"(?<![\w])(?:" + "|".join(re.escape(w) for w in words) + r")(?![\w])",
                                       re.IGNORECASE)
        pattern = self._pattern

        def swap(m: re.Match[str], dotted_only: bool = False) -> str:
            if dotted_only and "." not in m.group(0):
                return m.group(0)
            return self._learned.get(m.group(0).casefold(), m.group(0))

        # Inside a link only whole domains and addresses are replaced: a local part "support" must not turn
        # https://support.google.com into a dead link.
        parts = URL.split(value)
        links = URL.findall(value)
        out = [pattern.sub(swap, parts[0])]
        for link, rest in zip(links, parts[1:], strict=True):
            out += [pattern.sub(lambda m: swap(m, dotted_only=True), link), pattern.sub(swap, rest)]
        return "".join(out)

    def text(self, value: str) -> str:
        value = mask_secrets(value)  # a shared file carries no credential a server once echoed into an error
        value = IP.sub(lambda m: self.ip(m.group(0)), value)
        value = GUID.sub(lambda m: self.guid(m.group(0)), value)
        value = CUSTOMER_ID.sub(lambda m: "C0" + self._h("customer", m.group(0), 8), value)
        value = self._learned_sub(value)
        return EMAIL.sub(lambda m: self.email(m.group(1), m.group(2)), value)

    def name(self, value: str) -> str:
        if value in KEEP_NAME_VALUES or EMAIL.search(value) or GUID.search(value) or PSEUDONYM.match(value):
            return self.text(value)
        if "." in value and " " not in value and "@" not in value:  # a bare domain
            return self.domain(value)
        return f"name-{self._h('name', value, 8)}"

    def value(self, data: Any, key: str | None = None) -> Any:
        if isinstance(data, dict):
            # A key is an API field name, except one holding an address or free text (an evidence label that
            # quotes a policy name): those are rewritten; a field name never is, so the shape stays intact.
            return {self.text(k) if EMAIL.search(k) or " " in k else k: v if k in STRUCTURAL_KEYS else self.value(v, k)
                    for k, v in data.items()}
        if isinstance(data, list):
            return [self.value(v, key) for v in data]
        if isinstance(data, str):
            return self.name(data) if key in NAME_KEYS else self.text(data)
        return data


@lru_cache(maxsize=65536)
def _ip_pseudonym(key: bytes, value: str) -> str:
    """Bit i of the result is bit i of the address XOR a keyed hash of the address's first i bits."""
    try:
        net = ipaddress.ip_network(value, strict=False) if "/" in value else None
        addr = net.network_address if net is not None else ipaddress.ip_address(value)
    except ValueError:
        return value
    bits = addr.max_prefixlen
    n = int(addr)
    out = 0
    for i in range(bits):
        prefix = n >> (bits - i) if i else 0
        flip = hmac.new(key, f"ip{bits}:{i}:{prefix}".encode(), hashlib.sha256).digest()[0] & 1
        out = (out << 1) | (((n >> (bits - 1 - i)) & 1) ^ flip)
    pseudo = ipaddress.ip_address(out) if bits == 32 else ipaddress.IPv6Address(out)
    if net is None:
        return str(pseudo)
    return str(ipaddress.ip_network(f"{pseudo}/{net.prefixlen}", strict=False))
