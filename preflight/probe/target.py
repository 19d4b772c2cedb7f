"""What to probe: HOST[:PORT] parsed and completed with the known host defaults (data/smtp_hosts.toml)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from preflight.datafiles import load_toml
from preflight.errors import InputError

_LABEL = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,62}"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
DEFAULT_PORT = 587


class TlsMode(StrEnum):
    STARTTLS = "starttls"
    IMPLICIT = "implicit"
    NONE = "none"


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    tls: TlsMode
    provider: str | None  # microsoft, google or None: which remediation texts apply
    known: bool  # the host is in smtp_hosts.toml
    basic_auth_warning: str | None = None  # cause to warn about when a password sign-in succeeds

    @property
    def display(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class HostTable:
    hosts: dict[str, dict[str, Any]]
    ports: dict[int, TlsMode]
    suffixes: list[tuple[str, str]]
    providers: dict[str, dict[str, Any]]

    @classmethod
    def load(cls) -> HostTable:
        data = load_toml("preflight", "data/smtp_hosts.toml")
        hosts = {h["name"].lower(): h for h in data.get("host", [])}
        ports = {int(p): TlsMode(m) for p, m in data.get("ports", {}).items()}
        suffixes = [(s["suffix"].lower(), s["provider"]) for s in data.get("provider_suffix", [])]
        return cls(hosts, ports, suffixes, dict(data.get("provider", {})))


def split_host_port(text: str) -> tuple[str, int | None]:
    """`host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address."""
    text = text.strip()
    if not text:
        raise InputError("no host given: use HOST or HOST:PORT, for example smtp.office365.com:587")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise InputError(f"{text!r}: missing ']' after the IPv6 address")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise InputError(f"{text!r}: expected ':PORT' after ']'")
        port_text = rest[1:] if rest else None
    elif text.count(":") > 1:  # a bare IPv6 address has no port
        host, port_text = text, None
    elif ":" in text:
        host, port_text = text.split(":", 1)
    else:
        host, port_text = text, None
    if port_text is None:
        return host, None
    if not port_text.isdigit():
        raise InputError(f"{text!r}: port {port_text!r} is not a number")
    return host, int(port_text)


def _check_host(host: str) -> str:
    if ":" in host:  # IPv6 literal: let the resolver judge it, but keep it printable
        if not re.fullmatch(r"[0-9A-Fa-f:.%A-Za-z]+", host):
            raise InputError(f"{host!r} is not a valid IPv6 address")
        return host
    if _IPV4.match(host) or _HOSTNAME.match(host):
        return host.rstrip(".")
    raise InputError(f"{host!r} is not a valid host name")


def resolve_target(text: str, port: int | None = None, tls: TlsMode | None = None, provider: str | None = None,
                   table: HostTable | None = None) -> Target:
    """The target with defaults: the port and TLS mode of a known host, else the port's convention."""
    table = table or HostTable.load()
    host, text_port = split_host_port(text)
    host = _check_host(host)
    if port is not None and text_port is not None and port != text_port:
        raise InputError(f"port given twice: {text_port} in {text!r} and --port {port}")
    port = text_port if text_port is not None else port
    known = table.hosts.get(host.lower())
    if port is None:
        port = int(known["port"]) if known else DEFAULT_PORT
    if not 1 <= port <= 65535:
        raise InputError(f"port {port} is out of range (1-65535)")
    if tls is None:
        known_ports = {int(p): TlsMode(m) for p, m in (known or {}).get("ports", {}).items()}
        tls = known_ports.get(port) or table.ports.get(port) or TlsMode.STARTTLS
    if provider is None:
        provider = known["provider"] if known else next(
            (p for suffix, p in table.suffixes if host.lower().endswith(suffix)), None
        )
    warning = table.providers.get(provider or "", {}).get("basic_auth_warning")
    return Target(host, port, tls, provider, known is not None, warning)
