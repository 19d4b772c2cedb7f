"""An SMTP (XOAUTH2) token the way a sending service gets one: app-only client credentials for Exchange Online.

The sending app's own credentials (client secret from an environment variable or a prompt, or a
certificate) are read by MicrosoftSignIn exactly as `preflight check microsoft --auth secret|certificate`
reads them; the token is requested on the tenant's own authority for the cloud's Exchange scope
(`<exchange resource>/.default`), so it carries whatever application permissions the admin consented for
that app, SMTP.SendAsApp among them. msal keeps it in an in-memory cache only: nothing is persisted.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from preflight.errors import InputError, SignInError
from preflight.providers import TokenOptions, TokenRefused

from . import inputs

DEFAULT_TIMEOUT = 30.0
# The probe's --token-from options this source takes; the client secret may also come from a prompt.
OPTIONS = TokenOptions(
    allowed=("tenant", "client_id", "client_secret_env", "certificate", "certificate_password_env", "cloud"),
    required=(("tenant",), ("client_id",)),
)


def _settings(settings: Mapping[str, Any]) -> Any:
    from .auth import AuthMethod, SignInSettings
    from .clouds import get_cloud

    tenant, client_id = settings.get("tenant"), settings.get("client_id")
    if not tenant or not client_id:
        raise InputError("--token-from microsoft needs --tenant (the mailbox's tenant) and --client-id "
                         "(the sending service's app)")
    certificate = settings.get("certificate")
    if settings.get("client_secret_env") and certificate:
        raise InputError("give --client-secret-env or --certificate, not both")
    if settings.get("certificate_password_env") and not certificate:
        raise InputError("--certificate-password-env needs --certificate")
    return SignInSettings(
        tenant=inputs.tenant(str(tenant)),
        client_id=inputs.guid(str(client_id), "--client-id"),
        cloud=get_cloud(str(settings.get("cloud") or "global")),
        auth=AuthMethod.CERTIFICATE if certificate else AuthMethod.SECRET,
        certificate=Path(str(certificate)).expanduser() if certificate else None,
        certificate_password_env=settings.get("certificate_password_env"),
        client_secret_env=settings.get("client_secret_env"),
        interactive=bool(settings.get("interactive", False)),
    )


def smtp_token(settings: Mapping[str, Any], user: str) -> str:
    """An app-only access token for SMTP AUTH XOAUTH2 as `user` (the mailbox goes in XOAUTH2's user=)."""
    import requests

    from .auth import MicrosoftSignIn, describe

    s = _settings(settings)
    timeout = float(settings.get("timeout") or DEFAULT_TIMEOUT)
    signin = MicrosoftSignIn(s, persistence=None, timeout=(timeout, timeout), out=lambda _msg: None,
                             secrets=settings.get("secrets"), total=timeout)
    signin.check_inputs()  # the secret or certificate, read before anything touches the network
    # No token cache: build_app(None) leaves msal its default in-memory cache, gone when this returns.
    app = signin.build_app(None)
    try:
        result = app.acquire_token_for_client(scopes=[s.cloud.exchange_scope])
    except requests.RequestException as exc:
        raise SignInError(f"cannot reach {s.cloud.login} ({type(exc).__name__})") from None
    except Exception as exc:  # msal on a reply that is no OAuth response (HTML, truncated or empty JSON)
        raise SignInError(signin._not_oauth(exc)) from None
    if result:
        signin.secrets.add_token_response(dict(result))
    if not result or "access_token" not in result:
        code, message = describe(result)
        raise TokenRefused(signin.secrets.mask(code), signin.secrets.mask(message))
    return str(result["access_token"])
