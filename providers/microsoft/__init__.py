"""Microsoft 365 / Entra ID provider plugin. Cheap to import: sign-in libraries load only when signing in.

Besides the required parts (PackagedProvider's conventions) it implements the optional hooks of
preflight.providers, each by a module of its own: SmtpTokenSource (smtptoken), TokenIssuer (tokenlint),
MailDomainOwner and MailboxChecker (discovery).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from preflight.providers import PackagedProvider, TokenOptions

if TYPE_CHECKING:
    import requests

    from preflight.discovery import Discovery, Lookup, Mx, Submission, Tenant
    from preflight.discovery_cli import AddressCheck


class Microsoft(PackagedProvider):
    audit_imports = (*PackagedProvider.audit_imports, ".collect", ".auth", "msal")

    def smtp_token_options(self) -> TokenOptions:
        options: TokenOptions = self._attr("smtptoken", "OPTIONS")
        return options

    def smtp_token(self, settings: Mapping[str, Any], user: str) -> str:
        token: str = self._attr("smtptoken", "smtp_token")(settings, user)
        return token

    def opaque_token(self, token: str) -> str | None:
        note: str | None = self._attr("tokenlint", "opaque_token")(token)
        return note

    def issued(self, claims: Mapping[str, Any]) -> bool:
        return bool(self._attr("tokenlint", "issued")(claims))

    def token_problems(self, claims: Mapping[str, Any], user: str | None) -> list[str]:
        problems: list[str] = self._attr("tokenlint", "token_problems")(claims, user)
        return problems

    def find_tenant(self, domain: str, session: requests.Session, timeout: tuple[float, float]) -> Tenant:
        tenant: Tenant = self._attr("discovery", "TenantLookup")().find_tenant(domain, session, timeout)
        return tenant

    def submission(self, tenant: Tenant, mx: Lookup[Mx]) -> Submission | None:
        found: Submission | None = self._attr("discovery", "TenantLookup")().submission(tenant, mx)
        return found

    def check_discovered(self, request: AddressCheck, mailbox: str, found: Discovery, unchecked: list[str]) -> int:
        return int(self._attr("discovery", "check_discovered")(request, mailbox, found, unchecked))


provider = Microsoft(__name__, "microsoft", "Microsoft 365")
