"""Mask credentials in text a person pasted or a server echoed, before it is shown or stored anywhere.

Two layers: `mask_secrets` masks what looks like a credential (JWTs, bearer tokens, `access_token=`
fields, SASL payloads, Entra's "Invalid client secret provided: '...'" text), for secrets the run does
not know; `preflight.runsecrets.RunSecrets` masks the exact secrets the run does know, in every encoding,
and applies these patterns after them.

Every pattern here runs in linear time on hostile input (64 KiB of spaces, `eyJ-eyJ-…`, `334` then a
line of 60,000 spaces): a match can start only at a literal keyword or at the start of a token run, no
two adjacent quantifiers can trade characters, and the SASL-response lines are split, not matched.
"""

from __future__ import annotations

import re

MASK = "********"
_TOKEN_CHARS = r"A-Za-z0-9_-"
_PATTERNS = (
    # SASL initial responses carry the password or token, base64-encoded.
    re.compile(r"(\bAUTH\s++(?:PLAIN|LOGIN|XOAUTH2|OAUTHBEARER)\s++)[A-Za-z0-9+/=]{8,}+", re.IGNORECASE),
    re.compile(r"(\b(?:auth=)?Bearer\s++)[A-Za-z0-9._~+/=-]{8,}+", re.IGNORECASE),
    re.compile(r"(\bBasic\s++)[A-Za-z0-9+/]{12,}+=*+"),  # an Authorization: Basic header
    # A JWT anywhere; it may start only where a token run starts, so a long run is scanned once.
    re.compile(rf"()(?<![{_TOKEN_CHARS}])eyJ[{_TOKEN_CHARS}]{{5,}}+\.eyJ[{_TOKEN_CHARS}]{{5,}}+\.[{_TOKEN_CHARS}]*+"),
    re.compile(r"()(?<![A-Za-z0-9._-])ya29\.[A-Za-z0-9._-]{10,}+"),  # Google access token
    re.compile(r"()(?<![\w/])1//[A-Za-z0-9._-]{20,}+"),  # Google refresh token
    re.compile(
        r"""((?:client_secret|password|passwd|pass|pwd|secret|access_token|refresh_token|id_token|assertion|"""
        r"""client_assertion|passphrase)"""
        r"""["']?+[ \t]*+[:=][ \t]*+["']?+)[^\s"'&,}]{4,}+""",
        re.IGNORECASE,
    ),
    # Entra ID (AADSTS7000215) may quote the wrong secret it was sent.
    re.compile(r"""(Invalid client secret provided[^'"\n]{0,80}+['"])[^'"\n]++""", re.IGNORECASE),
)

# After a "334" challenge the client's next line is a SASL response: a user name or password in base64
# (AUTH LOGIN), or a token. Transcripts mark it in many ways (" -> ", "C: ", "CLIENT -> SERVER: ").
_CHALLENGE = re.compile(r"\b334\b")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{4,}+={0,2}+")
_WORD = re.compile(r"[\w.]++")
_PREFIXES = ((), ("->",), ("~>",), (">",), ("C:",), ("CLIENT", "->", "SERVER:"))


def mask_secrets(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return _mask_sasl_responses(text)


def _mask_sasl_responses(text: str) -> str:
    if "334" not in text:
        return text
    lines = text.split("\n")
    for i in range(1, len(lines)):
        if _CHALLENGE.search(lines[i - 1]):
            lines[i] = _mask_client_line(lines[i])
    return "\n".join(lines)


def _mask_client_line(line: str) -> str:
    """`[name] [arrow] BASE64` -> the base64 masked; anything else unchanged. Split, not matched: linear."""
    words = line.split()
    if not words or not _BASE64.fullmatch(words[-1]):
        return line
    prefix = tuple(words[:-1])
    if prefix not in _PREFIXES and not (prefix and _WORD.fullmatch(prefix[0]) and prefix[1:] in _PREFIXES):
        return line
    end = line.rstrip()
    return end[: len(end) - len(words[-1])] + MASK + line[len(end):]
