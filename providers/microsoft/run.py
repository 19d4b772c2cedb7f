"""Wire sign-in to collection: tokens -> Http -> Graph and Exchange clients -> Collector -> snapshot dict."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from preflight import pipeline
from preflight.addresses import from_table
from preflight.deadline import DEFAULT_TENANT_DEADLINE, Deadline
from preflight.errors import InputError
from preflight.http import ApiError, Http
from preflight.model import Method
from preflight.snapshot import Options

from . import inputs
from .auth import Api, AuthMethod, MicrosoftSignIn, SignInSettings, TokenError, signin_data
from .clouds import get_cloud
from .collect import DEFAULT_WORKERS, Collector, Target
from .exchange import Exchange
from .graph import Graph

if TYPE_CHECKING:
    from preflight.output import FailOn, Format
    from preflight.providers import CollectRequest


def _auth(signin: MicrosoftSignIn, api: Api) -> Callable[[], dict[str, str]]:
    """Authorization header for each request; a token that cannot be had is that request's 401."""

    def headers() -> dict[str, str]:
        try:
            return {"Authorization": f"Bearer {signin.token(api)}"}
        except TokenError as exc:
            raise ApiError(401, exc.code, exc.message) from None

    return headers


def anchor_mailbox(signin: MicrosoftSignIn, tenant: str) -> str | None:
    """The X-AnchorMailbox header (data/signin.toml): the admin's own mailbox for a delegated call, the
    tenant's system mailbox at the tenant id for an app-only one; None when that id is not known."""
    form = signin_data()["exchange"]
    if signin.settings.auth.delegated and signin.username:
        return str(form["user_anchor"]).replace("{user}", signin.username)
    tenant_id = signin.tenant_id or (tenant if inputs.is_guid(tenant) else None)
    return str(form["app_anchor"]).replace("{tenant_id}", tenant_id) if tenant_id else None


def clients(
    signin: MicrosoftSignIn,
    *,
    timeout: tuple[float, float] = (10.0, 60.0),
    sleep: Callable[[float], None] = time.sleep,
    max_wait: float = 60.0,
    deadline: Deadline | None = None,
) -> tuple[Graph, Exchange | None, dict[str, Any] | None]:
    """The Graph client, and the Exchange client or why there is none (no Exchange token)."""
    cloud, tenant = signin.settings.cloud, signin.settings.tenant
    common: dict[str, Any] = {"timeout": timeout, "sleep": sleep, "max_wait": max_wait, "deadline": deadline,
                              "secrets": signin.secrets}
    graph = Graph(Http(auth=_auth(signin, "graph"), **common), cloud.graph_url)
    try:
        signin.token("exchange")
    except TokenError as exc:
        return graph, None, exc.to_error()
    anchor = anchor_mailbox(signin, tenant)
    if anchor is None:  # a wrong routing hint can fail every call: do not guess one
        return graph, None, ApiError(None, "NoTenantId", "the token names no tenant id (tid) to route Exchange "
                                     "calls by; pass --tenant as the tenant id").to_error()
    http = Http(auth=_auth(signin, "exchange"), **common)
    route = signin.tenant_id or tenant
    return graph, Exchange(http, cloud.exchange_url, route, anchor), None


def collect(
    signin: MicrosoftSignIn,
    target: Target,
    *,
    workers: int = DEFAULT_WORKERS,
    progress: Callable[[str], None] = lambda _msg: None,
    timeout: tuple[float, float] = (10.0, 60.0),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    deadline: Deadline | None = None,
    threads: Executor | None = None,
) -> dict[str, Any]:
    graph, exchange, refusal = clients(signin, timeout=timeout, sleep=sleep, deadline=deadline)
    if refusal is not None:
        err = refusal["error"]
        progress(f"Exchange admin API: no token ({err['code']}: {err['message']}); its checks will be unknown")
    collector = Collector(graph, exchange, exchange_refusal=refusal, workers=workers, progress=progress, clock=clock,
                          threads=threads)
    return collector.collect(target)


def check(settings: SignInSettings, boxes: list[str], options: Options, save_snapshot: Path | None, fmt: Format,
          output: Path | None, fail_on: FailOn, *, progress: Callable[[str], None] = pipeline.progress,
          deadline: float | None = None, sign_in_days: int | None = None, sign_ins_tenant: bool = False) -> int:
    """`preflight check microsoft`: sign in and collect, then the shared pipeline; the exit code (DESIGN §8)."""
    from preflight.runsecrets import for_command

    from . import provider

    limit = Deadline(deadline or DEFAULT_TENANT_DEADLINE)
    signin = MicrosoftSignIn(settings, out=progress, secrets=for_command(), deadline=limit)
    signin.check_inputs()
    progress(f"Signing in to {settings.tenant} ({settings.auth.value}, {settings.cloud.name} cloud)...")
    signin.sign_in()
    who = signin.username or f"app {settings.client_id}"
    progress(f"Signed in as {who}; token cache: {signin.cache_location}")
    target = Target(settings.tenant, settings.cloud.name, tuple(boxes), options, signin.tenant_id,
                    mailbox_settings=not settings.auth.delegated, sign_in_days=sign_in_days,
                    sign_ins_tenant=sign_ins_tenant)
    data = collect(signin, target, progress=progress, deadline=limit)
    return pipeline.check(provider, data, f"{settings.tenant} (collected)", save_snapshot=save_snapshot, fmt=fmt,
                          output=output, fail_on=fail_on)


def login(settings: SignInSettings, *, progress: Callable[[str], None] = pipeline.progress) -> int:
    """`preflight login microsoft`: sign in once and keep the token in the owner-only cache."""
    from preflight.runsecrets import for_command

    signin = MicrosoftSignIn(settings, out=progress, secrets=for_command())
    signin.check_inputs()
    signin.sign_in()
    who = signin.username or f"app {settings.client_id}"
    progress(f"Signed in to {settings.tenant} as {who}.")
    progress(f"Token cache: {signin.cache_location}")
    return 0


def logout(tenant: str | None, account: str | None, cloud: str, *, every: bool = False,
           progress: Callable[[str], None] = pipeline.progress) -> int:
    """`preflight logout microsoft`: remove the cached tokens of a tenant (one account, or all of them), or of
    every tenant; nothing is revoked at Microsoft."""
    from . import tokencache

    root = tokencache.default_root()
    if every:
        paths = sorted(root.rglob(f"*{tokencache.SUFFIX}")) if root.is_dir() else []
    elif tenant:
        directory = tokencache.tenant_dir(root, cloud, inputs.tenant(tenant))
        if account:
            paths = [tokencache.account_file(directory, inputs.address(account, "--account"))]
        else:
            paths = sorted(directory.glob(f"*{tokencache.SUFFIX}")) if directory.is_dir() else []
    else:
        raise InputError("logout: pass --tenant (and optionally --account), or --all")
    removed = [p for path in paths for p in tokencache.TokenCache(path, warn=lambda _m: None).clear()]
    caches = [p for p in removed if p.name.endswith(tokencache.SUFFIX)]
    progress(f"Removed {len(caches)} token cache(s)." if caches else "No cached sign-in found.")
    for path in caches:
        progress(f"  {path}")
    return 0


def collect_request(request: CollectRequest) -> dict[str, Any]:
    """The provider's collector for audits: one customer's settings (inventory keys) -> snapshot dict."""
    s = request.settings
    try:
        auth = AuthMethod(str(s.get("auth") or AuthMethod.DEVICE_CODE.value))
    except ValueError:
        valid = ", ".join(m.value for m in AuthMethod)
        raise InputError(f"auth: {s.get('auth')!r} is not one of {valid}") from None
    settings = SignInSettings(
        tenant=inputs.tenant(str(s.get("tenant") or s.get("domain") or "")),
        client_id=inputs.guid(str(s.get("client_id") or ""), "client_id"),
        cloud=get_cloud(str(s.get("cloud") or "global")),
        auth=auth,
        certificate=Path(str(s["certificate"])).expanduser() if s.get("certificate") else None,
        certificate_password_env=s.get("certificate_password_env"),
        client_secret_env=s.get("client_secret_env"),
        account=inputs.address(str(s["account"]), "account") if s.get("account") else None,
        # App-only: the audit's own per-customer folder. Delegated: an audit cannot prompt, so it uses
        # the sign-in `preflight login microsoft --tenant T` cached (same tenant and account file).
        cache_dir=None if auth.delegated else request.cache_dir,
        interactive=request.interactive,
    )
    boxes = tuple(dict.fromkeys(inputs.address(m) for m in request.mailboxes))
    options = Options(
        methods=tuple(dict.fromkeys(Method(m) for m in request.methods)) or tuple(Method),
        sender_ips=tuple(inputs.cidr(ip) for ip in request.sender_ips),
        app_id=inputs.guid(request.app_id, "app_id") if request.app_id else None,
        from_addresses=from_table(request.from_addresses),
    )
    limit = Deadline(request.deadline or DEFAULT_TENANT_DEADLINE)
    signin = MicrosoftSignIn(settings, out=request.progress, secrets=request.secrets, deadline=limit)
    signin.check_inputs()
    threads = request.memo.reading_threads()  # each tenant at most DEFAULT_WORKERS reads at a time (collect.Lane)
    signin.sign_in(threads)
    days = s.get("sign_ins") or (30 if s.get("sign_ins_tenant") else None)  # inventory keys, validated there
    target = Target(settings.tenant, settings.cloud.name, boxes, options, signin.tenant_id,
                    mailbox_settings=not auth.delegated, sign_in_days=days,
                    sign_ins_tenant=bool(s.get("sign_ins_tenant")))
    now = request.now
    data = collect(signin, target, progress=request.progress, deadline=limit, threads=threads,
                   clock=(lambda: now) if now is not None else (lambda: datetime.now(UTC)))
    return data
