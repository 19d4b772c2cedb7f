"""Opt-in sign-in evidence: the tenant's own Entra sign-in log for SMTP AUTH.

Graph `GET /auditLogs/signIns` (api-reference/v1.0/api/signin-list.md): AuditLog.Read.All and Directory.Read.All
(delegated: also Global Reader, Reports Reader or a security reader role); the sign-in log needs Microsoft Entra
ID P1 or P2, and without it Graph refuses (403, the known "license check" error). Pages of at most 1,000, most
recent first, within the log's retention. Three reads, each paged and bounded (MAX_PAGES per query; the window
says where a read stopped early):

- Basic SMTP AUTH of the requested mailboxes: v1.0, clientAppUsed 'Authenticated SMTP' (the value CIPP-API's
  ListBasicAuth filters on) and their user principal names, PER_QUERY names a query. Per mailbox
  `smtpSignIns`: the signIn items of the window, verbatim.
- With `tenant_wide`: the same sign-ins for every user (`tenantSmtpSignIns` of the tenant), to find the
  integrations nobody listed.
- App-only OAuth of the sending app (`appSignIns` of the tenant, when oauth-app is checked and the app id given):
  v1.0 signIn lists user sign-ins only and has no signInEventTypes; service-principal sign-ins exist only on
  beta, filtered `signInEventTypes/any(t: t eq 'servicePrincipal')` (api-reference/beta/api/signin-list.md,
  resources/signin.md: signInEventTypes, servicePrincipalId, resourceId) on the app's appId and the Exchange
  Online resource, whose tokens XOAUTH2 uses. The log shows the token grant, not which protocol spent it.

The tenant keeps `smtpSignInWindow` {"since", "days", "truncated", "appTruncated", "tenantTruncated"}.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from preflight.http import ApiError, origin_of, same_origin
from preflight.model import Method

from .graph import Graph

if TYPE_CHECKING:
    from .collect import Target

CLIENT_APP = "Authenticated SMTP"
PER_QUERY = 10  # user principal names per $filter
MAX_PAGES = 5  # x 1,000 sign-ins per query
RESOURCE = "smtpSignIns"
WINDOW = "smtpSignInWindow"
TENANT = "tenantSmtpSignIns"
APP = "appSignIns"

Read = Future[tuple[list[Any], bool]]


@dataclass
class Plan:
    window: dict[str, Any]
    users: list[tuple[dict[str, str], Read]] = field(default_factory=list)  # (upn -> mailbox, its read)
    tenant: Read | None = None
    app: Read | None = None


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _read(graph: Graph, params: dict[str, str]) -> tuple[list[Any], bool]:
    """The items of up to MAX_PAGES pages, and whether more were left unread."""
    items: list[Any] = []
    url: str | None = graph.base_url + "/auditLogs/signIns"
    query: dict[str, str] | None = params
    for _ in range(MAX_PAGES):
        assert url is not None
        body = graph.http.get(url, params=query)
        if not isinstance(body, dict) or not isinstance(body.get("value"), list):
            raise ApiError(200, "MalformedResponse", "sign-in page has no 'value' list")
        items.extend(body["value"])
        link = body.get("@odata.nextLink")
        if not link:
            return items, False
        url, query = _on_graph(graph.base_url, link), None
    return items, True


def _on_graph(base: str, link: Any) -> str:
    """A next-page link, followed only on Graph's own origin: the request carries the bearer token."""
    if not same_origin(base, link):
        raise ApiError(200, "UntrustedRedirect", f"the sign-in log's next-page link points outside "
                                                  f"{origin_of(base)}: not followed")
    return str(link)


def submit(pool: Executor, graph: Graph, target: Target, now: datetime, users: Mapping[str, Any]) -> Plan:
    days = int(target.sign_in_days or 0)
    since = (now - timedelta(days=days)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    smtp = f"createdDateTime ge {since} and clientAppUsed eq {_quoted(CLIENT_APP)}"
    plan = Plan({"since": since, "days": days})
    known = {str(u["userPrincipalName"]).lower(): a for a, u in users.items()
             if isinstance(u, dict) and u.get("userPrincipalName")}
    upns = list(known)
    for i in range(0, len(upns), PER_QUERY):
        chunk = upns[i: i + PER_QUERY]
        who = " or ".join(f"userPrincipalName eq {_quoted(u)}" for u in chunk)
        plan.users.append(({u: known[u] for u in chunk},
                           pool.submit(_read, graph, {"$filter": f"{smtp} and ({who})", "$top": "1000"})))
    if target.sign_ins_tenant:
        plan.tenant = pool.submit(_read, graph, {"$filter": smtp, "$top": "1000"})
    app_id = target.options.app_id
    if app_id and Method.OAUTH_APP in target.options.methods:
        # Here, not at the top: the checks import this module's resource names, and these import the checks.
        from .beta import beta_graph
        from .checks.values import data

        exchange = str(data("wellknown")["apps"]["exchange_online"])
        query = (f"createdDateTime ge {since} and appId eq {_quoted(app_id)} and resourceId eq {_quoted(exchange)}"
                 " and signInEventTypes/any(t: t eq 'servicePrincipal')")
        plan.app = pool.submit(_read, beta_graph(graph), {"$filter": query, "$top": "1000"})
    return plan


def _result(job: Read, window: dict[str, Any], flag: str) -> Any:
    """The items of a read (noting in the window whether it stopped early), or its error record."""
    try:
        items, more = job.result()
    except ApiError as exc:
        return exc.to_error()
    window[flag] = window.get(flag, False) or more
    return [i for i in items if isinstance(i, dict)]


def fill(plan: Plan, org: dict[str, Any], boxes: dict[str, dict[str, Any]]) -> None:
    window = {**plan.window, "truncated": False}
    for owners, job in plan.users:
        got = _result(job, window, "truncated")
        for upn, addr in owners.items():
            boxes[addr][RESOURCE] = got if not isinstance(got, list) else [
                i for i in got if str(i.get("userPrincipalName") or "").lower() == upn]
    if plan.tenant is not None:
        org[TENANT] = _result(plan.tenant, window, "tenantTruncated")
    if plan.app is not None:
        org[APP] = _result(plan.app, window, "appTruncated")
    org[WINDOW] = window
