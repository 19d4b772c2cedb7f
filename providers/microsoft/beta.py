"""Graph beta reads: Microsoft's Conditional Access What If answers and the legacy per-user MFA state.

Both exist only on the beta endpoint. They go, with every other per-mailbox question, into $batch requests
of 20 on /beta/$batch (What If is a POST action; JSON batching carries its body). Per mailbox:
`authenticationRequirements` (GET /users/{id}/authentication/requirements, when Basic is checked) and
`conditionalAccessWhatIf` (one evaluate per client app type of each user method and per sender address);
for the app: `workloadConditionalAccessWhatIf` (its service principal's sign-in, per sender address).
A What If resource is the list of {"request": the evaluate body sent, "response": the reply verbatim or its
error}; when every question failed alike it is recorded as that error.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from preflight.http import ApiError
from preflight.snapshot import error_of

from .checks.values import data
from .graph import MAX_BATCH, Graph, Result, SubRequest
from .whatif import EVALUATE_PATH, service_principal_questions, user_questions

USER_METHODS = ("basic", "oauth-delegated")


def beta_graph(graph: Graph) -> Graph:
    """The same client on the beta root of the same cloud (https://graph.microsoft.com/beta)."""
    root = graph.base_url.rsplit("/", 1)[0]
    return Graph(graph.http, f"{root}/beta")


@dataclass
class BetaJobs:
    # sub-request id -> (mailbox address, or None for the tenant; resource name; What If question or None)
    keys: dict[str, tuple[str | None, str, dict[str, Any] | None]] = field(default_factory=dict)
    futures: list[Future[dict[str, Result]]] = field(default_factory=list)
    org_errors: dict[str, Any] = field(default_factory=dict)


def submit(pool: Executor, graph: Graph, methods: set[str], sender_ips: tuple[str, ...],
           users: Mapping[str, Any], service_principal: Any) -> BetaJobs:
    """Queue the beta reads for these mailboxes (address -> Graph user, or None) and the app's service principal."""
    jobs = BetaJobs()
    exchange_online = str(data("wellknown")["apps"]["exchange_online"])  # the app SMTP signs in to
    requests: list[SubRequest] = []

    def add(rid: str, url: str, where: str | None, resource: str, question: dict[str, Any] | None = None) -> None:
        jobs.keys[rid] = (where, resource, question)
        requests.append(SubRequest(rid, url, body=question))

    for i, (addr, user) in enumerate(users.items()):
        if not isinstance(user, dict) or not user.get("id"):
            continue  # no such user (or unreadable): the checks say so from `user`
        uid = str(user["id"])
        if "basic" in methods:
            add(f"{i}:mfa", f"/users/{quote(uid, safe='')}/authentication/requirements", addr,
                "authenticationRequirements")
        n = 0
        for method in USER_METHODS:
            if method not in methods:
                continue
            for question in user_questions(uid, method, exchange_online, sender_ips):
                add(f"{i}:w{n}", EVALUATE_PATH, addr, "conditionalAccessWhatIf", question)
                n += 1
    if "oauth-app" in methods and service_principal is not None:
        sp = service_principal
        if error_of(sp) is not None:
            jobs.org_errors["workloadConditionalAccessWhatIf"] = sp  # without the app's object id nothing to ask
        elif isinstance(sp, dict) and sp.get("id"):
            for n, question in enumerate(service_principal_questions(str(sp["id"]), exchange_online,
                                                                     sender_ips)):
                add(f"app:w{n}", EVALUATE_PATH, None, "workloadConditionalAccessWhatIf", question)
    beta = beta_graph(graph)
    jobs.futures = [pool.submit(beta.batch_chunk, requests[i: i + MAX_BATCH])
                    for i in range(0, len(requests), MAX_BATCH)]
    return jobs


def _reply(result: Result) -> Any:
    return result.to_error() if isinstance(result, ApiError) else result


def fill(jobs: BetaJobs, org: dict[str, Any], boxes: dict[str, dict[str, Any]]) -> None:
    results: dict[str, Result] = {}
    for future in jobs.futures:
        results.update(future.result())
    answers: dict[tuple[str | None, str], list[dict[str, Any]]] = {}
    for rid, (where, resource, question) in jobs.keys.items():
        result = results[rid] if rid in results else \
            ApiError(200, "MalformedResponse", "$batch reply has no response for this request")
        if question is None:
            boxes[str(where)][resource] = _reply(result)
            continue
        answers.setdefault((where, resource), []).append({"request": question, "response": _reply(result)})
    for (where, resource), items in answers.items():
        errors = [error_of(item["response"]) for item in items]
        # Refused alike for every question (no permission, beta unavailable): one error says it.
        value: Any = items[0]["response"] if all(e is not None and e == errors[0] for e in errors) else items
        if where is None:
            org[resource] = value
        else:
            boxes[where][resource] = value
    org.update(jobs.org_errors)
