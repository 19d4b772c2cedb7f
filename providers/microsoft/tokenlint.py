"""The TokenIssuer hook (preflight.providers): what the probe's token linter knows about Microsoft identity
platform access tokens for SMTP AUTH XOAUTH2. Claims are read unverified; the AUTH reply stays the verdict.
Facts (audiences, issuers, scope and role names) are in data/token.toml."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Any


@cache
def rules() -> dict[str, Any]:
    """Parsed once per process: the file ships with the package."""
    return tomllib.loads(files(__package__ or __name__).joinpath("data/token.toml").read_text(encoding="utf-8"))


def opaque_token(token: str) -> str | None:
    return None  # Microsoft access tokens for Exchange Online are JWTs


def issued(claims: Mapping[str, Any]) -> bool:
    iss = str(claims.get("iss", ""))
    return any(iss.startswith(p) for p in rules()["issuers"])


def token_problems(claims: Mapping[str, Any], user: str | None) -> list[str]:
    data = rules()
    problems: list[str] = []
    aud = claims.get("aud")
    audiences = [a.rstrip("/").lower() for a in data["audiences"]]
    if not isinstance(aud, str) or aud.rstrip("/").lower() not in audiences:
        wrong = data["wrong_audiences"].get(aud.rstrip("/") if isinstance(aud, str) else "")
        what = f" ({wrong})" if wrong else ""
        problems.append(
            f"the token's audience is {aud!r}{what}, not Exchange Online; SMTP needs a token for "
            "https://outlook.office.com/SMTP.Send (delegated) or https://outlook.office365.com/.default (app-only)")
    scopes = str(claims.get("scp", "")).split()
    roles = claims.get("roles") if isinstance(claims.get("roles"), list) else []
    if "scp" in claims and data["delegated_scope"] not in scopes:
        problems.append(f"the delegated token's scp ({' '.join(scopes) or 'empty'}) lacks {data['delegated_scope']}")
    elif "scp" not in claims and data["app_role"] not in (roles or []):
        problems.append(f"the app-only token's roles ({', '.join(map(str, roles or [])) or 'none'}) lack "
                        f"{data['app_role']}: grant it on Office 365 Exchange Online with admin consent")
    signed_in = claims.get("upn") or claims.get("preferred_username") or claims.get("unique_name")
    if "scp" in claims and user and isinstance(signed_in, str) and signed_in.lower() != user.lower():
        problems.append(
            f"the token was issued to {signed_in}, but the sign-in is for {user}; a delegated token only works "
            f"for its own mailbox or a shared mailbox {signed_in} has FullAccess to")
    return problems
