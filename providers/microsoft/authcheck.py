"""`preflight auth-check microsoft`: can these credentials read each resource, and what is missing.

Each endpoint is probed once (Graph ones in one $batch, with $top=1 where a list is read), the tokens'
claims are decoded for display (never verified, never printed), and the clock is compared with the
Date header of a Graph reply: Entra rejects tokens and assertions from a clock that is minutes off.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from preflight.authcheck import Clock, clock_ahead, clock_limits, envelope, exit_code
from preflight.datafiles import load_toml
from preflight.http import ApiError

from .auth import MicrosoftSignIn, SignInSettings, TokenError, claims
from .collect import EXCHANGE_ONLINE_APP_ID, EXO_SP_SELECT, SP_SELECT, USER_SELECT, _odata, _path
from .graph import SubRequest
from .run import clients


@dataclass
class Probe:
    resource: str
    api: str  # "Graph" or "Exchange"
    readable: bool | None  # None: not probed (nothing to probe it on)
    status: int | None = None
    code: str = ""
    message: str = ""
    grant: str | None = None


@dataclass
class TokenInfo:
    api: str
    audience: str | None = None
    expires: str | None = None
    roles: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class AuthReport:
    tenant: str
    tenant_id: str | None
    signed_in_as: str
    auth: str
    cloud: str
    token_cache: str
    tokens: list[TokenInfo]
    clock: Clock
    probes: list[Probe]

    @property
    def all_readable(self) -> bool:
        return all(p.readable is not False for p in self.probes)

    @property
    def exit_code(self) -> int:
        return exit_code(signed_in=True, complete=self.all_readable)  # no sign-in raises SignInError: 4

    def to_dict(self) -> dict[str, Any]:
        body = {k: v for k, v in asdict(self).items() if k != "clock"}
        body["all_readable"] = self.all_readable
        return envelope("microsoft", body, self.clock, self.exit_code)


def _token_info(signin: MicrosoftSignIn, api: str) -> TokenInfo:
    try:
        token = signin.token(api)  # type: ignore[arg-type]
    except TokenError as exc:
        return TokenInfo(api, error=f"{exc.code}: {exc.message}")
    c = claims(token)
    exp = c.get("exp")
    return TokenInfo(
        api,
        audience=c.get("aud"),
        expires=datetime.fromtimestamp(int(exp), UTC).isoformat().replace("+00:00", "Z") if exp else None,
        roles=sorted(c.get("roles") or []),
        scopes=sorted(str(c.get("scp") or "").split()),
    )


def _probe(resource: str, api: str, outcome: Any, permissions: dict[str, str]) -> Probe:
    if not isinstance(outcome, ApiError):
        return Probe(resource, api, True)
    if outcome.status in (401, 403):
        return Probe(resource, api, False, outcome.status, outcome.code, outcome.message, permissions.get(resource))
    if outcome.status == 404:  # the object is absent, but the permission to look worked
        return Probe(resource, api, True, 404, outcome.code, "not found (the permission works)")
    return Probe(resource, api, None, outcome.status, outcome.code, f"could not tell: {outcome.message}")


def run_auth_check(settings: SignInSettings, *, mailbox: str | None, app_id: str | None,
                   progress: Any = lambda _m: None) -> AuthReport:
    """`preflight auth-check microsoft`: sign in (learning every secret into the run's registry) and probe each
    resource; the command prints the report."""
    from preflight.runsecrets import for_command

    from . import provider

    permissions = dict(provider.permissions())
    signin = MicrosoftSignIn(settings, out=progress, secrets=for_command())
    signin.check_inputs()
    progress(f"Signing in to {settings.tenant} ({settings.auth.value})...")
    signin.sign_in()
    graph, exchange, refusal = clients(signin)
    probes: list[Probe] = []

    user_key = _path(mailbox) if mailbox else None
    reqs = [
        SubRequest("securityDefaults", "/policies/identitySecurityDefaultsEnforcementPolicy"),
        SubRequest("conditionalAccessPolicies", "/identity/conditionalAccess/policies?$top=1"),
        SubRequest("namedLocations", "/identity/conditionalAccess/namedLocations?$top=1"),
        SubRequest("authorizationPolicy", "/policies/authorizationPolicy"),
        SubRequest("exchangeOnlineServicePrincipal",
                   f"/servicePrincipals(appId='{EXCHANGE_ONLINE_APP_ID}')?$select={EXO_SP_SELECT}"),
        SubRequest("user", f"/users/{user_key}?$select={USER_SELECT}" if user_key
                   else f"/users?$top=1&$select={USER_SELECT}"),
    ]
    if app_id:
        reqs.append(SubRequest("servicePrincipal", f"/servicePrincipals(appId='{_odata(app_id)}')?$select={SP_SELECT}"))
    local_before = time.time()
    headers, results = graph.batch_with_headers(reqs)  # throttled probes are retried like the collector's
    clock = Clock(clock_ahead(headers.get("Date"), local_before, time.time()),
                  clock_limits(load_toml(__name__.rpartition(".")[0], "data/authcheck.toml")))

    user = results.get("user")
    if isinstance(user, dict) and isinstance(user.get("value"), list):  # the $top=1 form
        user = user["value"][0] if user["value"] else None
    follow: list[SubRequest] = []
    if isinstance(user, dict) and user.get("id"):
        uid = _path(str(user["id"]))
        follow.append(SubRequest("memberOf", f"/users/{uid}/transitiveMemberOf?$top=1"))
        if not settings.auth.delegated:
            follow.append(SubRequest("mailboxSettings", f"/users/{uid}/mailboxSettings"))
    sp = results.get("servicePrincipal")
    if isinstance(sp, dict) and sp.get("id"):
        sp_id = str(sp["id"])
        follow.append(SubRequest("servicePrincipalAppRoles", f"/servicePrincipals/{_path(sp_id)}/appRoleAssignments"
                                 "?$top=1"))
        follow.append(SubRequest("oauth2PermissionGrants",
                                 f"/oauth2PermissionGrants?$filter=clientId eq '{_odata(sp_id)}'&$top=1"))
    if follow:
        results.update(graph.batch_chunk(follow))
    for name in ("securityDefaults", "conditionalAccessPolicies", "namedLocations", "authorizationPolicy",
                 "exchangeOnlineServicePrincipal", "servicePrincipal", "servicePrincipalAppRoles",
                 "oauth2PermissionGrants", "user", "memberOf", "mailboxSettings"):
        if name in results:
            probes.append(_probe(name, "Graph", results[name], permissions))
        elif name in ("memberOf",) or (name.startswith("servicePrincipalApp") and app_id) \
                or (name == "oauth2PermissionGrants" and app_id):
            probes.append(Probe(name, "Graph", None, message="not probed: the lookup it depends on failed"))

    probes.extend(_exchange_probes(exchange, refusal, mailbox, user, app_id, permissions))
    who = signin.username or f"app {settings.client_id}"
    return AuthReport(
        tenant=settings.tenant, tenant_id=signin.tenant_id, signed_in_as=who, auth=settings.auth.value,
        cloud=settings.cloud.name, token_cache=signin.cache_location,
        tokens=[_token_info(signin, "graph"), _token_info(signin, "exchange")],
        clock=clock, probes=probes,
    )


def _exchange_probes(exchange: Any, refusal: dict[str, Any] | None, mailbox: str | None, user: Any,
                     app_id: str | None, permissions: dict[str, str]) -> list[Probe]:
    names = ["organizationConfig", "transportConfig", "authenticationPolicies"]
    if app_id:
        names.append("exchangeServicePrincipals")
    box_names = ["mailbox", "casMailbox", "exchangeUser", "mailboxPermissions", "recipientPermissions"]
    if exchange is None:
        err = (refusal or {}).get("error") or {}
        return [Probe(n, "Exchange", False, err.get("status"), str(err.get("code") or ""),
                      str(err.get("message") or ""), permissions.get(n)) for n in names + box_names]
    identity = mailbox or (str(user.get("userPrincipalName")) if isinstance(user, dict) and
                           user.get("userPrincipalName") else None)
    calls: dict[str, tuple[str, dict[str, Any]]] = {
        "organizationConfig": ("Get-OrganizationConfig", {}),
        "transportConfig": ("Get-TransportConfig", {}),
        "authenticationPolicies": ("Get-AuthenticationPolicy", {}),
    }
    if app_id:
        calls["exchangeServicePrincipals"] = ("Get-ServicePrincipal", {})
    one = {"Identity": identity} if identity else {"ResultSize": 1}
    calls.update({
        "mailbox": ("Get-Mailbox", one), "casMailbox": ("Get-CASMailbox", one), "exchangeUser": ("Get-User", one),
    })
    if identity:
        calls["mailboxPermissions"] = ("Get-MailboxPermission", {"Identity": identity})
        calls["recipientPermissions"] = ("Get-RecipientPermission", {"Identity": identity})

    def run(item: tuple[str, tuple[str, dict[str, Any]]]) -> Probe:
        name, (cmdlet, params) = item
        try:
            exchange.invoke(cmdlet, params)
        except ApiError as exc:
            return _probe(name, "Exchange", exc, permissions)
        return Probe(name, "Exchange", True)

    with ThreadPoolExecutor(4) as pool:
        probes = list(pool.map(run, calls.items()))
    if not identity:
        probes += [Probe(n, "Exchange", None, message="not probed: pass --mailbox") for n in
                   ("mailboxPermissions", "recipientPermissions")]
    return probes


def render(report: AuthReport, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"
    lines = [
        f"Tenant        {report.tenant}" + (f" (id {report.tenant_id})" if report.tenant_id else ""),
        f"Signed in as  {report.signed_in_as} ({report.auth}, {report.cloud} cloud)",
        f"Token cache   {report.token_cache}",
    ]
    for t in report.tokens:
        if t.error:
            lines.append(f"{t.api.title():<13} no token: {t.error}")
            continue
        perms = ", ".join(t.roles) if t.roles else ", ".join(t.scopes)
        kind = "roles" if t.roles else "scopes"
        lines.append(f"{t.api.title():<13} audience {t.audience}, expires {t.expires}, {kind}: {perms or 'none'}")
    verdict = {"pass": " (OK)", "warn": " (drifting: enable NTP time sync)",
               "fail": " (TOO FAR OFF: fix this machine's clock, sign-ins will fail)"}.get(report.clock.status, "")
    lines.append(f"Clock         {report.clock.sentence('Microsoft')}{verdict}")
    lines.append("")
    width = max(len(p.resource) for p in report.probes) if report.probes else 10
    lines.append(f"{'Resource':<{width}}  {'API':<8}  Readable")
    for p in report.probes:
        mark = {True: "yes", False: "NO", None: "-"}[p.readable]
        line = f"{p.resource:<{width}}  {p.api:<8}  {mark}"
        if p.readable is False:
            line += f"  {p.status} {p.code}: {p.message}".rstrip(": ")
            if p.grant:
                line += f"\n{'':<{width}}  {'':<8}  grant: {p.grant}"
        elif p.message:
            line += f"  ({p.message})"
        lines.append(line)
    lines.append("")
    lines.append("Every resource is readable." if report.all_readable else
                 "Some resources are not readable: the checks that need them will be `unknown`.")
    return "\n".join(lines) + "\n"
