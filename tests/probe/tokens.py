"""Unsigned look-alikes of real access tokens: the claim names and shapes Entra ID issues (v1.0 tokens).

The probe never verifies signatures; the claims are what it reads.
"""

from __future__ import annotations

import time

from tests.jwts import unsigned_jwt

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
# The header of an Entra ID v1.0 access token.
ENTRA_HEADER = {"typ": "JWT", "nonce": "Xo1cGV5RqI", "alg": "RS256", "x5t": "kWbkaa6qs8wsTnBwiiNYOhHbnAw",
                "kid": "kWbkaa6qs8wsTnBwiiNYOhHbnAw"}


def delegated(user: str, *, aud: str = "https://outlook.office.com", scp: str = "SMTP.Send User.Read",
              exp_in: int = 3600, marker: str = "") -> str:
    now = int(time.time())
    return unsigned_jwt({
        "aud": aud, "iss": f"https://sts.windows.net/{TENANT}/", "iat": now - 60, "nbf": now - 60,
        "exp": now + exp_in, "acr": "1", "amr": ["pwd", "mfa"], "app_displayname": "Contoso ATS",
        "appid": "00001111-aaaa-2222-bbbb-3333cccc4444", "appidacr": "0", "ipaddr": "203.0.113.10",
        "name": "Jobs", "oid": "6ad2b8e1-7c4d-4b1e-9f0a-1b2c3d4e5f60", "scp": scp, "sub": "x" + marker,
        "tid": TENANT, "unique_name": user, "upn": user, "uti": "AbCdEf", "ver": "1.0",
    }, ENTRA_HEADER)


def app_only(*, aud: str = "https://outlook.office365.com", roles: list[str] | None = None,
             exp_in: int = 3600, marker: str = "") -> str:
    now = int(time.time())
    return unsigned_jwt({
        "aud": aud, "iss": f"https://sts.windows.net/{TENANT}/", "iat": now - 60, "nbf": now - 60,
        "exp": now + exp_in, "app_displayname": "Contoso ATS", "appid": "00001111-aaaa-2222-bbbb-3333cccc4444",
        "appidacr": "1", "idp": f"https://sts.windows.net/{TENANT}/", "oid": "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
        "roles": ["SMTP.SendAsApp"] if roles is None else roles, "sub": "y" + marker, "tid": TENANT,
        "uti": "GhIjKl", "ver": "1.0",
    }, ENTRA_HEADER)
