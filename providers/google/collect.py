"""Collect one Google Workspace into a preflight.snapshot/v1 dict: org settings once, mailboxes concurrently.

Every leaf is the API's payload verbatim, or `{"error": {...}}` when it could not be read: one unreadable
resource never ends a collection, and never turns into a guess.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from preflight.errors import SignInError
from preflight.http import ApiError, record
from preflight.pipeline import unanswered
from preflight.snapshot import SCHEMA, Options, describe_error, error_of

from . import settings
from .api import GoogleApi
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


def _sign_in(api: GoogleApi, target: Target, pool: ThreadPoolExecutor) -> None:
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
    futures = {k: pool.submit(api.signer.bearer, settings.scope(k).url, None) for k in keys[1:]}
    for fut in futures.values():
        try:
            fut.result()
        except ApiError as exc:
            errors.append(exc)
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


def _has_member(api: GoogleApi, group_id: str, owner: str) -> Callable[[], Any]:
    return lambda: api.has_member(group_id, owner)


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


def _licenses(api: GoogleApi, customer_id: str | None, pool: ThreadPoolExecutor) -> Callable[[], Licences] | Any:
    """The licence listing to wait for, or the error every user's licences get when it cannot start."""
    if not customer_id:
        return ApiError(None, "NoCustomerId", "customers.get could not be read, and listing licences needs "
                        "the customer id: give --customer-id").to_error()

    def reader(product: str) -> Callable[[], Any]:
        return lambda: api.license_assignments(product, customer_id)

    lists = {p: pool.submit(record, reader(p)) for p in api.config.licensing_products}
    return lambda: Licences({p: f.result() for p, f in lists.items()}, api.config)


def collect(
    api: GoogleApi,
    target: Target,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    workers: int | None = None,
) -> Collection:
    started = time.monotonic()
    size = max(1, min(workers or api.config.workers, 32))
    with ThreadPoolExecutor(max_workers=size, thread_name_prefix="preflight-google") as pool:
        _sign_in(api, target, pool)
        customer_f = pool.submit(record, api.customer)
        domains_f = pool.submit(record, api.domains)
        customer, domains = customer_f.result(), domains_f.result()
        if unanswered([customer, domains]) is not None:  # nothing answered: reported as unreachable, ask no more
            org: dict[str, Any] = {"customer": customer, "domains": domains}
            boxes: dict[str, Any] = {addr: {} for addr in target.mailboxes}
            return Collection(_snapshot(target, customer, org, boxes, now), api.requests_made(),
                              time.monotonic() - started)
        _guard_customer(api, target, customer, domains)
        org_units_f = pool.submit(record, api.org_units)
        policies_f = pool.submit(record, api.policies)
        app, events = api.config.delegation
        delegation_f = pool.submit(record, lambda: api.activities("all", app, events)) \
            if target.with_audit_log else None
        mailbox_f: dict[str, Future[tuple[dict[str, Any], str | None]]] = {
            addr: pool.submit(_mailbox, api, addr, target) for addr in dict.fromkeys(target.mailboxes)
        }
        customer_id = target.customer_id or (customer.get("id") if error_of(customer) is None else None)
        listing = _licenses(api, customer_id, pool) if target.with_licenses else None
        policies = policies_f.result()
        targeted = targeted_groups(policies) if isinstance(policies, list) else set()
        licences = listing() if callable(listing) else None
        mailboxes: dict[str, Any] = {}
        nested: dict[str, dict[str, Future[Any]]] = {}  # owner -> group id -> hasMember
        for addr, fut in mailbox_f.items():
            rec, owner = fut.result()
            if listing is not None and owner is not None:
                rec["licenses"] = licences.of(owner) if licences is not None else listing
            if owner is not None and isinstance(rec.get("userGroups"), list):
                # A policy for a group the user is not directly in may still reach it through a nested group.
                direct = {str(g.get("id")) for g in rec["userGroups"] if isinstance(g, dict)}
                if owner not in nested:
                    nested[owner] = {gid: pool.submit(record, _has_member(api, gid, owner))
                                     for gid in sorted(targeted - direct)}
                if nested[owner]:
                    rec["groupMembership"] = nested[owner]
            mailboxes[addr] = rec
        for rec in mailboxes.values():
            if "groupMembership" in rec:
                rec["groupMembership"] = {gid: f.result() for gid, f in rec["groupMembership"].items()}
        org = {"customer": customer, "domains": domains, "orgUnits": org_units_f.result(), "policies": policies}
        if delegation_f is not None:
            org["delegationEvents"] = delegation_f.result()
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
