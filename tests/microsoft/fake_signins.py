"""The Entra sign-in log in the fake: GET /v1.0/auditLogs/signIns (api-reference/v1.0/api/signin-list.md) and,
for service principals, GET /beta/auditLogs/signIns (api-reference/beta/api/signin-list.md).

Strict about the query preflight may send ($filter on createdDateTime, clientAppUsed and, optionally,
userPrincipalName; on beta only: appId, resourceId and signInEventTypes/any(t: t eq 'servicePrincipal'), a
property v1.0 does not have; $top of at most 1,000), newest first, paged with @odata.nextLink and $skiptoken.
The records are the served snapshot's `smtpSignIns` of the mailboxes asked for, its `tenantSmtpSignIns` for a
query naming nobody, its `appSignIns` for the service-principal query; a record that is an error (a tenant
without Entra ID P1, no AuditLog.Read.All) makes the whole query answer that error, as Graph refuses the call.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from tests.microsoft.fake import Reply, graph_error

if TYPE_CHECKING:
    from tests.microsoft.fake import FakeMicrosoft, FakeTenant

FILTER = re.compile(r"^createdDateTime ge (\S+) and clientAppUsed eq '([^']*)'(?: and \((.+)\))?$")
APP_FILTER = re.compile(r"^createdDateTime ge (\S+) and appId eq '([^']*)' and resourceId eq '([^']*)' and "
                        r"signInEventTypes/any\(t: t eq 'servicePrincipal'\)$")
UPN = re.compile(r"^userPrincipalName eq '((?:[^']|'')*)'$")


def _is_error(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"error"} and isinstance(value["error"], dict)


def _app(tenant: FakeTenant, m: re.Match[str]) -> list[dict[str, Any]] | Reply:
    since, app_id, resource = m.groups()
    value = tenant.snapshot.get("org", {}).get("appSignIns", [])
    if _is_error(value):
        err = value["error"]
        return graph_error(int(err.get("status") or 500), str(err.get("code")), str(err.get("message") or ""))
    return [r for r in value if r.get("appId") == app_id and r.get("resourceId") == resource
            and "servicePrincipal" in (r.get("signInEventTypes") or []) and str(r["createdDateTime"]) >= since]


def sign_ins(fake: FakeMicrosoft, tenant: FakeTenant, query: dict[str, list[str]], *, beta: bool = False) -> Reply:
    top = int((query.get("$top") or ["1000"])[0])
    if top > 1000:
        return graph_error(400, "BadRequest", "$top must not exceed 1000.")
    text = (query.get("$filter") or [""])[0]
    if "signInEventTypes" in text and not beta:
        return graph_error(400, "BadRequest", "Could not find a property named 'signInEventTypes' on type "
                           "'microsoft.graph.signIn'.")
    app = APP_FILTER.match(text)
    m = FILTER.match(text)
    if app is not None:
        found = _app(tenant, app)
        if isinstance(found, Reply):
            return found
        return _page(fake, found, query, beta)
    if m is None:
        return graph_error(400, "BadRequest", "Invalid filter clause.")
    since, client_app, who = m.groups()
    if who is None:
        value = tenant.snapshot.get("org", {}).get("tenantSmtpSignIns", [])
        if _is_error(value):
            err = value["error"]
            return graph_error(int(err.get("status") or 500), str(err.get("code")), str(err.get("message") or ""))
        return _page(fake, [r for r in value if r.get("clientAppUsed") == client_app
                            and str(r["createdDateTime"]) >= since], query, beta)
    upns = []
    for part in who.split(" or "):
        u = UPN.match(part.strip())
        if u is None:
            return graph_error(400, "BadRequest", f"Invalid filter clause: {part}")
        upns.append(u.group(1).replace("''", "'").lower())
    records: list[dict[str, Any]] = []
    for box in tenant.boxes.values():
        user = box.get("user")
        if not isinstance(user, dict) or str(user.get("userPrincipalName", "")).lower() not in upns:
            continue
        value = box.get("smtpSignIns", [])
        if _is_error(value):
            err = value["error"]
            return graph_error(int(err.get("status") or 500), str(err.get("code")), str(err.get("message") or ""))
        records += [r for r in value if r.get("clientAppUsed") == client_app and str(r["createdDateTime"]) >= since]
    return _page(fake, records, query, beta)


def _page(fake: FakeMicrosoft, records: list[dict[str, Any]], query: dict[str, list[str]], beta: bool) -> Reply:
    records = sorted(records, key=lambda r: str(r["createdDateTime"]), reverse=True)
    root = f"{fake.url}/{'beta' if beta else 'v1.0'}"
    size = min(int((query.get("$top") or ["1000"])[0]), fake.page_size)
    skip = int((query.get("$skiptoken") or ["0"])[0])
    body: dict[str, Any] = {"@odata.context": f"{root}/$metadata#auditLogs/signIns",
                            "value": records[skip: skip + size]}
    if skip + size < len(records):
        rest = {k: v[0] for k, v in query.items() if k != "$skiptoken"}
        body["@odata.nextLink"] = (f"{root}/auditLogs/signIns?"
                                   f"{urlencode({**rest, '$skiptoken': str(skip + size)}, quote_via=quote)}")
    return Reply(200, body)
