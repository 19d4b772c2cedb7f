"""explain: map a pasted SMTP / OAuth error text to ranked causes from the catalogue.

Pure: no I/O. The text is unwrapped from the library that printed it (smtplib tuples, nodemailer,
PHPMailer, Symfony, JavaMail, .NET, MailKit), multi-line replies are folded, and noise (server host
brackets, gsmtp session ids, URLs) is removed from the text the patterns see, not from what is shown.
Every catalogue pattern is tried; the best confidence per cause counts, ties go to the evidence that
comes first in the text (the first error of a session is the one that caused the rest).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from preflight.causes import Catalogue, ProviderText
from preflight.masking import mask_secrets

MAX_TEXT = 64 * 1024
MIN_CONFIDENCE = 0.3
PROVIDER_MISMATCH = 0.6  # a pattern written for one provider, seen in the other's text
CHALLENGE_CONFIDENCE = 0.85

_ESCAPES = (("\\r\\n", "\n"), ("\\n", "\n"), ("\\r", "\n"), ("\\t", " "), ('\\"', '"'), ("\\'", "'"))
_ENTITIES = (("&amp;", "&"), ("&#39;", "'"), ("&quot;", '"'), ("&lt;", "<"), ("&gt;", ">"), ("&#x27;", "'"))
_CODE = r"[2-5][0-5]\d"
_ENH = r"[245]\.\d{1,3}\.\d{1,3}"
# A reply: code, then "-"/" " (wire), ": " (MailKit), or ", b'" (smtplib tuple); then maybe an enhanced code.
_REPLY = re.compile(rf"(?<![\w.:/\\-])(?P<code>{_CODE})(?P<sep>[ -]|: |, ?b?['\"])[ \t]*(?:(?P<enh>{_ENH})(?![\w.]))?")
_NOT_SMTP = re.compile(r"(code|http|status|`)[^\n]{0,10}$", re.IGNORECASE)
_ENH_ONLY = re.compile(rf"(?<![\w.])(?P<enh>{_ENH})(?![\w.])[ \t]+(?=[A-Za-z])")
# Where a reply's text ends: a closing bracket, or a quote that closes the wrapper's string. A provider's
# session trailer (causes.toml [[provider]] reply_trailer: "<id> - <trailer>") ends it too, and is kept.
_TEXT_END = r"\]|['\"`](?=\s*(?:[),.;:}\]]|$))"
_URL = re.compile(r"<?https?://[^\s<>\"'\]]+>?")
_URL_HINT = re.compile(r"[?&]p=(\w+)")
_TUPLE = re.compile(rf"\(?\b({_CODE}),\s*b?['\"]")
_COLON = re.compile(rf"\b({_CODE}):\s+(?={_ENH})")
_PREFIX = re.compile(rf"(?<![\w.])({_CODE})[ -]({_ENH})\s+")
_CHALLENGE = re.compile(r"(?<!\d)334[ -]+([A-Za-z0-9+/]{16,}={0,2})")


@dataclass(frozen=True)
class Reply:
    code: int | None
    enhanced: str | None
    text: str


@dataclass(frozen=True)
class Match:
    cause: str
    confidence: float
    title: str
    remediation: str


@dataclass(frozen=True)
class Explanation:
    input: str
    reply: Reply | None
    matches: list[Match]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        reply = None
        if self.reply is not None:
            reply = {"code": self.reply.code, "enhanced": self.reply.enhanced, "text": self.reply.text}
        return {
            "input": self.input,
            "reply": reply,
            "matches": [
                {"cause": m.cause, "confidence": m.confidence, "title": m.title, "remediation": m.remediation}
                for m in self.matches
            ],
            "notes": list(self.notes),
        }


def _unwrap(text: str) -> str:
    """Undo the escaping libraries and log formats add, so a reply reads as it came off the wire."""
    text = text[:MAX_TEXT].replace("\r\n", "\n").replace("\r", "\n").replace("↵", "\n")
    for old, new in _ESCAPES:
        text = text.replace(old, new)
    for old, new in _ENTITIES:
        text = text.replace(old, new)
    return text.replace("\\\\", "\\").replace("└──", " ").replace("\u00a0", " ")


@cache
def _text_end(trailers: tuple[str, ...]) -> re.Pattern[str]:
    if not trailers:
        return re.compile(_TEXT_END)
    return re.compile(rf"(?P<trailer>\s-\s+(?:{'|'.join(trailers)})\b)|{_TEXT_END}")


def _reply_text(text: str, m: re.Match[str], code: str | None, enh: str | None, open_: bool,
                trailers: tuple[str, ...]) -> str:
    """The reply's text: the rest of its line plus continuation lines, with repeated prefixes dropped.

    A line continues the reply when it starts with the same code after a `NNN-` line (the wire's
    multi-line form), or with the same enhanced code and no reply code (smtplib, Go, Java wrappers).
    """
    line_end = text.find("\n", m.end())
    parts = [text[m.end() : line_end if line_end >= 0 else len(text)]]
    code_prefix = rf"{code}(?P<sep>[ -])(?:{re.escape(enh)}\s+)?" if enh else rf"{code}(?P<sep>[ -])"
    same_code = re.compile(rf"^.{{0,40}}?(?<![\w.]){code_prefix}") if code else None
    same_enh = re.compile(rf"^\s*{re.escape(enh)}\s+") if enh else None
    for line in text[line_end + 1 :].split("\n")[:40] if line_end >= 0 else []:
        cont = same_code.match(line) if same_code else None
        if cont is not None:
            if not open_:
                break  # the reply ended on a `NNN ` line: this is the next reply
            open_ = cont.group("sep") == "-"
        elif same_enh is None or (cont := same_enh.match(line)) is None:
            break
        parts.append(line[cont.end() :])
    joined = " ".join(p.strip() for p in parts if p.strip())
    if enh is not None:  # prefixes repeated inline once the lines were joined
        repeated = rf"(?:{code}[ -])?{re.escape(enh)}" if code else re.escape(enh)
        joined = re.sub(rf"(?:(?<=\s)|^){repeated}\s+", "", joined)
    end = _text_end(trailers).search(joined)
    if end is not None:
        keep = end.groupdict().get("trailer") is not None or (end.group() == "]" and "[" in joined[: end.start()])
        joined = joined[: end.end() if keep else end.start()]
    return re.sub(r"\s+", " ", joined).strip(" .,;'\"`")


@cache
def _default_trailers() -> tuple[str, ...]:
    from preflight.causes import load_catalogue

    return reply_trailers(load_catalogue())


def reply_trailers(catalogue: Catalogue) -> tuple[str, ...]:
    return tuple(re.escape(p.reply_trailer) for p in catalogue.providers if p.reply_trailer)


def parse_reply(text: str, trailers: tuple[str, ...] | None = None) -> Reply | None:
    """The SMTP reply in a pasted error: the first 4xx/5xx reply with an enhanced status code, else the
    first of the next best kind (reply code only, enhanced code only, 2xx/3xx).

    Multi-line replies (`535-5.7.8 …` / `535 5.7.8 …`) are folded into one text; library wrappers
    around the reply are dropped. None when the text holds no SMTP reply at all. `trailers`: the providers'
    reply trailers as regexes (reply_trailers(catalogue)); None: the bundled catalogue's.
    """
    body = _unwrap(text)
    best: tuple[int, re.Match[str]] | None = None
    for m in _REPLY.finditer(body):
        if m.group("enh") is None and (
            m.group("sep") == ": " or _NOT_SMTP.search(body, max(0, m.start() - 16), m.start())
        ):
            continue  # `HTTP error: 400`, `response code 250`, `Error 400: …`: not an SMTP reply
        rank = (2 if m.group("enh") else 0) + (1 if m.group("code")[0] in "45" else 0)
        if best is None or rank > best[0]:
            best = (rank, m)
    for m in _ENH_ONLY.finditer(body):
        rank = 2 if m.group("enh")[0] in "45" else 1
        if best is None or rank > best[0]:
            best = (rank, m)
    if best is None:
        return None
    m = best[1]
    code = m.groupdict().get("code")
    sep = m.groupdict().get("sep") or ""
    trailers = _default_trailers() if trailers is None else trailers
    reply_text = _reply_text(body[: m.end() + 8192], m, code, m.group("enh"), sep == "-" or "," in sep, trailers)
    return Reply(int(code) if code else None, m.group("enh"), reply_text)


def _match_text(body: str, providers: list[ProviderText]) -> str:
    """One line, noise removed: what the catalogue patterns are matched against."""
    text = _URL.sub(lambda u: " " + " ".join(f"p={h}" for h in _URL_HINT.findall(u.group())) + " ", body)
    for provider in providers:  # server names and session ids each provider adds to its replies
        for noise, replace in provider.noise:
            text = noise.sub(replace, text)
    text = _TUPLE.sub(r"\1 ", text)
    text = _COLON.sub(r"\1 ", text)
    text = re.sub(r"\s+", " ", text)
    seen: set[str] = set()

    def once(p: re.Match[str]) -> str:
        key = p.group(1) + p.group(2)
        if key in seen:
            return ""
        seen.add(key)
        return p.group()

    return _PREFIX.sub(once, text)


@cache
def _folded(source: str) -> re.Pattern[str]:
    """A catalogue pattern for lower-cased text, matched case-sensitively: the same matches as IGNORECASE on
    the original, at less than half the cost on long texts. Escapes (\\S, \\B, \\D...) keep their case."""
    out: list[str] = []
    i = 0
    while i < len(source):
        if source[i] == "\\":
            out.append(source[i : i + 2])
            i += 2
        else:
            out.append(source[i].lower())
            i += 1
    return re.compile("".join(out))


# needles(): the pattern source in tokens, each one kind of thing a regex holds.
_TOKENS = re.compile(
    r"(?P<cut>\\[A-Za-z0-9]|\[\^?\]?(?:\\.|[^\]\\])*\]|[.^$])"  # \b \d \1, a class, . ^ $: no character of its own
    r"|(?P<char>\\.)"  # \. \- \/: the character itself
    r"|(?P<repeat>(?:[*+?]|\{\d*(?:,\d*)?\})[?+]?)"
    r"|(?P<open>\()|(?P<close>\))|(?P<bar>\|)"
    r"|(?P<text>[^\\\[\]()|*+?{}.^$]+)"
    r"|(?P<other>.)",  # a brace that is no repeat, a lone ], a flag: not worth understanding
    re.DOTALL,
)
# After "(": what kind of group it is. Anything else after "(?" (flags, conditionals, (?P=name)) is not understood.
_GROUP = re.compile(r"\?(?::|=|<=|!|<!|P<\w+>)")
_NONE_NEEDED = re.compile(r"[?*]|\{0*[,}]")  # a repeat that allows no occurrence at all

# A pattern's needles: one entry per top-level alternative, each a tuple of clauses that a match of that
# alternative satisfies all of, each clause a tuple of texts one of which the match holds.
Needles = tuple[tuple[tuple[str, ...], ...], ...]


class _Unknown(Exception):
    """The source holds what needles() does not understand: the pattern is always tried."""


@cache
def needles(source: str) -> Needles | None:
    """What every match of the folded pattern holds: where a text lacks it the pattern cannot match and is not
    compiled (compiling the patterns was most of what `explain TEXT` cost). None when the source does not tell
    (then the pattern is always tried).

    A run of plain characters outside classes, a repeated character left out, is in every match of the
    alternative that holds it; so is one of the alternatives of a group that is not optional, nor a negative
    look-around, each alternative of it giving its best clause.
    """
    try:
        alternatives, _ = _alternatives(source, 0, 0)
    except _Unknown:
        return None
    if not all(alternatives):
        return None
    return tuple(tuple(clauses) for clauses in alternatives)


def _alternatives(source: str, pos: int, depth: int) -> tuple[list[list[tuple[str, ...]]], int]:
    """The clauses of each alternative from `pos` to the `)` closing this depth (or the end), and where it ended."""
    found: list[list[tuple[str, ...]]] = []
    clauses: list[tuple[str, ...]] = []
    run = ""
    while pos < len(source):
        m = _TOKENS.match(source, pos)
        if m is None or m.lastgroup == "other":
            raise _Unknown
        kind, token, pos = m.lastgroup, m.group(), m.end()
        if kind == "text" or kind == "char":
            text = token[-1] if kind == "char" else token
            # One character at a time, as _folded lowers them (a whole word's lower() gives a final sigma).
            run += text.lower() if text.isascii() else "".join(c.lower() for c in text)
            continue
        if kind == "repeat":
            run = run[:-1]  # the repeat applies to the run's last character: it may be missing or repeated
        if run:
            clauses.append((run,))
        run = ""
        if kind == "open":
            kind_of = _GROUP.match(source, pos)
            if kind_of is None and source.startswith("?", pos):
                raise _Unknown
            prefix = kind_of.group() if kind_of is not None else ""
            inner, pos = _alternatives(source, pos + len(prefix), depth + 1)
            after = _TOKENS.match(source, pos)
            optional = False
            if after is not None and after.lastgroup == "repeat":
                optional, pos = _NONE_NEEDED.match(after.group()) is not None, after.end()
            clause = _either(inner)
            if clause and not optional and prefix not in ("?!", "?<!"):
                clauses.append(clause)
        elif kind == "close":
            if not depth:
                raise _Unknown
            found.append(clauses)
            return found, pos
        elif kind == "bar":
            found.append(clauses)
            clauses = []
    if depth:
        raise _Unknown
    if run:
        clauses.append((run,))
    found.append(clauses)
    return found, pos


def _either(alternatives: list[list[tuple[str, ...]]]) -> tuple[str, ...]:
    """A clause a match of a group satisfies: the best clause of each of its alternatives, any of them."""
    if not all(alternatives):
        return ()
    best = (max(clauses, key=lambda c: min(len(t) for t in c)) for clauses in alternatives)
    return tuple(dict.fromkeys(t for clause in best for t in clause))


def may_match(found: Needles | None, text: str) -> bool:
    """Whether a text (folded) holds the needles of one alternative: if not, the pattern cannot match it."""
    if found is None:
        return True
    return any(all(any(t in text for t in clause) for clause in clauses) for clauses in found)


def _provider(text: str, providers: list[ProviderText]) -> str | None:
    """The provider whose markers the text names most often; a tie (none at all included) is nobody's."""
    counts = sorted(((len(p.markers.findall(text)), p.name) for p in providers if p.markers), reverse=True)
    if not counts or counts[0][0] == 0 or (len(counts) > 1 and counts[1][0] == counts[0][0]):
        return None
    return counts[0][1]


def decode_challenge(encoded: str) -> dict[str, Any] | None:
    """The JSON of an XOAUTH2 / OAUTHBEARER error challenge (`334 <base64>`), or None if it is not one."""
    import json  # only a text with a challenge needs it: `explain` starts faster without

    try:
        data = json.loads(base64.b64decode(encoded.strip(), validate=True).decode("utf-8"))
    except (binascii.Error, ValueError, RecursionError):  # RecursionError: `[[[[…` nested thousands deep
        return None
    return data if isinstance(data, dict) else None


def _challenge(body: str) -> tuple[str, dict[str, Any]] | None:
    """A Gmail / RFC 7628 XOAUTH2 error challenge: `334 <base64 JSON with status, schemes, scope>`."""
    for m in _CHALLENGE.finditer(body):
        data = decode_challenge(m.group(1))
        if data is not None and "status" in data:
            return m.group(1), data
    return None


def explain(text: str, catalogue: Catalogue, provider: str | None = None) -> Explanation:
    """Ranked causes for an error text: best confidence first, ties to the earlier evidence in the text.

    One match per cause; an empty list when no pattern matches. `provider` picks the remediation
    variant; without it the provider is inferred from the text by the catalogue's provider markers.
    """
    notes: list[str] = []
    if len(text) > MAX_TEXT:
        notes.append(f"only the first {MAX_TEXT} characters were read")
    body = _unwrap(text)
    subject = _match_text(body, catalogue.providers)
    folded = subject.lower()
    challenge = _challenge(body)
    scope = str(challenge[1].get("scope", "")) if challenge is not None else ""
    # Whose challenge it is, by a word of its scope (https://mail.google.com/).
    by_scope = next((p for p in catalogue.providers if p.challenge_scope and p.challenge_scope in scope), None)
    if provider is None and by_scope is not None:
        provider = by_scope.name
    provider = provider or _provider(body, catalogue.providers)
    found: dict[str, tuple[float, int]] = {}
    # Which provider's fix to show when the text itself names none: the one whose pattern matched.
    pattern_provider: dict[str, str | None] = {}

    def add(cause: str, confidence: float, pos: int, by: str | None = None) -> None:
        old = found.get(cause)
        if old is None or confidence > old[0] or (confidence == old[0] and pos < old[1]):
            found[cause] = (confidence, pos)
            pattern_provider[cause] = by

    for cause in catalogue.causes:
        for pattern in cause.patterns:
            if not may_match(needles(pattern.source), folded):
                continue  # it cannot match: not compiled
            m = _folded(pattern.source).search(folded)
            if m is None:
                continue
            confidence = pattern.confidence
            if pattern.provider and provider and pattern.provider != provider:
                confidence *= PROVIDER_MISMATCH
            add(cause.id, confidence, m.start(), pattern.provider)
    if challenge is not None and "oauth-token-invalid" in catalogue:
        encoded, data = challenge
        label = f"{by_scope.challenge_label} " if by_scope is not None and by_scope.challenge_label else ""
        import json

        notes.append(f"decoded {label}XOAUTH2 challenge: {json.dumps(data, separators=(',', ':'))}")
        # 400/401 (token expired, revoked, for another audience); 403 (scope missing): all the token.
        add("oauth-token-invalid", CHALLENGE_CONFIDENCE, max(subject.find(encoded), 0))
    ranked = sorted(
        ((c, conf, pos) for c, (conf, pos) in found.items() if conf >= MIN_CONFIDENCE),
        key=lambda item: (-item[1], item[2]),
    )
    matches = [
        Match(c, round(conf, 2), catalogue.get(c).title, catalogue.get(c).fix(provider or pattern_provider.get(c)))
        for c, conf, _ in ranked
    ]
    reply = parse_reply(text, reply_trailers(catalogue))
    if reply is not None:  # what is shown back never carries a credential the paste contained
        reply = Reply(reply.code, reply.enhanced, mask_secrets(reply.text))
    return Explanation(mask_secrets(text[:MAX_TEXT]), reply, matches, notes)
