"""`preflight check ADDRESS` for Google Workspace: this provider's MailboxChecker hook (preflight.providers).
Google needs no tenant lookup: MX names it, and its submission host is data (preflight/data/discovery.toml)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from preflight.discovery import Discovery
    from preflight.discovery_cli import AddressCheck


def check_discovered(req: AddressCheck, mailbox: str, found: Discovery, unchecked: list[str]) -> int:
    """Google has no sign-in without the admin's own client or service account: use a saved profile for this
    domain that needs nobody at a browser (a service account, or a stored OAuth refresh token)."""
    import os

    from preflight.errors import SignInError

    from . import profiles
    from .run import CheckArgs, check

    usable = [p for p in map(profiles.profile, profiles.names())
              if str(p.settings().get("domain") or "").lower() == found.domain
              and (p.settings().get("auth") == "service-account" or p.token() is not None)]
    if not usable:
        unchecked.append(f"the Workspace settings for {mailbox}: they need a Google admin sign-in of your own; "
                         f"run `preflight login google --domain {found.domain} ...` (docs/google-setup.md), then "
                         "this command again")
        return 3
    req.out("")
    try:
        return int(check(CheckArgs(mailboxes=[mailbox], profile=usable[0].name, fmt=req.fmt, output=req.output,
                                   fail_on=req.fail_on, open_browser=False,
                                   api_root=os.environ.get("PREFLIGHT_GOOGLE_API_ROOT"))))
    except SignInError as exc:
        req.out(f"Workspace settings not checked: sign-in failed: {' '.join(str(exc).split())}")
        return 4
