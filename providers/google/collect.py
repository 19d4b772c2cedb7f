"""Collect one Google Workspace into a preflight.snapshot/v1 dict: org settings once, mailboxes concurrently.

Every leaf is the API's payload verbatim, or `{"error": {...}}` when it could not be read: one unreadable
resource never ends a collection, and never turns into a guess.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, partial
from typing import Any

from preflight.errors import SignInError
from preflight.http import ApiError, record
from preflight.pipeline import unanswered
from preflight.snapshot import SCHEMA, Options, describe_error, error_of

from . import settings
from .api import BATCH_SIZE, GoogleApi
from .checks.policy import targeted_groups
from .settings import ApiSettings


@dataclass(frozen=True)
class Target:
    mailboxes: tuple[str, ...]
    domain: str | None = None
    customer_id: str | None = None
    with_sendas: bool = False
    with_licenses: bool = False
    with_tokens: bool = False
    options: Options = field(default_factory=Options)
    with_audit_log: bool = False


@dataclass(frozen=True)
class Collection:
    snapshot: dict[str, Any]
    requests: int
    seconds: float


def admin_scope_keys(target: Target) -> list[str]:
    """The scopes read as the admin for this target (the Gmail scope is read as each mailbox owner)."""
    keys = ["directory.customer", "directory.domain", "directory.orgunit", "policies", "directory.user",
            "directory.group"]
    if target.with_licenses:
        keys.append("licensing")
    if target.with_tokens:
        keys.append("directory.user.security")
    if target.with_audit_log:
        keys.append("reports.audit")
    return keys


class _Work:
    """The reads of one Workspace, on at most `width` threads of the pool at a time: one pool task per thread
    drains a queue of calls, rather than one future per read (each a lock, a condition and a wake-up of the
    thread waiting on it). A call may add calls (a mailbox's nested-group questions); each keeps its own result.
    Left by an exception, the calls not started yet never start, and the ones under way end first."""

    def __init__(self, pool: ThreadPoolExecutor, width: int) -> None:
        self._pool = pool
        self._width = width
        self._queue: deque[Callable[[], None]] = deque()
        self._lock = threading.Lock()
        self._draining = 0
        self._drains: list[Future[None]] = []

    def __enter__(self) -> _Work:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_exc: object) -> None:
        if kind is not None:
            with self._lock:
                self._queue.clear()
                drains = list(self._drains)
            futures.wait(drains)

    def add(self, call: Callable[[], None]) -> None:
        with self._lock:
            self._queue.append(call)
            if self._draining >= self._width:
                return
            self._draining += 1
            self._drains.append(self._pool.submit(self._drain))

    def _drain(self) -> None:
        try:
            while True:
                with self._lock:
                    if not self._queue:  # stops in the same hold of the lock: a call added later gets a drain
                        self._draining -= 1
                        return
                    call = self._queue.popleft()
                call()
        except BaseException:
            with self._lock:
                self._draining -= 1
            raise

    def wait(self) -> None:
        """Until every call added (by then, or by the calls themselves) has run; a call's exception is raised here."""
        done = 0
        while True:
            with self._lock:
                drains = self._drains[done:]
            if not drains:
                return
            for drain in drains:
                drain.result()
            done += len(drains)


def _sign_in(api: GoogleApi, target: Target, work: _Work) -> None:
    """Fail fast (exit 4) when no admin token at all can be had; a partial grant only makes some reads unknown.

    One token, for every admin scope of the run at once (Signer.share), proves the sign-in works. When Google
    refuses it, scopes are asked one by one: the first now; the others when their first request needs them (each
    is a signature and a round trip), or, when the first is refused too, all at once.
    """
    keys = admin_scope_keys(target)
    api.signer.share([settings.scope(k).url for k in keys])
    try:
        api.signer.bearer(settings.scope(keys[0]).url, None)
        return
    except ApiError as exc:
        errors: list[ApiError] = [exc]
    refused: dict[str, ApiError | None] = dict.fromkeys(keys[1:])

    def ask(key: str) -> None:
        try:
            api.signer.bearer(settings.scope(key).url, None)
        except ApiError as exc:
            refused[key] = exc

    for key in refused:
        work.add(partial(ask, key))
    work.wait()
    errors.extend(exc for exc in refused.values() if exc is not None)
    if len(errors) == len(keys):
        first = errors[0]
        status = f"{first.status} " if first.status else ""
        raise SignInError(
            f"no Google token for {api.signer.principal}: {status}{first.code}: {first.message}".rstrip(": ")
        )


def _owned(primary: str, domains: list[Any]) -> set[str]:
    owned = {primary.lower()} - {""}
    for d in domains:
        if isinstance(d, dict):
            owned.add(str(d.get("domainName") or "").lower())
            owned.update(str(a.get("domainAliasName") or "").lower() for a in d.get("domainAliases") or []
                         if isinstance(a, dict))
    return owned


def _why(value: Any) -> str:
    err = error_of(value)
    return describe_error(err) if err is not None else "not in the documented shape"


def _guard_customer(api: GoogleApi, target: Target, customer: Any, domains: Any) -> None:
    """Refuse to report one customer's settings under another's name (a profile or key for the wrong customer).

    Nothing proves whose data this is when neither customers.get nor domains.list can be read: refuse then,
    rather than collect an unknown customer under the name asked for.
    """
    who = api.signer.principal
    domains_ok = error_of(domains) is None and isinstance(domains, list)
    if error_of(customer) is not None or not isinstance(customer, dict):
        asked = target.domain or target.customer_id
        if not target.domain or not domains_ok:
            readable = "domains.list gives no domain to compare" if domains_ok else f"domains.list ({_why(domains)})"
            raise SignInError(
                f"cannot confirm that {who} reads customer {asked}: customers.get ({_why(customer)}) and "
                f"{readable}; grant admin.directory.customer.readonly and admin.directory.domain.readonly"
                + ("" if target.domain else ", or give --domain")
            )
        if target.domain.lower() not in _owned("", domains):
            raise SignInError(f"{who} belongs to a customer that does not own {target.domain} (domains.list): wrong "
                              "--profile or credentials for this customer?")
        return
    cid, primary = customer.get("id"), str(customer.get("customerDomain") or "")
    if target.customer_id and cid and str(cid) != target.customer_id:
        raise SignInError(
            f"{who} belongs to customer {cid} ({primary}), not {target.customer_id}: "
            "wrong --profile or credentials for this customer?"
        )
    if not target.domain or not domains_ok:
        return
    if target.domain.lower() not in _owned(primary, domains):
        raise SignInError(
            f"{who} belongs to customer {cid} ({primary}), which does not own {target.domain}: "
            "wrong --profile or credentials for this customer?"
        )


def _mailbox(api: GoogleApi, address: str, target: Target) -> tuple[dict[str, Any], str | None]:
    """The mailbox's resources, and the primary address of the user that owns it (None: not a user)."""
    rec: dict[str, Any] = {"user": record(lambda: api.user(address))}
    err = error_of(rec["user"])
    if err is not None:
        # users.get answers 404 for a group address; GAM's `whatis` then asks groups.get the same way.
        if err.get("status") == 404:
            rec["group"] = record(lambda: api.group(address))
        return rec, None
    owner = str(rec["user"].get("primaryEmail") or address) if isinstance(rec["user"], dict) else address
    rec["userGroups"] = record(lambda: api.user_groups(owner))
    if target.with_sendas:
        rec["sendAs"] = record(lambda: api.send_as(owner))
    if target.with_tokens:
        rec["tokens"] = record(lambda: api.tokens(owner))
        rec["asps"] = record(lambda: api.asps(owner))  # same scope: whether basic sign-in has an app password
    if target.with_audit_log:
        app, events = api.config.advanced_protection
        rec["advancedProtectionEvents"] = record(lambda: api.activities(owner, app, events))
    return rec, owner


def _rest(api: GoogleApi, rec: dict[str, Any], owner: str, target: Target, listed: Any,
          membership: _Membership) -> None:
    """A mailbox's reads after a batch read its user: its groups unless the batch read them too (`listed`), and the
    opt-in reads, as _mailbox does them."""
    if listed is None:
        rec["userGroups"] = record(lambda: api.user_groups(owner))
        if isinstance(rec["userGroups"], list):
            membership.owner(owner, _direct(rec))
    if target.with_sendas:
        rec["sendAs"] = record(lambda: api.send_as(owner))
    if target.with_tokens:
        rec["tokens"] = record(lambda: api.tokens(owner))
        rec["asps"] = record(lambda: api.asps(owner))
    if target.with_audit_log:
        app, events = api.config.advanced_protection
        rec["advancedProtectionEvents"] = record(lambda: api.activities(owner, app, events))


class _Membership:
    """members.hasMember for each mailbox owner and each group a policy targets that the owner is not directly in
    (a nested group may still put it there): asked as soon as both the owner's groups and the policies are
    known, once per owner and set of direct groups, each answer a read of its own."""

    def __init__(self, api: GoogleApi, work: _Work) -> None:
        self._api = api
        self._work = work
        self._lock = threading.Lock()
        self._targeted: set[str] | None = None
        self._waiting: list[tuple[str, frozenset[str]]] = []
        self._asked: dict[tuple[str, frozenset[str]], dict[str, Any]] = {}

    def targeted(self, groups: set[str]) -> None:
        """The groups the policies target: the owners known by now are asked."""
        with self._lock:
            self._targeted = groups
            self._ask_all(self._waiting)
            self._waiting.clear()

    def owner(self, owner: str, direct: frozenset[str]) -> None:
        with self._lock:
            if self._targeted is None:
                self._waiting.append((owner, direct))
            else:
                self._ask(owner, direct)

    def owners(self, pairs: list[tuple[str, frozenset[str]]]) -> None:
        with self._lock:
            if self._targeted is None:
                self._waiting.extend(pairs)
            else:
                self._ask_all(pairs)

    def _ask(self, owner: str, direct: frozenset[str]) -> None:
        self._ask_all([(owner, direct)])

    def _ask_all(self, pairs: list[tuple[str, frozenset[str]]]) -> None:
        asks: list[tuple[dict[str, Any], str, str]] = []
        for owner, direct in pairs:
            if (owner, direct) in self._asked or self._targeted is None:
                continue
            answers = self._asked[(owner, direct)] = dict.fromkeys(sorted(self._targeted - direct))
            asks.extend((answers, gid, owner) for gid in answers)
        for start in range(0, len(asks), BATCH_SIZE):
            self._work.add(partial(self._batch, asks[start:start + BATCH_SIZE]))

    def _batch(self, asks: list[tuple[dict[str, Any], str, str]]) -> None:
        got = self._api.has_member_batch([(gid, owner) for _, gid, owner in asks])
        for (answers, gid, owner), value in zip(asks, got, strict=True):
            if value is None:
                self._work.add(partial(_keep, answers, gid, partial(self._api.has_member, gid, owner)))
            else:
                answers[gid] = value

    def answers(self, owner: str, direct: frozenset[str]) -> dict[str, Any]:
        """After the reads: the owner's answers by group id, in group id order."""
        return dict(self._asked.get((owner, direct)) or {})


def _keep(into: dict[str, Any], key: str, fetch: Callable[[], Any]) -> None:
    into[key] = record(fetch)


def _direct(rec: dict[str, Any]) -> frozenset[str]:
    return frozenset(str(g.get("id")) for g in rec["userGroups"] if isinstance(g, dict))


@dataclass(frozen=True)
class Licences:
    """Each product's assignments listed once (there is no "licences of user X" call), indexed by user."""

    results: dict[str, Any]  # product -> its assignments, or its recorded error
    config: ApiSettings

    def _is_global(self, err: dict[str, Any]) -> bool:
        text = f"{err.get('code')} {err.get('message')}".lower()
        return err.get("status") in self.config.licensing_global or (
            err.get("status") == 403 and any(p in text for p in self.config.licensing_global_403))

    def failed(self) -> dict[str, Any]:
        """The products whose assignments could not be read, other than ones the customer lacks (400/404)."""
        return {p: r for p, r in self.results.items()
                if (e := error_of(r)) is not None and e.get("status") not in self.config.licensing_skipped}

    def fatal(self) -> Any | None:
        """The error that makes every user's licences unknown: a global one, or every product failing."""
        failed = self.failed()
        errors = [r for r in failed.values() if self._is_global(error_of(r) or {})]
        if errors:
            return errors[0]
        readable = [p for p, r in self.results.items() if error_of(r) is None]
        return next(iter(failed.values())) if failed and not readable else None

    @cached_property
    def _by_user(self) -> dict[str, list[Any]]:
        """Every readable assignment by user, in listing order: indexed once, not scanned once per owner."""
        out: dict[str, list[Any]] = {}
        for r in self.results.values():
            if error_of(r) is None:
                for a in r:
                    if isinstance(a, dict):
                        out.setdefault(str(a.get("userId", "")).lower(), []).append(a)
        return out

    def of(self, owner: str) -> Any:
        fatal = self.fatal()
        if fatal is not None:
            return fatal
        return list(self._by_user.get(owner.lower(), []))


def _licenses(api: GoogleApi, customer_id: str | None, work: _Work) -> Callable[[], Licences] | Any:
    """The licence listing to wait for, or the error every user's licences get when it cannot start."""
    if not customer_id:
        return ApiError(None, "NoCustomerId", "customers.get could not be read, and listing licences needs "
                        "the customer id: give --customer-id").to_error()
    lists: dict[str, Any] = dict.fromkeys(api.config.licensing_products)
    for product in lists:
        work.add(partial(_keep, lists, product, partial(api.license_assignments, product, customer_id)))
    return lambda: Licences(lists, api.config)


def collect(
    api: GoogleApi,
    target: Target,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    workers: int | None = None,
) -> Collection:
    started = time.monotonic()
    size = max(1, min(workers or api.config.workers, 32))
    with _Work(api.memo.reading_threads(), size) as work:
        _sign_in(api, target, work)
        org: dict[str, Any] = dict.fromkeys(("customer", "domains"))
        work.add(partial(_keep, org, "domains", api.domains))
        org["customer"] = record(api.customer)
        work.wait()
        customer, domains = org["customer"], org["domains"]
        if unanswered([customer, domains]) is not None:  # nothing answered: reported as unreachable, ask no more
            boxes: dict[str, Any] = {addr: {} for addr in target.mailboxes}
            return Collection(_snapshot(target, customer, org, boxes, now), api.requests_made(),
                              time.monotonic() - started)
        _guard_customer(api, target, customer, domains)
        membership = _Membership(api, work)
        org.update(orgUnits=None, policies=None)
        work.add(partial(_keep, org, "orgUnits", api.org_units))

        def policies() -> None:
            _keep(org, "policies", api.policies)
            membership.targeted(targeted_groups(org["policies"]) if isinstance(org["policies"], list) else set())

        work.add(policies)
        if target.with_audit_log:
            app, events = api.config.delegation
            org["delegationEvents"] = None
            work.add(partial(_keep, org, "delegationEvents", lambda: api.activities("all", app, events)))
        read: dict[str, tuple[dict[str, Any], str | None]] = {}

        def mailbox(addr: str) -> None:
            rec, owner = read[addr] = _mailbox(api, addr, target)
            if owner is not None and isinstance(rec.get("userGroups"), list):
                membership.owner(owner, _direct(rec))

        def batched(addrs: list[str]) -> None:
            """These mailboxes' users, then their groups, each in one batch request; whatever a batch does not
            answer plainly is read as without one (mailbox, _rest)."""
            users = api.users_batch(addrs)
            owners: list[tuple[str, str, dict[str, Any]]] = []
            for addr, user in zip(addrs, users, strict=True):
                if user is None:
                    work.add(partial(mailbox, addr))
                    continue
                rec: dict[str, Any] = {"user": user}
                owner = str(user.get("primaryEmail") or addr)
                read[addr] = (rec, owner)
                owners.append((addr, owner, rec))
            groups = api.user_groups_batch([o for _, o, _ in owners])
            ready: list[tuple[str, frozenset[str]]] = []
            for (_, owner, rec), listed in zip(owners, groups, strict=True):
                if listed is not None:
                    rec["userGroups"] = listed
                    ready.append((owner, _direct(rec)))
                work.add(partial(_rest, api, rec, owner, target, listed, membership))
            membership.owners(ready)

        addrs = list(dict.fromkeys(target.mailboxes))
        for start in range(0, len(addrs), BATCH_SIZE):
            work.add(partial(batched, addrs[start:start + BATCH_SIZE]))
        customer_id = target.customer_id or (customer.get("id") if error_of(customer) is None else None)
        listing = _licenses(api, customer_id, work) if target.with_licenses else None
        work.wait()
        licences = listing() if callable(listing) else None
        mailboxes: dict[str, Any] = {}
        for addr in dict.fromkeys(target.mailboxes):
            rec, owner = read[addr]
            if listing is not None and owner is not None:
                rec["licenses"] = licences.of(owner) if licences is not None else listing
            if owner is not None and isinstance(rec.get("userGroups"), list):
                answers = membership.answers(owner, _direct(rec))
                if answers:
                    rec["groupMembership"] = answers
            mailboxes[addr] = rec
        if licences is not None and licences.fatal() is None and licences.failed():
            org["licenseErrors"] = licences.failed()
    return Collection(_snapshot(target, customer, org, mailboxes, now), api.requests_made(),
                      time.monotonic() - started)


def _snapshot(target: Target, customer: Any, org: dict[str, Any], mailboxes: dict[str, Any],
              now: Callable[[], datetime]) -> dict[str, Any]:
    tenant_id = customer.get("id") if error_of(customer) is None and isinstance(customer, dict) else None
    tenant_domain = target.domain or (customer.get("customerDomain") if tenant_id else None)
    return {
        "schema": SCHEMA,
        "provider": "google",
        "collected_at": now().replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "tenant": {"id": tenant_id or target.customer_id, "domain": tenant_domain},
        "options": target.options.to_dict(),
        "org": org,
        "mailboxes": mailboxes,
    }
