"""Google Workspace provider plugin. Cheap to import: sign-in libraries load only when signing in.

Besides the required parts (PackagedProvider's conventions) it implements the optional hooks of
preflight.providers, each by a module of its own: SmtpTokenSource (smtptoken), TokenIssuer (tokenlint) and
MailboxChecker (discovery). It needs no MailDomainOwner: MX names it, and its submission host is core data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from preflight.providers import PackagedProvider, TokenOptions

if TYPE_CHECKING:
    from preflight.discovery import Discovery
    from preflight.discovery_cli import AddressCheck
    from preflight.memo import RunMemo


class Google(PackagedProvider):
    audit_imports = (*PackagedProvider.audit_imports, ".collect", ".api", ".auth", "google.oauth2.service_account",
                     "google.auth.transport")

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

    def warm(self, settings: Sequence[Mapping[str, Any]], memo: RunMemo) -> None:
        self._attr("run", "warm")(settings, memo)

    def check_discovered(self, request: AddressCheck, mailbox: str, found: Discovery, unchecked: list[str]) -> int:
        return int(self._attr("discovery", "check_discovered")(request, mailbox, found, unchecked))


provider = Google(__name__, "google", "Google Workspace")
