"""Validation of what the user types: tenants, GUIDs, CIDRs (addresses and --from: preflight.addresses)."""

from __future__ import annotations

import ipaddress
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from preflight.addresses import address, from_addresses, is_domain
from preflight.errors import InputError

__all__ = ["address", "cidr", "from_addresses", "guid", "is_guid", "options", "sign_in_settings", "tenant"]
from preflight.model import Method
from preflight.snapshot import Options

if TYPE_CHECKING:
    from .auth import SignInSettings



def guid(value: str, option: str) -> str:
    try:
        return str(uuid.UUID(value.strip()))
    except (ValueError, AttributeError):
        raise InputError(f"{option}: {value!r} is not a GUID (like 00000000-0000-0000-0000-000000000000)") from None


def is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def tenant(value: str) -> str:
    """A tenant id (GUID) or one of its domains; never /common or /organizations (app-only needs a tenant)."""
    value = value.strip()
    if is_guid(value):
        return str(uuid.UUID(value))
    if is_domain(value):
        return value.lower()
    raise InputError(f"--tenant: {value!r} is not a tenant id (GUID) or domain (like contoso.onmicrosoft.com)")


def cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise InputError(f"--sender-ip: {value!r} is not an IP address or CIDR range (like 203.0.113.0/24)") from None


def sign_in_settings(
    tenant_value: str, client_id: str | None, auth: str, certificate: Path | None,
    certificate_password_env: str | None, client_secret_env: str | None, cloud: str, account: str | None,
) -> SignInSettings:
    """The sign-in the options describe, checked before any network: app-only needs your own app registration."""
    from .auth import AuthMethod, SignInSettings, public_settings
    from .clouds import get_cloud

    method = AuthMethod(auth)
    if method is AuthMethod.CERTIFICATE and certificate is None:
        raise InputError("--auth certificate needs --certificate PATH")
    if client_id is None:
        if not method.delegated:
            raise InputError(f"--auth {method.value} needs --client-id: app-only sign-in uses your own app "
                             "registration (docs/microsoft-setup.md)")
        return public_settings(tenant(tenant_value), get_cloud(cloud), auth=method,
                               account=address(account, "--account") if account else None)
    return SignInSettings(
        tenant=tenant(tenant_value),
        client_id=guid(client_id, "--client-id"),
        cloud=get_cloud(cloud),
        auth=method,
        certificate=certificate,
        certificate_password_env=certificate_password_env,
        client_secret_env=client_secret_env,
        account=address(account, "--account") if account else None,
    )


def options(method: list[Method] | None, sender_ip: list[str] | None, app_id: str | None, froms: list[str],
            boxes: list[str]) -> Options:
    """The snapshot options of a check: methods (default all three), sender IPs, the sending app, From addresses."""
    return Options(
        methods=tuple(dict.fromkeys(method)) if method else tuple(Method),
        sender_ips=tuple(cidr(ip) for ip in sender_ip or []),
        app_id=guid(app_id, "--app-id") if app_id else None,
        from_addresses=from_addresses(froms, boxes),
    )
