"""Lint an OAuth access token before XOAUTH2 uses it: read the JWT claims without verifying them.

The signature is not checked (only the server can), so every finding here is a warning about what the
server will most likely say; the AUTH reply is the verdict. What an issuer's tokens must carry comes from
the providers' TokenIssuer hooks (preflight.providers); the expiry rules here hold for every JWT.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from preflight.providers import TokenIssuer

# "jwt", "opaque" (not a JWT, nobody recognised it) or "<provider>-opaque" (an issuer's own opaque token)
Kind = str
OPAQUE = "opaque"

# Claims worth showing: who, for what, until when. Never the token or its signature.
SHOWN_CLAIMS = ("aud", "iss", "tid", "appid", "azp", "app_displayname", "scp", "roles", "upn",
                "preferred_username", "unique_name", "email", "ver", "iat", "nbf", "exp")


@dataclass(frozen=True)
class Problem:
    message: str
    unknown: bool = False  # could not be judged (opaque token), rather than a warning


@dataclass(frozen=True)
class TokenLint:
    kind: Kind
    provider: str | None  # who issued it, as far as the claims tell
    claims: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def issuer_opaque(self) -> bool:
        """An opaque token its issuer recognised: nothing to lint, nothing wrong either."""
        return self.kind.endswith("-" + OPAQUE)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "provider": self.provider, "claims": self.claims,
                "problems": [p.message for p in self.problems if not p.unknown],
                "notes": self.notes + [p.message for p in self.problems if p.unknown]}


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def decode_claims(token: str) -> dict[str, Any] | None:
    """The payload of a compact JWS, or None when the token is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(_b64url(parts[0]))
        payload = json.loads(_b64url(parts[1]))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    return payload


def _stamp(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC).isoformat().replace("+00:00", "Z")
        except (OverflowError, OSError, ValueError):
            return None
    return None


def token_issuers() -> Mapping[str, TokenIssuer]:
    from preflight.providers import Registry, TokenIssuer

    return Registry.from_entry_points().hooked(TokenIssuer)  # type: ignore[type-abstract]


def lint(token: str, user: str | None, provider: str | None, now: datetime,
         issuers: Mapping[str, TokenIssuer] | None = None) -> TokenLint:
    """`provider`: whose token it should be (--provider, the host's), for a JWT whose issuer nobody claims.
    `issuers`: the TokenIssuer hooks by provider name; None: the installed providers'."""
    issuers = token_issuers() if issuers is None else issuers
    for name, issuer in issuers.items():
        note = issuer.opaque_token(token)
        if note is not None:
            return TokenLint(f"{name}-{OPAQUE}", name, notes=[note])
    claims = decode_claims(token)
    if claims is None:
        return TokenLint(OPAQUE, provider, problems=[Problem(
            "the token is not a JWT, so its audience, scope and expiry cannot be checked before use", unknown=True)])
    shown = {k: claims[k] for k in SHOWN_CLAIMS if k in claims}
    for k in ("iat", "nbf", "exp"):
        if _stamp(claims.get(k)):
            shown[f"{k}_utc"] = _stamp(claims.get(k))
    by = next((name for name, issuer in issuers.items() if issuer.issued(claims)), None) or provider
    problems: list[Problem] = []
    notes: list[str] = []
    exp = claims.get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool) and math.isfinite(exp):  # JSON allows NaN
        left = exp - now.timestamp()
        if left <= 0:
            problems.append(Problem(f"the token expired at {_stamp(exp)} ({int(-left // 60)} minutes ago)"))
        else:
            notes.append(f"the token expires at {_stamp(exp)} (in {int(left // 60)} minutes)")
    else:
        problems.append(Problem("the token has no exp claim", unknown=True))
    nbf = claims.get("nbf")
    if isinstance(nbf, (int, float)) and not isinstance(nbf, bool) and nbf > now.timestamp() + 300:
        problems.append(Problem(f"the token is not valid before {_stamp(nbf)} (check this machine's clock)"))
    if by is not None and by in issuers:
        problems += [Problem(message) for message in issuers[by].token_problems(claims, user)]
    return TokenLint("jwt", by, shown, problems, notes)
