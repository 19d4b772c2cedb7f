"""Who serves a mail domain, from public records alone: MX, `_submission._tcp` SRV (RFC 6186) and
Microsoft's OpenID configuration for the domain. No credentials.

Like a collector, this is where the network is touched (DNS and one HTTPS GET per cloud), each lookup
bounded in time; `classify` and `submission_for` are pure. The resolver and HTTP session are handed in,
so nothing here reads or changes global state, and `offline` looks nothing up at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from preflight.datafiles import load_toml
from preflight.errors import InputError, first_line

if TYPE_CHECKING:
    import dns.resolver
    import requests


Status = Literal["ok", "nxdomain", "nodata", "servfail", "timeout", "error", "skipped"]
T = TypeVar("T")
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})+$")


@cache
def discovery_data() -> dict[str, Any]:
    return load_toml("preflight", "data/discovery.toml")


@dataclass(frozen=True)
class Lookup(Generic[T]):
    status: Status
    records: tuple[T, ...] = ()
    detail: str = ""  # why a lookup did not answer, for the reader


@dataclass(frozen=True, order=True)
class Mx:
    preference: int
    host: str


@dataclass(frozen=True, order=True)
class Srv:
    priority: int
    weight: int
    port: int
    host: str  # "." = the domain says it offers no such service (RFC 6186 section 3.4)


@dataclass(frozen=True)
class Tenant:
    status: Literal["found", "not-found", "consumer", "error", "skipped"]
    id: str | None = None
    cloud: str | None = None  # a cloud name of clouds.toml, None when the configuration names none we know
    detail: str = ""


@dataclass(frozen=True)
class Submission:
    host: str
    port: int
    source: str  # how it was found, for the reader

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Discovery:
    domain: str
    mx: Lookup[Mx]
    srv: Lookup[Srv]
    tenant: Tenant
    provider: str | None  # microsoft, google, or None (another provider, or not known)
    basis: str  # why that provider
    submission: Submission | None
    notes: tuple[str, ...] = field(default=())


def domain_of(address: str) -> str:
    """The domain of a mailbox address, lower-case and IDNA-encoded; bad input is one line, exit 2."""
    local, sep, domain = address.strip().rpartition("@")
    if not sep or not local or not domain:
        raise InputError(f"{address!r} is not an email address (expected name@domain)")
    try:
        ascii_domain = domain.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise InputError(f"{address!r}: {domain!r} is not a valid domain name") from None
    if not _DOMAIN.match(ascii_domain):
        raise InputError(f"{address!r}: {domain!r} is not a valid domain name")
    return ascii_domain


def _host_matches(host: str, hosts: list[str], suffixes: list[str]) -> bool:
    host = host.rstrip(".").lower()
    return host in hosts or any(host.endswith(s) for s in suffixes)


def mx_provider(host: str, data: Mapping[str, Any] | None = None) -> str | None:
    data = data or discovery_data()
    for entry in data.get("provider", []):
        if _host_matches(host, list(entry.get("mx_hosts", [])), list(entry.get("mx_suffixes", []))):
            return str(entry["name"])
    return None


def classify(mx: Lookup[Mx], tenant: Tenant, data: Mapping[str, Any] | None = None) -> tuple[str | None, str]:
    """(provider, why): the best-preference MX host decides; a Microsoft tenant that has the domain
    decides when MX points at nobody we know (mail then usually passes a gateway first)."""
    data = data or discovery_data()
    ranked = sorted(mx.records)
    for record in ranked:
        provider = mx_provider(record.host, data)
        if provider is not None:
            if record is not ranked[0]:
                return provider, f"MX {record.host} (after {ranked[0].host}, preference {ranked[0].preference})"
            return provider, f"MX {record.host}"
    if tenant.status == "found":
        if ranked:
            return "microsoft", (f"the domain is in Microsoft 365 tenant {tenant.id}; its MX {ranked[0].host} "
                                 "is not Microsoft's (a mail gateway in front of Exchange Online?)")
        return "microsoft", f"the domain is in Microsoft 365 tenant {tenant.id} (it has no MX record)"
    if ranked:
        return None, f"MX {ranked[0].host} is neither Microsoft 365 nor Google Workspace"
    if mx.status == "ok":
        return None, "the domain has no MX record"
    return None, f"the MX lookup failed ({mx.status}{': ' + mx.detail if mx.detail else ''})"


def _split(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host, int(port)


def _best_srv(srv: Lookup[Srv]) -> Srv | None:
    usable = sorted((r for r in srv.records if r.host not in (".", "")), key=lambda r: (r.priority, -r.weight))
    return usable[0] if usable else None


def submission_for(provider: str | None, tenant: Tenant, mx: Lookup[Mx], srv: Lookup[Srv],
                   clouds: Mapping[str, Any], data: Mapping[str, Any] | None = None) -> Submission | None:
    """The host and port a sending service should be given: the provider's submission endpoint (for
    Microsoft, the tenant's cloud's), else what the domain publishes in `_submission._tcp` SRV."""
    data = data or discovery_data()
    if provider == "microsoft":
        name = tenant.cloud or _mx_cloud(mx, data) or "global"
        cloud = clouds.get(name)
        if cloud is not None and cloud.smtp:
            host, port = _split(cloud.smtp)
            return Submission(host, port, f"the SMTP AUTH endpoint of {cloud.title}")
        return None
    for entry in data.get("provider", []):
        if entry["name"] == provider and entry.get("submission"):
            host, port = _split(str(entry["submission"]))
            return Submission(host, port, f"the {provider} submission endpoint")
    best = _best_srv(srv)
    if best is not None:
        return Submission(best.host.rstrip("."), best.port, "the domain's _submission._tcp SRV record")
    return None


def _mx_cloud(mx: Lookup[Mx], data: Mapping[str, Any]) -> str | None:
    clouds: dict[str, str] = next((dict(e.get("mx_cloud", {})) for e in data.get("provider", [])
                                   if e["name"] == "microsoft"), {})
    for record in sorted(mx.records):
        for suffix, cloud in clouds.items():
            if record.host.rstrip(".").lower().endswith(suffix):
                return cloud
    return None


def _notes(provider: str | None, srv: Lookup[Srv], submission: Submission | None) -> tuple[str, ...]:
    notes = []
    best = _best_srv(srv)
    if srv.records and best is None:
        notes.append("_submission._tcp SRV says the domain offers no submission service (target '.')")
    elif best is not None and submission is not None and provider is not None and (
            best.host.rstrip(".").lower(), best.port) != (submission.host.lower(), submission.port):
        notes.append(f"_submission._tcp SRV names {best.host.rstrip('.')}:{best.port}, not the provider's "
                     f"{submission.target}")
    return tuple(notes)


def offline(domain: str) -> Discovery:
    """`--offline`: nothing is looked up, so nothing is known."""
    skipped: Lookup[Any] = Lookup("skipped", detail="--offline")
    return Discovery(domain, skipped, skipped, Tenant("skipped", detail="--offline"), None,
                     "not looked up (--offline)", None)


class Discoverer:
    """The lookups, with the resolver, HTTP session and clouds handed in (tests point them at loopback)."""

    def __init__(self, resolver: dns.resolver.Resolver | None = None, session: requests.Session | None = None,
                 clouds: Mapping[str, Any] | None = None, data: Mapping[str, Any] | None = None) -> None:
        self.data = data or discovery_data()
        self._resolver = resolver
        self._session = session
        self._clouds = clouds

    @property
    def clouds(self) -> Mapping[str, Any]:
        if self._clouds is None:
            from importlib import import_module

            self._clouds = import_module("preflight_providers.microsoft.clouds").load_clouds()
        return self._clouds

    def resolver(self) -> dns.resolver.Resolver:
        if self._resolver is None:
            import dns.resolver

            self._resolver = dns.resolver.Resolver()  # the system's name servers (resolv.conf)
            self._resolver.lifetime = float(self.data["dns"]["lifetime"])
        return self._resolver

    def discover(self, domain: str) -> Discovery:
        mx = self.mx(domain)
        srv = self.srv(domain)
        tenant = self.tenant(domain)
        provider, basis = classify(mx, tenant, self.data)
        submission = submission_for(provider, tenant, mx, srv, self.clouds, self.data)
        return Discovery(domain, mx, srv, tenant, provider, basis, submission, _notes(provider, srv, submission))

    # -- DNS ---------------------------------------------------------------------------------------

    def _query(self, name: str, rdtype: str) -> tuple[Status, list[Any], str]:
        import dns.exception
        import dns.resolver

        try:
            resolver = self.resolver()
        except dns.exception.DNSException as exc:  # no resolv.conf, no name servers
            return "error", [], f"no DNS resolver ({type(exc).__name__})"
        try:
            answer = resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            return "nxdomain", [], f"{name} does not exist"
        except dns.resolver.NoAnswer:
            return "nodata", [], f"{name} has no {rdtype} record"
        except dns.resolver.LifetimeTimeout:
            return "timeout", [], f"no DNS answer for {name} {rdtype} within {resolver.lifetime:g} s"
        except dns.resolver.NoNameservers as exc:  # every server failed: SERVFAIL, REFUSED, ...
            return "servfail", [], f"{name} {rdtype}: the DNS servers failed to answer ({_first(exc)})"
        except dns.exception.DNSException as exc:
            return "error", [], f"{name} {rdtype}: {type(exc).__name__}"
        return "ok", list(answer), ""

    def mx(self, domain: str) -> Lookup[Mx]:
        status, records, detail = self._query(domain, "MX")
        found = tuple(sorted(Mx(int(r.preference), r.exchange.to_text().rstrip(".").lower()) for r in records))
        # RFC 7505: a single "0 ." MX says the domain accepts no mail.
        if found == (Mx(0, ""),):
            return Lookup("nodata", (), f"{domain} publishes a null MX: it accepts no mail")
        return Lookup(status, found, detail)

    def srv(self, domain: str) -> Lookup[Srv]:
        status, records, detail = self._query(f"_submission._tcp.{domain}", "SRV")
        found = tuple(sorted(Srv(int(r.priority), int(r.weight), int(r.port), r.target.to_text().lower())
                             for r in records))
        return Lookup(status, found, detail)

    def addresses(self, host: str, port: int, timeout: float) -> list[tuple[int, Any]]:
        """The probe's name resolution through this resolver (A, then AAAA), so a run that was pointed
        at a name server asks only that one."""
        import socket

        found: list[tuple[int, Any]] = []
        for rdtype, family in (("A", socket.AF_INET), ("AAAA", socket.AF_INET6)):
            status, records, detail = self._query(host, rdtype)
            found += [(family, (r.address, port) if family == socket.AF_INET else (r.address, port, 0, 0))
                      for r in records]
            if status in ("nxdomain", "timeout", "servfail", "error") and not found:
                raise InputError(f"{host}: host name does not resolve ({detail}) [dns-failure]")
        if not found:
            raise InputError(f"{host}: host name has no address (A/AAAA) [dns-failure]")
        return found

    # -- Microsoft ---------------------------------------------------------------------------------

    def tenant(self, domain: str) -> Tenant:
        import requests

        ms = self.data["microsoft"]
        session = self._session or requests.Session()
        connect, read = (float(t) for t in self.data["http"]["timeout"])
        problems = []
        for name in ms["openid_clouds"]:
            cloud = self.clouds.get(name)
            if cloud is None:
                continue
            url = f"https://{cloud.login}{str(ms['openid_path']).format(domain=domain)}"
            try:
                reply = session.get(url, timeout=(connect, read), allow_redirects=False)
            except requests.RequestException as exc:
                problems.append(f"{cloud.login}: {type(exc).__name__}")
                continue
            found = self._read_openid(reply, name)
            if found.status == "not-found":
                continue
            if found.status == "error":
                problems.append(f"{cloud.login}: {found.detail}")
                continue
            return found
        if problems:
            return Tenant("error", detail="; ".join(problems))
        return Tenant("not-found", detail="no Microsoft 365 tenant has this domain")

    def _read_openid(self, reply: requests.Response, asked: str) -> Tenant:
        try:
            body = reply.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return Tenant("error", detail=f"HTTP {reply.status_code}, not a JSON object")
        if reply.status_code != 200:
            text = str(body.get("error_description") or body.get("error") or "")
            if reply.status_code == 400 and "AADSTS90002" in text:  # tenant not found in this cloud
                return Tenant("not-found")
            return Tenant("error", detail=f"HTTP {reply.status_code} {text.splitlines()[0] if text else ''}".strip())
        endpoint = body.get("token_endpoint")
        parts = endpoint.split("/") if isinstance(endpoint, str) else []
        tenant_id = parts[3].lower() if len(parts) > 3 else ""
        if not _GUID.match(tenant_id):
            return Tenant("error", detail="the OpenID configuration names no tenant id (token_endpoint)")
        if tenant_id == str(self.data["microsoft"]["consumer_tenant"]):
            return Tenant("consumer", tenant_id, None, "personal Microsoft accounts (Outlook.com), not Microsoft 365")
        instance = body.get("cloud_instance_name")
        sub = body.get("tenant_region_sub_scope") or ""
        cloud = next((str(i["cloud"]) for i in self.data["microsoft"].get("instance", [])
                      if i["cloud_instance_name"] == instance and i["sub_scope"] == sub), None)
        if cloud is None and instance is None:
            cloud = asked  # no instance named: the cloud that answered
        detail = "" if cloud else f"unknown cloud instance {instance!r} (region sub scope {sub!r})"
        return Tenant("found", tenant_id, cloud, detail)


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    if "SERVFAIL" in text:
        return "SERVFAIL"
    if "REFUSED" in text:
        return "REFUSED"
    return first_line(exc)[:120]
