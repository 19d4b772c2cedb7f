"""The facts the Google checks depend on, read from the provider's data files (settings, dates, directory).

Kept out of code because Google changes them: reducers and defaults of Policy API settings, enum spellings,
the password sign-in retirement dates, error texts and licence SKUs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from types import MappingProxyType
from typing import Any

from preflight.datafiles import load_toml

REDUCERS = ("Max", "Merge", "MaxMap")


@dataclass(frozen=True)
class SettingSpec:
    """How one Policy API setting type reduces to a user's effective value."""

    type: str  # without the "settings/" prefix, e.g. "gmail.service_status"
    reducer: str
    defaults: Mapping[str, Any]
    defaults_source: str
    key: str | None = None  # MaxMap: the primary-key field of array entries


@dataclass(frozen=True)
class Enum:
    """Accepted spellings of one enum field, by meaning. `meaning()` is case-insensitive."""

    field: str
    classes: Mapping[str, tuple[str, ...]]
    absent: str | None = None

    def meaning(self, value: Any) -> str | None:
        if value is None:
            return self.absent
        text = str(value).upper()
        for name, spellings in self.classes.items():
            if text in spellings:
                return name
        return None


@dataclass(frozen=True)
class Licence:
    product: str
    sku: str  # "*" = every SKU of the product
    name: str

    def matches(self, product: str, sku: str) -> bool:
        return self.product == product and self.sku in ("*", sku)


@dataclass(frozen=True)
class Facts:
    settings: Mapping[str, SettingSpec]
    enums: Mapping[str, Enum]
    gmail_scopes_groups: tuple[str, ...]
    password_retired_on: date
    password_retired_source: str
    not_found_statuses: tuple[int, ...]
    domain_not_found_patterns: tuple[str, ...]
    foreign_domain_statuses: tuple[int, ...]
    no_gmail_licences: tuple[Licence, ...]
    client_id_suffix: str = ".apps.googleusercontent.com"
    audit_log: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def setting(self, type_: str) -> SettingSpec:
        return self.settings[type_]

    def enum(self, field: str) -> Enum:
        return self.enums[field]

    def same_client(self, a: str, b: str) -> bool:
        """Two spellings of one OAuth client id: with or without the .apps.googleusercontent.com suffix."""
        return a.strip().lower().removesuffix(self.client_id_suffix) == b.strip().lower().removesuffix(
            self.client_id_suffix)


def _read(name: str) -> dict[str, Any]:
    return load_toml(__name__.rsplit(".", 2)[0], f"data/{name}.toml")


def parse(settings: Mapping[str, Any], dates: Mapping[str, Any], directory: Mapping[str, Any]) -> Facts:
    specs: dict[str, SettingSpec] = {}
    for type_, raw in settings["setting"].items():
        if raw["reducer"] not in REDUCERS:
            raise ValueError(f"settings.toml: {type_}: unknown reducer {raw['reducer']!r}")
        if raw["reducer"] == "MaxMap" and not raw.get("key"):
            raise ValueError(f"settings.toml: {type_}: a MaxMap reducer needs a key")
        specs[type_] = SettingSpec(
            type_, raw["reducer"], MappingProxyType(dict(raw["defaults"])), raw["defaults_source"], raw.get("key")
        )
    enums = {
        field: Enum(
            field,
            MappingProxyType(
                {k: tuple(s.upper() for s in v) for k, v in raw.items() if isinstance(v, list)}
            ),
            raw.get("absent"),
        )
        for field, raw in settings["enum"].items()
    }
    lsa = dates["less_secure_apps"]
    return Facts(
        settings=MappingProxyType(specs),
        enums=MappingProxyType(enums),
        gmail_scopes_groups=tuple(s.upper() for s in settings["google_services"]["gmail_scopes_groups"]),
        password_retired_on=lsa["final"],
        password_retired_source=lsa["final_source"],
        not_found_statuses=tuple(directory["errors"]["not_found_statuses"]),
        domain_not_found_patterns=tuple(p.lower() for p in directory["errors"]["domain_not_found_patterns"]),
        foreign_domain_statuses=tuple(directory["errors"]["foreign_domain_statuses"]),
        no_gmail_licences=tuple(
            Licence(str(x["productId"]), str(x["skuId"]), x["name"]) for x in directory["licences"]["no_gmail"]
        ),
        client_id_suffix=str(directory["tokens"]["client_id_suffix"]).lower(),
        audit_log=MappingProxyType({k: str(v) for k, v in directory["audit_log"].items()}),
    )


@cache
def facts() -> Facts:
    """Read once per process: the files are package data and never change while it runs."""
    return parse(_read("settings"), _read("dates"), _read("directory"))
