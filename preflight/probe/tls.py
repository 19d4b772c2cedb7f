"""TLS for the probe: a verifying client context, what the handshake negotiated, and why it failed.

Verification is always on (chain and host name). A private CA is trusted only through an explicit
--ca-file; there is no switch to turn verification off.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from preflight.errors import InputError
from preflight.probe.rules import load_rules


def client_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """Chain and host name verified; with ca_file, only that CA bundle is trusted (private CAs)."""
    if ca_file is None:
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    try:
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or type(exc).__name__
        raise InputError(f"--ca-file {ca_file}: cannot load CA certificates ({reason})") from None


@dataclass(frozen=True)
class PeerCertificate:
    subject: str
    issuer: str
    names: list[str]  # subjectAltName DNS / IP entries
    not_before: str
    not_after: str
    days_left: int

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "issuer": self.issuer, "names": self.names,
                "not_before": self.not_before, "not_after": self.not_after, "days_left": self.days_left}


@dataclass(frozen=True)
class TlsInfo:
    mode: str  # starttls or implicit
    version: str | None
    cipher: str | None
    bits: int | None
    verified_name: str  # the name the certificate was checked against
    peer: PeerCertificate | None
    verified: bool = True  # a failed verification never produces a TlsInfo: the handshake fails instead

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "version": self.version, "cipher": self.cipher, "bits": self.bits,
                "verified": self.verified, "verified_name": self.verified_name,
                "certificate": self.peer.to_dict() if self.peer else None}


def _dn(rdns: Any) -> str:
    parts = []
    for rdn in rdns or ():
        for pair in rdn:
            parts.append(f"{pair[0]}={pair[1]}")
    return ", ".join(parts)


def inspect(sock: ssl.SSLSocket, mode: str, name: str, now: datetime | None = None) -> TlsInfo:
    now = now or datetime.now(UTC)
    cipher = sock.cipher()
    cert = sock.getpeercert()
    peer = None
    if cert:
        not_after = str(cert.get("notAfter", ""))
        expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), UTC) if not_after else now
        san: Any = cert.get("subjectAltName", ())
        names = [f"{kind}:{value}" for kind, value in san]
        peer = PeerCertificate(_dn(cert.get("subject")), _dn(cert.get("issuer")), names,
                               str(cert.get("notBefore", "")), not_after, (expires - now).days)
    return TlsInfo(mode, sock.version(), cipher[0] if cipher else None, cipher[2] if cipher else None, name, peer)


@dataclass(frozen=True)
class TlsFailure:
    cause: str | None
    message: str  # the exact error, one sentence
    detail: dict[str, Any] = field(default_factory=dict)
    unreadable: bool = False  # the handshake broke off without saying why: unknown, not fail


def with_certificate(failure: TlsFailure, cert: PeerCertificate) -> TlsFailure:
    """The failure, with what the server presented (read for display only) and the fix that fits it."""
    detail = {**failure.detail, "certificate": cert.to_dict()}
    code = failure.detail.get("verify_code")
    message = (f"{failure.message}. The server presented (read for display only): subject {cert.subject}; "
               f"issuer {cert.issuer}; names {', '.join(cert.names) or 'none'}; valid until {cert.not_after}")
    if code in load_rules().tls["private_ca_verify_codes"]:
        message += (". If that issuer is your organisation's private CA, trust it with --ca-file CA.pem "
                    "(verification stays on)")
    elif code == load_rules().tls["hostname_mismatch_verify_code"]:
        message += ". Connect by one of those names"
    elif cert.days_left < 0:
        message += f". It expired {-cert.days_left} day(s) ago"
    return TlsFailure(failure.cause, message, detail, failure.unreadable)


def classify(exc: BaseException, mode: str, port: int) -> TlsFailure:
    """Why a handshake failed, with OpenSSL's own words."""
    r = load_rules().tls
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TlsFailure(
            "tls-certificate-invalid",
            f"certificate verification failed: {exc.verify_message} (OpenSSL verify error {exc.verify_code})",
            {"verify_code": exc.verify_code, "verify_message": exc.verify_message},
        )
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return TlsFailure("connection-timeout", "the TLS handshake timed out")
    if isinstance(exc, (ssl.SSLEOFError, ConnectionError)):
        return TlsFailure(None, f"the server closed the connection during the TLS handshake ({exc})",
                          unreadable=True)
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or ""
        detail = {"library": exc.library, "reason": reason}
        if reason in r["version_reasons"]:
            return TlsFailure("tls-version-unsupported",
                              f"no TLS version both sides accept ({reason}); this client offers TLS 1.2 and 1.3",
                              detail)
        if reason in r["not_tls_reasons"] and mode == "implicit":
            return TlsFailure(
                "tls-mode-mismatch",
                f"the server did not answer with TLS ({reason}): port {port} expects a plain start and STARTTLS; "
                "use --tls starttls",
                detail,
            )
        return TlsFailure(None, f"TLS handshake failed: {reason or exc}", detail)
    return TlsFailure(None, f"TLS handshake failed: {type(exc).__name__}", unreadable=True)
