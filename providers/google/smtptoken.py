"""An SMTP (XOAUTH2) token the way a sending service gets one: a service account with domain-wide delegation.

The key file is checked by providers.google.auth.load_key_file (a service-account key, an https token_uri);
google-auth signs the JWT assertion for the scope SMTP needs, impersonating the mailbox, and exchanges it
at the key's token_uri. This is the one place preflight asks for https://mail.google.com/ (full Gmail
access, which SMTP requires): only for an explicit `preflight probe --token-from google`, with the sending
service's key, for one AUTH; the token is never stored. Collection never requests it (scopes.toml).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from preflight.errors import InputError, SignInError
from preflight.providers import TokenOptions, TokenRefused

SMTP_SCOPE = "https://mail.google.com/"
DEFAULT_TIMEOUT = 30.0
# The probe's --token-from options this source takes.
OPTIONS = TokenOptions(allowed=("key_file",), required=(("key_file",),))


def smtp_token(settings: Mapping[str, Any], user: str) -> str:
    """An access token for `user`'s mailbox with the https://mail.google.com/ scope (XOAUTH2's user= is `user`)."""
    from google.auth import exceptions as gex
    from google.oauth2 import service_account

    from preflight.http import ApiError
    from preflight.runsecrets import RunSecrets

    from .auth import load_key_file, refresh, refresh_error, transport

    if not settings.get("key_file"):
        raise InputError("--token-from google needs --key-file PATH (the sending service's service-account key)")
    key = load_key_file(Path(str(settings["key_file"])).expanduser())
    secrets = settings.get("secrets") or RunSecrets()
    secrets.add(str(key.info.get("private_key") or ""))
    try:
        creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            key.info, scopes=[SMTP_SCOPE], subject=user
        )
    except (ValueError, TypeError, KeyError) as exc:
        # The message of a key-parsing error never includes the key itself, only its kind.
        raise InputError(f"{key.path}: the private key does not load ({type(exc).__name__})") from None
    try:
        # Our transport carries a timeout: google-auth's own would wait up to 120 s per call.
        refresh(creds, transport(float(settings.get("timeout") or DEFAULT_TIMEOUT)), secrets)
    except gex.RefreshError as exc:
        code, message = refresh_error(exc)
        raise TokenRefused(secrets.mask(code), secrets.mask(message)) from None
    except ApiError as exc:  # a reply that is no OAuth token response
        raise SignInError(exc.message) from None
    except gex.TransportError as exc:
        host = urlsplit(key.token_uri).netloc
        raise SignInError(f"cannot reach {host} ({type(exc).__name__})") from None
    return str(creds.token)
