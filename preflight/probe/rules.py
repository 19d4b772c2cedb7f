"""The probe's facts that change over time, read once from data/probe.toml into read-only views."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Any

from preflight.datafiles import load_toml


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


@dataclass(frozen=True)
class ProbeRules:
    tls: Mapping[str, Any]
    connect: Mapping[str, str]  # errno name -> cause id
    xoauth2: Mapping[str, Any]
    auth: Mapping[str, str]  # fixes for a server that offers no (usable) AUTH, by situation
    sender: Mapping[str, Any]  # how a refusal of the sender reads when it arrives at RCPT TO


@cache
def load_rules() -> ProbeRules:
    """Parsed once per process: the file ships with the package and does not change while it runs."""
    data = _frozen(load_toml("preflight.probe", "data/probe.toml"))
    return ProbeRules(data["tls"], data["connect"], data["xoauth2"], data["auth"],
                      data["sender"])
