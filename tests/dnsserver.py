"""A real DNS server on 127.0.0.1 (dnslib's UDP/TCP server) for the discovery tests.

Zones are plain data: name -> list of (type, rdata text). A name in `servfail` answers SERVFAIL, a name
in `silent` is never answered (the client times out), anything else unknown is NXDOMAIN. Every question
is logged, so a test can prove which lookups were made.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dns.resolver
from dnslib import QTYPE, RCODE, RR, DNSRecord
from dnslib.server import DNSError, DNSLogger, DNSServer


@dataclass
class Zones:
    records: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    servfail: set[str] = field(default_factory=set)
    silent: set[str] = field(default_factory=set)
    asked: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, rtype: str, rdata: str) -> Zones:
        self.records.setdefault(name.lower().rstrip("."), []).append((rtype, rdata))
        return self


class _Resolver:
    def __init__(self, zones: Zones) -> None:
        self.zones = zones
        self.lock = threading.Lock()

    def resolve(self, request: DNSRecord, _handler: Any) -> DNSRecord:
        name = str(request.q.qname).lower().rstrip(".")
        qtype = QTYPE[request.q.qtype]
        with self.lock:
            self.zones.asked.append((name, qtype))
        reply = request.reply()
        if name in self.zones.silent:
            raise DNSError("silent name: no answer")  # dnslib drops the reply
        if name in self.zones.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        entries = self.zones.records.get(name)
        if entries is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for rtype, rdata in entries:
            if rtype == qtype:
                reply.add_answer(*RR.fromZone(f"{name}. 300 IN {rtype} {rdata}"))
        return reply


@contextmanager
def dns_server(zones: Zones) -> Iterator[int]:
    """Serve `zones` on 127.0.0.1 (UDP, and TCP for truncated replies); yields the port."""
    logger = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", logf=lambda _s: None)
    for attempt in range(20):
        udp = DNSServer(_Resolver(zones), address="127.0.0.1", port=0, logger=logger)
        port = udp.server.server_address[1]
        try:
            tcp = DNSServer(_Resolver(zones), address="127.0.0.1", port=port, tcp=True, logger=logger)
            break
        except OSError:  # the TCP port of that number is taken (a client's kept-alive connection): another pair
            udp.server.server_close()
            if attempt == 19:
                raise
    udp.start_thread()
    tcp.start_thread()
    try:
        yield port
    finally:
        udp.stop()
        tcp.stop()
        udp.server.server_close()
        tcp.server.server_close()


def resolver_for(port: int, lifetime: float = 2.0) -> dns.resolver.Resolver:
    """A dnspython resolver that asks only the loopback server (no resolv.conf, no search list)."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port
    resolver.lifetime = lifetime
    resolver.timeout = lifetime
    return resolver
