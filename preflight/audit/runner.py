"""Audit many tenants in parallel: each isolated, one's failure never stops the others, Ctrl-C keeps what finished."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from preflight import snapshot as snap_io
from preflight.audit.inventory import KINDS, Customer, Inventory
from preflight.causes import Catalogue
from preflight.engine import evaluate
from preflight.errors import InputError, SignInError
from preflight.model import TargetResult
from preflight.providers import CollectRequest, Registry
from preflight.runsecrets import RunSecrets

log = logging.getLogger("preflight.audit")
StateCallback = Callable[[str, str], None]  # (customer key, state text)
FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")


@dataclass
class TenantRun:
    customer: Customer
    result: TargetResult
    snapshot: snap_io.Snapshot | None
    seconds: float


def tenant_cache_dir(root: Path, customer: Customer) -> Path:
    """One token-cache folder per customer and tenant: no tenant's token is ever in reach of another's run."""
    ident = str(customer.settings.get("tenant") or customer.settings.get("domain") or customer.key)
    digest = hashlib.sha256(f"{customer.provider}:{ident}".encode()).hexdigest()[:16]
    return root / customer.provider / f"{customer.key}-{digest}"


def _run_one(
    customer: Customer,
    registry: Registry,
    catalogue: Catalogue,
    now: datetime,
    cache_root: Path,
    on_state: StateCallback,
    cancelled: threading.Event,
    secrets: RunSecrets,
    deadline: float | None = None,
) -> TenantRun:
    started = time.monotonic()
    provider = registry.get(customer.provider)
    label = customer.name
    snap: snap_io.Snapshot | None = None
    try:
        if customer.snapshot is not None:
            on_state(customer.key, "reading snapshot")
            snap = snap_io.load(customer.snapshot)
        else:
            on_state(customer.key, "signing in")
            request = CollectRequest(
                settings=customer.settings,
                mailboxes=customer.mailboxes,
                methods=customer.methods,
                sender_ips=customer.sender_ips,
                from_addresses=customer.from_addresses,
                app_id=customer.app_id,
                cache_dir=tenant_cache_dir(cache_root, customer),
                now=now,
                progress=lambda msg: on_state(customer.key, msg),
                secrets=secrets,
                deadline=customer.settings.get("deadline") or deadline,
            )
            collect = getattr(provider, "collect", None)
            if collect is None:
                raise SignInError(f"the {customer.provider} provider cannot collect live data in this version")
            snap = snap_io.parse(collect(request), f"{customer.key} (collected)")
        if cancelled.is_set():
            raise KeyboardInterrupt
        on_state(customer.key, "evaluating")
        result = evaluate(snap, provider.checks(), catalogue, now, provider.permissions(), label,
                          customer.exceptions, resources=provider.resources())
        on_state(customer.key, "done")
    except (SignInError, InputError) as exc:
        result = _failed(customer, secrets.mask(inventory_terms(str(exc), customer.key)))
        on_state(customer.key, "failed")
    except Exception as exc:  # one tenant's unexpected fault must not end the audit
        log.debug("tenant %s failed", customer.key, exc_info=True)
        result = _failed(customer, f"unexpected {type(exc).__name__} while auditing; re-run with --debug")
        on_state(customer.key, "failed")
    return TenantRun(customer, result, snap, time.monotonic() - started)


def inventory_terms(message: str, key: str) -> str:
    """A provider's message names its command-line flags (--certificate); in an audit the consultant wrote
    inventory keys, so those are named instead (customer.contoso.certificate)."""
    def term(m: re.Match[str]) -> str:
        name = m.group(1).replace("-", "_")
        return f"customer.{key}.{name}" if name in KINDS else m.group(0)

    return FLAG.sub(term, message)


def _failed(customer: Customer, message: str) -> TargetResult:
    tenant = str(customer.settings.get("tenant") or customer.settings.get("domain") or customer.key)
    return TargetResult(name=customer.name, provider=customer.provider, tenant=tenant, errors=[message])


def run_audit(
    inventory: Inventory,
    registry: Registry,
    catalogue: Catalogue,
    now: datetime,
    cache_root: Path,
    on_state: StateCallback = lambda _k, _s: None,
    on_done: Callable[[TenantRun], None] = lambda _r: None,
    keep_snapshots: bool = True,
    secrets: RunSecrets | None = None,
    deadline: float | None = None,
) -> tuple[list[TenantRun], bool]:
    """Runs every customer; returns the finished runs and whether the audit was interrupted.

    With keep_snapshots=False a snapshot is dropped once on_done has had it (written it to disk), so
    memory holds only the per-tenant results however many tenants there are.
    """
    runs: list[TenantRun] = []
    cancelled = threading.Event()
    pool = ThreadPoolExecutor(max_workers=inventory.workers, thread_name_prefix="tenant")
    futures: dict[Future[TenantRun], Customer] = {
        pool.submit(_run_one, c, registry, catalogue, now, cache_root, on_state, cancelled,
                    (secrets or RunSecrets()).child(), deadline): c
        for c in inventory.customers
    }
    pending = set(futures)
    interrupted = False
    try:
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in done:
                run = fut.result()
                on_done(run)
                if not keep_snapshots:
                    run.snapshot = None
                runs.append(run)
    except KeyboardInterrupt:
        interrupted = True
        cancelled.set()
        for fut in pending:
            fut.cancel()
    finally:
        pool.shutdown(wait=not interrupted, cancel_futures=True)
    order = {c.key: i for i, c in enumerate(inventory.customers)}
    runs.sort(key=lambda r: order[r.customer.key])
    return runs, interrupted


def select(customers: Sequence[Customer], only: Sequence[str], skip: Sequence[str]) -> tuple[Customer, ...]:
    keys = {c.key for c in customers}
    for name in [*only, *skip]:
        if name not in keys:
            raise InputError(f"no customer named {name!r} in the inventory (known: {', '.join(sorted(keys))})")
    return tuple(c for c in customers if (not only or c.key in only) and c.key not in skip)
