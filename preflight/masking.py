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
# Each pattern with the literals one of which any match of it contains (lower case where the pattern ignores
# case): a text holding none of them is not scanned. A pattern scan costs microseconds per character (the
# keyword alternation and the look-behinds have no literal prefix for the regex engine to skip to), a
# substring test a fraction of that; most texts are ordinary error messages holding no keyword at all.
_SCANS: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = (
    # SASL initial responses carry the password or token, base64-encoded.
    (("plain", "login", "xoauth2", "oauthbearer"),
     re.compile(r"(\bAUTH\s++(?:PLAIN|LOGIN|XOAUTH2|OAUTHBEARER)\s++)[A-Za-z0-9+/=]{8,}+", re.IGNORECASE)),
    (("bearer",), re.compile(r"(\b(?:auth=)?Bearer\s++)[A-Za-z0-9._~+/=-]{8,}+", re.IGNORECASE)),
    (("Basic",), re.compile(r"(\bBasic\s++)[A-Za-z0-9+/]{12,}+=*+")),  # an Authorization: Basic header
    # A JWT anywhere; it may start only where a token run starts, so a long run is scanned once.
    (("eyJ",), re.compile(
        rf"()(?<![{_TOKEN_CHARS}])eyJ[{_TOKEN_CHARS}]{{5,}}+\.eyJ[{_TOKEN_CHARS}]{{5,}}+\.[{_TOKEN_CHARS}]*+")),
    (("ya29.",), re.compile(r"()(?<![A-Za-z0-9._-])ya29\.[A-Za-z0-9._-]{10,}+")),  # Google access token
    (("1//",), re.compile(r"()(?<![\w/])1//[A-Za-z0-9._-]{20,}+")),  # Google refresh token
    # Every keyword below contains one of these: client_secret, passwd, access_token, client_assertion...
    (("pass", "pwd", "secret", "token", "assertion"), re.compile(
        r"""((?:client_secret|password|passwd|pass|pwd|secret|access_token|refresh_token|id_token|assertion|"""
        r"""client_assertion|passphrase)"""
        r"""["']?+[ \t]*+[:=][ \t]*+["']?+)[^\s"'&,}]{4,}+""",
        re.IGNORECASE,
    )),
    # Entra ID (AADSTS7000215) may quote the wrong secret it was sent.
    (("invalid client secret provided",),
     re.compile(r"""(Invalid client secret provided[^'"\n]{0,80}+['"])[^'"\n]++""", re.IGNORECASE)),
)
# Whether each ignores case, asked once: a RegexFlag operation costs more than the substring tests.
_PATTERNS = tuple((needles, bool(pattern.flags & re.IGNORECASE), pattern) for needles, pattern in _SCANS)

# After a "334" challenge the client's next line is a SASL response: a user name or password in base64
# (AUTH LOGIN), or a token. Transcripts mark it in many ways (" -> ", "C: ", "CLIENT -> SERVER: ").
_CHALLENGE = re.compile(r"\b334\b")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{4,}+={0,2}+")
_WORD = re.compile(r"[\w.]++")
_PREFIXES = ((), ("->",), ("~>",), (">",), ("C:",), ("CLIENT", "->", "SERVER:"))


def mask_secrets(text: str) -> str:
    # Skipping a pattern whose literals are all absent changes nothing: it could not match the text, nor any
    # text an earlier pattern leaves (a replacement only takes characters out and puts in MASK's asterisks,
    # which no literal holds). Case-blind literals are looked for in the lower-cased text only when it is
    # ASCII: the regex engine folds some other letters onto ASCII ones (the long s, the Kelvin sign).
    folded = text.lower() if text.isascii() else None
    for needles, blind, pattern in _PATTERNS:
        within = folded if blind else text
        if within is not None:
            for needle in needles:
                if needle in within:
                    break
            else:
                continue
        text = pattern.sub(_masked, text)
    return _mask_sasl_responses(text)


def _masked(match: re.Match[str]) -> str:
    return match.group(1) + MASK


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
