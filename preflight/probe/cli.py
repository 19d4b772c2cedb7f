"""`preflight probe HOST[:PORT]`: options in, exit code out. The work happens in preflight.probe.run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from preflight.probe.codes import EXIT_HELP

_SECRET_HELP = "Never given on the command line: "


def probe(
    target: Annotated[str, typer.Argument(help="HOST or HOST:PORT, e.g. smtp.office365.com or smtp.gmail.com:465.")],
    port: Annotated[int | None, typer.Option("--port", "-p", help="Port, if not in HOST:PORT.")] = None,
    tls: Annotated[
        str | None,
        typer.Option("--tls", help="starttls, implicit or none (default: the known host's or the port's convention)."),
    ] = None,
    provider: Annotated[
        str | None, typer.Option("--provider", help="microsoft or google: whose fixes to show (default: from HOST).")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="User name for AUTH (the mailbox address).")] = None,
    password_env: Annotated[
        str | None, typer.Option("--password-env", help=_SECRET_HELP + "environment variable holding the password.")
    ] = None,
    password_prompt: Annotated[
        bool, typer.Option("--password-prompt", help="Ask for the password on the terminal.")
    ] = False,
    token_env: Annotated[
        str | None, typer.Option("--token-env", help=_SECRET_HELP + "environment variable holding an OAuth token.")
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="File holding an OAuth access token (or a token response).")
    ] = None,
    auth: Annotated[
        str | None,
        typer.Option("--auth", help="AUTH mechanism to require or use: PLAIN, LOGIN, XOAUTH2 or OAUTHBEARER."),
    ] = None,
    mail_from: Annotated[str | None, typer.Option("--mail-from", help="Test MAIL FROM with this address.")] = None,
    rcpt_to: Annotated[
        list[str] | None, typer.Option("--rcpt-to", help="Test RCPT TO with this address (repeatable).")
    ] = None,
    send: Annotated[
        bool, typer.Option("--send", help="Really send a short test message (DATA) to --rcpt-to. Off by default.")
    ] = False,
    quit_after: Annotated[
        str | None, typer.Option("--quit-after", help="Stop after: connect, banner, ehlo, tls, auth, mail or rcpt.")
    ] = None,
    ehlo: Annotated[
        str | None, typer.Option("--ehlo", help="Name to send in EHLO (default: this host's name).")
    ] = None,
    ca_file: Annotated[
        Path | None, typer.Option("--ca-file", help="Trust this CA bundle (PEM) instead of the system's: private CAs.")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for connect, TLS and each reply.")
    ] = 30.0,
    deadline: Annotated[
        float, typer.Option("--deadline", metavar="SECONDS", help=(
            "Stop the whole probe after this many seconds (default 120): DNS, connect, TLS, EHLO, AUTH and "
            "every read, however slowly the server trickles; what was not reached is reported."))
    ] = 120.0,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table (transcript and findings) or json.")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the result to this file.")] = None,
    token_from: Annotated[
        str | None,
        typer.Option("--token-from", metavar="PROVIDER", help=(
            "microsoft or google: get the XOAUTH2 token the way the sending service does, with ITS credentials "
            "(Microsoft app-only client credentials; Google service account with domain-wide delegation). The "
            "token carries the app's send permission; it is used for this one AUTH, never shown or stored.")),
    ] = None,
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="--token-from microsoft: tenant id (GUID) or domain.")
    ] = None,
    client_id: Annotated[
        str | None, typer.Option("--client-id", metavar="GUID", help="--token-from microsoft: the sending app's id.")
    ] = None,
    client_secret_env: Annotated[
        str | None, typer.Option("--client-secret-env", metavar="NAME", help=(
            "--token-from microsoft: " + _SECRET_HELP.lower() + "environment variable holding the sending app's "
            "client secret (otherwise prompted on a terminal)."))
    ] = None,
    certificate: Annotated[
        Path | None, typer.Option("--certificate", help="--token-from microsoft: the app's certificate with "
                                  "private key (.pfx/.p12 or PEM) instead of a secret.")
    ] = None,
    certificate_password_env: Annotated[
        str | None, typer.Option("--certificate-password-env", metavar="NAME",
                                 help="--token-from microsoft: environment variable holding the certificate password.")
    ] = None,
    cloud: Annotated[
        str | None, typer.Option("--cloud", help="--token-from microsoft: global (default), usgov, usgovhigh, dod or "
                                 "china.")
    ] = None,
    key_file: Annotated[
        Path | None, typer.Option("--key-file", help="--token-from google: the sending service's service-account "
                                  "JSON key (domain-wide delegation for https://mail.google.com/).")
    ] = None,
) -> None:
    """Test an SMTP server phase by phase: DNS, TCP, TLS, EHLO, AUTH, MAIL/RCPT.

    Never sends mail unless --send. Prints a swaks-style transcript (-> sent,
    <- received, ~> and <~ inside TLS; credentials masked) and the findings,
    each named by a cause from `preflight causes`. With --token-from the token
    comes from the provider's sign-in first; a refusal is a finding, exit 40.
    """
    from preflight.probe.run import ProbeArgs, run

    args = ProbeArgs(
        target=target, port=port, tls=tls, provider=provider, user=user, password_env=password_env,
        password_prompt=password_prompt, token_env=token_env, token_file=token_file, auth=auth,
        mail_from=mail_from, rcpt_to=tuple(rcpt_to or ()), send=send, quit_after=quit_after, ehlo=ehlo,
        ca_file=ca_file, timeout=timeout, deadline=deadline, fmt=fmt, output=output, token_from=token_from,
        tenant=tenant, client_id=client_id, client_secret_env=client_secret_env, certificate=certificate,
        certificate_password_env=certificate_password_env, cloud=cloud, key_file=key_file,
    )
    raise typer.Exit(run(args))


setattr(probe, "epilog", EXIT_HELP)  # noqa: B010 - read by preflight.cli when registering the command
