"""Opt-in sign-in evidence: the tenant's own Entra sign-in log for SMTP AUTH with a password.

Graph `GET /auditLogs/signIns` (api-reference/v1.0/api/signin-list.md): AuditLog.Read.All and Directory.Read.All
(delegated: also Global Reader, Reports Reader or a security reader role); the sign-in log needs Microsoft Entra
ID P1 or P2, and without it Graph refuses (403, the known "license check" error). Pages of at most 1,000, most
recent first, within the log's retention. Basic SMTP AUTH appears with clientAppUsed 'Authenticated SMTP' (the
value CIPP-API's ListBasicAuth filters on). Per mailbox the snapshot keeps `smtpSignIns`: the signIn items of the
window, verbatim; the tenant keeps `smtpSignInWindow` {"since", "days", "truncated"} so the checks can say what
was read. Reading is bounded: at most MAX_PAGES pages per group of mailboxes, and the window says when it stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from preflight.http import ApiError

from .graph import Graph

CLIENT_APP = "Authenticated SMTP"
PER_QUERY = 10  # user principal names per $filter
MAX_PAGES = 5  # x 1,000 sign-ins per group of mailboxes
RESOURCE = "smtpSignIns"
WINDOW = "smtpSignInWindow"


def _query(since: str, upns: list[str]) -> dict[str, str]:
    who = " or ".join(f"userPrincipalName eq '{u.replace(chr(39), chr(39) * 2)}'" for u in upns)
    return {"$filter": f"createdDateTime ge {since} and clientAppUsed eq '{CLIENT_APP}' and ({who})",
            "$top": "1000"}


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
        url, query = body.get("@odata.nextLink"), None
        if not url:
            return items, False
    return items, True


def submit(pool: ThreadPoolExecutor, graph: Graph, days: int, now: datetime, users: Mapping[str, Any]
           ) -> tuple[dict[str, Any], list[tuple[dict[str, str], Future[tuple[list[Any], bool]]]]]:
    since = (now - timedelta(days=days)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    known = {str(u["userPrincipalName"]).lower(): a for a, u in users.items()
             if isinstance(u, dict) and u.get("userPrincipalName")}
    upns = list(known)
    jobs = []
    for i in range(0, len(upns), PER_QUERY):
        chunk = upns[i: i + PER_QUERY]
        jobs.append(({u: known[u] for u in chunk}, pool.submit(_read, graph, _query(since, chunk))))
    return {"since": since, "days": days}, jobs


def fill(window: dict[str, Any], jobs: list[tuple[dict[str, str], Future[tuple[list[Any], bool]]]],
         org: dict[str, Any], boxes: dict[str, dict[str, Any]]) -> None:
    truncated = False
    for owners, job in jobs:
        try:
            items, more = job.result()
        except ApiError as exc:
            for addr in owners.values():
                boxes[addr][RESOURCE] = exc.to_error()
            continue
        truncated |= more
        for upn, addr in owners.items():
            boxes[addr][RESOURCE] = [i for i in items if isinstance(i, dict)
                                     and str(i.get("userPrincipalName") or "").lower() == upn]
    org[WINDOW] = {**window, "truncated": truncated}
