"""The Google provider's data files (scopes, endpoints, pacing, auth-check thresholds) as typed values."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from preflight.authcheck import ClockLimits, clock_limits
from preflight.datafiles import load_toml
from preflight.errors import InputError


@dataclass(frozen=True)
class Scope:
    key: str
    url: str
    read_only: bool
    subject: str  # "admin" or "mailbox"
    resources: tuple[str, ...]
    purpose: str
    role: str
    opt_in: str | None = None  # the flag that requests it, None when always requested
    auth: tuple[str, ...] = ("service-account", "oauth")


@dataclass(frozen=True)
class Endpoints:
    directory: str
    policy: str
    gmail: str
    licensing: str
    reports: str
    token: str
    retired_token_uris: tuple[str, ...]

    def rooted_at(self, root: str) -> Endpoints:
        """The same API paths under another scheme://host (a local stand-in, or a private endpoint)."""
        parts = urlsplit(root)
        if parts.scheme != "https" or not parts.netloc:
            raise InputError(f"--api-root: {root!r} must be an https:// URL (tokens travel with every request)")

        def move(url: str) -> str:
            old = urlsplit(url)
            return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + old.path, "", ""))

        return replace(
            self, directory=move(self.directory), policy=move(self.policy), gmail=move(self.gmail),
            licensing=move(self.licensing), reports=move(self.reports),
        )


@dataclass(frozen=True)
class ApiSettings:
    endpoints: Endpoints
    policy_filters: tuple[str, ...]
    policy_refused_statuses: frozenset[int]
    policy_page_size: int
    policy_page_interval: float
    policy_max_retries: int
    groups_page_size: int
    org_unit_type: str
    licensing_page_size: int
    licensing_products: tuple[str, ...]
    licensing_skipped: frozenset[int]
    licensing_global: frozenset[int]
    licensing_global_403: tuple[str, ...]
    workers: int
    timeout: tuple[float, float]
    permanent_token_errors: frozenset[str] = frozenset()
    rate_limit_reasons: frozenset[str] = frozenset()
    reports_page_size: int = 1000
    advanced_protection: tuple[str, tuple[str, ...]] = ("user_accounts", ())
    delegation: tuple[str, tuple[str, ...]] = ("admin", ())
    per_minute_patterns: tuple[str, ...] = ()
    per_minute_waits: tuple[float, float] = (30.0, 15.0)


@dataclass(frozen=True)
class AuthCheckSettings:
    clock: ClockLimits
    key_warn_days: int
    dwd_console: str
    dwd_url: str
    keys_console: str


def _load(name: str) -> dict[str, Any]:
    return load_toml(__package__ or __name__, f"data/{name}")


@cache
def scopes() -> tuple[Scope, ...]:
    out = []
    for raw in _load("scopes.toml")["scope"]:
        out.append(
            Scope(
                key=raw["key"], url=raw["url"], read_only=bool(raw["read_only"]), subject=raw["subject"],
                resources=tuple(raw["resources"]), purpose=raw["purpose"], role=raw["role"],
                opt_in=raw.get("opt_in"), auth=tuple(raw.get("auth", ("service-account", "oauth"))),
            )
        )
    return tuple(out)


def scope(key: str) -> Scope:
    for s in scopes():
        if s.key == key:
            return s
    raise KeyError(key)


def scope_for(resource: str) -> Scope:
    for s in scopes():
        if resource in s.resources:
            return s
    raise KeyError(resource)


def wanted_scopes(auth: str, opt_ins: frozenset[str] = frozenset()) -> list[Scope]:
    """The scopes a run with this sign-in kind and these opt-in flags requests, in catalogue order."""
    return [s for s in scopes() if auth in s.auth and (s.opt_in is None or s.opt_in in opt_ins)]


@cache
def api() -> ApiSettings:
    raw = _load("api.toml")
    ep, pol, dr, lic, col = raw["endpoints"], raw["policy"], raw["directory"], raw["licensing"], raw["collect"]
    return ApiSettings(
        endpoints=Endpoints(
            directory=ep["directory"], policy=ep["policy"], gmail=ep["gmail"], licensing=ep["licensing"],
            reports=ep["reports"],
            token=ep["token"], retired_token_uris=tuple(ep["retired_token_uris"]),
        ),
        policy_filters=tuple(pol["filters"]),
        policy_refused_statuses=frozenset(pol["refused_statuses"]),
        policy_page_size=int(pol["page_size"]),
        policy_page_interval=float(pol["page_interval"]),
        policy_max_retries=int(pol["max_retries"]),
        groups_page_size=int(dr["groups_page_size"]),
        org_unit_type=dr["org_unit_type"],
        licensing_page_size=int(lic["page_size"]),
        licensing_products=tuple(lic["products"]),
        licensing_skipped=frozenset(lic["skipped_statuses"]),
        licensing_global=frozenset(lic["global_statuses"]),
        licensing_global_403=tuple(p.lower() for p in lic["global_403_patterns"]),
        workers=int(col["workers"]),
        timeout=(float(col["connect_timeout"]), float(col["read_timeout"])),
        permanent_token_errors=frozenset(raw["token"]["permanent_errors"]),
        rate_limit_reasons=frozenset(raw["retry"]["rate_limit_reasons"]),
        reports_page_size=int(raw["reports"]["page_size"]),
        advanced_protection=(raw["reports"]["advanced_protection_application"],
                             tuple(raw["reports"]["advanced_protection_events"])),
        delegation=(raw["reports"]["delegation_application"], tuple(raw["reports"]["delegation_events"])),
        per_minute_patterns=tuple(p.lower() for p in raw["retry"]["per_minute_patterns"]),
        per_minute_waits=(float(raw["retry"]["per_minute_first_wait"]), float(raw["retry"]["per_minute_step"])),
    )


@cache
def authcheck() -> AuthCheckSettings:
    raw = _load("authcheck.toml")
    return AuthCheckSettings(
        clock=clock_limits(raw),
        key_warn_days=int(raw["key"]["warn_after_days"]),
        dwd_console=raw["console"]["dwd"],
        dwd_url=raw["console"]["dwd_url"],
        keys_console=raw["console"]["keys"],
    )
