"""The TokenIssuer hook (preflight.providers): what the probe's token linter knows about Google OAuth tokens
for SMTP AUTH XOAUTH2. Facts (opaque prefixes, the scope, ID-token issuers) are in data/token.toml."""

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
    if not any(token.startswith(p) for p in rules()["opaque_prefixes"]):
        return None
    return ("Google access tokens are opaque (ya29.…): their scope and expiry cannot be read here; "
            f"the token must carry the {rules()['scope']} scope.")


def issued(claims: Mapping[str, Any]) -> bool:
    return str(claims.get("iss", "")) in rules()["id_token_issuers"]


def token_problems(claims: Mapping[str, Any], user: str | None) -> list[str]:
    # A Google access token is opaque (opaque_token above): a JWT that is Google's is an ID token.
    return ["this is a Google ID token (a JWT from accounts.google.com), not an access token; "
            f"SMTP needs the access token (ya29.…) with the {rules()['scope']} scope"]
