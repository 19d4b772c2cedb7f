"""`preflight check ADDRESS`: from a mailbox address alone to a verdict.

Discovery (preflight.discovery) says who serves the domain, the submission host and port and, where a
provider looks tenants up, the tenant; the probe tests that host; then the provider's MailboxChecker hook
(preflight.providers) runs its checks for the mailbox where a sign-in is available (a cached one, or one
that needs no setup when the user agrees). The `check` group keeps its provider subcommands: a first word
that is not one of them is the address.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from preflight.output import FailOn, FailOnOpt, Format, FormatOpt, OutputOpt

if TYPE_CHECKING:
    from preflight.discovery import Discoverer, Discovery
    from preflight.probe.net import Resolver
    from preflight.providers import Registry

ADDRESS_COMMAND = "address"


def _registry() -> Registry:
    from preflight.providers import Registry

    return Registry.from_entry_points()


class AddressGroup(TyperGroup):
    """`check ADDRESS` and `check microsoft|google ...` side by side: an unknown first word is the address."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = [ADDRESS_COMMAND, *args]
        return super().parse_args(ctx, args)


def address_group(help_text: str) -> typer.Typer:
    sub = typer.Typer(help=help_text, no_args_is_help=True, cls=AddressGroup)
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
    registry: Callable[[], Registry] = _registry


def run_address_check(req: AddressCheck) -> int:
    from preflight.addresses import address
    from preflight.discovery import Discoverer, domain_of, offline
    from preflight.providers import MailDomainOwner

    mailbox = address(req.address, "ADDRESS")
    domain = domain_of(mailbox)
    if req.fmt is not Format.table and req.output is None:
        req.out = req.progress  # stdout carries only the machine-readable report
    _mask_lines(req)
    registry = req.registry()
    titles = {name: registry.title(name) for name in registry.names}
    if req.offline:
        found = offline(domain)
    else:
        tenants = "".join(f", {titles[name]} tenant" for name in registry.hooked(MailDomainOwner))  # type: ignore[type-abstract]
        req.progress(f"Looking up {domain} (MX, _submission._tcp SRV{tenants})...")
        found = (req.discoverer or Discoverer(titles=titles)).discover(domain)
    for line in summary(mailbox, found, titles):
        req.out(line)
    codes: list[int] = []
    unchecked: list[str] = []
    codes.append(_probe(req, found, unchecked))
    codes.append(_provider_checks(req, mailbox, found, unchecked, registry))
    if unchecked:
        req.out("")
        req.out("Not checked:")
        for line in unchecked:
            req.out(f"  - {line}")
        req.out("An error the sending service reports: `preflight explain 'ERROR TEXT'` names its cause and fix "
                "(`preflight causes` lists them all).")
    return _combine(codes, bool(unchecked))


def _mask_lines(req: AddressCheck) -> None:
    """Every line this command or a provider's hook prints (a failed sign-in quoting what the service echoed)
    passes the run's secrets masking, as every other command's output does."""
    from preflight.runsecrets import for_command

    secrets = for_command()
    out, progress = req.out, req.progress
    req.progress = lambda line: progress(secrets.mask(line))
    req.out = req.progress if out is progress else (lambda line: out(secrets.mask(line)))


def summary(mailbox: str, found: Discovery, titles: Mapping[str, str]) -> list[str]:
    lines = [mailbox]
    if found.mx.status == "skipped":
        return [*lines, f"  Provider    {found.basis}"]
    title = titles.get(found.provider or "", "another provider or unknown")
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


def _provider_checks(req: AddressCheck, mailbox: str, found: Discovery, unchecked: list[str],
                     registry: Registry) -> int:
    from preflight.discovery import discovery_data
    from preflight.providers import MailboxChecker

    checkers = registry.hooked(MailboxChecker)  # type: ignore[type-abstract]
    if found.provider is not None and found.provider in checkers:
        return checkers[found.provider].check_discovered(req, mailbox, found, unchecked)
    if not req.offline:
        # Named in the order discovery.toml lists the providers, so the sentence reads the same every run.
        order = [str(e["name"]) for e in discovery_data().get("provider", [])]
        names = sorted(checkers, key=lambda n: (order.index(n) if n in order else len(order), n))
        served = " or ".join(registry.title(n) for n in names) or "a provider preflight has a plugin for"
        unchecked.append(f"the mailbox and its provider's settings: {found.domain} is not served by {served}, "
                         "whose admin APIs preflight reads")
    else:
        unchecked.append("the provider, its tenant and the mailbox's settings (--offline)")
    return 3


def _combine(codes: list[int], incomplete: bool) -> int:
    """DESIGN §8's order (exitcodes.worst); something left unchecked is incomplete at least."""
    from preflight.exitcodes import Exit, worst

    return int(worst([*codes, Exit.INCOMPLETE if incomplete else Exit.OK]))
