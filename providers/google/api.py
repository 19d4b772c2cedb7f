"""The Google admin API calls preflight makes, over preflight.http.Http. Read-only GETs, verbatim payloads.

Every call returns the API's own items (for a paged list: all pages' items) or raises ApiError, which the
collector records as the resource's error. Tokens come from a Signer, per scope and subject.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from preflight.deadline import Deadline, time_limit
from preflight.http import MAX_BODY, ApiError, Http, follow_pages, retry_after
from preflight.memo import RunMemo
from preflight.runsecrets import RunSecrets
from preflight.transport import FAILURES, request_url

from . import settings
from .auth import Signer
from .settings import ApiSettings

Sleep = Callable[[float], None]
Clock = Callable[[], float]


class GoogleHttp(Http):
    """Http that also waits out Google's quota replies that are not 429: 403 with a rate-limit reason, and the
    Policy API's per-minute read quota, which a short back-off only hits again."""

    def __init__(self, *args: Any, config: ApiSettings, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config = config

    def retry_wait(self, attempt: int, status: int, headers: Mapping[str, str], body: bytes) -> float | None:
        if status not in (403, 429):  # every other reply: no need to read the body
            return super().retry_wait(attempt, status, headers, body)
        text = body[:65536].decode("utf-8", "replace")
        if status == 429 and all(p in text.lower() for p in self.config.per_minute_patterns):
            first, step = self.config.per_minute_waits
            wait = max(first + step * attempt, retry_after(headers.get("Retry-After")) or 0.0)
            return min(wait, self.max_wait)
        if status == 403 and _reasons(text) & self.config.rate_limit_reasons:
            return self.backoff(attempt, headers.get("Retry-After"))
        return super().retry_wait(attempt, status, headers, body)


# Google takes up to 1000 calls a batch; 50 users with projection=full are a reply of a few hundred KiB, and a
# large Workspace's batches go out on several threads at once.
BATCH_SIZE = 50
_DIRECTORY_PATH = "/admin/directory/v1"
_BOUNDARY = "preflight_batch_5d0c7a"
_REPLY_BOUNDARY = re.compile(r'boundary="?([A-Za-z0-9\'()+_,./:=?-]{1,70})"?(?:;|\s|$)', re.I)
_PART_ID = re.compile(rb"^content-id:[ \t]*(<?)response-item(\d{1,6})(>?)[ \t]*\r?$", re.I | re.M)
_ANY_ID = re.compile(rb"^content-id:", re.I | re.M)
_NAMED = re.compile(rb"response-item(\d{1,6})", re.I)  # an index a part's head names, in whatever form
_PADDING = re.compile(rb"[ \t]*\r\n")  # what may follow a delimiter before its line ends (RFC 2046)
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})(?: [^\r\n]*)?")
_LENGTH = re.compile(rb"^content-length:[ \t]*(\d{1,9})[ \t]*\r?$", re.I | re.M)


class BatchHttp(GoogleHttp):
    """A GoogleHttp that can also send several GETs as one Directory API batch request (multipart/mixed): one
    exchange, one wait and one wake-up for them all, where each GET on its own costs all three."""

    def batch(self, url: str, paths: list[str]) -> tuple[list[Any], bool]:
        """Each GET's parsed body when the batch reply answers it plainly (HTTP 200 and JSON), else _UNANSWERED:
        every other answer (an error, a retry to wait for, a reply garbled in any way, no reply at all) is left
        to the GET on its own, which meets it as it always did. No retries here: that GET retries. And whether the
        endpoint refused the batch itself (a 4xx other than those of a token or a quota)."""
        none: list[Any] = [_UNANSWERED] * len(paths)
        limit = min(self.total, self.deadline.remaining())
        if limit <= 0:
            return none, False
        body = "".join(f"--{_BOUNDARY}\r\nContent-Type: application/http\r\nContent-ID: <item{i}>\r\n\r\n"
                       f"GET {path} HTTP/1.1\r\n\r\n" for i, path in enumerate(paths)) + f"--{_BOUNDARY}--\r\n"
        try:
            headers = self._headers({"Content-Type": f"multipart/mixed; boundary={_BOUNDARY}"}, False)
            target = request_url(url)
        except (ApiError, ValueError):  # no token for this scope: each GET records why
            return none, False
        timeout = self.transport.timeout(min(self.timeout[0], limit), min(self.timeout[1], limit))
        self._count()
        with time_limit(limit) as watch:
            try:
                reply = self.transport.send("POST", target, body.encode("ascii"), headers, timeout,
                                            allow_redirects=False, max_body=MAX_BODY)
            except (*FAILURES, ValueError):
                return none, False
        if watch.expired or reply.status != 200:
            return none, 400 <= reply.status < 500 and reply.status not in (401, 403, 429)
        out = none
        for index, raw in _batch_parts(reply.body, reply.headers.get("Content-Type") or "", len(paths)).items():
            try:
                text = raw.decode("utf-8")
                parsed = json.loads(self.secrets.mask_known(text)) if text and not text.isspace() else _UNANSWERED
                # An object with an `error` key is a failed read in a snapshot: which one, the GET alone says.
                if not (isinstance(parsed, dict) and "error" in parsed):
                    out[index] = parsed
            except (ValueError, RecursionError):
                pass
        return out, False


_UNANSWERED: Any = object()


def _batch_parts(body: bytes, content_type: str, count: int) -> dict[int, bytes]:
    """The body of each part of a batch reply that answers HTTP 200, by request index (Content-ID
    <response-itemN>, the request's own with Google's prefix); a part that is not plainly that (no Content-ID, or
    another beside it, no status line, a body shorter or longer than its Content-Length) is left out, and so is
    every part of an index another part names too (whichever of them is the answer) and every part of a reply whose
    framing is off (a delimiter line that is not one, a part after the close delimiter)."""
    found = _REPLY_BOUNDARY.search(content_type)
    if found is None or not content_type.lower().lstrip().startswith("multipart/mixed"):
        return {}
    delimiter = b"--" + found.group(1).encode("ascii")
    chunks = body.split(b"\r\n" + delimiter)
    if not chunks[0].startswith(delimiter) or not chunks[-1].startswith(b"--"):
        return {}
    chunks[0] = chunks[0][len(delimiter):]
    answered: dict[int, bytes] = {}
    named: dict[int, int] = {}  # how many parts name each index, in whatever form
    for chunk in chunks[:-1]:
        if _PADDING.match(chunk) is None:  # a close delimiter before the last, or a longer boundary
            return {}
        head, sep, rest = chunk.partition(b"\r\n\r\n")
        for digits in _NAMED.findall(head):
            named[int(digits)] = named.get(int(digits), 0) + 1
        ids = _PART_ID.findall(head)
        if not sep or len(ids) != 1 or len(_ANY_ID.findall(head)) != 1:
            continue
        left, digits, right = ids[0]
        index = int(digits)
        if (left, right) not in ((b"<", b">"), (b"", b"")) or digits != b"%d" % index or index >= count:
            continue
        inner_head, sep, inner = rest.partition(b"\r\n\r\n")
        status = _STATUS_LINE.fullmatch(inner_head.split(b"\r\n", 1)[0])
        lengths = _LENGTH.findall(inner_head)
        if not sep or status is None or status.group(1) != b"200" or len(lengths) > 1:
            continue
        if lengths:  # the body is that long; line ends before the next delimiter are framing, not body
            size = int(lengths[0])
            if len(inner) < size or inner[size:].strip(b"\r\n"):
                continue
            inner = inner[:size]
        answered[index] = inner
    return {index: inner for index, inner in answered.items() if named[index] == 1}


def _is_users(user: dict[str, Any], key: str) -> bool:
    """Whether `user` can be users.get(key)'s answer: the key is its id or one of its addresses."""
    key = key.lower()
    names = [user.get("id"), user.get("primaryEmail")]
    for field in ("aliases", "nonEditableAliases", "emails"):
        values = user.get(field)
        if isinstance(values, list):
            names.extend(v.get("address") if isinstance(v, dict) else v for v in values)
    return any(isinstance(name, str) and name.lower() == key for name in names)


def _reasons(text: str) -> set[str]:
    """The `errors[].reason` values of a Google error reply."""
    try:
        body = json.loads(text)
    except ValueError:
        return set()
    err = body.get("error") if isinstance(body, dict) else None
    items = err.get("errors") if isinstance(err, dict) else None
    return {str(e.get("reason")) for e in items or [] if isinstance(e, dict) and e.get("reason")}


class PacedHttp(GoogleHttp):
    """An Http that starts its requests at least `interval` seconds apart.

    The Policy API answers 429 when pages come faster than about one a second; spacing them costs less than
    the back-off a 429 triggers.
    """

    def __init__(self, *args: Any, interval: float, clock: Clock = time.monotonic, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.interval = interval
        self.clock = clock
        self._next = 0.0
        self._pace = threading.Lock()

    def request(self, method: str, url: str, **kw: Any) -> tuple[int, Mapping[str, str], Any]:
        with self._pace:
            wait = self._next - self.clock()
            if wait > 0:
                self.sleep(wait)
            self._next = self.clock() + self.interval
        return super().request(method, url, **kw)


def _next_page(body: Any) -> dict[str, str] | None:
    token = body.get("nextPageToken") if isinstance(body, dict) else None
    return {"pageToken": token} if token else None


def _key(value: str) -> str:
    return quote(value, safe="@")


class GoogleApi:
    def __init__(
        self,
        signer: Signer,
        *,
        config: ApiSettings | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        verify: bool | str = True,
        deadline: Deadline | None = None,
        memo: RunMemo | None = None,
    ) -> None:
        self.signer = signer
        self.deadline = deadline
        self.memo = memo if memo is not None else RunMemo()  # the run's: what one Workspace taught the next
        self.secrets = getattr(signer, "secrets", None) or RunSecrets()
        self.config = config or settings.api()
        self.sleep = sleep
        self.clock = clock
        self.verify = verify
        self._http: dict[tuple[str, str | None], Http] = {}
        self._guard = threading.Lock()
        # The process's connection pools serve every (scope, subject): a run over thousands of mailboxes
        # impersonates thousands of owners, and must not hold a socket for each.
        self.kept = max(10, 2 * self.config.workers)

    def http(self, scope_key: str, subject: str | None = None) -> Http:
        """One Http per (scope, subject): its Authorization header always carries that token."""
        key = (scope_key, subject.lower() if subject else None)
        with self._guard:
            client = self._http.get(key)
            if client is None:
                url = settings.scope(scope_key).url

                def auth() -> dict[str, str]:
                    return {"Authorization": f"Bearer {self.signer.bearer(url, subject)}"}

                common: dict[str, Any] = {"kept": self.kept, "auth": auth, "timeout": self.config.timeout,
                                          "sleep": self.sleep, "verify": self.verify, "config": self.config,
                                          "deadline": self.deadline, "secrets": self.secrets}
                if scope_key == "policies":
                    client = PacedHttp(interval=self.config.policy_page_interval, clock=self.clock,
                                       max_retries=self.config.policy_max_retries, **common)
                else:
                    client = BatchHttp(**common)
                self._http[key] = client
            return client

    def requests_made(self) -> int:
        with self._guard:
            clients = list(self._http.values())
        return sum(c.stats.requests for c in clients)

    # --- Directory ----------------------------------------------------------------------------------

    @property
    def _dir(self) -> str:
        return self.config.endpoints.directory

    def customer(self, customer_key: str = "my_customer") -> Any:
        return self.http("directory.customer").get(f"{self._dir}/customers/{_key(customer_key)}")

    def org_units(self, customer_id: str = "my_customer") -> list[Any]:
        body = self.http("directory.orgunit").get(
            f"{self._dir}/customer/{_key(customer_id)}/orgunits", params={"type": self.config.org_unit_type}
        )
        return _items(body, "organizationUnits")

    def domains(self, customer_id: str = "my_customer") -> list[Any]:
        body = self.http("directory.domain").get(f"{self._dir}/customer/{_key(customer_id)}/domains")
        return _items(body, "domains")

    def user(self, user_key: str) -> Any:
        return self.http("directory.user").get(f"{self._dir}/users/{_key(user_key)}", params={"projection": "full"})

    def group(self, group_key: str) -> Any:
        return self.http("directory.group").get(f"{self._dir}/groups/{_key(group_key)}")

    def user_groups(self, user_key: str) -> list[Any]:
        return follow_pages(
            self.http("directory.group"), f"{self._dir}/groups",
            params={"userKey": user_key, "maxResults": self.config.groups_page_size},
            items_key="groups", next_params=_next_page,
        )

    # --- Directory batches: the reads of many mailboxes in one exchange --------------------------------

    def _batch(self, scope_key: str, paths: list[str]) -> list[Any]:
        """Directory GETs (paths under its root) in batch requests of at most BATCH_SIZE: each one's body, or
        _UNANSWERED. A batch endpoint that refuses batches (4xx) is not asked again this run."""
        refused = ("google", "directory batch refused", self._dir)
        client = self.http(scope_key)
        home = self._dir.removesuffix(_DIRECTORY_PATH)
        if (len(paths) < 2 or not isinstance(client, BatchHttp) or home == self._dir
                or self.memo.get(refused)):
            return [_UNANSWERED] * len(paths)
        base = urlsplit(self._dir).path
        out: list[Any] = []
        for start in range(0, len(paths), BATCH_SIZE):
            got, endpoint_refused = client.batch(f"{home}/batch/admin/directory_v1",
                                                 [base + p for p in paths[start:start + BATCH_SIZE]])
            if endpoint_refused:
                self.memo.set(refused, True)
            out.extend(got)
        return out

    def users_batch(self, keys: list[str]) -> list[Any]:
        """users.get for each key, in one batch: each user object, or None where it is to be read on its own (also
        one that is not the key's user: a part the reply put under another read's id)."""
        got = self._batch("directory.user", [f"/users/{_key(k)}?projection=full" for k in keys])
        return [body if isinstance(body, dict) and _is_users(body, key) else None
                for key, body in zip(keys, got, strict=True)]

    def user_groups_batch(self, keys: list[str]) -> list[list[Any] | None]:
        """The first page of each user's groups, in one batch: the groups of each user they fit on one page of,
        None for the others (read on their own, every page)."""
        size = self.config.groups_page_size
        got = self._batch("directory.group", [f"/groups?userKey={quote(k, safe='')}&maxResults={size}" for k in keys])
        out: list[list[Any] | None] = []
        for body in got:
            plain = isinstance(body, dict) and isinstance(body.get("groups", []), list) and not _next_page(body)
            out.append(list(body.get("groups", [])) if plain else None)
        return out

    def has_member_batch(self, pairs: list[tuple[str, str]]) -> list[Any]:
        """members.hasMember for each (group, member), in one batch: each answer object, or None."""
        got = self._batch("directory.group", [f"/groups/{_key(g)}/hasMember/{_key(m)}" for g, m in pairs])
        return [body if isinstance(body, dict) else None for body in got]

    def has_member(self, group_key: str, member_key: str) -> Any:
        """{"isMember": bool}: direct or nested membership (nested only within the group's domain)."""
        return self.http("directory.group").get(f"{self._dir}/groups/{_key(group_key)}/hasMember/{_key(member_key)}")

    def tokens(self, user_key: str) -> list[Any]:
        body = self.http("directory.user.security").get(f"{self._dir}/users/{_key(user_key)}/tokens")
        return _items(body, "items")

    def asps(self, user_key: str) -> list[Any]:
        """The user's app passwords (application-specific passwords): name, creation and last use."""
        body = self.http("directory.user.security").get(f"{self._dir}/users/{_key(user_key)}/asps")
        return _items(body, "items")

    # --- Cloud Identity Policy API -------------------------------------------------------------------

    def policies(self) -> list[Any]:
        """Every policy of the applications the checks read (api.toml [policy] filters, one clause each).

        One listing whose filter ORs the clauses, as the current policies.list reference allows. Google's older
        text allows a single setting.type clause: when Google refuses the combined filter, one listing per clause.
        """
        filters = self.config.policy_filters
        # Google's grammar, not a Workspace's setting: once refused, the run's later Workspaces list per clause.
        refused = ("google", "combined policy filter refused", self.config.endpoints.policy)
        if len(filters) > 1 and not self.memo.get(refused):
            try:
                return self._policy_listing(" || ".join(filters))
            except ApiError as exc:
                if exc.status not in self.config.policy_refused_statuses:
                    raise
                self.memo.set(refused, True)
        return [p for cel in filters for p in self._policy_listing(cel)]

    def _policy_listing(self, cel: str) -> list[Any]:
        return follow_pages(
            self.http("policies"), f"{self.config.endpoints.policy}/policies",
            params={"filter": cel, "pageSize": self.config.policy_page_size},
            items_key="policies", next_params=_next_page,
        )

    def policies_probe(self) -> list[Any]:
        """One page of one policy: proves the Policy API answers this admin, without reading everything."""
        body = self.http("policies").get(
            f"{self.config.endpoints.policy}/policies",
            params={"filter": self.config.policy_filters[0], "pageSize": 1},
        )
        return _items(body, "policies")

    # --- Gmail (domain-wide delegation as the mailbox owner) -----------------------------------------

    def send_as(self, owner: str) -> list[Any]:
        url = f"{self.config.endpoints.gmail}/users/{_key(owner)}/settings/sendAs"
        body = self.http("gmail.sendas", owner).get(url)
        return _items(body, "sendAs")

    # --- Reports API (audit log, opt-in) -------------------------------------------------------------

    def activities(self, user_key: str, application: str, events: tuple[str, ...]) -> list[Any]:
        """The audit log's activities for these events (one listing each: eventName takes a single name)."""
        out: list[Any] = []
        for event in events:
            out.extend(follow_pages(
                self.http("reports.audit"),
                f"{self.config.endpoints.reports}/activity/users/{_key(user_key)}/applications/{_key(application)}",
                params={"eventName": event, "maxResults": self.config.reports_page_size},
                items_key="items", next_params=_next_page,
            ))
        return out

    # --- Enterprise License Manager ------------------------------------------------------------------

    def license_assignments(self, product: str, customer_id: str) -> list[Any]:
        return follow_pages(
            self.http("licensing"), f"{self.config.endpoints.licensing}/product/{_key(product)}/users",
            params={"customerId": customer_id, "maxResults": self.config.licensing_page_size},
            items_key="items", next_params=_next_page,
        )

    def license_probe(self, product: str, customer_id: str) -> list[Any]:
        body = self.http("licensing").get(
            f"{self.config.endpoints.licensing}/product/{_key(product)}/users",
            params={"customerId": customer_id, "maxResults": 1},
        )
        return _items(body, "items")


def _items(body: Any, key: str) -> list[Any]:
    """A list resource's items. Google omits the key when the list is empty."""
    if not isinstance(body, dict):
        raise ApiError(200, "MalformedResponse", f"reply is not an object with {key!r}")
    items = body.get(key, [])
    if not isinstance(items, list):
        raise ApiError(200, "MalformedResponse", f"{key!r} is not a list")
    return items
