"""Who serves a mail domain, from public records alone: MX, `_submission._tcp` SRV (RFC 6186) and the
tenant lookups of the providers that have one (their MailDomainOwner hook, preflight.providers). No
credentials.

Like a collector, this is where the network is touched (DNS here, HTTPS in the providers' tenant lookups),
each lookup bounded in time; `classify` and `submission_for` are pure. The resolver, HTTP session and
domain owners are handed in, so nothing here reads or changes global state, and `offline` looks nothing
up at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from preflight.datafiles import load_toml
from preflight.errors import InputError, first_line

if TYPE_CHECKING:
    import dns.resolver
    import requests

    from preflight.providers import MailDomainOwner


Status = Literal["ok", "nxdomain", "nodata", "servfail", "timeout", "error", "skipped"]
T = TypeVar("T")
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
    cloud: str | None = None  # the provider's cloud or region name, None when the lookup names none it knows
    detail: str = ""
    provider: str | None = None  # whose tenant: the provider whose lookup found it


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
    provider: str | None  # an installed provider's name, or None (another provider, or not known)
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


def classify(mx: Lookup[Mx], tenant: Tenant, data: Mapping[str, Any] | None = None,
             titles: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """(provider, why): the best-preference MX host decides; a tenant a provider found for the domain
    decides when MX points at nobody we know (mail then usually passes a gateway first). `titles`: provider
    name -> title, for the reader (None: the installed providers')."""
    data = data or discovery_data()
    ranked = sorted(mx.records)
    for record in ranked:
        provider = mx_provider(record.host, data)
        if provider is not None:
            if record is not ranked[0]:
                return provider, f"MX {record.host} (after {ranked[0].host}, preference {ranked[0].preference})"
            return provider, f"MX {record.host}"
    titles = _titles() if titles is None else titles
    if tenant.status == "found" and tenant.provider is not None:
        title = titles.get(tenant.provider, tenant.provider)
        if ranked:
            return tenant.provider, (f"the domain is in {title} tenant {tenant.id}; its MX {ranked[0].host} is "
                                     f"not {title}'s (a mail gateway in front of it?)")
        return tenant.provider, f"the domain is in {title} tenant {tenant.id} (it has no MX record)"
    if ranked:
        known = [titles.get(str(e["name"]), str(e["name"])) for e in data.get("provider", [])]
        return None, f"MX {ranked[0].host} is " + ("neither " + " nor ".join(known) if len(known) > 1
                                                   else f"not {known[0]}" if known else "no known provider's")
    if mx.status == "ok":
        return None, "the domain has no MX record"
    return None, f"the MX lookup failed ({mx.status}{': ' + mx.detail if mx.detail else ''})"


def _titles() -> dict[str, str]:
    from preflight.providers import Registry

    registry = Registry.from_entry_points()
    return {name: registry.title(name) for name in registry.names}


def _split(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host, int(port)


def _best_srv(srv: Lookup[Srv]) -> Srv | None:
    usable = sorted((r for r in srv.records if r.host not in (".", "")), key=lambda r: (r.priority, -r.weight))
    return usable[0] if usable else None


def submission_for(provider: str | None, tenant: Tenant, mx: Lookup[Mx], srv: Lookup[Srv],
                   owners: Mapping[str, MailDomainOwner], data: Mapping[str, Any] | None = None
                   ) -> Submission | None:
    """The host and port a sending service should be given: the provider's submission endpoint (from its
    MailDomainOwner hook, which may depend on the tenant, else from the data), else what the domain
    publishes in `_submission._tcp` SRV."""
    data = data or discovery_data()
    if provider is not None and provider in owners:
        return owners[provider].submission(tenant, mx)
    for entry in data.get("provider", []):
        if entry["name"] == provider and entry.get("submission"):
            host, port = _split(str(entry["submission"]))
            return Submission(host, port, f"the {provider} submission endpoint")
    best = _best_srv(srv)
    if best is not None:
        return Submission(best.host.rstrip("."), best.port, "the domain's _submission._tcp SRV record")
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
    """The lookups, with the resolver, HTTP session and domain owners (the providers' MailDomainOwner hooks,
    by provider name) handed in: tests point them at loopback. None: the system's, and the installed ones."""

    def __init__(self, resolver: dns.resolver.Resolver | None = None, session: requests.Session | None = None,
                 owners: Mapping[str, MailDomainOwner] | None = None, data: Mapping[str, Any] | None = None,
                 titles: Mapping[str, str] | None = None) -> None:
        self.data = data or discovery_data()
        self._resolver = resolver
        self._session = session
        self._owners = owners
        self._titles = titles

    @property
    def owners(self) -> Mapping[str, MailDomainOwner]:
        if self._owners is None:
            from preflight.providers import MailDomainOwner, Registry

            self._owners = Registry.from_entry_points().hooked(MailDomainOwner)  # type: ignore[type-abstract]
        return self._owners

    @property
    def titles(self) -> Mapping[str, str]:
        if self._titles is None:
            self._titles = _titles()
        return self._titles

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
        provider, basis = classify(mx, tenant, self.data, self.titles)
        submission = submission_for(provider, tenant, mx, srv, self.owners, self.data)
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

    # -- tenants -----------------------------------------------------------------------------------

    def tenant(self, domain: str) -> Tenant:
        """The tenant a domain owner finds for the domain (the first that finds one, in name order), else the
        first lookup that failed, else not found."""
        import requests

        session = self._session or requests.Session()
        connect, read = (float(t) for t in self.data["http"]["timeout"])
        answers = []
        for name, owner in sorted(self.owners.items()):
            answer = replace(owner.find_tenant(domain, session, (connect, read)), provider=name)
            if answer.status in ("found", "consumer"):
                return answer
            answers.append(answer)
        failed = [a for a in answers if a.status == "error"]
        if failed:
            return failed[0] if len(failed) == 1 else Tenant("error", detail="; ".join(a.detail for a in failed))
        if answers:
            return answers[0] if len(answers) == 1 else Tenant("not-found", detail="; ".join(
                a.detail for a in answers if a.detail))
        return Tenant("not-found", detail="no installed provider looks tenants up")


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    if "SERVFAIL" in text:
        return "SERVFAIL"
    if "REFUSED" in text:
        return "REFUSED"
    return first_line(exc)[:120]
