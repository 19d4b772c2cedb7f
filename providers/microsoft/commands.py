"""`preflight check|login|logout|auth-check microsoft`. Cheap to import: msal loads only when signing in."""

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
    device_code = "device-code"
    browser = "browser"
    certificate = "certificate"
    secret = "secret"


TenantOpt = Annotated[str, typer.Option(
    "--tenant", metavar="TENANT", help="Tenant id (GUID) or domain, e.g. contoso.onmicrosoft.com.")]
ClientIdOpt = Annotated[str | None, typer.Option(
    "--client-id", metavar="GUID", help="Application (client) id of your app registration. Omit it to sign in "
    "(delegated) through Microsoft's public clients, no app registration needed (docs/microsoft-setup.md).")]
AuthOpt = Annotated[Auth, typer.Option(
    "--auth", help="device-code (default, works over SSH), browser, certificate or secret (app-only).")]
CertOpt = Annotated[Path | None, typer.Option(
    "--certificate", help="App-only: certificate with private key, .pfx/.p12 or PEM.")]
CertPwOpt = Annotated[str | None, typer.Option(
    "--certificate-password-env", metavar="NAME", help="Environment variable holding the certificate password.")]
SecretOpt = Annotated[str | None, typer.Option(
    "--client-secret-env", metavar="NAME",
    help="Environment variable holding the client secret (otherwise you are prompted; never on the command line).")]
CloudOpt = Annotated[str, typer.Option(
    "--cloud", metavar="CLOUD", help="global, usgov (GCC), usgovhigh, dod or china.")]
AccountOpt = Annotated[str | None, typer.Option(
    "--account", metavar="ADDR", help="Delegated sign-in: which signed-in admin to use when several are cached.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Log HTTP calls (secrets masked) on stderr.")]
DeadlineOpt = Annotated[float, typer.Option(
    "--deadline", metavar="SECONDS",
    help="Stop reading the tenant after this many seconds (default 900): what was not read by then is "
         "reported unknown, and the report is still written.")]


def _debug(enabled: bool) -> None:
    if enabled:
        from preflight.logs import enable_debug

        enable_debug()


def check(
    tenant: TenantOpt,
    mailbox: Annotated[list[str] | None, typer.Option(
        "--mailbox", metavar="ADDR", help="Mailbox address to check (repeat for more).")] = None,
    mailboxes_from: Annotated[Path | None, typer.Option(
        "--mailboxes-from", metavar="FILE", help="Mailbox addresses from a file: one per line, or a CSV export "
        "(mailbox/email/UserPrincipalName column).")] = None,
    client_id: ClientIdOpt = None,
    method: Annotated[list[Method] | None, typer.Option(
        "--method", help="How the service will sign in to SMTP (repeat; default: all three).")] = None,
    sender_ip: Annotated[list[str] | None, typer.Option(
        "--sender-ip", metavar="CIDR", help="The service's outbound IP or range, for location policies.")] = None,
    app_id: Annotated[str | None, typer.Option(
        "--app-id", metavar="GUID", help="oauth-app: application id of the service's app in your tenant.")] = None,
    from_: Annotated[list[str] | None, typer.Option(
        "--from", metavar="ADDR|MAILBOX=ADDR", help=FROM_HELP)] = None,
    auth: AuthOpt = Auth.device_code,
    certificate: CertOpt = None,
    certificate_password_env: CertPwOpt = None,
    client_secret_env: SecretOpt = None,
    cloud: CloudOpt = "global",
    account: AccountOpt = None,
    save_snapshot: Annotated[Path | None, typer.Option(
        "--save-snapshot", help="Also write the collected snapshot here (for `preflight evaluate`).")] = None,
    sign_ins: Annotated[int | None, typer.Option(
        "--sign-ins", metavar="DAYS", min=1, max=30,
        help="Also read the Entra sign-in log of the last DAYS days for Basic SMTP AUTH sign-ins, and the "
             "--app-id app's app-only sign-ins (AuditLog.Read.All, Entra ID P1).")] = None,
    sign_ins_tenant: Annotated[bool, typer.Option(
        "--sign-ins-tenant", help="With the sign-in log: every user's Basic SMTP AUTH sign-ins, grouped per user, "
        "to find integrations nobody listed (--sign-ins DAYS, default 30).")] = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    fail_on: FailOnOpt = FailOn.fail,
    debug: DebugOpt = False,
    deadline: DeadlineOpt = 900.0,
) -> None:
    """Sign in to a Microsoft 365 tenant, read what decides SMTP AUTH for each mailbox, and report."""
    from preflight.deadline import check_seconds

    from . import inputs, run

    _debug(debug)
    seconds = check_seconds(deadline)
    settings = inputs.sign_in_settings(tenant, client_id, auth.value, certificate, certificate_password_env,
                                       client_secret_env, cloud, account)
    from preflight.mailboxlist import mailbox_options

    boxes = list(dict.fromkeys(inputs.address(m) for m in mailbox_options(mailbox, mailboxes_from)))
    options = inputs.options(method, sender_ip, app_id, from_ or [], boxes)
    raise typer.Exit(run.check(settings, boxes, options, save_snapshot, fmt, output, fail_on, deadline=seconds,
                               sign_in_days=sign_ins or (30 if sign_ins_tenant else None),
                               sign_ins_tenant=sign_ins_tenant))


def login(
    tenant: TenantOpt,
    client_id: ClientIdOpt = None,
    auth: AuthOpt = Auth.device_code,
    certificate: CertOpt = None,
    certificate_password_env: CertPwOpt = None,
    client_secret_env: SecretOpt = None,
    cloud: CloudOpt = "global",
    account: AccountOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Sign in and keep the token in your owner-only token cache, so later checks do not prompt."""
    from . import inputs, run

    _debug(debug)
    raise typer.Exit(run.login(inputs.sign_in_settings(tenant, client_id, auth.value, certificate,
                                                       certificate_password_env, client_secret_env, cloud, account)))


def logout(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Forget the sign-ins for this tenant.")] = None,
    account: AccountOpt = None,
    cloud: CloudOpt = "global",
    all_: Annotated[bool, typer.Option("--all", help="Forget every cached Microsoft sign-in.")] = False,
) -> None:
    """Remove cached tokens (this does not revoke them at Microsoft: see docs/microsoft-setup.md)."""
    from . import run

    raise typer.Exit(run.logout(tenant, account, cloud, every=all_))


def auth_check(
    tenant: TenantOpt,
    client_id: ClientIdOpt = None,
    mailbox: Annotated[str | None, typer.Option(
        "--mailbox", help="Probe the per-mailbox resources on this mailbox (default: the first one found).")] = None,
    app_id: Annotated[str | None, typer.Option("--app-id", help="Also probe this app's service principal.")] = None,
    auth: AuthOpt = Auth.device_code,
    certificate: CertOpt = None,
    certificate_password_env: CertPwOpt = None,
    client_secret_env: SecretOpt = None,
    cloud: CloudOpt = "global",
    account: AccountOpt = None,
    fmt: TextFormatOpt = TextFormat.table,
    debug: DebugOpt = False,
) -> None:
    """Sign in and test, resource by resource, what these credentials can read and what is missing.

    Exit 0 when everything can be read, 3 when something cannot (its checks would be unknown), 4 when the
    sign-in fails.
    """
    from preflight.pipeline import progress
    from preflight.runsecrets import for_command

    from . import inputs
    from .authcheck import render, run_auth_check

    _debug(debug)
    settings = inputs.sign_in_settings(tenant, client_id, auth.value, certificate, certificate_password_env,
                                       client_secret_env, cloud, account)
    report = run_auth_check(settings, mailbox=inputs.address(mailbox) if mailbox else None,
                            app_id=inputs.guid(app_id, "--app-id") if app_id else None, progress=progress)
    sys.stdout.write(for_command().mask_known(render(report, fmt.value)))
    raise typer.Exit(report.exit_code)


COMMANDS: dict[str, Callable[..., Any]] = {
    "check": check,
    "login": login,
    "logout": logout,
    "auth-check": auth_check,
}
