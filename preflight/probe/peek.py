"""A second, short look at a server, for what the probe's own connection cannot say.

Two questions: does this port speak TLS from the first byte (when it stays silent after the TCP
connect), and which certificate does it present (when verification failed, so the verified handshake
never showed one). The probe's own connection is never relaxed: this is a separate connection that
sends nothing but EHLO and STARTTLS, reads the certificate without trusting it, shows it, and closes.
Every read is bounded in size and time, like the probe's own.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from preflight.probe.tls import PeerCertificate

MAX_REPLY = 64 * 1024
# RFC 4514 short names -> the long names ssl.getpeercert() uses, so both views of a certificate read alike.
_LONG_NAMES = {"CN": "commonName", "O": "organizationName", "OU": "organizationalUnitName", "C": "countryName",
               "L": "localityName", "ST": "stateOrProvinceName", "DC": "domainComponent"}


def _unverified_context() -> ssl.SSLContext:
    # Display only: nothing is sent over this connection, and it is closed right after the handshake.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _connect(family: int, sockaddr: Any, timeout: float) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(sockaddr)
    except OSError:
        sock.close()
        raise
    return sock


def _final_code(sock: socket.socket, deadline: float) -> int:
    """Read one SMTP reply (bounded) and return its code; raise OSError on anything else."""
    buf = b""
    while len(buf) < MAX_REPLY:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no reply")
        sock.settimeout(remaining)
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
        for line in buf.split(b"\n")[:-1]:
            if len(line) >= 4 and line[:3].isdigit() and line[3:4] in (b" ", b"\r"):
                return int(line[:3])
    raise ConnectionError("reply too long")


def speaks_tls(family: int, sockaddr: Any, host: str, timeout: float) -> bool:
    """True when a fresh connection to the port completes a TLS handshake without a word of SMTP first."""
    try:
        sock = _connect(family, sockaddr, timeout)
    except OSError:
        return False
    try:
        with _unverified_context().wrap_socket(sock, server_hostname=host) as tls:
            return tls.version() is not None
    except (OSError, ValueError):
        return False
    finally:
        sock.close()


def presented_certificate(family: int, sockaddr: Any, host: str, mode: str, ehlo: str, timeout: float,
                          now: datetime | None = None) -> PeerCertificate | None:
    """The leaf certificate the server presents (implicit TLS, or after EHLO and STARTTLS); None if unreadable."""
    deadline = time.monotonic() + timeout
    try:
        sock = _connect(family, sockaddr, timeout)
    except OSError:
        return None
    try:
        if mode == "starttls":
            if _final_code(sock, deadline) != 220:
                return None
            sock.sendall(f"EHLO {ehlo}\r\n".encode())
            if _final_code(sock, deadline) != 250:
                return None
            sock.sendall(b"STARTTLS\r\n")
            if _final_code(sock, deadline) != 220:
                return None
        sock.settimeout(max(deadline - time.monotonic(), 0.1))
        with _unverified_context().wrap_socket(sock, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
            with contextlib.suppress(OSError):
                tls.sendall(b"QUIT\r\n")
    except (OSError, ValueError):
        return None
    finally:
        sock.close()
    return describe(der, now) if der else None


def _name(name: x509.Name) -> str:
    parts = []
    for rdn in name.rdns:
        for attr in rdn:
            short = attr.rfc4514_attribute_name
            value = attr.value if isinstance(attr.value, str) else attr.value.hex()
            parts.append(f"{_LONG_NAMES.get(short, short)}={value}")
    return ", ".join(parts)


def _stamp(moment: datetime) -> str:
    """The format ssl.getpeercert() uses: 'Jan  5 09:00:00 2027 GMT'."""
    return f"{moment:%b} {moment.day:2d} {moment:%H:%M:%S %Y} GMT"


def describe(der: bytes, now: datetime | None = None) -> PeerCertificate | None:
    """Subject, issuer, names and validity of a DER certificate; None when it does not parse."""
    try:
        cert = x509.load_der_x509_certificate(der)
        names: list[str] = []
        with contextlib.suppress(x509.ExtensionNotFound):
            san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
            assert isinstance(san, x509.SubjectAlternativeName)
            names = [f"DNS:{n}" for n in san.get_values_for_type(x509.DNSName)]
            names += [f"IP Address:{ip}" for ip in san.get_values_for_type(x509.IPAddress)]
        expires = cert.not_valid_after_utc
        return PeerCertificate(_name(cert.subject), _name(cert.issuer), names, _stamp(cert.not_valid_before_utc),
                               _stamp(expires), (expires - (now or datetime.now(UTC))).days)
    except ValueError:
        return None
