"""The Exchange Online admin REST endpoint (InvokeCommand), isolated here because it is unofficial.

    POST https://{exchange host}/adminapi/beta/{tenant}/InvokeCommand
    {"CmdletInput": {"CmdletName": "Get-CASMailbox", "Parameters": {"Identity": "a@contoso.com"}}}

It is what the ExchangeOnlineManagement PowerShell module calls underneath. Results sit in "value";
a long result pages through "@odata.nextLink" (some replies spell it "odata.nextLink"), fetched by
POSTing the same body to the link. A failed cmdlet answers {"error": {"message": "Error executing
cmdlet", "details": [{"message": "<id>|<exception type>|<reason>"}]}}; the reason is recorded.
Payloads are kept verbatim: booleans may arrive as strings, and the checks handle that.

Many cmdlets go out together in JSON batches, as KelvinTegelaar/CIPP-API New-ExoBulkRequest.ps1 sends them
(data/signin.toml [exchange] has the facts and their source):

    POST https://{exchange host}/adminapi/beta/{tenant}/$batch
    {"requests": [{"id": "...", "method": "POST", "url": "<the InvokeCommand URL>",
                   "body": {"CmdletInput": {...}}, "headers": {"X-AnchorMailbox": ..., "X-CmdletName": ...}}]}
    -> {"responses": [{"id": "...", "status": 200, "headers": {...}, "body": <the InvokeCommand reply>}]}

Each sub-response is read exactly as a single reply would be (errors, warnings, paging, redirects), matched
to its cmdlet by id only; a cmdlet with no response or two is an error, never another cmdlet's data. A
page link, a redirect or a throttled answer (429/5xx, after its Retry-After) is POSTed again inside a later
batch of the same cmdlets. A tenant whose $batch is refused is read one cmdlet per request from then on.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from preflight.http import RETRY_STATUS, ApiError, Http, batch_header, parse_error_body, retry_after

MAX_PAGES = 200
WARNINGS = "@adminapi.warnings"


def _next_link(body: Mapping[str, Any]) -> str | None:
    link = body.get("@odata.nextLink") or body.get("odata.nextLink")
    return str(link) if link else None


def _facts() -> Mapping[str, Any]:
    from .auth import signin_data

    facts: Mapping[str, Any] = signin_data()["exchange"]  # read, never changed: no copy per cmdlet
    return facts


def cmdlet_error(exc: ApiError) -> ApiError:
    """The cmdlet's own reason: error.details[].message is "<id>|<exception type>|<text>". An object that
    does not exist is a 404 whether Exchange said 404 or 500 (ManagementObjectNotFoundException)."""
    err = exc.body.get("error") if isinstance(exc.body, dict) else None
    details = err.get("details") if isinstance(err, dict) else None
    if isinstance(details, dict):
        details = [details]
    for detail in details if isinstance(details, list) else []:
        text = str(detail.get("message") or "") if isinstance(detail, dict) else ""
        if not text:
            continue
        parts = text.split("|")
        if len(parts) >= 3:
            kind = parts[1].rsplit(".", 1)[-1]
            status = 404 if kind in _facts()["not_found"] else exc.status
            return ApiError(status, kind or exc.code, "|".join(parts[2:]).strip(), exc.body)
        return ApiError(exc.status, exc.code, text.strip(), exc.body)
    if exc.status in (401, 403) and not exc.message:
        # A refused token comes back with an empty body: say what that means.
        return ApiError(exc.status, exc.code, "the Exchange admin API refused the request", exc.body)
    return exc


def token_refused(error: Any) -> bool:
    """A recorded error that refuses the token itself (every cmdlet would be refused alike), as opposed to
    a 401 for one cmdlet the caller's Exchange role does not include."""
    err = error.get("error") if isinstance(error, dict) else None
    return isinstance(err, dict) and err.get("status") == 401 and \
        _facts()["cmdlet_refused"] not in str(err.get("message") or "")


@dataclass(frozen=True)
class Cmdlet:
    name: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    one: bool = False  # a single-object cmdlet (invoke_one): its first object, EmptyResult without one

    def body(self) -> dict[str, Any]:
        return {"CmdletInput": {"CmdletName": self.name, "Parameters": dict(self.parameters)}}


class _Refused(Exception):
    """The $batch endpoint itself was refused, or answered off-shape."""


class _Read:
    """One cmdlet in flight inside $batch requests: where its next POST goes and what it has read so far.
    The counters mirror a single call's: pages and their links per cmdlet (invoke), redirects per page
    (_post), retries and their waits per POST (Http.request)."""

    def __init__(self, cmdlet: Cmdlet, url: str, future: Future[Any]) -> None:
        self.cmdlet, self.url, self.future = cmdlet, url, future
        self.id = ""
        self.items: list[Any] = []
        self.warnings: list[str] = []
        self.seen: set[str] = set()
        self.pages = self.hops = self.attempt = 0
        self.waited = 0.0

    def moved(self, url: str) -> None:
        self.url, self.attempt, self.waited = url, 0, 0.0


def _balanced(items: Sequence[Any], limit: int) -> list[Sequence[Any]]:
    """`items` in as few groups of at most `limit` as it takes, their sizes as even as they go."""
    groups = -(-len(items) // limit)
    return [items[i * len(items) // groups: (i + 1) * len(items) // groups] for i in range(groups)]


class Exchange:
    def __init__(self, http: Http, base_url: str, tenant: str, anchor_mailbox: str) -> None:
        self.http = http
        root = f"{base_url.rstrip('/')}/adminapi/beta/{tenant}"
        self.url = f"{root}/InvokeCommand"
        self.batch_url = f"{root}/$batch"
        # Cleared for good (this tenant's collection) once the $batch endpoint is refused.
        self.batching = True
        self.anchor = anchor_mailbox  # the X-AnchorMailbox header value, e.g. "APP:SystemMailbox{...}@<tenant id>"
        base = urlsplit(base_url)
        self._host, self._port = (base.hostname or "").lower(), base.port or 443

    def _trusted(self, current: str, link: str, what: str, status: int) -> str:
        """Where a redirect or next-page link may take the bearer token: https on the cloud's Exchange
        host or a subdomain of it. Anything else is refused rather than followed."""
        try:
            url = urljoin(current, link)
            parts = urlsplit(url)
            scheme, port, host = parts.scheme, parts.port or 443, (parts.hostname or "").lower()
        except ValueError:  # not a URL at all ("https://[::1/", a port out of range): nowhere to follow
            scheme, port, host = "", -1, ""
        if scheme != "https" or port != self._port or not (
                host == self._host or host.endswith("." + self._host)):
            raise ApiError(status, "UntrustedRedirect",
                           f"the Exchange admin API's {what} points outside https://{self._host}: not followed")
        return url

    def invoke(self, cmdlet: str, parameters: Mapping[str, Any] | None = None) -> list[Any]:
        """Every object the cmdlet returned (all pages). Raises ApiError with the cmdlet's reason."""
        items: list[Any] = self.single(Cmdlet(cmdlet, dict(parameters or {})))
        return items

    def invoke_one(self, cmdlet: str, parameters: Mapping[str, Any] | None = None) -> Any:
        """A single-object cmdlet (Get-TransportConfig, Get-OrganizationConfig): its object."""
        return self.single(Cmdlet(cmdlet, dict(parameters or {}), one=True))

    def single(self, cmdlet: Cmdlet) -> Any:
        """One cmdlet, one InvokeCommand POST per page."""
        read = _Read(_readonly(cmdlet), self.url, Future())
        body = cmdlet.body()
        while self._page(read, self._post(read.url, body, {**self._headers(cmdlet),
                                                           "client-request-id": str(uuid.uuid4())})):
            pass
        return _result(read)

    def submit(self, pool: Executor, cmdlets: Sequence[Cmdlet]) -> list[Future[Any]]:
        """Each cmdlet's result (as single() returns it, or its ApiError) as a future: the cmdlets go out in
        $batch requests of at most batch_limit, each on the pool; one by one once $batch is refused."""
        futures: list[Future[Any]] = [Future() for _ in cmdlets]
        reads = [_Read(_readonly(c), self.url, f) for c, f in zip(cmdlets, futures, strict=True)]
        if not self.batching:
            for read in reads:
                pool.submit(self._one_by_one, read)
        elif reads:
            for group in _balanced(reads, int(_facts()["batch_limit"])):
                pool.submit(self._batch, pool, list(group))
        return futures

    def _one_by_one(self, read: _Read) -> None:
        try:
            read.future.set_result(self.single(read.cmdlet))
        except BaseException as exc:  # whatever it was, the caller's result() raises it
            read.future.set_exception(exc)

    def _batch(self, pool: Executor, pending: list[_Read]) -> None:
        """Send `pending` as one $batch, again for the pages, redirects and throttled answers, until each has
        its result. Never waits on the pool (its threads may all be busy sending batches)."""
        try:
            while pending:
                try:
                    answers = self._send(pending)
                except _Refused:
                    self.batching = False
                    for read in pending:  # from the start: a read has no side effect
                        fresh = _Read(read.cmdlet, self.url, read.future)
                        pool.submit(self._one_by_one, fresh)
                    return
                except ApiError as exc:  # the batch itself failed after Http's retries: so did each of its cmdlets
                    for read in pending:
                        read.future.set_exception(exc)
                    return
                waits = {read.id: self._step(read, answers.get(read.id, [])) for read in pending}
                pending = [read for read in pending if waits[read.id] is not None]
                longest = max((w for w in waits.values() if w is not None), default=0.0)
                if pending and longest > 0:
                    self.http.sleep(longest)
        except BaseException as exc:
            for read in pending:
                if not read.future.done():
                    read.future.set_exception(exc)
            raise

    def _send(self, pending: list[_Read]) -> dict[str, list[Any]]:
        """One $batch of `pending`: each request id -> the responses that carried it (matched by id, never by
        position). Raises _Refused when the endpoint refuses the batch or answers off-shape."""
        # Each request carries the bearer too, as CIPP-API's do: that is the shape real tenants are known to
        # accept (whether the endpoint would take the outer request's alone is not documented).
        bearer = dict(self.http.auth()) if self.http.auth else {}
        requests = []
        # New each round: an answer to an earlier round matches nothing. 32 random hex digits each, as uuid4().hex
        # gave, from one call for the whole batch rather than a uuid4 object and a getrandom call per cmdlet.
        ids = secrets.token_hex(16 * len(pending))
        for n, read in enumerate(pending):
            read.id = ids[32 * n: 32 * n + 32]
            requests.append({"id": read.id, "method": "POST", "url": read.url, "body": read.cmdlet.body(),
                             "headers": {**bearer, **self._headers(read.cmdlet)}})
        try:
            # OData stops a batch at its first failed request unless asked to go on (OData/WebApi#447): one
            # missing mailbox would leave every later cmdlet of the batch unanswered.
            reply = self._post(self.batch_url, {"requests": requests},
                               {"X-AnchorMailbox": self.anchor, "Prefer": "odata.continue-on-error",
                                "client-request-id": str(uuid.uuid4())})
        except ApiError as exc:
            if exc.status in _facts()["batch_refused"]:
                raise _Refused() from None
            raise
        responses = reply.get("responses") if isinstance(reply, dict) else None
        if not isinstance(responses, list):
            raise _Refused()
        by_id: dict[str, list[Any]] = {}
        for item in responses:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                by_id.setdefault(item["id"], []).append(item)
        return by_id

    def _step(self, read: _Read, responses: list[Any]) -> float | None:
        """Read one sub-response into `read`: None when its cmdlet is done (its future holds the result or the
        error), else the seconds to wait before POSTing it again (0: a next page or a redirect)."""
        try:
            return self._answer(read, responses)
        except ApiError as exc:
            read.future.set_exception(exc)
            return None

    def _answer(self, read: _Read, responses: list[Any]) -> float | None:
        name = read.cmdlet.name
        if len(responses) != 1:
            what = "no response" if not responses else f"{len(responses)} responses"
            raise ApiError(200, "MalformedResponse", f"{name}: the $batch reply has {what} for this cmdlet")
        item = responses[0]
        status, headers, body = item.get("status"), item.get("headers"), item.get("body")
        if not isinstance(status, int) or isinstance(status, bool):
            raise ApiError(200, "MalformedResponse", f"{name}: a $batch response without a status")
        location = batch_header(headers, "Location")
        if 300 <= status < 400 and location:
            read.hops += 1
            if read.hops >= 3:
                raise ApiError(status, "TooManyRedirects", "the Exchange admin API redirected too often")
            read.moved(self._trusted(read.url, location, "redirect", status))
            return 0.0
        if status in RETRY_STATUS and read.attempt < self.http.max_retries:
            return self._retry(read, status, batch_header(headers, "Retry-After"), body)
        if not 200 <= status < 400:
            raise self.http.masked(cmdlet_error(parse_error_body(status, body)))
        if self._page(read, body):
            return 0.0
        read.future.set_result(_result(read))
        return None

    def _retry(self, read: _Read, status: int, header: str | None, body: Any) -> float:
        """The wait before a throttled sub-response's next try, by Http's rules for a throttled reply: its
        Retry-After up to max_wait, the retry budget, the deadline; ApiError (throttled) when it may not."""
        http = self.http
        asked = retry_after(header)
        wait = http.backoff(read.attempt, header)
        if asked is not None and asked > http.max_wait:
            why = f"asked to retry after {asked:.0f} s; preflight waits at most {http.max_wait:g} s"
        elif read.waited + wait > http.retry_budget:
            why = f"still failing after {read.attempt + 1} attempts and {read.waited:.0f} s of waiting"
        elif wait >= http.deadline.remaining():
            why = http.deadline.message
        else:
            read.attempt += 1
            read.waited += wait
            return wait
        err = parse_error_body(status, body)
        raise self.http.masked(cmdlet_error(ApiError(status, err.code, why, err.body)))

    def _page(self, read: _Read, reply: Any) -> bool:
        """Add one reply's objects to `read`; True when there is a next page (read.url now points at it)."""
        cmdlet = read.cmdlet.name
        if isinstance(reply, dict) and reply.get("value") is None and isinstance(reply.get(WARNINGS), list):
            # A cmdlet that wrote only warnings returns no objects (CIPP New-ExoRequest handles the same).
            read.warnings.extend(str(w) for w in reply[WARNINGS])
            reply = {**reply, "value": []}
        if not isinstance(reply, dict) or not isinstance(reply.get("value"), list):
            raise ApiError(200, "MalformedResponse", f"{cmdlet}: reply has no 'value' list")
        read.items.extend(reply["value"])
        link = _next_link(reply)
        if not link:
            return False
        if link in read.seen:
            raise ApiError(200, "PagingLoop", f"{cmdlet}: the next-page link repeats an earlier page")
        read.seen.add(link)
        read.pages += 1
        if read.pages >= MAX_PAGES:
            raise ApiError(200, "TooManyPages", f"{cmdlet}: more than {MAX_PAGES} pages")
        read.moved(self._trusted(read.url, link, "next-page link", 200))
        read.hops = 0
        return True

    def _headers(self, cmdlet: Cmdlet) -> dict[str, str]:
        return {"X-AnchorMailbox": self.anchor, "X-CmdletName": cmdlet.name, "Prefer": "odata.maxpagesize=1000"}

    def _post(self, url: str, body: Any, headers: Mapping[str, str]) -> Any:
        # requests would turn a redirected POST into a GET; follow a redirect by POSTing again.
        for _ in range(3):
            try:
                status, reply_headers, reply = self.http.request(
                    "POST", url, json_body=body, headers=headers, allow_redirects=False
                )
            except ApiError as exc:
                raise self.http.masked(cmdlet_error(exc)) from None
            location = reply_headers.get("Location")
            if 300 <= status < 400 and location:
                url = self._trusted(url, location, "redirect", status)
                continue
            return reply
        raise ApiError(status, "TooManyRedirects", "the Exchange admin API redirected too often")


def _readonly(cmdlet: Cmdlet) -> Cmdlet:
    if not cmdlet.name.startswith("Get-"):
        raise ValueError(f"preflight only reads: refusing to run {cmdlet.name}")
    return cmdlet


def _result(read: _Read) -> Any:
    """What the cmdlet returned: every object, or for a single-object cmdlet its first one."""
    if not read.cmdlet.one:
        return read.items
    if not read.items:
        said = "; ".join(read.warnings)
        name = read.cmdlet.name
        raise ApiError(200, "EmptyResult", f"{name} returned no object" + (f" (warning: {said})" if said else ""))
    return read.items[0]
