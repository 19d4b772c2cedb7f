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
        r"""((?:client_secret|password|passwd|pass|pwd|secret|access_token|refresh_token|id_token|assertion|"""
        r"""client_assertion)"""
        r"""["']?\s*[:=]\s*["']?)[^\s"'&,}]{4,}""",
        re.IGNORECASE,
    ),
)


# After a "334" challenge the client's next line is a SASL response: a user name or password in base64
# (AUTH LOGIN), or a token. Transcripts mark it in many ways (" -> ", "C: ", "CLIENT -> SERVER: ").
_CHALLENGE = re.compile(r"\b334\b[^\n]*\n")
_CLIENT_LINE = re.compile(r"^(\s*(?:[\w.]+\s*)?(?:->|~>|>|C:|CLIENT -> SERVER:)?\s*)([A-Za-z0-9+/]{4,}={0,2})(\s*)$")


def mask_secrets(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return _mask_sasl_responses(text)


def _mask_sasl_responses(text: str) -> str:
    lines = text.split("\n")
    for i in range(1, len(lines)):
        if _CHALLENGE.search(lines[i - 1] + "\n"):
            m = _CLIENT_LINE.match(lines[i])
            if m:
                lines[i] = m.group(1) + MASK + m.group(3)
    return "\n".join(lines)
