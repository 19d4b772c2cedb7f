"""`--token-from PROVIDER`: the XOAUTH2 token obtained the way the sending service would, through the
provider plugin's optional SmtpTokenSource hook (preflight.providers), which also says which options it takes.

The registry is loaded only when --token-from is given. The settings name the sending app and where its
credentials live (ids, paths, environment variable names), never a secret; the token comes back wrapped
in a Secret at once, so it cannot reach a transcript, a finding or a traceback's repr.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from preflight.errors import InputError
from preflight.probe.secrets import Secret

if TYPE_CHECKING:
    from preflight.providers import Registry


def flag(option: str) -> str:
    """How an option name of ProbeArgs reads on the command line: client_id -> --client-id."""
    return "--" + option.replace("_", "-")


def _registry() -> Registry:
    from preflight.providers import Registry

    return Registry.from_entry_points()


@dataclass(frozen=True)
class TokenRequest:
    provider: str
    user: str  # the mailbox: the token impersonates it (Google) or is used for it (Microsoft)
    settings: Mapping[str, Any] = field(default_factory=dict)
    source: Callable[[Mapping[str, Any], str], str] | None = None
    options: tuple[str, ...] = ()  # the source's own options: shown, unlike the run's extras (timeout, secrets)

    def describe(self) -> str:
        shown = ", ".join(f"{flag(k)} {v}" for k, v in self.settings.items() if k in self.options and v is not None)
        return f"Requesting an SMTP token from {self.provider} for {self.user}" + (f" ({shown})" if shown else "")

    def fetch(self) -> Secret:
        """The token, or InputError / TokenRefused / SignInError from the provider (see SmtpTokenSource)."""
        assert self.source is not None
        token = self.source(self.settings, self.user)
        if not isinstance(token, str) or not token or any(ch in token for ch in "\r\n\0 "):
            raise InputError(f"--token-from {self.provider}: the provider returned no usable token")
        return Secret(token)


def token_request(provider: str, user: str, given: Mapping[str, Any], extra: Mapping[str, Any],
                  registry: Callable[[], Registry] = _registry) -> TokenRequest:
    """Check the provider can issue SMTP tokens and takes these options; no network, no secret read yet."""
    from preflight.providers import SmtpTokenSource

    name = provider.lower()
    plugin = registry().get(name)  # InputError naming the installed providers
    if not isinstance(plugin, SmtpTokenSource):
        raise InputError(f"--token-from {name}: that provider cannot obtain SMTP tokens")
    options = plugin.smtp_token_options()
    settings = {k: v for k, v in given.items() if v is not None}
    stray = [flag(k) for k in settings if k not in options.allowed]
    if stray:
        raise InputError(f"--token-from {name} does not take {', '.join(stray)}")
    for alternatives in options.required:
        if not any(settings.get(k) for k in alternatives):
            raise InputError(f"--token-from {name} needs {' or '.join(flag(k) for k in alternatives)}")
    return TokenRequest(name, user, {**settings, **extra}, plugin.smtp_token, options.allowed)
