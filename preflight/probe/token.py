"""Lint an OAuth access token before XOAUTH2 uses it: read the JWT claims without verifying them.

The signature is not checked (only the server can), so every finding here is a warning about what the
server will most likely say; the AUTH reply is the verdict. Google access tokens are opaque.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from preflight.probe.rules import load_rules

Kind = Literal["jwt", "google-opaque", "opaque"]

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


def _issuer(claims: dict[str, Any], rules: Mapping[str, Any]) -> str | None:
    iss = str(claims.get("iss", ""))
    if any(iss.startswith(p) for p in rules["microsoft"]["issuers"]):
        return "microsoft"
    if iss in rules["google"]["id_token_issuers"]:
        return "google"
    return None


def lint(token: str, user: str | None, provider: str | None, now: datetime) -> TokenLint:
    rules = load_rules().token
    if any(token.startswith(p) for p in rules["google"]["opaque_prefixes"]):
        return TokenLint("google-opaque", "google", notes=[
            "Google access tokens are opaque (ya29.…): their scope and expiry cannot be read here; "
            f"the token must carry the {rules['google']['scope']} scope."])
    claims = decode_claims(token)
    if claims is None:
        return TokenLint("opaque", provider, problems=[Problem(
            "the token is not a JWT, so its audience, scope and expiry cannot be checked before use", unknown=True)])
    shown = {k: claims[k] for k in SHOWN_CLAIMS if k in claims}
    for k in ("iat", "nbf", "exp"):
        if _stamp(claims.get(k)):
            shown[f"{k}_utc"] = _stamp(claims.get(k))
    issuer = _issuer(claims, rules) or provider
    problems: list[Problem] = []
    notes: list[str] = []
    exp = claims.get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
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
    if issuer == "microsoft":
        problems += _microsoft(claims, user, rules["microsoft"])
    elif issuer == "google":
        problems.append(Problem("this is a Google ID token (a JWT from accounts.google.com), not an access token; "
                                "SMTP needs the access token (ya29.…) with the https://mail.google.com/ scope"))
    return TokenLint("jwt", issuer, shown, problems, notes)


def _microsoft(claims: dict[str, Any], user: str | None, rules: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    aud = claims.get("aud")
    audiences = [a.rstrip("/").lower() for a in rules["audiences"]]
    if not isinstance(aud, str) or aud.rstrip("/").lower() not in audiences:
        wrong = rules["wrong_audiences"].get(aud.rstrip("/") if isinstance(aud, str) else "")
        what = f" ({wrong})" if wrong else ""
        problems.append(Problem(
            f"the token's audience is {aud!r}{what}, not Exchange Online; SMTP needs a token for "
            "https://outlook.office.com/SMTP.Send (delegated) or https://outlook.office365.com/.default (app-only)"))
    scopes = str(claims.get("scp", "")).split()
    roles = claims.get("roles") if isinstance(claims.get("roles"), list) else []
    if "scp" in claims and rules["delegated_scope"] not in scopes:
        problems.append(Problem(f"the delegated token's scp ({' '.join(scopes) or 'empty'}) lacks "
                                f"{rules['delegated_scope']}"))
    elif "scp" not in claims and rules["app_role"] not in (roles or []):
        problems.append(Problem(f"the app-only token's roles ({', '.join(map(str, roles or [])) or 'none'}) lack "
                                f"{rules['app_role']}: grant it on Office 365 Exchange Online with admin consent"))
    signed_in = claims.get("upn") or claims.get("preferred_username") or claims.get("unique_name")
    if "scp" in claims and user and isinstance(signed_in, str) and signed_in.lower() != user.lower():
        problems.append(Problem(
            f"the token was issued to {signed_in}, but the sign-in is for {user}; a delegated token only works "
            f"for its own mailbox or a shared mailbox {signed_in} has FullAccess to"))
    return problems
