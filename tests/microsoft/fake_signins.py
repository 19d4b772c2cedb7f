"""The Entra sign-in log in the fake: GET /v1.0/auditLogs/signIns (api-reference/v1.0/api/signin-list.md).

Strict about the query preflight may send ($filter on createdDateTime, clientAppUsed and userPrincipalName;
$top of at most 1,000), newest first, paged with @odata.nextLink and $skiptoken. The records are the served
snapshot's `smtpSignIns` of the mailboxes asked for; a mailbox whose record is an error (a tenant without
Entra ID P1, no AuditLog.Read.All) makes the whole query answer that error, as Graph refuses the call itself.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from tests.microsoft.fake import Reply, graph_error

if TYPE_CHECKING:
    from tests.microsoft.fake import FakeMicrosoft, FakeTenant

FILTER = re.compile(r"^createdDateTime ge (\S+) and clientAppUsed eq '([^']*)' and \((.+)\)$")
UPN = re.compile(r"^userPrincipalName eq '((?:[^']|'')*)'$")


def _is_error(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"error"} and isinstance(value["error"], dict)


def sign_ins(fake: FakeMicrosoft, tenant: FakeTenant, query: dict[str, list[str]]) -> Reply:
    top = int((query.get("$top") or ["1000"])[0])
    if top > 1000:
        return graph_error(400, "BadRequest", "$top must not exceed 1000.")
    m = FILTER.match((query.get("$filter") or [""])[0])
    if m is None:
        return graph_error(400, "BadRequest", "Invalid filter clause.")
    since, client_app, who = m.groups()
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
    records.sort(key=lambda r: str(r["createdDateTime"]), reverse=True)
    size = min(top, fake.page_size)
    skip = int((query.get("$skiptoken") or ["0"])[0])
    body: dict[str, Any] = {"@odata.context": f"{fake.url}/v1.0/$metadata#auditLogs/signIns",
                            "value": records[skip: skip + size]}
    if skip + size < len(records):
        rest = {k: v[0] for k, v in query.items() if k != "$skiptoken"}
        body["@odata.nextLink"] = (f"{fake.url}/v1.0/auditLogs/signIns?"
                                   f"{urlencode({**rest, '$skiptoken': str(skip + size)}, quote_via=quote)}")
    return Reply(200, body)
