"""`preflight check ADDRESS`: from a mailbox address alone to a verdict.

Discovery (preflight.discovery) says who serves the domain, the submission host and port and, for
Microsoft 365, the tenant; the probe tests that host; then, where a sign-in is available (a cached one,
or the zero-setup one through Microsoft's public clients when the user agrees), the provider's checks
run for the mailbox. The `check` group keeps its provider subcommands: a first word that is not one of
them is the address.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from preflight.output import FailOn, FailOnOpt, Format, FormatOpt, OutputOpt

if TYPE_CHECKING:
    from preflight.discovery import Discoverer, Discovery
    from preflight.probe.net import Resolver

ADDRESS_COMMAND = "address"
_PROVIDER_TITLES = {"microsoft": "Microsoft 365", "google": "Google Workspace"}


class AddressGroup(TyperGroup):
    """`check ADDRESS` and `check microsoft|google ...` side by side: an unknown first word is the address."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = [ADDRESS_COMMAND, *args]
        return super().parse_args(ctx, args)


def address_group(help_text: str) -> typer.Typer:
    sub = typer.Typer(help=help_text + " Or give just the address: `preflight check jobs@contoso.com` finds "
                      "the provider, host and tenant itself.", no_args_is_help=True, cls=AddressGroup)
    sub.command(ADDRESS_COMMAND)(check_address)
    return sub


def _err(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _out(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def check_address(
    address: Annotated[str, typer.Argument(metavar="ADDRESS", help="The mailbox the service will send as.")],
    offline: Annotated[bool, typer.Option("--offline", help="Look nothing up: no DNS, no HTTPS, no probe.")] = False,
    sign_in: Annotated[bool | None, typer.Option(
        "--sign-in/--no-sign-in", help="Microsoft 365: sign in (device code, Microsoft's public clients, read-only) "
        "to check the tenant's settings. Default: a cached sign-in is used; otherwise you are asked, on a terminal "
        "only.")] = None,
    client_id: Annotated[str | None, typer.Option(
        "--client-id", metavar="GUID", help="Sign in with your own app registration instead.")] = None,
    account: Annotated[str | None, typer.Option(
        "--account", metavar="ADDR", help="Which cached admin sign-in to use when several are.")] = None,
    ca_file: Annotated[Path | None, typer.Option(
        "--ca-file", help="Probe: trust this CA bundle (PEM) instead of the system's.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Probe: seconds for connect, TLS and each reply.")
                       ] = 30.0,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    fail_on: FailOnOpt = FailOn.fail,
) -> None:
    """Find who serves ADDRESS (MX, SRV, Microsoft's tenant lookup), probe its submission host, and check the
    tenant's settings for it when a sign-in is available."""
    request = AddressCheck(address=address, offline=offline, sign_in=sign_in, client_id=client_id,
                           account=account, ca_file=ca_file, timeout=timeout, fmt=fmt, output=output,
                           fail_on=fail_on)
    raise typer.Exit(run_address_check(request))


@dataclass
class AddressCheck:
    address: str
    offline: bool = False
    sign_in: bool | None = None
    client_id: str | None = None
    account: str | None = None
    ca_file: Path | None = None
    timeout: float = 30.0
    fmt: Format = Format.table
    output: Path | None = None
    fail_on: FailOn = FailOn.fail
    # Injected for tests; the defaults are the system's resolver, requests and a terminal prompt.
    discoverer: Discoverer | None = None
    probe_resolver: Resolver | None = None
    can_ask: Callable[[], bool] = field(default=lambda: sys.stdin.isatty())
    ask: Callable[[str], bool] = field(default=lambda question: typer.confirm(question, default=False, err=True))
    out: Callable[[str], None] = _out
    progress: Callable[[str], None] = _err


def run_address_check(req: AddressCheck) -> int:
    from importlib import import_module

    from preflight.discovery import Discoverer, domain_of, offline

    inputs = import_module("preflight_providers.microsoft.inputs")
    mailbox = inputs.address(req.address, "ADDRESS")
    domain = domain_of(mailbox)
    if req.fmt is not Format.table and req.output is None:
        req.out = req.progress  # stdout carries only the machine-readable report
    if req.offline:
        found = offline(domain)
    else:
        req.progress(f"Looking up {domain} (MX, _submission._tcp SRV, Microsoft 365 tenant)...")
        found = (req.discoverer or Discoverer()).discover(domain)
    for line in summary(mailbox, found):
        req.out(line)
    codes: list[int] = []
    unchecked: list[str] = []
    codes.append(_probe(req, found, unchecked))
    codes.append(_provider_checks(req, mailbox, found, unchecked))
    if unchecked:
        req.out("")
        req.out("Not checked:")
        for line in unchecked:
            req.out(f"  - {line}")
        req.out("An error the sending service reports: `preflight explain 'ERROR TEXT'` names its cause and fix "
                "(`preflight causes` lists them all).")
    return _combine(codes, bool(unchecked))


def summary(mailbox: str, found: Discovery) -> list[str]:
    lines = [mailbox]
    if found.mx.status == "skipped":
        return [*lines, f"  Provider    {found.basis}"]
    title = _PROVIDER_TITLES.get(found.provider or "", "another provider or unknown")
    lines.append(f"  Provider    {title} ({found.basis})")
    if found.tenant.status == "found":
        about = f"{found.tenant.cloud} cloud" if found.tenant.cloud else found.tenant.detail
        lines.append(f"  Tenant      {found.tenant.id} ({about})")
    else:
        lines.append(f"  Tenant      none found ({found.tenant.detail or found.tenant.status})")
    if found.submission is not None:
        lines.append(f"  Submission  {found.submission.target} with STARTTLS ({found.submission.source}): "
                     "configure this host and port in the sending service")
    else:
        lines.append("  Submission  not known: no provider endpoint and no _submission._tcp SRV record; ask the "
                     "mail provider for its SMTP submission host")
    lines.append(f"  MX          {_lookup_text(found.mx, lambda r: f'{r.preference} {r.host}')}")
    lines.append(f"  SRV         {_lookup_text(found.srv, lambda r: f'{r.priority} {r.weight} {r.port} {r.host}')}")
    lines += [f"  Note        {note}" for note in found.notes]
    return lines


def _lookup_text(lookup: Any, show: Callable[[Any], str]) -> str:
    if lookup.status == "ok" and lookup.records:
        return ", ".join(show(r) for r in lookup.records)
    if lookup.status in ("nxdomain", "nodata", "ok"):
        return f"none ({lookup.detail})" if lookup.detail else "none"
    return f"not known: {lookup.status} ({lookup.detail})" if lookup.detail else f"not known: {lookup.status}"


def _probe(req: AddressCheck, found: Discovery, unchecked: list[str]) -> int:
    from preflight.errors import InputError
    from preflight.probe.run import ProbeArgs, run

    if found.submission is None:
        unchecked.append("the SMTP submission host: "
                         + ("nothing was looked up (--offline)" if req.offline else "none is known for this domain")
                         + "; test one with `preflight probe HOST:PORT`")
        return 0
    req.out("")
    req.out(f"Probing {found.submission.target} (no credentials: connect, TLS, EHLO, AUTH mechanisms)...")
    args = ProbeArgs(target=found.submission.target, provider=found.provider, ca_file=req.ca_file,
                     timeout=req.timeout)
    try:
        # With a machine-readable report on stdout the probe's transcript goes where the summary went.
        with contextlib.redirect_stdout(sys.stderr) if req.out is req.progress else contextlib.nullcontext():
            code = run(args, resolver=req.probe_resolver) if req.probe_resolver else run(args)
    except InputError as exc:  # the host does not resolve: the domain's own records point nowhere
        req.out(f"Probe: {exc}")
        return 1
    return 0 if code == 0 else 1


def _provider_checks(req: AddressCheck, mailbox: str, found: Discovery, unchecked: list[str]) -> int:
    if found.provider == "microsoft":
        return _microsoft(req, mailbox, found, unchecked)
    if found.provider == "google":
        return _google(req, mailbox, found, unchecked)
    if not req.offline:
        unchecked.append(f"the mailbox and its provider's settings: {found.domain} is not served by Microsoft 365 "
                         "or Google Workspace, whose admin APIs preflight reads")
    else:
        unchecked.append("the provider, its tenant and the mailbox's settings (--offline)")
    return 3


def _google(req: AddressCheck, mailbox: str, found: Discovery, unchecked: list[str]) -> int:
    """Google has no sign-in without the admin's own client or service account: use a saved profile for this
    domain that needs nobody at a browser (a service account, or a stored OAuth refresh token)."""
    import os
    from importlib import import_module

    from preflight.errors import SignInError

    profiles = import_module("preflight_providers.google.profiles")
    run = import_module("preflight_providers.google.run")
    CheckArgs, check = run.CheckArgs, run.check

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


def _microsoft(req: AddressCheck, mailbox: str, found: Discovery, unchecked: list[str]) -> int:
    from importlib import import_module

    from preflight.errors import SignInError

    def ms(module: str) -> Any:
        return import_module(f"preflight_providers.microsoft.{module}")

    inputs, tokencache, auth = ms("inputs"), ms("tokencache"), ms("auth")
    AuthMethod, SignInSettings, public_settings = auth.AuthMethod, auth.SignInSettings, auth.public_settings
    get_cloud, options, run_check = ms("clouds").get_cloud, inputs.options, ms("run").check

    tenant = found.tenant
    if tenant.status != "found" or tenant.id is None or tenant.cloud is None:
        why = tenant.detail or "the tenant lookup gave no answer"
        unchecked.append(f"the tenant's settings: its tenant id or cloud is not known ({why}); run "
                         f"`preflight check microsoft --tenant <tenant> --mailbox {mailbox}`")
        return 3
    cloud = get_cloud(tenant.cloud)
    root = tokencache.default_root()
    # A `preflight login microsoft --tenant` by domain or by id fills the cache this run can use.
    key = next((k for k in (found.domain, tenant.id)
                if tokencache.cached_accounts(tokencache.tenant_dir(root, cloud.name, k))), None)
    login = f"preflight login microsoft --tenant {found.domain}" + (
        f" --cloud {cloud.name}" if cloud.name != "global" else "")
    interactive = False
    if key is None:
        if req.sign_in is None and req.can_ask():
            req.sign_in = req.ask(f"Sign in to {found.domain} now to check its settings (device code, read-only; "
                                  "no app registration needed)?")
        if not req.sign_in:
            unchecked.append(f"the tenant's settings for {mailbox}: no cached sign-in for {found.domain}; run "
                             f"`{login}` (no app registration needed), then this command again, or pass --sign-in")
            return 3
        key, interactive = found.domain, True
    common: dict[str, Any] = {"auth": AuthMethod.DEVICE_CODE, "interactive": interactive,
                              "account": inputs.address(req.account, "--account") if req.account else None}
    settings = (SignInSettings(tenant=key, client_id=inputs.guid(req.client_id, "--client-id"), cloud=cloud,
                               **common)
                if req.client_id else public_settings(key, cloud, **common))
    req.out("")
    try:
        return int(run_check(settings, [mailbox], options(None, None, None, [], [mailbox]), None, req.fmt,
                             req.output, req.fail_on, progress=req.progress))
    except SignInError as exc:
        req.out(f"Tenant settings not checked: sign-in failed: {' '.join(str(exc).split())}")
        return 4


def _combine(codes: list[int], incomplete: bool) -> int:
    """DESIGN §8's order (exitcodes.worst); something left unchecked is incomplete at least."""
    from preflight.exitcodes import Exit, worst

    return int(worst([*codes, Exit.INCOMPLETE if incomplete else Exit.OK]))
