"""Microsoft 365 / Entra ID provider plugin. Cheap to import: sign-in libraries load only when signing in."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping, Sequence
from importlib.abc import Traversable
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from preflight.checks import Check

if TYPE_CHECKING:
    from preflight.providers import CollectRequest


class _Provider:
    name = "microsoft"
    title = "Microsoft 365 / Entra ID"

    def checks(self) -> Sequence[Check]:
        from providers.microsoft.checks import ALL_CHECKS

        return ALL_CHECKS

    def permissions(self) -> Mapping[str, str]:
        text = files(__name__).joinpath("data/permissions.toml").read_text(encoding="utf-8")
        return {k: str(v) for k, v in tomllib.loads(text).items()}

    def demo_snapshots(self) -> Sequence[Traversable]:
        demo = files(__name__).joinpath("demo")
        return sorted((f for f in demo.iterdir() if f.name.endswith(".json")), key=lambda f: f.name) \
            if demo.is_dir() else []

    def commands(self) -> Mapping[str, Callable[..., Any]]:
        from providers.microsoft.commands import COMMANDS

        return COMMANDS

    def collect(self, request: CollectRequest) -> dict[str, Any]:
        from providers.microsoft.run import collect_request

        return collect_request(request)

    def smtp_token(self, settings: Mapping[str, Any], user: str) -> str:
        from providers.microsoft.smtptoken import smtp_token

        return smtp_token(settings, user)


provider = _Provider()
