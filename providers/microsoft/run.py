"""Wire sign-in to collection: tokens -> Http -> Graph and Exchange clients -> Collector -> snapshot dict."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from preflight.http import ApiError, Http
from preflight.snapshot import error_of
from providers.microsoft.auth import Api, MicrosoftSignIn, TokenError, signin_data
from providers.microsoft.collect import DEFAULT_WORKERS, Collector, Target
from providers.microsoft.exchange import Exchange
from providers.microsoft.graph import Graph


def _auth(signin: MicrosoftSignIn, api: Api) -> Callable[[], dict[str, str]]:
    """Authorization header for each request; a token that cannot be had is that request's 401."""

    def headers() -> dict[str, str]:
        try:
            return {"Authorization": f"Bearer {signin.token(api)}"}
        except TokenError as exc:
            raise ApiError(401, exc.code, exc.message) from None

    return headers


def anchor_mailbox(signin: MicrosoftSignIn, tenant: str) -> str:
    """Exchange routes a delegated call by the admin's own mailbox, an app-only call by a system mailbox."""
    if signin.settings.auth.delegated and signin.username:
        return signin.username
    return str(signin_data()["exchange"]["app_anchor_mailbox"]).replace("{tenant}", tenant)


def clients(
    signin: MicrosoftSignIn,
    *,
    timeout: tuple[float, float] = (10.0, 60.0),
    sleep: Callable[[float], None] = time.sleep,
    max_wait: float = 60.0,
) -> tuple[Graph, Exchange | None, dict[str, Any] | None]:
    """The Graph client, and the Exchange client or why there is none (no Exchange token)."""
    cloud, tenant = signin.settings.cloud, signin.settings.tenant
    graph = Graph(Http(auth=_auth(signin, "graph"), timeout=timeout, sleep=sleep, max_wait=max_wait), cloud.graph_url)
    try:
        signin.token("exchange")
    except TokenError as exc:
        return graph, None, exc.to_error()
    http = Http(auth=_auth(signin, "exchange"), timeout=timeout, sleep=sleep, max_wait=max_wait)
    route = signin.tenant_id or tenant
    return graph, Exchange(http, cloud.exchange_url, route, anchor_mailbox(signin, tenant)), None


def collect(
    signin: MicrosoftSignIn,
    target: Target,
    *,
    workers: int = DEFAULT_WORKERS,
    progress: Callable[[str], None] = lambda _msg: None,
    timeout: tuple[float, float] = (10.0, 60.0),
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    graph, exchange, refusal = clients(signin, timeout=timeout, sleep=sleep)
    if refusal is not None:
        err = refusal["error"]
        progress(f"Exchange admin API: no token ({err['code']}: {err['message']}); its checks will be unknown")
    collector = Collector(graph, exchange, exchange_refusal=refusal, workers=workers, progress=progress)
    return collector.collect(target)


def unreachable(snapshot: dict[str, Any]) -> str | None:
    """Why the admin APIs could not be reached at all (exit 4), or None when anything was read."""
    values = list((snapshot.get("org") or {}).values())
    for box in (snapshot.get("mailboxes") or {}).values():
        values.extend(box.values())
    errors = [error_of(v) for v in values]
    if not values or any(e is None for e in errors):
        return None
    network = [e for e in errors if e is not None and e.get("status") is None]
    if not network:
        return None
    return f"could not reach the Microsoft admin APIs ({network[0].get('code')}: {network[0].get('message')})"
