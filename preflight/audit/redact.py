"""Redaction for sharing: personal data (addresses, names, ids) becomes stable pseudonyms.

The same value always gets the same pseudonym within one key, so a redacted snapshot still evaluates to
the same verdicts and a redacted report still lines up with it. Without a key, a fresh random one is used.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

EMAIL = re.compile(r"(?<![\w.+-])([\w.+-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
GUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
GOOGLE_CUSTOMER = re.compile(r"\bC0[0-9a-z]{6,}\b")
# Keys whose whole value names a person or an organisation.
NAME_KEYS = frozenset({"displayName", "givenName", "surname", "DisplayName", "Name", "fullName", "familyName",
                       "name", "Alias", "SamAccountName", "customerDomain", "domain", "Identity", "User",
                       "Trustee", "tenant"})
# Well-known ids are facts about Microsoft or Google, not about the customer: keep them readable.
KEEP_GUIDS = frozenset({"00000002-0000-0ff1-ce00-000000000000", "00000003-0000-0000-c000-000000000000",
                        "00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000005"})
KEEP_NAME_VALUES = frozenset({"", "All", "None", "Default", "NT AUTHORITY\\SELF", "Office 365 Exchange Online"})


class Redactor:
    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(32)

    def _h(self, kind: str, value: str, n: int = 8) -> str:
        return hmac.new(self.key, f"{kind}:{value.lower()}".encode(), hashlib.sha256).hexdigest()[:n]

    def email(self, local: str, domain: str) -> str:
        return f"user-{self._h('local', local + '@' + domain)}@{self.domain(domain)}"

    def domain(self, domain: str) -> str:
        if domain.lower().endswith(("onmicrosoft.com", "outlook.com", "google.com", "gmail.com", "microsoft.com",
                                    "office365.com", "googleapis.com", "office.com", "microsoftonline.com")):
            known = ("onmicrosoft.com", "outlook.com", "google.com", "gmail.com", "microsoft.com", "office365.com",
                     "googleapis.com", "office.com", "microsoftonline.com")
            suffix = next(k for k in known if domain.lower().endswith(k))
            if domain.lower() == suffix:
                return domain
            return f"tenant-{self._h('domain', domain, 6)}.{suffix}"
        return f"org-{self._h('domain', domain, 6)}.example"

    def guid(self, value: str) -> str:
        if value.lower() in KEEP_GUIDS:
            return value
        h = self._h("guid", value, 32)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"

    def text(self, value: str) -> str:
        value = EMAIL.sub(lambda m: self.email(m.group(1), m.group(2)), value)
        value = GUID.sub(lambda m: self.guid(m.group(0)), value)
        return GOOGLE_CUSTOMER.sub(lambda m: "C0" + self._h("customer", m.group(0), 8), value)

    def name(self, value: str) -> str:
        if value in KEEP_NAME_VALUES or EMAIL.search(value) or GUID.search(value):
            return self.text(value)
        if "." in value and " " not in value and "@" not in value:  # a bare domain
            return self.domain(value)
        return f"name-{self._h('name', value, 8)}"

    def value(self, data: Any, key: str | None = None) -> Any:
        if isinstance(data, dict):
            return {self.text(k) if EMAIL.search(k) else k: self.value(v, k) for k, v in data.items()}
        if isinstance(data, list):
            return [self.value(v, key) for v in data]
        if isinstance(data, str):
            return self.name(data) if key in NAME_KEYS else self.text(data)
        return data
