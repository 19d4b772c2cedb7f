"""`--token-from PROVIDER`: the XOAUTH2 token obtained the way the sending service would, through the
provider plugin's optional `smtp_token(settings, user)` (see preflight.providers.SmtpTokenSource).

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

# Which --token-from options each first-party provider takes: a stray one is a mistake worth one clear line
# (a third-party provider gets whatever was given and judges it itself).
OPTIONS: dict[str, tuple[str, ...]] = {
    "microsoft": ("tenant", "client_id", "client_secret_env", "certificate", "certificate_password_env", "cloud"),
    "google": ("key_file",),
}
OPTION_FLAGS = {name: "--" + name.replace("_", "-") for names in OPTIONS.values() for name in names}
# What each first-party provider cannot do without: checked before any network, like every other input.
REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    "microsoft": (("tenant",), ("client_id",)),  # the secret may also come from a prompt
    "google": (("key_file",),),
}


def _registry() -> Registry:
    from preflight.providers import Registry

    return Registry.from_entry_points()


@dataclass(frozen=True)
class TokenRequest:
    provider: str
    user: str  # the mailbox: the token impersonates it (Google) or is used for it (Microsoft)
    settings: Mapping[str, Any] = field(default_factory=dict)
    source: Callable[[Mapping[str, Any], str], str] | None = None

    def describe(self) -> str:
        shown = ", ".join(f"{OPTION_FLAGS.get(k, k)} {v}" for k, v in self.settings.items()
                          if k in OPTION_FLAGS and v is not None)
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
    name = provider.lower()
    plugin = registry().get(name)  # InputError naming the installed providers
    source = getattr(plugin, "smtp_token", None)
    if not callable(source):
        raise InputError(f"--token-from {name}: that provider cannot obtain SMTP tokens")
    settings = {k: v for k, v in given.items() if v is not None}
    allowed = OPTIONS.get(name)
    if allowed is not None:
        stray = [OPTION_FLAGS.get(k, k) for k in settings if k not in allowed]
        if stray:
            raise InputError(f"--token-from {name} does not take {', '.join(stray)}")
    for alternatives in REQUIRED.get(name, ()):
        if not any(settings.get(k) for k in alternatives):
            needed = " or ".join(OPTION_FLAGS.get(k, k) for k in alternatives)
            raise InputError(f"--token-from {name} needs {needed}")
    return TokenRequest(name, user, {**settings, **extra}, source)
