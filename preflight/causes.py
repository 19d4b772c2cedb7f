"""The cause catalogue: loaded from data/causes.toml, the one vocabulary checks, probe and explain share."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

REMEDIATION_KEYS = ("microsoft", "google", "generic")


@dataclass(frozen=True)
class Pattern:
    regex: re.Pattern[str]
    confidence: float
    provider: str | None = None


@dataclass(frozen=True)
class Cause:
    id: str
    title: str
    explanation: str
    layer: str
    remediation: dict[str, str]
    docs: list[str] = field(default_factory=list)
    patterns: list[Pattern] = field(default_factory=list)

    def fix(self, provider: str | None = None, subject: str | None = None) -> str:
        """Remediation for a provider (falling back to the generic text), specialised to the subject."""
        text = (
            self.remediation.get(provider or "")
            or self.remediation.get("generic")
            or next(iter(self.remediation.values()))
        )
        return text.replace("{subject}", subject or "<mailbox>")


class Catalogue:
    def __init__(self, causes: list[Cause]) -> None:
        self.causes = causes
        self._by_id = {c.id: c for c in causes}

    def get(self, cause_id: str) -> Cause:
        return self._by_id[cause_id]

    def __contains__(self, cause_id: object) -> bool:
        return cause_id in self._by_id


def _parse(data: dict[str, object], where: str) -> Catalogue:
    causes: list[Cause] = []
    raw = data.get("cause")
    if not isinstance(raw, list):
        raise ValueError(f"{where}: no [[cause]] tables")
    for entry in raw:
        patterns = [
            Pattern(re.compile(p["regex"], re.IGNORECASE), float(p["confidence"]), p.get("provider"))
            for p in entry.get("pattern", [])
        ]
        causes.append(
            Cause(
                id=entry["id"],
                title=entry["title"],
                explanation=entry["explanation"],
                layer=entry["layer"],
                remediation=dict(entry["remediation"]),
                docs=list(entry.get("docs", [])),
                patterns=patterns,
            )
        )
    return Catalogue(causes)


def load_catalogue(path: Path | None = None) -> Catalogue:
    if path is None:
        text = resources.files("preflight").joinpath("data/causes.toml").read_text(encoding="utf-8")
        return _parse(tomllib.loads(text), "causes.toml")
    return _parse(tomllib.loads(path.read_text(encoding="utf-8")), str(path))
