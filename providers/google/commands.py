"""CLI commands this provider adds to the check, login, logout and auth-check groups.

Only the command-line surface lives here; the work is in providers.google.run, imported when a command
runs, so `preflight --help` never loads google-auth or requests.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from preflight.addresses import FROM_HELP
from preflight.model import Method
from preflight.output import FailOn, FailOnOpt, Format, FormatOpt, OutputOpt, TextFormat, TextFormatOpt


class Auth(StrEnum):
    service_account = "service-account"
    oauth = "oauth"


ProfileOpt = Annotated[
    str | None,
    typer.Option("--profile", envvar="PREFLIGHT_GOOGLE_PROFILE",
                 help="Customer profile: keeps each customer's sign-in apart (default: 'default')."),
]
AuthOpt = Annotated[
    Auth | None,
    typer.Option("--auth", help="service-account (domain-wide delegation) or oauth (an admin's own sign-in). "
                 "Default: the profile's."),
]
KeyFileOpt = Annotated[
    Path | None,
    typer.Option("--key-file", envvar="PREFLIGHT_GOOGLE_KEY_FILE",
                 help="Service account JSON key with domain-wide delegation."),
]
AdminOpt = Annotated[
    str | None, typer.Option("--admin", help="Admin the service account impersonates (a super admin for the "
                             "Policy API); with oauth, the account to sign in as.")
]
ClientSecretsOpt = Annotated[
    Path | None, typer.Option("--client-secrets", help="Your own OAuth client file (Desktop app type).")
]
DomainOpt = Annotated[str | None, typer.Option("--domain", help="The Workspace's domain, e.g. example.com.")]
CustomerOpt = Annotated[str | None, typer.Option("--customer-id", help="The Workspace's customer id (C0...).")]
SendAsOpt = Annotated[
    bool, typer.Option("--with-sendas", help="Read each mailbox's verified send-as addresses (opt-in scope "
                       "gmail.readonly via domain-wide delegation, which can also read mail).")
]
LicensesOpt = Annotated[
    bool, typer.Option("--with-licenses", help="Read licence assignments (opt-in: Google's only licensing "
                       "scope, apps.licensing, is read/write; preflight only lists).")
]
TokensOpt = Annotated[
    bool, typer.Option("--with-tokens", help="Read the OAuth grants users gave apps (opt-in: "
                       "admin.directory.user.security has no read-only variant; preflight only lists).")
]
AuditLogOpt = Annotated[
    bool, typer.Option("--with-audit-log", help="Read the Reports API audit log (opt-in, read-only "
                       "admin.reports.audit.readonly): Advanced Protection enrolments and domain-wide delegation "
                       "grants within the log's retention.")
]
ApiRootOpt = Annotated[
    str | None,
    typer.Option("--api-root", envvar="PREFLIGHT_GOOGLE_API_ROOT", hidden=True,
                 help="Serve the admin APIs from another https root (a private endpoint or a local stand-in)."),
]
NoBrowserOpt = Annotated[
    bool, typer.Option("--no-browser", help="Print the sign-in URL instead of opening a browser.")
]


def check(
    mailbox: Annotated[
        list[str] | None, typer.Option("--mailbox", "-m", help="Mailbox address to check (repeat for more).")
    ] = None,
    mailboxes_from: Annotated[Path | None, typer.Option(
        "--mailboxes-from", metavar="FILE", help="Mailbox addresses from a file: one per line, or a CSV export "
        "(email/primaryEmail column).")] = None,
    domain: DomainOpt = None,
    customer_id: CustomerOpt = None,
    method: Annotated[
        list[Method] | None, typer.Option("--method", help="Sign-in method(s) the sending service uses (default: all).")
    ] = None,
    from_: Annotated[
        list[str] | None,
        typer.Option("--from", metavar="ADDR|MAILBOX=ADDR", help=FROM_HELP),
    ] = None,
    app_id: Annotated[str | None, typer.Option("--app-id", help="OAuth client id of the sending service.")] = None,
    auth: AuthOpt = None,
    key_file: KeyFileOpt = None,
    admin: AdminOpt = None,
    client_secrets: ClientSecretsOpt = None,
    profile: ProfileOpt = None,
    with_sendas: SendAsOpt = False,
    with_licenses: LicensesOpt = False,
    with_tokens: TokensOpt = False,
    with_audit_log: AuditLogOpt = False,
    save_snapshot: Annotated[
        Path | None, typer.Option("--save-snapshot", help="Also write the collected snapshot (no secrets) here.")
    ] = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    fail_on: FailOnOpt = FailOn.fail,
    no_browser: NoBrowserOpt = False,
    api_root: ApiRootOpt = None,
    deadline: Annotated[float, typer.Option(
        "--deadline", metavar="SECONDS",
        help="Stop reading the Workspace after this many seconds (default 900): what was not read by then is "
             "reported unknown, and the report is still written.")] = 900.0,
) -> None:
    """Sign in to Google Workspace, collect, evaluate and report the given mailboxes."""
    from preflight.deadline import check_seconds
    from preflight.mailboxlist import mailbox_options

    from . import run

    code = run.check(run.CheckArgs(
        mailboxes=mailbox_options(mailbox, mailboxes_from, required=False), domain=domain, customer_id=customer_id,
        methods=method or [], froms=from_ or [],
        app_id=app_id, auth=auth.value if auth else None, key_file=key_file, admin=admin,
        client_secrets=client_secrets, profile=profile, with_sendas=with_sendas, with_licenses=with_licenses,
        with_tokens=with_tokens, with_audit_log=with_audit_log, save_snapshot=save_snapshot, fmt=fmt,
        output=output, fail_on=fail_on, open_browser=not no_browser, api_root=api_root,
        deadline=check_seconds(deadline),
    ))
    raise typer.Exit(code)


def login(
    auth: AuthOpt = None,
    client_secrets: ClientSecretsOpt = None,
    key_file: KeyFileOpt = None,
    admin: AdminOpt = None,
    profile: ProfileOpt = None,
    domain: DomainOpt = None,
    customer_id: CustomerOpt = None,
    with_sendas: SendAsOpt = False,
    with_licenses: LicensesOpt = False,
    with_tokens: TokensOpt = False,
    with_audit_log: AuditLogOpt = False,
    no_browser: NoBrowserOpt = False,
) -> None:
    """Sign in for a customer profile: an admin's OAuth consent (refresh token stored 0600), or a service account."""
    from . import run

    raise typer.Exit(run.login(run.LoginArgs(
        auth=auth.value if auth else None, client_secrets=client_secrets, key_file=key_file, admin=admin,
        profile=profile, domain=domain, customer_id=customer_id, with_sendas=with_sendas,
        with_licenses=with_licenses, with_tokens=with_tokens, with_audit_log=with_audit_log,
        open_browser=not no_browser,
    )))


def logout(
    profile: ProfileOpt = None,
    revoke: Annotated[
        bool, typer.Option("--revoke/--no-revoke", help="Also revoke the refresh token at Google (default).")
    ] = True,
    forget: Annotated[bool, typer.Option("--forget", help="Also remove the profile's settings.")] = False,
) -> None:
    """Remove a profile's stored Google sign-in (and revoke it at Google)."""
    from . import run

    raise typer.Exit(run.logout(profile, revoke_token=revoke, forget=forget))


def auth_check(
    profile: ProfileOpt = None,
    auth: AuthOpt = None,
    key_file: KeyFileOpt = None,
    admin: AdminOpt = None,
    mailbox: Annotated[
        str | None, typer.Option("--mailbox", "-m", help="Mailbox to test the Gmail delegation with.")
    ] = None,
    with_sendas: SendAsOpt = False,
    with_licenses: LicensesOpt = False,
    with_tokens: TokensOpt = False,
    with_audit_log: AuditLogOpt = False,
    fmt: TextFormatOpt = TextFormat.table,
    api_root: ApiRootOpt = None,
) -> None:
    """Test the credentials: clock skew, key, every scope's delegation, and one read per API.

    Exit 0 when everything passes, 3 when a scope or read fails (its checks would be unknown), 4 when no
    sign-in works at all.
    """
    from preflight.runsecrets import for_command

    from . import run

    report = run.auth_check(run.AuthCheckArgs(
        profile=profile, auth=auth.value if auth else None, key_file=key_file, admin=admin, mailbox=mailbox,
        with_sendas=with_sendas, with_licenses=with_licenses, with_tokens=with_tokens,
        with_audit_log=with_audit_log, api_root=api_root,
    ))
    sys.stdout.write(for_command().mask_known(report.render(fmt.value)))
    raise typer.Exit(report.exit_code)


COMMANDS: dict[str, Callable[..., Any]] = {"check": check, "login": login, "logout": logout, "auth-check": auth_check}
