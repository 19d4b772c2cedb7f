"""Collect: one tenant and its mailboxes -> a preflight.snapshot/v1 dict of raw Graph and Exchange payloads.

Reads run concurrently on a bounded thread pool. Per-mailbox Graph reads go in $batch requests of 20;
Exchange mailbox objects are read 20 at a time with an OPATH -Filter on their addresses; the permission
cmdlets take one -Identity each. The Exchange cmdlets ready at the same time go out together in $batch
requests of 10 (exchange.py). Anything that cannot be read is recorded as its error, so one refusal never
ends the run and the checks that need it say `unknown`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from preflight.http import ApiError
from preflight.model import Method
from preflight.snapshot import SCHEMA, Options, error_of

from . import beta, signins
from .exchange import Cmdlet, Exchange, token_refused
from .graph import MAX_BATCH, Graph, Result, SubRequest
from .inputs import is_guid

USER_SELECT = (
    "id,displayName,userPrincipalName,mail,accountEnabled,userType,assignedLicenses,assignedPlans,proxyAddresses"
)
EXCHANGE_ONLINE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"  # Office 365 Exchange Online, first-party
EXO_SP_SELECT = "id,appId,displayName,appRoles,oauth2PermissionScopes"
# The sending app's service principal: the checks need its id; without $select Graph also returns the
# metadata of its certificates and secrets (keyCredentials, passwordCredentials), which a snapshot must not hold.
# appOwnerOrganizationId and signInAudience: Conditional Access for workload identities covers only
# single-tenant apps registered in the tenant (checks/workload.py).
SP_SELECT = "id,appId,displayName,appOwnerOrganizationId,signInAudience"
APP_SELECT = "id,appId,displayName,isFallbackPublicClient,publicClient,web,spa"
EXCHANGE_MAILBOX_RESOURCES = ("mailbox", "casMailbox", "exchangeUser", "mailboxPermissions", "recipientPermissions")
# Addresses per Exchange -Filter; keeps the OPATH string short. Filterable, per
# learn.microsoft.com/powershell/exchange/filter-properties: EmailAddresses on Get-Mailbox and
# Get-CASMailbox (any proxy address, no smtp: prefix needed), UserPrincipalName on Get-User.
FILTER_CHUNK = 20
DEFAULT_WORKERS = 8


@dataclass(frozen=True)
class Target:
    tenant: str  # as the user typed it: a domain or the tenant id
    cloud: str
    mailboxes: tuple[str, ...]
    options: Options = field(default_factory=Options)
    tenant_id: str | None = None  # from the token, when known
    mailbox_settings: bool = False  # Graph mailboxSettings of other users: app-only permission only
    sign_in_days: int | None = None  # opt-in: read the SMTP AUTH sign-in log of this many days (signins.py)
    sign_ins_tenant: bool = False  # with sign_in_days: every user's Basic SMTP sign-ins, not only the mailboxes'


def _strip(body: Any) -> Any:
    """The payload verbatim (@odata.context included), less a paging link that was already followed."""
    if isinstance(body, dict) and "@odata.nextLink" in body:
        return {k: v for k, v in body.items() if k != "@odata.nextLink"}
    return body


def _as_resource(result: Result, *, collection: bool = False) -> Any:
    if isinstance(result, ApiError):
        return result.to_error()
    if collection:
        if not isinstance(result, dict) or not isinstance(result.get("value"), list):
            return ApiError(200, "MalformedResponse", "reply has no 'value' list").to_error()
        return result["value"]
    return _strip(result)


def _odata(value: str) -> str:
    return value.replace("'", "''")


def _path(value: str) -> str:
    return quote(value, safe="@")


def smtp_addresses(obj: Any) -> set[str]:
    """Every SMTP address an Exchange object answers to, lowercased."""
    found: set[str] = set()
    if not isinstance(obj, dict):
        return found
    for proxy in obj.get("EmailAddresses") or []:
        kind, sep, addr = str(proxy).partition(":")
        if sep and kind.lower() == "smtp":
            found.add(addr.lower())
    for key in ("PrimarySmtpAddress", "WindowsEmailAddress", "UserPrincipalName"):
        if obj.get(key):
            found.add(str(obj[key]).lower())
    return found


class Collector:
    def __init__(
        self,
        graph: Graph,
        exchange: Exchange | None,
        *,
        exchange_refusal: Mapping[str, Any] | None = None,
        workers: int = DEFAULT_WORKERS,
        progress: Callable[[str], None] = lambda _msg: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        threads: Executor | None = None,
    ) -> None:
        self.graph = graph
        self.exchange = exchange
        # Why Exchange cannot be read at all (no token): recorded for every Exchange resource.
        self.exchange_refusal = dict(exchange_refusal) if exchange_refusal else None
        self.workers = max(1, workers)
        self.progress = progress
        self.clock = clock
        self.threads = threads  # the run's reading threads, shared by its tenants; None: this tenant's own

    # -- the whole tenant --------------------------------------------------------------------------

    def collect(self, target: Target) -> dict[str, Any]:
        started = time.monotonic()
        boxes: dict[str, dict[str, Any]] = {m: {} for m in target.mailboxes}
        org: dict[str, Any] = {}
        pool: Executor = ThreadPoolExecutor(self.workers, thread_name_prefix="preflight-ms") \
            if self.threads is None else Lane(self.threads, self.workers)
        with pool:
            self.progress(
                f"Reading {target.tenant}: tenant settings and {len(boxes)} mailbox(es), "
                f"up to {self.workers} requests at a time"
            )
            org_graph = pool.submit(self.graph.batch_chunk, self._org_requests(target))
            # The few tenant-level cmdlets go out with the probe, Get-OrganizationConfig (one round trip, not
            # two); only the many per-mailbox ones wait for it to show the token is accepted.
            org_jobs = self._submit_exchange_org(pool, target) if self.exchange and not self.exchange_refusal else {}
            probe = org_jobs.pop("organizationConfig", None)
            user_chunks = self._submit_batches(pool, self._mailbox_requests(target.mailboxes, target))

            refusal = self.exchange_refusal
            if probe is not None:
                org["organizationConfig"] = _record(probe)
                if token_refused(org["organizationConfig"]):
                    # The token itself is refused (no Exchange.ManageAsApp, wrong audience): every cmdlet
                    # would be refused alike, so record it everywhere instead of asking per mailbox. A 401
                    # for this one cmdlet (an Exchange role without it) says nothing about the others.
                    refusal = org["organizationConfig"]
            org_reads, follow = self._org_graph(pool, target, org_graph.result())
            results = _merge(user_chunks)
            # The per-mailbox cmdlets go out once Graph's users are in too, with Get-User (which needs their
            # sign-in names) in the same $batch requests rather than one of its own -- unless some addresses
            # need looking up first (aliases): then they go now, and Get-User after the lookups.
            early = refusal is None and bool(_unresolved(results, len(boxes)))
            box_jobs = self._submit_exchange(pool, target, None) if early else {}
            users = self._mailbox_graph(pool, target, results, boxes)
            later = beta.submit(pool, self.graph, {m.value for m in target.options.methods},
                                target.options.sender_ips, users, org_reads.get("servicePrincipal"))
            log = signins.submit(pool, self.graph, target, self.clock(), users) if target.sign_in_days else None
            if refusal is None and not early:
                box_jobs = self._submit_exchange(pool, target, users)
            org.update(org_reads)
            if follow is not None:
                org.update({name: _as_resource(result, collection=True) for name, result in follow.result().items()})
            if refusal is None:
                if early:
                    box_jobs["exchangeUser"] = self._submit_users(pool, users)
                org.update({name: _record(job) for name, job in org_jobs.items()})
                self._exchange_mailboxes(pool, box_jobs, boxes)
            else:
                self._refuse_exchange(target, org, boxes, refusal)
            beta.fill(later, org, boxes)
            if log is not None:
                signins.fill(log, org, boxes)
        self.progress(f"Read {target.tenant} in {time.monotonic() - started:.1f} s")
        return self._snapshot(target, org, boxes)

    def _refuse_exchange(
        self, target: Target, org: dict[str, Any], boxes: dict[str, dict[str, Any]], refusal: dict[str, Any]
    ) -> None:
        names = ["organizationConfig", "transportConfig", "authenticationPolicies"]
        if target.options.app_id:
            names += ["exchangeServicePrincipals", "applicationRoleAssignments"]
        org.update({name: refusal for name in names})
        for addr, box in boxes.items():
            box.update({name: refusal for name in EXCHANGE_MAILBOX_RESOURCES})
            if self._from_of(target, addr):
                box["fromRecipientPermissions"] = refusal

    @staticmethod
    def _from_of(target: Target, addr: str) -> str | None:
        sender = target.options.from_addresses.get(addr)
        return sender if sender and sender != addr else None

    def _snapshot(self, target: Target, org: dict[str, Any], boxes: dict[str, dict[str, Any]]) -> dict[str, Any]:
        guid = is_guid(target.tenant)
        return {
            "schema": SCHEMA,
            "provider": "microsoft",
            "collected_at": self.clock().replace(microsecond=0).isoformat().replace("+00:00", "Z"),
            "tenant": {
                "id": target.tenant_id or (target.tenant if guid else None),
                "domain": None if guid else target.tenant,
                "cloud": target.cloud,
            },
            "options": target.options.to_dict(),
            "org": org,
            "mailboxes": boxes,
        }

    def _submit_batches(self, pool: Executor, requests: Sequence[SubRequest]) -> list[Future[Any]]:
        return [pool.submit(self.graph.batch_chunk, requests[i : i + MAX_BATCH])
                for i in range(0, len(requests), MAX_BATCH)]

    # -- Graph: organisation ----------------------------------------------------------------------

    def _org_requests(self, target: Target) -> list[SubRequest]:
        reqs = [
            SubRequest("securityDefaults", "/policies/identitySecurityDefaultsEnforcementPolicy"),
            SubRequest("conditionalAccessPolicies", "/identity/conditionalAccess/policies"),
            SubRequest("namedLocations", "/identity/conditionalAccess/namedLocations"),
            SubRequest("authorizationPolicy", "/policies/authorizationPolicy"),
            SubRequest(
                "exchangeOnlineServicePrincipal",
                f"/servicePrincipals(appId='{EXCHANGE_ONLINE_APP_ID}')?$select={EXO_SP_SELECT}",
            ),
        ]
        if target.options.app_id:
            app = _odata(target.options.app_id)
            reqs.append(SubRequest("servicePrincipal", f"/servicePrincipals(appId='{app}')?$select={SP_SELECT}"))
            if Method.OAUTH_DELEGATED in target.options.methods:
                # Its client type (public or web) decides the Conditional Access client app type; 404 when the
                # app is registered in another tenant.
                reqs.append(SubRequest("application", f"/applications(appId='{app}')?$select={APP_SELECT}"))
        return reqs

    def _org_graph(self, pool: Executor, target: Target, results: dict[str, Result]
                   ) -> tuple[dict[str, Any], Future[dict[str, Result]] | None]:
        """The organisation's Graph resources, and the read of the app's grants when there is one to make (its
        results follow the others in the snapshot): submitted, not waited for, so that the reads that wait for
        the mailboxes' users go out with it."""
        lists = {"conditionalAccessPolicies", "namedLocations"}
        org = {name: _as_resource(result, collection=name in lists) for name, result in results.items()}
        if not target.options.app_id:
            return org, None
        sp = org.get("servicePrincipal")
        if error_of(sp) is not None or not isinstance(sp, dict) or not sp.get("id"):
            # Without the service principal there is nothing to list its grants for: say why.
            why = sp if error_of(sp) is not None else ApiError(200, "MalformedResponse", "no id").to_error()
            org["servicePrincipalAppRoles"] = why
            org["oauth2PermissionGrants"] = why
            return org, None
        sp_id = _odata(str(sp["id"]))
        return org, pool.submit(self.graph.batch_chunk, [
            SubRequest("servicePrincipalAppRoles", f"/servicePrincipals/{_path(str(sp['id']))}/appRoleAssignments"),
            SubRequest("oauth2PermissionGrants", f"/oauth2PermissionGrants?$filter=clientId eq '{sp_id}'"),
        ])

    # -- Graph: mailboxes -------------------------------------------------------------------------

    def _mailbox_requests(self, mailboxes: Iterable[str], target: Target, by_id: Mapping[str, str] | None = None
                          ) -> list[SubRequest]:
        reqs = []
        for i, addr in enumerate(mailboxes):
            key = _path(by_id[addr]) if by_id else _path(addr)
            if by_id is None:
                reqs.append(SubRequest(f"{i}:user", f"/users/{key}?$select={USER_SELECT}"))
            reqs.append(SubRequest(f"{i}:memberOf", f"/users/{key}/transitiveMemberOf"))
            if target.mailbox_settings:
                reqs.append(SubRequest(f"{i}:mailboxSettings", f"/users/{key}/mailboxSettings"))
        return reqs

    def _mailbox_graph(
        self, pool: Executor, target: Target, results: dict[str, Result], boxes: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        """Fill user, memberOf, mailboxSettings; resolve aliases. Returns address -> Graph user (or None)."""
        addresses = list(boxes)
        users: dict[str, Any] = {}
        for i, addr in enumerate(addresses):
            user = results.get(f"{i}:user")
            self._fill_mailbox(boxes[addr], results, i)
            users[addr] = None if isinstance(user, ApiError) else user
        unresolved = [addresses[i] for i in _unresolved(results, len(addresses))]
        if unresolved:
            found, lookups = self._resolve_aliases(pool, unresolved)
            for addr, lookup in lookups.items():
                boxes[addr]["userLookup"] = lookup  # why the 404 stands: no match, several, or the lookup failed
            if found:
                ids = {addr: str(user["id"]) for addr, user in found.items()}
                follow = _merge(self._submit_batches(pool, self._mailbox_requests(list(found), target, ids)))
                for i, (addr, user) in enumerate(found.items()):
                    boxes[addr]["user"] = _strip(user)
                    users[addr] = user
                    self._fill_mailbox(boxes[addr], follow, i, user_too=False)
        return users

    def _fill_mailbox(self, box: dict[str, Any], results: Mapping[str, Result], i: int, *, user_too: bool = True
                      ) -> None:
        if user_too:
            box["user"] = _as_resource(_answer(results, f"{i}:user"))
        box["memberOf"] = _as_resource(_answer(results, f"{i}:memberOf"), collection=True)
        if f"{i}:mailboxSettings" in results:
            box["mailboxSettings"] = _as_resource(results[f"{i}:mailboxSettings"])

    def _resolve_aliases(self, pool: Executor, addresses: list[str]
                         ) -> tuple[dict[str, Any], dict[str, Any]]:
        """An address that is no user's sign-in name may be an alias (a proxy address) of one.
        Returns the users found, and for the rest the lookup's matches (a list) or its error."""
        reqs = []
        for i, addr in enumerate(addresses):
            a = _odata(addr)
            flt = quote(f"proxyAddresses/any(p:p eq 'smtp:{a}') or mail eq '{a}'", safe="")
            reqs.append(SubRequest(
                str(i), f"/users?$filter={flt}&$select={USER_SELECT}&$count=true", {"ConsistencyLevel": "eventual"}
            ))
        results = _merge(self._submit_batches(pool, reqs))
        found, lookups = {}, {}
        for i, addr in enumerate(addresses):
            matches = _as_resource(_answer(results, str(i)), collection=True)
            if isinstance(matches, list) and len(matches) == 1 and isinstance(matches[0], dict) \
                    and matches[0].get("id"):
                found[addr] = matches[0]
            else:
                lookups[addr] = matches
        return found, lookups

    # -- Exchange ---------------------------------------------------------------------------------

    def _submit_exchange_org(self, pool: Executor, target: Target) -> dict[str, Future[Any]]:
        reads = {
            "organizationConfig": Cmdlet("Get-OrganizationConfig", one=True),
            "transportConfig": Cmdlet("Get-TransportConfig", one=True),
            "authenticationPolicies": Cmdlet("Get-AuthenticationPolicy"),
        }
        if target.options.app_id:
            reads["exchangeServicePrincipals"] = Cmdlet("Get-ServicePrincipal")
            # RBAC for Applications: an 'Application SMTP.SendAsApp' role assignment authorises app-only SMTP
            # without the Entra permission or a mailbox permission (checks/apprbac.py).
            reads["applicationRoleAssignments"] = Cmdlet("Get-ManagementRoleAssignment",
                                                         {"RoleAssigneeType": "ServicePrincipal"})
        return self._submit(pool, reads)

    def _submit(self, pool: Executor, reads: Mapping[Any, Cmdlet]) -> dict[Any, Future[Any]]:
        ex = self.exchange
        assert ex is not None
        return dict(zip(reads, ex.submit(pool, list(reads.values())), strict=True))

    def _submit_exchange(self, pool: Executor, target: Target, users: dict[str, Any] | None) -> dict[str, Any]:
        """The per-mailbox cmdlets, and with `users` (address -> Graph user) Get-User's among them."""
        addresses = list(target.mailboxes)
        chunks = [tuple(addresses[i : i + FILTER_CHUNK]) for i in range(0, len(addresses), FILTER_CHUNK)]
        reads: dict[tuple[str, Any], Cmdlet] = {}  # (resource, its filtered chunk or its mailbox) -> cmdlet
        for name, cmdlet in (("mailbox", "Get-Mailbox"), ("casMailbox", "Get-CASMailbox")):
            reads.update({(name, c): Cmdlet(cmdlet, {"Filter": _address_filter(c)}) for c in chunks})
        for name, cmdlet in (("mailboxPermissions", "Get-MailboxPermission"),
                             ("recipientPermissions", "Get-RecipientPermission")):
            reads.update({(name, a): Cmdlet(cmdlet, {"Identity": a}) for a in addresses})
        # Sending as another address needs SendAs on *that* recipient: read its permissions too.
        reads.update({("fromRecipientPermissions", a): Cmdlet("Get-RecipientPermission", {"Identity": sender})
                      for a in addresses if (sender := self._from_of(target, a))})
        if users is not None:
            reads.update({("exchangeUser", chunk): cmdlet for chunk, cmdlet in _user_reads(users)})
        jobs = self._submit(pool, reads)
        boxes: dict[str, Any] = {"mailbox": [], "casMailbox": [], "mailboxPermissions": {},
                                 "recipientPermissions": {}, "fromRecipientPermissions": {}}
        if users is not None:
            boxes["exchangeUser"] = []
        for (name, key), job in jobs.items():
            if name in ("mailbox", "casMailbox", "exchangeUser"):
                boxes[name].append((list(key), job))
            else:
                boxes[name][key] = job
        return boxes

    def _submit_users(self, pool: Executor, users: dict[str, Any]) -> list[Any]:
        jobs = self._submit(pool, dict(_user_reads(users)))
        return [(list(chunk), job) for chunk, job in jobs.items()]

    def _exchange_mailboxes(self, pool: Executor, jobs: dict[str, Any], boxes: dict[str, dict[str, Any]]
                            ) -> None:
        fallback: list[tuple[str, str, str]] = []  # (address, resource, cmdlet) to read by -Identity
        for name, cmdlet in (("mailbox", "Get-Mailbox"), ("casMailbox", "Get-CASMailbox")):
            for chunk, job in jobs[name]:
                fallback += self._match(chunk, job, name, cmdlet, boxes, smtp_addresses, lambda a: a)
        asked: set[str] = set()
        for chunk, job in jobs["exchangeUser"]:
            upns = {a: upn.lower() for a, upn in chunk}
            asked.update(upns)
            fallback += self._match(list(upns), job, "exchangeUser", "Get-User", boxes, _upn, upns.__getitem__)
        fallback += [(a, "exchangeUser", "Get-User") for a in boxes if a not in asked]
        for name in ("mailboxPermissions", "recipientPermissions", "fromRecipientPermissions"):
            for addr, job in jobs[name].items():
                boxes[addr][name] = _record(job)
        retry = self._submit(pool, {(a, r): Cmdlet(cmdlet, {"Identity": a}, one=True) for a, r, cmdlet in fallback})
        for (addr, resource), job in retry.items():
            boxes[addr][resource] = _record(job)

    def _match(self, chunk: list[str], job: Future[Any], name: str, cmdlet: str, boxes: dict[str, dict[str, Any]],
               keys: Callable[[Any], Iterable[str]], key: Callable[[str], str]) -> list[tuple[str, str, str]]:
        """Each address's object from a filtered read: the first whose `keys` hold the address's `key`."""
        try:
            objects = job.result()
        except ApiError as exc:
            if exc.status in (401, 403):  # refused: asking one by one would be refused too
                for addr in chunk:
                    boxes[addr][name] = exc.to_error()
                return []
            return [(a, name, cmdlet) for a in chunk]  # e.g. a filter this tenant rejects: ask one by one
        first: dict[str, Any] = {}  # one pass over the objects, not one per address
        for obj in objects:
            for k in keys(obj):
                first.setdefault(k, obj)
        missing = []
        for addr in chunk:
            hit = first.get(key(addr))
            if hit is None:
                missing.append((addr, name, cmdlet))  # not found by filter: -Identity gives the real error
            else:
                boxes[addr][name] = hit
        return missing


class Lane(Executor):
    """One tenant's reads on the run's shared reading threads: at most `limit` at a time and the rest queued in
    order, as a pool of `limit` threads of the tenant's own would run them, without starting and ending those
    threads for every tenant. Its reads never wait on one another (exchange.py, beta.py), so sharing threads
    cannot deadlock. Leaving a `with` block waits for every read it was given, as a pool's does."""

    def __init__(self, threads: Executor, limit: int) -> None:
        self._threads = threads
        self._limit = max(1, limit)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._running = 0  # reads on a shared thread now (each takes the queued ones after it)
        self._queued: deque[tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = deque()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._running >= self._limit:
                self._queued.append((future, fn, args, kwargs))
                return future
            self._running += 1
        try:
            self._threads.submit(self._drain, future, fn, args, kwargs)
        except BaseException:
            self._done()
            raise
        return future

    def _drain(self, future: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
               ) -> None:
        while True:
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # whatever it was, the caller's result() raises it
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            with self._lock:
                if not self._queued:
                    self._running -= 1
                    self._idle.notify_all()
                    return
                future, fn, args, kwargs = self._queued.popleft()

    def _done(self) -> None:
        with self._lock:
            self._running -= 1
            self._idle.notify_all()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if cancel_futures:
                while self._queued:
                    self._queued.popleft()[0].cancel()
            while wait and (self._running or self._queued):
                self._idle.wait()


def _unresolved(results: Mapping[str, Result], count: int) -> list[int]:
    """The mailboxes (by position) whose user read was a 404: no user by that sign-in name, perhaps an alias."""
    return [i for i in range(count) if isinstance(user := results.get(f"{i}:user"), ApiError) and user.status == 404]


def _user_reads(users: Mapping[str, Any]) -> list[tuple[tuple[tuple[str, str], ...], Cmdlet]]:
    """Get-User has no EmailAddresses filter: find the users by the sign-in name Graph gave us, FILTER_CHUNK at a
    time; each chunk of (address, sign-in name) with its cmdlet."""
    known = [(a, str(u["userPrincipalName"])) for a, u in users.items()
             if isinstance(u, dict) and u.get("userPrincipalName")]
    chunks = [tuple(known[i : i + FILTER_CHUNK]) for i in range(0, len(known), FILTER_CHUNK)]
    return [(c, Cmdlet("Get-User", {"Filter": " -or ".join(f"(UserPrincipalName -eq '{_odata(upn)}')"
                                                              for _, upn in c)})) for c in chunks]


def _upn(obj: Any) -> tuple[str, ...]:
    # Cmdlet items are whatever the endpoint sent: a non-object item matches nobody (then -Identity is asked).
    return (str(obj.get("UserPrincipalName") or "").lower(),) if isinstance(obj, dict) else ()


def _address_filter(addresses: Sequence[str]) -> str:
    # "EmailAddresses -eq 'a@x'" matches any proxy address, primary or alias, without the smtp: prefix.
    return " -or ".join(f"(EmailAddresses -eq '{_odata(a)}')" for a in addresses)


def _record(job: Future[Any]) -> Any:
    try:
        return _strip(job.result())
    except ApiError as exc:
        return exc.to_error()


def _merge(futures: Iterable[Future[dict[str, Result]]]) -> dict[str, Result]:
    merged: dict[str, Result] = {}
    for f in futures:
        merged.update(f.result())
    return merged


def _missing() -> ApiError:
    return ApiError(200, "MalformedResponse", "$batch reply has no response for this request")


def _answer(results: Mapping[str, Result], rid: str) -> Result:
    """The result of sub-request `rid`, or the error of its missing response (made only then: most are there)."""
    return results[rid] if rid in results else _missing()
