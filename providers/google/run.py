"""What the Google commands do: resolve a profile's settings, sign in, collect, evaluate, report.

Messages for the person go to stderr; reports and auth-check results to stdout.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from preflight import pipeline
from preflight.addresses import from_table
from preflight.deadline import DEFAULT_TENANT_DEADLINE, Deadline
from preflight.errors import InputError, SignInError
from preflight.memo import RunMemo
from preflight.model import Method
from preflight.output import FailOn, Format
from preflight.pipeline import progress
from preflight.private import loose_permissions
from preflight.runsecrets import RunSecrets, for_command

from . import inputs, profiles, settings
from .auth import (
    OAuthSigner,
    ServiceAccountSigner,
    Signer,
    key_credentials,
    load_client_secrets,
    load_key_file,
    revoke,
    run_installed_flow,
)
from .profiles import Profile

if TYPE_CHECKING:
    from preflight.providers import CollectRequest

    from .authcheck import AuthReport

def _api_settings(api_root: str | None) -> settings.ApiSettings:
    cfg = settings.api()
    return replace(cfg, endpoints=cfg.endpoints.rooted_at(api_root)) if api_root else cfg


@dataclass(frozen=True)
class SignIn:
    kind: str
    key_file: Path | None
    admin: str | None
    client_secrets: Path | None


def _resolve_sign_in(
    prof: Profile, auth: str | None, key_file: Path | None, admin: str | None, client_secrets: Path | None
) -> SignIn:
    saved = prof.settings()
    key_file = key_file or (Path(saved["key_file"]) if saved.get("key_file") else None)
    client_secrets = client_secrets or (Path(saved["client_secrets"]) if saved.get("client_secrets") else None)
    kind = auth or saved.get("auth")
    if kind is None:
        kind = "service-account" if key_file else "oauth" if prof.token_path.exists() or client_secrets else None
    if kind is None:
        raise InputError(f"profile {prof.name!r} has no sign-in: give --auth service-account --key-file FILE --admin "
                         "ADMIN, or --auth oauth (after `preflight login google --auth oauth --client-secrets FILE`)")
    admin = admin or saved.get("admin")
    if kind == "service-account":
        if key_file is None:
            raise InputError("--auth service-account needs --key-file (or PREFLIGHT_GOOGLE_KEY_FILE)")
        if not admin:
            raise InputError("--auth service-account needs --admin: the admin the service account impersonates")
    return SignIn(str(kind), key_file, inputs.address(admin, "--admin") if admin else None, client_secrets)


def _oauth_signer(prof: Profile, sign_in: SignIn, *, open_browser: bool, allow_login: bool,
                  wanted: frozenset[str], secrets: RunSecrets | None = None,
                  deadline: Deadline | None = None) -> OAuthSigner:
    info = prof.token()
    if info is None:
        if allow_login and sign_in.client_secrets is not None:
            _oauth_login(prof, sign_in.client_secrets, settings.wanted_scopes("oauth", wanted), open_browser,
                         sign_in.admin)
            info = prof.token()
        if info is None:
            raise SignInError(
                f"no stored Google sign-in for profile {prof.name!r}: run `preflight login google --profile "
                f"{prof.name} --auth oauth --client-secrets FILE`"
            )
    if tighten(prof.token_path):
        progress(f"warning: {prof.token_path} was readable by group or others; its mode is now 0600")
    return OAuthSigner(info, secrets=secrets, deadline=deadline)


def tighten(path: Path) -> bool:
    """Make a stored refresh token owner-only again (as the Microsoft token cache does); True when it was not."""
    if not path.exists() or not loose_permissions(path):
        return False
    os.chmod(path, 0o600)
    return True


def build_signer(prof: Profile, sign_in: SignIn, *, open_browser: bool = True, allow_login: bool = False,
                 wanted: frozenset[str] = frozenset(), secrets: RunSecrets | None = None,
                 deadline: Deadline | None = None, memo: RunMemo | None = None) -> Signer:
    """The signer for this sign-in. allow_login: an OAuth profile not signed in yet may open the browser flow,
    asking for the base scopes plus the `wanted` opt-ins."""
    if sign_in.kind == "service-account":
        assert sign_in.key_file is not None and sign_in.admin is not None
        key = load_key_file(sign_in.key_file)
        if loose_permissions(sign_in.key_file):
            progress(f"warning: {sign_in.key_file} is readable by group or others; chmod 600 it")
        return ServiceAccountSigner(key, sign_in.admin, secrets=secrets, deadline=deadline, memo=memo)
    return _oauth_signer(prof, sign_in, open_browser=open_browser, allow_login=allow_login, wanted=wanted,
                         secrets=secrets, deadline=deadline)


# --- check -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckArgs:
    mailboxes: list[str]
    domain: str | None = None
    customer_id: str | None = None
    methods: list[Method] = field(default_factory=list)
    froms: list[str] = field(default_factory=list)
    app_id: str | None = None
    auth: str | None = None
    key_file: Path | None = None
    admin: str | None = None
    client_secrets: Path | None = None
    profile: str | None = None
    with_sendas: bool = False
    with_licenses: bool = False
    with_tokens: bool = False
    with_audit_log: bool = False
    save_snapshot: Path | None = None
    fmt: Format = Format.table
    output: Path | None = None
    fail_on: FailOn = FailOn.fail
    open_browser: bool = True
    api_root: str | None = None
    deadline: float | None = None  # seconds for sign-in and collection (--deadline)


@dataclass(frozen=True)
class Plan:
    """One Workspace to read: whose profile, how to sign in, what to collect. Built and checked before any I/O."""

    profile: Profile
    sign_in: SignIn
    target: Any  # providers.google.collect.Target (imported lazily)


def plan(
    *, profile: str | None, auth: str | None, key_file: Path | None, admin: str | None, client_secrets: Path | None,
    domain: str | None, customer_id: str | None, mailboxes: list[str], methods: list[Method],
    from_addresses: dict[str, str], app_id: str | None, sender_ips: tuple[str, ...] = (), with_sendas: bool = False,
    with_licenses: bool = False, with_tokens: bool = False, with_audit_log: bool = False,
) -> Plan:
    from preflight.snapshot import Options

    from .collect import Target

    prof = profiles.profile(profile)
    saved = prof.settings()
    boxes = list(dict.fromkeys(inputs.address(m, "--mailbox") for m in mailboxes))
    if not boxes:
        raise InputError("give at least one --mailbox to check")
    dom = inputs.domain(domain or saved.get("domain"))
    cid = inputs.customer_id(customer_id or saved.get("customer_id"))
    if dom is None and cid is None:
        raise InputError("give --domain or --customer-id (or sign in with them saved in the profile)")
    options = Options(methods=tuple(dict.fromkeys(methods)) or tuple(Method), sender_ips=sender_ips,
                      app_id=app_id, from_addresses=from_addresses)
    sign_in = _resolve_sign_in(prof, auth, key_file, admin, client_secrets)
    if with_sendas and sign_in.kind == "oauth":
        raise InputError("--with-sendas needs --auth service-account: Gmail settings of other users are readable "
                         "only through domain-wide delegation as each mailbox owner")
    return Plan(prof, sign_in, Target(tuple(boxes), dom, cid, with_sendas, with_licenses, with_tokens, options,
                                      with_audit_log))


def check(args: CheckArgs) -> int:
    from . import provider
    from .api import GoogleApi
    from .collect import collect

    boxes = [inputs.address(m, "--mailbox") for m in args.mailboxes]
    job = plan(
        profile=args.profile, auth=args.auth, key_file=args.key_file, admin=args.admin,
        client_secrets=args.client_secrets, domain=args.domain, customer_id=args.customer_id, mailboxes=boxes,
        methods=args.methods, from_addresses=inputs.from_addresses(args.froms, boxes), app_id=args.app_id,
        with_sendas=args.with_sendas, with_licenses=args.with_licenses, with_tokens=args.with_tokens,
        with_audit_log=args.with_audit_log,
    )
    config = _api_settings(args.api_root)
    limit = Deadline(args.deadline or DEFAULT_TENANT_DEADLINE)
    signer = build_signer(job.profile, job.sign_in, open_browser=args.open_browser, allow_login=True,
                          wanted=inputs.opt_ins(args.with_sendas, args.with_licenses, args.with_tokens,
                                                args.with_audit_log),
                          secrets=for_command(), deadline=limit)
    target = job.target
    progress(f"reading Google Workspace {target.domain or target.customer_id} as {signer.principal} "
             f"({job.sign_in.kind}, profile {job.profile.name}), {len(target.mailboxes)} mailbox(es)")
    collection = collect(GoogleApi(signer, config=config, deadline=limit), target)
    progress(f"collected in {collection.seconds:.1f} s with {collection.requests} API requests")
    return pipeline.check(provider, collection.snapshot, "google collection", save_snapshot=args.save_snapshot,
                          fmt=args.fmt, output=args.output, fail_on=args.fail_on)


def warm(settings: Sequence[Mapping[str, Any]], memo: RunMemo) -> None:
    """Each service-account key the customers sign in with, parsed into the run's memo before an audit forks its
    workers: loading an RSA key checks it (about 30 ms of CPU), which every worker would otherwise do again."""
    for s in settings:
        # A customer whose settings, saved profile or key are wrong is told so by its own tenant's run, which does
        # this again; here, before the fork, any failure would end the whole audit (a profile.json holding a list
        # or a number for the admin fails with AttributeError), so none is let through.
        with contextlib.suppress(Exception):
            sign_in = _resolve_sign_in(profiles.profile(s.get("profile")), s.get("auth"), _path(s, "key_file"),
                                       s.get("admin"), _path(s, "client_secrets"))
            if sign_in.kind == "service-account" and sign_in.key_file is not None:
                key_credentials(load_key_file(sign_in.key_file).info, memo)


def _path(settings: Mapping[str, Any], key: str) -> Path | None:
    return Path(str(settings[key])).expanduser() if settings.get(key) else None


def collect_request(request: CollectRequest) -> dict[str, Any]:
    """The collector for `preflight audit`: one customer's inventory settings -> snapshot dict.

    Never interactive: an OAuth profile must have been signed in with `preflight login google` beforehand.
    """
    from .api import GoogleApi
    from .collect import collect

    s = request.settings
    if s.get("sign_ins") or s.get("sign_ins_tenant"):
        raise InputError("sign_ins: Google's login audit events do not say which sign-ins were SMTP, so there is no "
                         "sign-in evidence to read (docs/google-setup.md, section 4); remove it for this customer")

    boxes = [inputs.address(m, "mailboxes") for m in request.mailboxes]
    job = plan(
        profile=s.get("profile"), auth=s.get("auth"), key_file=_path(s, "key_file"), admin=s.get("admin"),
        client_secrets=_path(s, "client_secrets"), domain=s.get("domain"), customer_id=s.get("customer_id"),
        mailboxes=boxes, methods=[Method(m) for m in request.methods],
        from_addresses=from_table(request.from_addresses),
        app_id=request.app_id, sender_ips=tuple(request.sender_ips), with_sendas=bool(s.get("with_sendas")),
        with_licenses=bool(s.get("with_licenses")), with_tokens=bool(s.get("with_tokens")),
        with_audit_log=bool(s.get("with_audit_log")),
    )
    limit = Deadline(request.deadline or DEFAULT_TENANT_DEADLINE)
    signer = build_signer(job.profile, job.sign_in, allow_login=False, secrets=request.secrets, deadline=limit,
                          memo=request.memo)
    request.progress(f"reading as {signer.principal} ({job.sign_in.kind})")
    now = request.now
    clock = (lambda: now) if now is not None else (lambda: datetime.now(UTC))
    api_root = s.get("api_root") or os.environ.get("PREFLIGHT_GOOGLE_API_ROOT")
    collection = collect(GoogleApi(signer, config=_api_settings(str(api_root) if api_root else None),
                                   deadline=limit, memo=request.memo), job.target,
                         now=clock)
    request.progress(f"collected with {collection.requests} API requests")
    return collection.snapshot


# --- login / logout ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginArgs:
    auth: str | None = None
    client_secrets: Path | None = None
    key_file: Path | None = None
    admin: str | None = None
    profile: str | None = None
    domain: str | None = None
    customer_id: str | None = None
    with_sendas: bool = False
    with_licenses: bool = False
    with_tokens: bool = False
    with_audit_log: bool = False
    open_browser: bool = True


def _oauth_login(prof: Profile, client_secrets: Path, scopes: list[settings.Scope], open_browser: bool,
                 admin: str | None) -> str | None:
    client = load_client_secrets(client_secrets)
    urls = [s.url for s in scopes]
    result = run_installed_flow(client, urls, open_browser=open_browser, login_hint=admin, secrets=for_command())
    prof.save_token(result.token_info)
    prof.save_settings({"auth": "oauth", "account": result.account, "client_secrets": str(client_secrets.resolve())})
    progress(f"signed in as {result.account or 'the admin'}; refresh token stored in {prof.token_path} "
        "(readable by you only)")
    if admin and result.account and result.account.lower() != admin:
        progress(f"warning: signed in as {result.account}, not {admin}")
    if result.missing:
        progress("warning: not granted at the consent screen (the checks that need them will be unknown): "
            + ", ".join(result.missing))
    return result.account


def login(args: LoginArgs) -> int:
    prof = profiles.profile(args.profile)
    domain, customer_id = inputs.domain(args.domain), inputs.customer_id(args.customer_id)
    wanted = inputs.opt_ins(args.with_sendas, args.with_licenses, args.with_tokens, args.with_audit_log)
    kind = args.auth or ("service-account" if args.key_file else "oauth" if args.client_secrets else None)
    if kind is None:
        raise InputError("give --auth oauth --client-secrets FILE, or --auth service-account --key-file FILE --admin "
                         "ADMIN")
    if kind == "oauth":
        if args.client_secrets is None:
            raise InputError("--auth oauth needs --client-secrets: your own OAuth client file (Desktop app)")
        if args.with_sendas:
            raise InputError("--with-sendas needs --auth service-account (domain-wide delegation)")
        admin = inputs.address(args.admin, "--admin") if args.admin else None
        _oauth_login(prof, args.client_secrets, settings.wanted_scopes("oauth", wanted), args.open_browser, admin)
        prof.save_settings({"domain": domain, "customer_id": customer_id})
        return 0
    sign_in = _resolve_sign_in(prof, "service-account", args.key_file, args.admin, None)
    signer = build_signer(prof, sign_in, secrets=for_command())
    assert isinstance(signer, ServiceAccountSigner)
    err = signer.authenticate_key()
    if err is not None:
        raise SignInError(f"Google refused the service account key: {err.code}: {err.message}")
    assert sign_in.key_file is not None
    prof.save_settings({"auth": "service-account", "key_file": str(sign_in.key_file.resolve()),
                        "admin": sign_in.admin, "domain": domain, "customer_id": customer_id})
    progress(f"service account {signer.key.client_email} (client id {signer.key.client_id}) saved as profile "
        f"{prof.name}, impersonating {sign_in.admin}; nothing secret was copied")
    progress(f"run `preflight auth-check google --profile {prof.name}` to test every delegated scope")
    return 0


def logout(profile: str | None, *, revoke_token: bool = True, forget: bool = False) -> int:
    prof = profiles.profile(profile)
    info = prof.token()
    if info is not None:
        if revoke_token:
            why = revoke(info, secrets=for_command())
            progress("revoked the refresh token at Google" if why is None else f"could not revoke at Google ({why}); "
                "remove access under myaccount.google.com > Security > Third-party access")
        prof.remove_token()
        progress(f"removed the stored sign-in of profile {prof.name}")
    else:
        progress(f"no stored Google sign-in for profile {prof.name}")
    if forget and prof.forget():
        progress(f"removed profile {prof.name}")
    return 0


# --- auth-check --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthCheckArgs:
    profile: str | None = None
    auth: str | None = None
    key_file: Path | None = None
    admin: str | None = None
    mailbox: str | None = None
    with_sendas: bool = False
    with_licenses: bool = False
    with_tokens: bool = False
    with_audit_log: bool = False
    api_root: str | None = None


def auth_check(args: AuthCheckArgs) -> AuthReport:
    """`preflight auth-check google`: the credentials tested scope by scope; the command prints the report."""
    from . import authcheck
    from .api import GoogleApi

    prof = profiles.profile(args.profile)
    mailbox = inputs.address(args.mailbox, "--mailbox") if args.mailbox else None
    sign_in = _resolve_sign_in(prof, args.auth, args.key_file, args.admin, None)
    wanted = inputs.opt_ins(args.with_sendas, args.with_licenses, args.with_tokens, args.with_audit_log)
    config = _api_settings(args.api_root)
    scopes = settings.wanted_scopes(sign_in.kind, wanted)
    if sign_in.kind == "service-account":
        signer = build_signer(prof, sign_in, secrets=for_command())
        assert isinstance(signer, ServiceAccountSigner)
        report = authcheck.check_service_account(
            signer.key, signer, GoogleApi(signer, config=config), scopes, profile=prof.name, mailbox=mailbox
        )
    else:
        info = prof.token()
        if info is None:
            raise SignInError(f"no stored Google sign-in for profile {prof.name!r}: run `preflight login google "
                              f"--profile {prof.name} --auth oauth --client-secrets FILE`")
        oauth = OAuthSigner(info, secrets=for_command())
        flags = " ".join(sorted(wanted))
        relogin = f"preflight login google --profile {prof.name} --auth oauth --client-secrets FILE {flags}".strip()
        report = authcheck.check_oauth(
            oauth, GoogleApi(oauth, config=config), scopes, profile=prof.name, token_path=prof.token_path,
            loose=tighten(prof.token_path), relogin=relogin,
        )
    return report
