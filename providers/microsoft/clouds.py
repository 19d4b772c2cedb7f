"""Microsoft clouds as data: sign-in authority, Graph and Exchange admin hosts, token scopes per cloud."""

from __future__ import annotations

import functools
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from preflight.datafiles import load_toml
from preflight.errors import InputError

EXTRA_CLOUDS_ENV = "PREFLIGHT_MICROSOFT_CLOUDS"
_FIELDS = ("login", "graph", "exchange", "graph_scope", "exchange_scope")


@dataclass(frozen=True)
class Cloud:
    name: str
    title: str
    login: str  # Entra ID authority host
    graph: str  # Microsoft Graph host
    exchange: str  # Exchange Online admin REST host
    graph_scope: str  # app-only scope, "<resource>/.default"
    exchange_scope: str
    # msal validates unknown authority hosts against login.microsoftonline.com; a private host (a
    # proxy, a test double) has to opt out.
    instance_discovery: bool = True
    smtp: str | None = None  # SMTP AUTH client submission endpoint, HOST:PORT (STARTTLS)

    def authority(self, tenant: str) -> str:
        return f"https://{self.login}/{tenant}"

    @property
    def graph_url(self) -> str:
        return f"https://{self.graph}/v1.0"

    @property
    def exchange_url(self) -> str:
        return f"https://{self.exchange}"

    @property
    def graph_resource(self) -> str:
        return _resource(self.graph_scope)

    @property
    def exchange_resource(self) -> str:
        return _resource(self.exchange_scope)


def _resource(scope: str) -> str:
    return scope[: -len("/.default")] if scope.endswith("/.default") else scope.rsplit("/", 1)[0]


def _parse(table: dict[str, Any], where: str) -> dict[str, Cloud]:
    clouds = {}
    for name, raw in table.items():
        if not isinstance(raw, dict) or any(not isinstance(raw.get(f), str) or not raw.get(f) for f in _FIELDS):
            raise InputError(f"{where}: cloud {name!r} needs the string fields {', '.join(_FIELDS)}")
        clouds[name] = Cloud(
            name=name,
            title=str(raw.get("title") or name),
            instance_discovery=bool(raw.get("instance_discovery", True)),
            smtp=str(raw["smtp"]) if raw.get("smtp") else None,
            **{f: str(raw[f]) for f in _FIELDS},
        )
    return clouds


@functools.cache
def _builtin() -> dict[str, Cloud]:
    return _parse(load_toml(__package__ or __name__, "data/clouds.toml"), "clouds.toml")


# The extra clouds file as last read, by its name and what stat said of it: an audit looks its cloud up for every
# tenant, and reading and parsing the file each time cost more CPU than the rest of the tenant's settings.
_read: dict[str, tuple[tuple[int, int, int], dict[str, Cloud]]] = {}


def _extra(extra: str) -> dict[str, Cloud]:
    path = Path(extra)
    try:
        info = path.stat()
        seen = (info.st_mtime_ns, info.st_size, info.st_ino)
        known = _read.get(extra)
        if known is not None and known[0] == seen:
            return known[1]
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{EXTRA_CLOUDS_ENV}={extra}: cannot read clouds file ({exc})") from None
    clouds = _parse(table, str(path))
    _read.clear()  # one file at a time: the one the environment names
    _read[extra] = (seen, clouds)
    return clouds


def load_clouds(environ: dict[str, str] | None = None) -> dict[str, Cloud]:
    """The built-in clouds, plus any from the file named by PREFLIGHT_MICROSOFT_CLOUDS."""
    clouds = dict(_builtin())  # Cloud is frozen: the caller's dict is its own, the clouds are shared
    extra = (os.environ if environ is None else environ).get(EXTRA_CLOUDS_ENV)
    if extra:
        clouds.update(_extra(extra))
    return clouds


def get_cloud(name: str, environ: dict[str, str] | None = None) -> Cloud:
    clouds = load_clouds(environ)
    try:
        return clouds[name]
    except KeyError:
        raise InputError(f"--cloud: unknown cloud {name!r} (known: {', '.join(sorted(clouds))})") from None
