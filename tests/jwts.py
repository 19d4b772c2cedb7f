"""Unsigned JWTs: the form access and ID tokens travel in, with the claims a test needs.

Clients (msal, requests, the probe's linter) never verify an access token's signature, and the fakes decode
their own, so random signature bytes are enough; they also make every token unique, which the leak checks
rely on (tests/leaks.py looks for each issued token).
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

HEADER = {"typ": "JWT", "alg": "RS256", "kid": "fake-signing-key"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_jwt(claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    return ".".join([b64url(json.dumps(header or HEADER).encode()), b64url(json.dumps(claims).encode()),
                     b64url(secrets.token_bytes(32))])


def claims_of(token: str) -> dict[str, Any]:
    """The claims of a token in JWT form; {} for anything else (an opaque token, garbage)."""
    try:
        part = token.split(".")[1]
        return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))
    except (IndexError, ValueError):
        return {}
