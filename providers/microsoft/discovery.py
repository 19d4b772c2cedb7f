"""`preflight check ADDRESS` for Microsoft 365: this provider's MailDomainOwner and MailboxChecker hooks
(preflight.providers).

The tenant lookup reads Entra ID's public OpenID configuration for the domain, per cloud (no credentials):
its token endpoint names the tenant, its instance and region sub scope the cloud. The submission host is
that cloud's SMTP AUTH endpoint. A discovered mailbox is checked with a cached sign-in, or with the
zero-setup device-code sign-in through Microsoft's public clients when the user agrees.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from preflight.discovery import Lookup, Mx, Submission, Tenant

if TYPE_CHECKING:
    import requests

    from preflight.discovery import Discovery
    from preflight.discovery_cli import AddressCheck

    from .clouds import Cloud

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@cache
def discovery_data() -> dict[str, Any]:
    return tomllib.loads(files(__package__ or __name__).joinpath("data/discovery.toml").read_text(encoding="utf-8"))


class TenantLookup:
    """The MailDomainOwner hook, with the clouds handed in (tests point them at a local fake)."""

    def __init__(self, clouds: Mapping[str, Cloud] | None = None, data: Mapping[str, Any] | None = None) -> None:
        self._clouds = clouds
        self.data = data or discovery_data()

    @property
    def clouds(self) -> Mapping[str, Cloud]:
        if self._clouds is None:
            from .clouds import load_clouds

            self._clouds = load_clouds()
        return self._clouds

    def find_tenant(self, domain: str, session: requests.Session, timeout: tuple[float, float]) -> Tenant:
        import requests

        problems = []
        for name in self.data["openid_clouds"]:
            cloud = self.clouds.get(name)
            if cloud is None:
                continue
            url = f"https://{cloud.login}{str(self.data['openid_path']).format(domain=domain)}"
            try:
                reply = session.get(url, timeout=timeout, allow_redirects=False)
            except requests.RequestException as exc:
                problems.append(f"{cloud.login}: {type(exc).__name__}")
                continue
            found = self._read_openid(reply, name)
            if found.status == "not-found":
                continue
            if found.status == "error":
                problems.append(f"{cloud.login}: {found.detail}")
                continue
            return found
        if problems:
            return Tenant("error", detail="; ".join(problems))
        return Tenant("not-found", detail="no Microsoft 365 tenant has this domain")

    def _read_openid(self, reply: requests.Response, asked: str) -> Tenant:
        try:
            body = reply.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return Tenant("error", detail=f"HTTP {reply.status_code}, not a JSON object")
        if reply.status_code != 200:
            text = str(body.get("error_description") or body.get("error") or "")
            if reply.status_code == 400 and self.data["tenant_not_found"] in text:  # not in this cloud
                return Tenant("not-found")
            return Tenant("error", detail=f"HTTP {reply.status_code} {text.splitlines()[0] if text else ''}".strip())
        endpoint = body.get("token_endpoint")
        parts = endpoint.split("/") if isinstance(endpoint, str) else []
        tenant_id = parts[3].lower() if len(parts) > 3 else ""
        if not _GUID.match(tenant_id):
            return Tenant("error", detail="the OpenID configuration names no tenant id (token_endpoint)")
        if tenant_id == str(self.data["consumer_tenant"]):
            return Tenant("consumer", tenant_id, None, "personal Microsoft accounts (Outlook.com), not Microsoft 365")
        instance = body.get("cloud_instance_name")
        sub = body.get("tenant_region_sub_scope") or ""
        cloud = next((str(i["cloud"]) for i in self.data.get("instance", [])
                      if i["cloud_instance_name"] == instance and i["sub_scope"] == sub), None)
        if cloud is None and instance is None:
            cloud = asked  # no instance named: the cloud that answered
        detail = "" if cloud else f"unknown cloud instance {instance!r} (region sub scope {sub!r})"
        return Tenant("found", tenant_id, cloud, detail)

    def submission(self, tenant: Tenant, mx: Lookup[Mx]) -> Submission | None:
        """The SMTP AUTH endpoint of the tenant's cloud (from the OpenID configuration, else the one its MX
        implies, else worldwide)."""
        cloud = self.clouds.get(tenant.cloud or self._mx_cloud(mx) or "global")
        if cloud is None or not cloud.smtp:
            return None
        host, _, port = cloud.smtp.rpartition(":")
        return Submission(host, int(port), f"the SMTP AUTH endpoint of {cloud.title}")

    def _mx_cloud(self, mx: Lookup[Mx]) -> str | None:
        for record in sorted(mx.records):
            for suffix, cloud in dict(self.data.get("mx_cloud", {})).items():
                if record.host.rstrip(".").lower().endswith(suffix):
                    return str(cloud)
        return None


def check_discovered(req: AddressCheck, mailbox: str, found: Discovery, unchecked: list[str]) -> int:
    """The MailboxChecker hook: the tenant's settings for `mailbox`, through a cached sign-in for the domain
    or tenant, or a device-code sign-in the user agrees to (Microsoft's public clients: no app needed)."""
    from preflight.errors import SignInError

    from . import inputs, tokencache
    from .auth import AuthMethod, SignInSettings, public_settings
    from .clouds import get_cloud
    from .inputs import options
    from .run import check

    tenant = found.tenant
    if tenant.status != "found" or tenant.id is None or tenant.cloud is None:
        why = tenant.detail or "the tenant lookup gave no answer"
        unchecked.append(f"the tenant's settings: its tenant id or cloud is not known ({why}); run "
                         f"`preflight check microsoft --tenant <tenant> --mailbox {mailbox}`")
        return 3
    cloud = get_cloud(tenant.cloud)
    root = tokencache.default_root()
    # A `preflight login microsoft --tenant` by domain or by id fills the cache this run can use.
    key = next((k for k in (found.domain, tenant.id)
                if tokencache.cached_accounts(tokencache.tenant_dir(root, cloud.name, k))), None)
    login = f"preflight login microsoft --tenant {found.domain}" + (
        f" --cloud {cloud.name}" if cloud.name != "global" else "")
    interactive = False
    if key is None:
        if req.sign_in is None and req.can_ask():
            req.sign_in = req.ask(f"Sign in to {found.domain} now to check its settings (device code, read-only; "
                                  "no app registration needed)?")
        if not req.sign_in:
            unchecked.append(f"the tenant's settings for {mailbox}: no cached sign-in for {found.domain}; run "
                             f"`{login}` (no app registration needed), then this command again, or pass --sign-in")
            return 3
        key, interactive = found.domain, True
    common: dict[str, Any] = {"auth": AuthMethod.DEVICE_CODE, "interactive": interactive,
                              "account": inputs.address(req.account, "--account") if req.account else None}
    settings = (SignInSettings(tenant=key, client_id=inputs.guid(req.client_id, "--client-id"), cloud=cloud,
                               **common)
                if req.client_id else public_settings(key, cloud, **common))
    req.out("")
    try:
        return int(check(settings, [mailbox], options(None, None, None, [], [mailbox]), None, req.fmt,
                         req.output, req.fail_on, progress=req.progress))
    except SignInError as exc:
        req.out(f"Tenant settings not checked: sign-in failed: {' '.join(str(exc).split())}")
        return 4
