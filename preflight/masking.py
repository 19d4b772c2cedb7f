"""Mask credentials in text a person pasted or a server echoed, before it is shown or stored anywhere."""

from __future__ import annotations

import re

MASK = "********"
_PATTERNS = (
    # SASL initial responses and continuation lines carry the password or token, base64-encoded.
    re.compile(r"(\bAUTH\s+(?:PLAIN|LOGIN|XOAUTH2|OAUTHBEARER)\s+)[A-Za-z0-9+/=]{8,}", re.IGNORECASE),
    re.compile(r"(\b(?:auth=)?Bearer\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE),
    re.compile(r"()\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),  # a JWT anywhere
    re.compile(r"()\bya29\.[A-Za-z0-9._-]{10,}"),  # Google access token
    re.compile(r"()\b1//[A-Za-z0-9._-]{20,}"),  # Google refresh token
    re.compile(
        r"""((?:client_secret|password|passwd|access_token|refresh_token|id_token|assertion|client_assertion)"""
        r"""["']?\s*[:=]\s*["']?)[^\s"'&,}]{4,}""",
        re.IGNORECASE,
    ),
)


def mask_secrets(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text
