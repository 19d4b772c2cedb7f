"""The cause catalogue: loaded from data/causes.toml, the one vocabulary checks, probe and explain share."""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GENERIC = "generic"  # the remediation key for any provider, or none


@dataclass(frozen=True)
class Pattern:
    source: str
    confidence: float
    provider: str | None = None

    @functools.cached_property
    def regex(self) -> re.Pattern[str]:
        """The pattern as written, case-insensitive. Compiled on first use: explain matches a lower-cased
        form of its own (preflight.explain._folded), and compiling every pattern twice cost `explain` time."""
        return re.compile(self.source, re.IGNORECASE)


@dataclass(frozen=True)
class Variant:
    """A remediation for findings whose evidence says more: used when every `when` key holds one of its
    values and every placeholder the text uses can be filled. Keeps a fix from contradicting its finding."""

    provider: str | None
    when: dict[str, list[object]]
    remediation: str

    def applies(self, provider: str | None, evidence: Mapping[str, Any], fill: Mapping[str, str]) -> bool:
        if self.provider not in (None, provider):
            return False
        if any(evidence.get(key, _MISSING) not in values for key, values in self.when.items()):
            return False
        return all(name in fill for name in self.placeholders)

    @functools.cached_property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(PLACEHOLDER.findall(self.remediation))


_MISSING = object()
PLACEHOLDER = re.compile(r"\{(\w+)\}")
# {account}: the account that signs in when it is not the subject (an alias's owner), as the evidence names it.
ACCOUNT_KEYS = ("user.primaryEmail", "signs in as", "user.userPrincipalName")


@dataclass(frozen=True)
class Cause:
    id: str
    title: str
    explanation: str
    layer: str
    remediation: dict[str, str]
    docs: list[str] = field(default_factory=list)
    patterns: list[Pattern] = field(default_factory=list)
    variants: list[Variant] = field(default_factory=list)

    def fix(self, provider: str | None = None, subject: str | None = None,
            evidence: Mapping[str, Any] | None = None) -> str:
        """Remediation for a provider (falling back to the generic text), specialised to the subject and, where
        a variant matches, to what the finding's evidence says."""
        evidence = evidence or {}
        fill = {"subject": subject or "<mailbox>"}
        account = next((evidence[k] for k in ACCOUNT_KEYS if isinstance(evidence.get(k), str) and evidence[k]), None)
        if account and str(account).lower() != (subject or "").lower():  # an alias: the owner signs in
            fill["account"] = str(account).lower()
        text = next((v.remediation for v in self.variants if v.applies(provider, evidence, fill)), None) or (
            self.remediation.get(provider or "")
            or self.remediation.get(GENERIC)
            or next(iter(self.remediation.values()))
        )
        if "{" not in text:  # most remediations name no placeholder
            return text
        return PLACEHOLDER.sub(lambda m: fill.get(m.group(1), m.group(0)), text)


@dataclass(frozen=True)
class ProviderText:
    """How explain recognises a provider's error texts (causes.toml [[provider]]): data, not code, so the
    core names no provider."""

    name: str
    markers: re.Pattern[str] | None = None
    noise: tuple[tuple[re.Pattern[str], str], ...] = ()
    challenge_scope: str | None = None
    challenge_label: str | None = None
    reply_trailer: str | None = None


class Catalogue:
    def __init__(self, causes: list[Cause], providers: list[ProviderText] | None = None) -> None:
        self.causes = causes
        self.providers = providers or []
        self._by_id = {c.id: c for c in causes}

    @property
    def remediation_keys(self) -> list[str]:
        """The keys a remediation may have, in the order a cause shows them: each provider's, then generic."""
        return [*(p.name for p in self.providers), GENERIC]

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
            Pattern(str(p["regex"]), float(p["confidence"]), p.get("provider"))
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
                variants=[
                    Variant(v.get("provider"), {k: w if isinstance(w, list) else [w] for k, w in v["when"].items()},
                            v["remediation"])
                    for v in entry.get("variant", [])
                ],
            )
        )
    providers = [
        ProviderText(
            entry["name"],
            re.compile(entry["markers"], re.IGNORECASE) if entry.get("markers") else None,
            tuple((re.compile(n["regex"], re.IGNORECASE), str(n["replace"])) for n in entry.get("noise", [])),
            entry.get("challenge_scope"),
            entry.get("challenge_label"),
            entry.get("reply_trailer"),
        )
        for entry in _tables(data.get("provider", []), where, "provider")
    ]
    return Catalogue(causes, providers)


def _tables(raw: object, where: str, name: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise ValueError(f"{where}: [[{name}]] must be tables")
    return raw


def load_catalogue(path: Path | None = None) -> Catalogue:
    if path is None:
        return _bundled()
    return _read(path, str(path))


@functools.cache
def _bundled() -> Catalogue:
    """The shipped catalogue, parsed once per process: every tenant's evaluation and report reads it, and
    parsing the TOML cost more than evaluating a tenant. Callers only read it. Read beside this module, not
    through preflight.datafiles (importlib.resources, a cached parse and a copy per caller): importing and
    resolving those cost `explain TEXT` more than parsing the file."""
    return _read(Path(__file__).with_name("data") / "causes.toml", "causes.toml")


def _read(source: Path, where: str) -> Catalogue:
    return _parse(tomllib.loads(source.read_text(encoding="utf-8")), where)
