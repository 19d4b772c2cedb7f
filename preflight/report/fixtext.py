"""A fix as prose and commands: the catalogue writes a remediation as one sentence with PowerShell or GAM inside
it; the human reports show each command as a block of its own that can be copied whole."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Where a command starts: a PowerShell cmdlet followed by a parameter, a pipe or the end; a GAM or nslookup
# command; or a span the catalogue put in backticks.
_START = re.compile(
    r"(?<![\w<-])(?:"
    r"(?:Get|Set|New|Add|Remove|Update|Enable|Disable|Connect|Grant|Revoke|Test|Invoke)-[A-Z]\w+"
    r"(?=\s+-|\s*\||\s*$|[.;,]\s|[.;,]?$)"
    r"|gam\s+(?=[a-z<{])|nslookup\s+(?=\S)"
    r"|preflight\s+(?=(?:check|probe|explain|audit|login|logout|evaluate|diff|redact|demo|auth-check)\b)"
    r")"
)
_OPEN, _CLOSE = "([{<", ")]}>"
_QUOTE_AFTER = " =(@{[,"
_ARGUMENT = ("[", "$", "@", "'", '"')


@dataclass(frozen=True)
class Segment:
    command: bool
    text: str


def _end(text: str, start: int) -> int:
    """Where the command that starts at `start` ends (exclusive): at a sentence's end, a list separator or
    a bracket it did not open, outside quotes and brackets."""
    depth, quote, i = 0, "", start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'" and (i == start or text[i - 1] in _QUOTE_AFTER):
            quote = ch
        elif ch in _OPEN:
            # " (" opens a remark in the prose, unless an argument follows: ([System.DateTime]::UtcNow)
            if ch == "(" and depth == 0 and text[i - 1:i] == " " and text[i + 1:i + 2] not in _ARGUMENT:
                return i - 1
            depth += 1
        elif ch in _CLOSE:
            if depth == 0:
                return i
            depth -= 1
        elif depth == 0 and ch in ".;," and (i + 1 == len(text) or text[i + 1] in " \n"):
            return i
        i += 1
    return len(text)


def segments(text: str) -> list[Segment]:
    """The fix in reading order: prose, then a command, then prose... Commands chained with "; " form one
    block, one command a line. Nothing is lost: the prose keeps every word that is not in a command."""
    return list(_segments(text))


@lru_cache(maxsize=1024)  # read char by char: each text once per process (an audit's tenants share their fixes)
def _segments(text: str) -> tuple[Segment, ...]:
    parts: list[Segment] = []
    pos = 0
    while pos < len(text):
        tick = text.find("`", pos)
        found = _START.search(text, pos)
        if tick != -1 and (found is None or tick < found.start()):
            close = text.find("`", tick + 1)
            if close == -1:
                break
            _add(parts, False, text[pos:tick])
            _add(parts, True, text[tick + 1:close])
            pos = close + 1
            continue
        if found is None:
            break
        _add(parts, False, text[pos:found.start()])
        lines = []
        at = found.start()
        while True:
            end = _end(text, at)
            lines.append(text[at:end].strip())
            after = _START.match(text, end + 2) if text.startswith("; ", end) else None
            if after is None:
                break
            at = after.start()
        _add(parts, True, "\n".join(lines))
        pos = end
    _add(parts, False, text[pos:])
    return tuple(parts)


def _add(parts: list[Segment], command: bool, text: str) -> None:
    if command:
        if parts and parts[-1].command:  # commands only a comma apart are one block
            parts[-1] = Segment(True, f"{parts[-1].text}\n{text}")
        else:
            parts.append(Segment(True, text))
        return
    # What follows a command starts with the separator that ended it; a command taken out of a remark in
    # brackets leaves the brackets unbalanced in the prose around it, so both halves are dropped.
    text = re.sub(r"^[.;,]?\s*", "", text)
    if text.startswith(")") and parts and parts[-1].command and len(parts) > 1:
        text = re.sub(r"^\)[.;,]?\s*", "", text)
        before = parts[-2].text
        cut = _unclosed(before)
        if cut is not None:
            parts[-2] = Segment(False, (before[:cut].rstrip() + " " + before[cut + 1:].lstrip()).strip())
    text = text.strip()
    if text:
        parts.append(Segment(False, text))


def _unclosed(text: str) -> int | None:
    """The index of the last "(" that no ")" closes."""
    stack: list[int] = []
    for i, ch in enumerate(text):
        if ch == "(":
            stack.append(i)
        elif ch == ")" and stack:
            stack.pop()
    return stack[-1] if stack else None


def language(command: str) -> str:
    """The fenced block's language in Markdown: PowerShell for cmdlets, a shell for the rest."""
    return "powershell" if re.match(r"[A-Z][a-z]+-[A-Z]", command) else "sh"
