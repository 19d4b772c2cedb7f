"""Microsoft Graph over preflight.http.Http: GETs, @odata.nextLink paging, and JSON $batch.

A $batch reply carries one status per request: a throttled request (429, 503...) comes back inside a
200 reply with its own Retry-After header, so Http's retries never see it. Those are retried here,
honouring that header, and only the throttled requests are sent again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from preflight.http import RETRY_STATUS, ApiError, Http, batch_header, follow_pages, parse_error_body

MAX_BATCH = 20  # Graph's limit of requests per $batch


@dataclass(frozen=True)
class SubRequest:
    id: str
    url: str  # relative to the version root: "/users/a@contoso.com?$select=id"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None  # a JSON body makes it a POST (a read-only action such as evaluate)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "method": "GET" if self.body is None else "POST", "url": self.url}
        headers = dict(self.headers)
        if self.body is not None:
            # JSON batching: a request with a body must name its Content-Type.
            headers.setdefault("Content-Type", "application/json")
            out["body"] = dict(self.body)
        if headers:
            out["headers"] = headers
        return out


Result = Any  # the reply body of a successful request, or the ApiError of a failed one


class Graph:
    def __init__(self, http: Http, base_url: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")

    def batch_chunk(self, requests: Sequence[SubRequest]) -> dict[str, Result]:
        """Each request's result; throttled ones are sent again after their Retry-After."""
        return self.batch_with_headers(requests)[1]

    def batch_with_headers(self, requests: Sequence[SubRequest]) -> tuple[Mapping[str, str], dict[str, Result]]:
        """As batch_chunk, plus the headers of the first $batch reply (its Date, for clock checks)."""
        if len(requests) > MAX_BATCH:
            raise ValueError(f"a $batch holds at most {MAX_BATCH} requests")
        pending = {r.id: r for r in requests}
        results: dict[str, Result] = {}
        first: Mapping[str, str] | None = None
        for attempt in range(self.http.max_retries + 1):
            try:
                _status, headers, reply = self.http.request(
                    "POST", self.base_url + "/$batch", json_body={"requests": [r.to_json() for r in pending.values()]}
                )
            except ApiError as exc:
                results.update({rid: exc for rid in pending})
                return first or {}, results
            first = headers if first is None else first
            responses = reply.get("responses") if isinstance(reply, dict) else None
            if not isinstance(responses, list):
                bad = ApiError(200, "MalformedResponse", "$batch reply has no 'responses' list")
                results.update({rid: bad for rid in pending})
                return first, results
            throttled: dict[str, SubRequest] = {}
            waits: list[float] = []
            for item in responses:
                rid = str(item.get("id")) if isinstance(item, dict) else None
                if rid not in pending:
                    continue
                status = item.get("status")
                if type(status) is int and status in RETRY_STATUS and attempt < self.http.max_retries:
                    throttled[rid] = pending[rid]
                    waits.append(self.http.backoff(attempt, batch_header(item.get("headers"), "Retry-After")))
                    continue
                results[rid] = self._result(item)
            missing = set(pending) - set(results) - set(throttled)
            for rid in missing:
                results[rid] = ApiError(200, "MalformedResponse", f"$batch reply has no response for request {rid}")
            if not throttled:
                return first, results
            self.http.sleep(max(waits))
            pending = throttled
        raise AssertionError("unreachable")

    def _result(self, item: Mapping[str, Any]) -> Result:
        status, body = item.get("status"), item.get("body")
        if type(status) is not int:  # bool is an int too, and no status
            return ApiError(200, "MalformedResponse", "$batch response without a status")
        if not 200 <= status < 300:
            return self.http.masked(parse_error_body(status, body))  # servers echo what they were sent
        if isinstance(body, dict) and body.get("@odata.nextLink"):
            # A long collection: the rest of its pages are plain GETs on the link.
            try:
                rest = follow_pages(self.http, body["@odata.nextLink"], origin=self.base_url)
            except ApiError as exc:
                return exc
            body = {**body, "value": list(body.get("value") or []) + rest}
            body.pop("@odata.nextLink", None)
        return body
