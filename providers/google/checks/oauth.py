"""OAuth sign-in: API controls for a user's own consent, and the domain-wide delegation an app-only sender needs.

A delegated (user) token for https://mail.google.com/ is subject to Security > API controls: unconfigured
third-party apps (api_controls.unconfigured_third_party_apps) and restricted Google services
(api_controls.google_services). Both spare apps configured as Trusted, and no Google API lists those:
a grant on record (Directory tokens) passes, and blocking controls without one are `unknown`, naming the
console page and the client id to check, never a guessed failure. A service account with domain-wide
delegation is not subject to them: an admin's delegation grant authorises it, not the user's consent
(google.md §4), and no Google API lists those grants.
"""

from __future__ import annotations

from typing import Any

from preflight.checks import Context, Outcome, check, failed, passed, skipped, unknown
from preflight.model import Method, Severity
from preflight.snapshot import Unavailable

from ..resources import Activities, Tokens
from .auditlog import Logged, events
from .common import EFFECTIVE_READS, User, account_name, effective, for_users, only_users
from .facts import facts

MAIL_SCOPE = "https://mail.google.com/"
DWD_PATH = "Security > Access and data control > API controls > Domain-wide delegation"
APP_ACCESS_PATH = "Security > Access and data control > API controls > Manage third-party app access"
DWD_HELP = "https://support.google.com/a/answer/162106"


def _granted(ctx: Context, app_id: str | None) -> tuple[bool, str, dict[str, Any]]:
    """Whether the user already granted the app the mail scope (Directory tokens, opt-in), and if not, what
    would show it (for messages)."""
    if not app_id:
        return False, "give --app-id and --with-tokens to look for one", {}
    try:
        tokens = ctx.mailbox_as("tokens", Tokens).root
    except Unavailable as exc:
        return False, f"Directory tokens were not read ({exc.reason}; --with-tokens)", {}
    for token in tokens:
        if facts().same_client(token.clientId, app_id) and MAIL_SCOPE in token.scopes:
            return True, "", {"token.clientId": token.clientId, "token.displayText": token.displayText,
                              "token.scopes": token.scopes}
    return False, "the user has not granted it yet (Directory tokens)", {
        "tokens": f"no token of {app_id} with {MAIL_SCOPE}"}


def _gmail_entry(entry: Any) -> str:
    """What one api_controls.google_services entry for a Gmail scopes group means (data: settings.toml)."""
    if entry is None:
        return "absent"
    enabled = entry.get("isEnabled") if isinstance(entry, dict) else None
    if enabled is False:
        return "restricted"
    if enabled is True:
        return "unrestricted"
    return "unrecognised"


def _gmail_restriction(ctx: Context, user: User) -> tuple[str | None, str | None, dict[str, Any]]:
    """(restricted-by, undecided-because, evidence) from api_controls.google_services."""
    eff = effective(ctx, user, "api_controls.google_services")
    services = eff.value.get("services") or []
    if not isinstance(services, list):
        raise TypeError("api_controls.google_services.services is not a list")
    groups = facts().gmail_scopes_groups
    gmail = [s for s in services if isinstance(s, dict) and s.get("scopesGroup") in groups]
    evidence: dict[str, Any] = {"api_controls.google_services.services (Gmail)": gmail}
    restricted: str | None = None
    undecided: str | None = None
    for group in groups:
        meaning = eff.entry("services", group, _gmail_entry)
        if meaning == "absent":
            continue
        src = eff.source(f"services[{group}]")
        where = f" ({src.description})" if src else ""
        evidence[f"services[{group}] source"] = src.description if src else None
        if meaning == "restricted" and restricted is None:
            restricted = f"Gmail is Restricted in API controls ({group} isEnabled false{where})"
        elif meaning == "unrecognised" and undecided is None:
            undecided = f"api_controls.google_services lists {group} without a boolean isEnabled{where}"
    return restricted, None if restricted else undecided, evidence


@for_users
def _delegated_consent(ctx: Context, user: User) -> Outcome:
    who = account_name(ctx, user)
    app_id = ctx.options.app_id
    app = f"the app {app_id}" if app_id else "the sending app"
    granted, not_shown, evidence = _granted(ctx, app_id)
    if granted:
        return passed(f"{who} has already granted {app} {MAIL_SCOPE} (Directory tokens).", evidence)
    unconfigured = effective(ctx, user, "api_controls.unconfigured_third_party_apps")
    evidence.update(unconfigured.evidence("accessLevel"))
    meaning = unconfigured.settle("accessLevel", facts().enum("accessLevel").meaning)
    level = unconfigured.value.get("accessLevel")
    restricted, undecided, gmail_evidence = _gmail_restriction(ctx, user)
    evidence.update(gmail_evidence)
    blocked: str | None = None
    if meaning in ("block", "sign_in_only"):
        what = "blocked" if meaning == "block" else "limited to Google sign-in scopes"
        blocked = (f"Unconfigured third-party apps are {what} for {who} (accessLevel {level} "
                   f"{unconfigured.origin('accessLevel')})")
    elif restricted:
        blocked = f"{restricted} for {who}"
    if blocked:
        # The recommended secure setup: the sending app is configured as Trusted, and no Google API lists
        # configured apps. Blocked for unconfigured apps is not blocked for this one: do not guess.
        client = f"client id {app_id}" if app_id else "the sending app's OAuth client id"
        evidence["console"] = APP_ACCESS_PATH
        return unknown(
            f"{blocked}: {app} can obtain {MAIL_SCOPE} only if it is Trusted for the user's org unit or holds "
            f"that scope by domain-wide delegation (which also spares users the consent screen, {DWD_HELP}); no "
            f"Google API shows either, and no grant of it is on record ({not_shown}). Check {client} in "
            f"{APP_ACCESS_PATH}.",
            evidence,
        )
    if meaning is None or meaning == "unspecified":
        return unknown(
            f"Unconfigured third-party app access for {who} is {level!r} {unconfigured.origin('accessLevel')}, "
            "which does not say whether apps are allowed; check it in the Admin console.",
            evidence,
        )
    if undecided:
        return unknown(f"Whether Gmail is restricted for {who} is unknown: {undecided}.", evidence)
    shown = (
        f"accessLevel {level} {unconfigured.origin('accessLevel')}" if level is not None
        else "no policy sets it, and the Admin console default allows them"
    )
    return passed(
        f"API controls let {who} grant {app} {MAIL_SCOPE}: unconfigured third-party apps are allowed ({shown}) "
        "and Gmail is not restricted.",
        evidence,
    )


@only_users
@check(
    "google.api-controls",
    "API controls let the user grant the app Gmail access",
    severity=Severity.HIGH,
    cause="third-party-apps-blocked",
    methods=(Method.OAUTH_DELEGATED, Method.OAUTH_APP),
    order=70,
    reads=("user", *EFFECTIVE_READS, "tokens"),
)
def api_controls(ctx: Context) -> Outcome | None:
    if ctx.method is Method.OAUTH_APP:
        return skipped(
            "A service account with domain-wide delegation is authorised by the admin's delegation grant, not by "
            "the user's consent, so the unconfigured-apps and restricted-services controls do not apply to it."
        )
    return _delegated_consent(ctx)


def _by(event: Logged) -> str:
    return f" by {event.actor}" if event.actor else ""


@check(
    "google.dwd-grant",
    "Domain-wide delegation grants the sending app the Gmail scope",
    severity=Severity.HIGH,
    cause="oauth-app-not-authorized",
    scope="tenant",
    methods=(Method.OAUTH_APP,),
    order=75,
    reads=("delegationEvents",),
)
def dwd_grant(ctx: Context) -> Outcome:
    app_id = ctx.options.app_id
    client = f"client id {app_id}" if app_id else "the sending service account's client id (pass --app-id)"
    evidence: dict[str, Any] = {"app_id": app_id, "scope": MAIL_SCOPE, "console": DWD_PATH}
    # No API lists delegation grants (google.md §4, ScubaGoggles #1066); the admin audit log shows changes to them.
    log = facts().audit_log
    seen = ""
    if app_id:
        try:
            changes = [e for e in events(ctx.org_as("delegationEvents", Activities).root,
                                         (log["delegation_grant"], log["delegation_removal"]))
                       if any(facts().same_client(c, app_id) for c in e.values(log["delegation_client_parameter"]))]
        except Unavailable as exc:
            seen = f" The admin audit log was not read either ({exc.reason}; --with-audit-log)."
        else:
            last = changes[-1] if changes else None
            evidence["audit log"] = [f"{e.time} {e.name} {', '.join(e.values(log['delegation_scopes_parameter']))}"
                                     for e in changes]
            if last is not None and last.name == log["delegation_grant"] and MAIL_SCOPE in last.values(
                    log["delegation_scopes_parameter"]):
                return passed(f"The admin audit log shows {client} granted {MAIL_SCOPE} by domain-wide delegation on "
                              f"{last.time}{_by(last)} ({last.name}), with no later change logged.", evidence)
            if last is not None and last.name == log["delegation_removal"]:
                return failed(f"The admin audit log shows the domain-wide delegation of {client} removed on "
                              f"{last.time}{_by(last)} ({last.name}) and not granted again since: it cannot obtain "
                              f"{MAIL_SCOPE} for the mailbox. Grant it in {DWD_PATH}.", evidence)
            if last is not None:
                seen = (f" The latest grant logged for it ({last.time}) lists "
                        f"{', '.join(last.values(log['delegation_scopes_parameter'])) or 'no scope'}, without "
                        f"{MAIL_SCOPE}; whether a later console edit is logged the same way is not documented.")
            else:
                seen = (f" The admin audit log shows no grant or removal for it within its retention "
                        f"({log['retention']}); a grant made before that is not shown.")
    return unknown(
        f"No Google API lists domain-wide delegation grants, so preflight cannot confirm that {client} is "
        f"granted {MAIL_SCOPE}.{seen} Check {DWD_PATH} in the Admin console.",
        evidence,
    )
