"""Audit many tenants in parallel: each isolated, one's failure never stops the others, Ctrl-C keeps what finished.

Tenants of the shipped providers are audited in worker processes, one per core, each running several tenants
on threads (their reading waits on the network; their evaluation needs a core): results stream back to this
process as each tenant finishes, and are handed to `on_done` here. A provider object that is not a packaged
one may keep state across calls (a plugin, a test double), so its tenants run on threads in this process.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import multiprocessing
import os
import pickle
import queue
import re
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from preflight import pipeline
from preflight import snapshot as snap_io
from preflight.audit.inventory import KINDS, Customer, Inventory
from preflight.causes import Catalogue
from preflight.errors import InputError, SignInError
from preflight.memo import RunMemo
from preflight.model import TargetResult
from preflight.providers import CollectRequest, PackagedProvider, Registry
from preflight.runsecrets import MaskingFilter, RunSecrets

if TYPE_CHECKING:
    from preflight.audit.output import Rendered

log = logging.getLogger("preflight.audit")
StateCallback = Callable[[str, str], None]  # (customer key, state text)
FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")


def _quiet(_key: str, _state: str) -> None:
    """The states of a run nobody watches (no live display): a worker then sends none to this process."""


@dataclass
class TenantRun:
    customer: Customer
    result: TargetResult
    snapshot: snap_io.Snapshot | None
    seconds: float
    files: Rendered | None = None  # what `prepare` rendered where the tenant ran, for on_done to write

Prepare = Callable[[TenantRun], "Rendered"]


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
    memo: RunMemo | None = None,
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
                memo=memo if memo is not None else RunMemo(),
            )
            collect = getattr(provider, "collect", None)
            if collect is None:
                raise SignInError(f"the {customer.provider} provider cannot collect live data in this version")
            snap = snap_io.parse_collected(collect(request), f"{customer.key} (collected)")
            problem = pipeline.unreachable(snap, provider.title)
            if problem is not None:
                raise SignInError(problem)
        if cancelled.is_set():
            raise KeyboardInterrupt
        on_state(customer.key, "evaluating")
        result = pipeline.evaluate_snapshot(snap, provider, now, label, customer.exceptions, catalogue)
        on_state(customer.key, "done")
    except (SignInError, InputError) as exc:
        result = _failed(customer, secrets.mask(inventory_terms(str(exc), customer.key)))
        on_state(customer.key, "failed")
    except Exception as exc:  # one tenant's unexpected fault must not end the audit
        log.debug("tenant %s failed", customer.key, exc_info=True)
        result = _failed(customer, f"unexpected {type(exc).__name__} while auditing; re-run with --debug")
        on_state(customer.key, "failed")
    return TenantRun(customer, result, snap, time.monotonic() - started)


def _kept(run: TenantRun, keep_snapshots: bool, keep_results: bool) -> TenantRun:
    """What the run keeps of a tenant on_done has had: its written texts never; its snapshot, and its result's
    verdicts and findings (often most of its memory), only if asked."""
    run.files = None
    if not keep_snapshots:
        run.snapshot = None
    if not keep_results:
        run.result = _named(run.result)
    return run


def _named(r: TargetResult) -> TargetResult:
    """A result's names and errors, without its verdicts and findings."""
    return TargetResult(name=r.name, provider=r.provider, tenant=r.tenant, errors=r.errors)


def _prepared(prepare: Prepare | None, run_one: Callable[..., TenantRun], *args: Any) -> TenantRun:
    run = run_one(*args)
    if prepare is not None:
        run.files = prepare(run)
    return run


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
    on_state: StateCallback | None = None,
    on_done: Callable[[TenantRun], None] = lambda _r: None,
    keep_snapshots: bool = True,
    secrets: RunSecrets | None = None,
    deadline: float | None = None,
    prepare: Prepare | None = None,
    keep_results: bool = True,
) -> tuple[list[TenantRun], bool]:
    """Runs every customer; returns the finished runs and whether the audit was interrupted.

    With keep_results=False a run's result keeps only its names and errors once on_done has had it (taken what it
    needs): memory then holds little per tenant, however many mailboxes and findings each has.

    With keep_snapshots=False a snapshot is dropped once on_done has had it (written it to disk), so
    memory holds only the per-tenant results however many tenants there are. `prepare` runs where the tenant
    ran (its worker process), its result in run.files: the CPU-heavy rendering of what on_done writes. With both,
    a tenant audited in a worker process reaches on_done without its snapshot (run.snapshot None): its rendered
    text is all on_done writes, so the snapshot itself is not pickled back to this process. Likewise with
    `prepare` and keep_results=False, such a tenant's result reaches on_done with only its names and errors:
    its verdicts and findings (what costs most to pickle and unpickle) stay in the worker; run.files tells the
    rest.

    `on_state` None: nobody watches the tenants' states, so a worker process sends none of them to this one (about
    five per tenant, each a message to mask, pickle, send, and wake this process for).
    """
    processes = worker_processes(inventory, registry)
    if processes > 1:
        return _run_in_processes(inventory, registry, catalogue, now, cache_root, on_state, on_done, keep_snapshots,
                                 secrets or RunSecrets(), deadline, processes, prepare, keep_results)
    on_state = on_state or _quiet
    runs: list[TenantRun] = []
    cancelled = threading.Event()
    memo = RunMemo()  # one for the run: every tenant reuses what another learned (a key parsed, a refusal)
    pool = ThreadPoolExecutor(max_workers=inventory.workers, thread_name_prefix="tenant")
    futures: dict[Future[TenantRun], Customer] = {
        pool.submit(_prepared, prepare, _run_one, c, registry, catalogue, now, cache_root, on_state, cancelled,
                    (secrets or RunSecrets()).child(), deadline, memo): c
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
                runs.append(_kept(run, keep_snapshots, keep_results))
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


def worker_processes(inventory: Inventory, registry: Registry) -> int:
    """Worker processes for this audit: one per core (at most one per tenant), or 0 to run on threads here."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cores < 2 or len(inventory.customers) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return 0
    try:
        providers = {registry.get(c.provider) for c in inventory.customers}
    except InputError:
        return 0  # each such tenant fails on its own, as on threads
    if not all(isinstance(p, PackagedProvider) for p in providers):
        return 0
    return min(cores, len(inventory.customers), max(1, inventory.workers))


def spread(workers: int, processes: int) -> list[int]:
    """Threads per worker process: --workers tenants at once in all, as evenly as they go (3 over 2 processes:
    2 and 1, not 2 each, which ran 4 tenants at once)."""
    workers = max(1, workers)
    return [workers // processes + (n < workers % processes) for n in range(processes)]


_WORKER_DIED = "the worker process auditing it ended unexpectedly; re-run with --debug"
# A worker's tenants make many container objects that die young (parsed replies, the pieces of rendered text).
# At the default threshold (700) a worker auditing 25 tenants ran ~110 young collections, and ~10 of the next
# generation walking all that had survived: ~50 ms of CPU per worker. At this one it runs ~5 (~20 ms). Cyclic
# garbage waits for at most this many more allocations before it is freed: memory stays flat.
WORKER_GC_THRESHOLD = 10_000
# glibc's malloc hands the free memory at the top of a heap back to the kernel once it passes 128 KiB: a worker
# rendering and pickling one tenant's texts after another's (100-500 KB each) had the kernel map and zero the
# same pages again for every tenant. Keeping this much per heap took 13k of the ~34k page faults of the workers
# of the 50x20 mixed audit (~2 us each); it is freed memory that is kept, so the peak is not raised by it.
MALLOC_TOP_PAD = 4 << 20
_M_TOP_PAD = -2  # mallopt's parameter number, from glibc's <malloc.h>


def _run_in_processes(
    inventory: Inventory,
    registry: Registry,
    catalogue: Catalogue,
    now: datetime,
    cache_root: Path,
    on_state: StateCallback | None,
    on_done: Callable[[TenantRun], None],
    keep_snapshots: bool,
    secrets: RunSecrets,
    deadline: float | None,
    processes: int,
    prepare: Prepare | None,
    keep_results: bool = True,
) -> tuple[list[TenantRun], bool]:
    customers = inventory.customers
    # What the providers' modules make as they are imported lives as long as the run, and is frozen below: a
    # collection during the imports would only walk it (~60 young collections and a full one: ~25 ms).
    collecting = gc.isenabled()
    gc.disable()
    try:
        _tasks, results, workers = _workers(inventory, registry, catalogue, now, cache_root, secrets, deadline,
                                            processes, prepare, keep_snapshots, keep_results,
                                            on_state is not None)  # held for the run
        # What the workers inherit (modules, models, the catalogue) lives as long as they do: frozen, their full
        # garbage collections do not walk it, nor write to its memory pages (copying each on first write). Freezing
        # also zeroes the count of new objects, so collecting again starts no collection at once.
        gc.freeze()
    finally:
        if collecting:
            gc.enable()
    try:
        for w in workers:
            w.start()
    except BaseException:
        gc.unfreeze()
        raise
    # Frozen here too until the results are in (unfrozen below): this process's full collections would walk it
    # all the same (one took ~30 ms of the 50-tenant benchmark audit, and more come as an audit of hundreds goes on).
    runs: list[TenantRun] = []
    interrupted = False
    try:
        while len(runs) < len(customers):
            try:
                message = results.get(timeout=0.2)
            except queue.Empty:
                if not any(w.is_alive() for w in workers):
                    break
                continue
            kind, i, payload = message
            if kind == "log":
                record = pickle.loads(payload)
                logging.getLogger(record.name).handle(record)
                continue
            if kind == "state":
                if on_state is not None:
                    on_state(customers[i].key, payload)
                continue
            learned, result, snap, seconds, files = pickle.loads(payload)
            secrets.add(*learned)  # a tenant's secrets reach the run's, as they do on threads
            run = TenantRun(customers[i], result, snap, seconds, files)
            on_done(run)
            runs.append(_kept(run, keep_snapshots, keep_results))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        gc.unfreeze()  # this process's own collections go on as before
        for w in workers:
            if interrupted:
                w.terminate()
        for w in workers:
            w.join(timeout=5)
            if w.is_alive():
                w.kill()
        results.close()
        results.cancel_join_thread()
    if not interrupted:
        done = {r.customer.key for r in runs}
        for c in customers:  # only if a worker died under a tenant (killed, out of memory)
            if c.key not in done:
                run = TenantRun(c, _failed(c, _WORKER_DIED), None, 0.0)
                if on_state is not None:
                    on_state(c.key, "failed")
                on_done(run)
                runs.append(_kept(run, keep_snapshots, keep_results))
    order = {c.key: i for i, c in enumerate(customers)}
    runs.sort(key=lambda r: order[r.customer.key])
    return runs, interrupted


def _workers(inventory: Inventory, registry: Registry, catalogue: Catalogue, now: datetime, cache_root: Path,
             secrets: RunSecrets, deadline: float | None, processes: int, prepare: Prepare | None,
             keep_snapshots: bool, keep_results: bool, states: bool = True) -> tuple[Any, Any, list[Any]]:
    """The audit's task and result queues and its worker processes, not started yet."""
    customers = inventory.customers
    # fork: a worker starts at once with everything this process has set up (registry, catalogue, environment);
    # nothing is imported or parsed again, and nothing of it has to be picklable. So the providers' modules are
    # imported here, once, rather than in every worker.
    memo = RunMemo()  # what the providers learn here (a key parsed): each worker starts with its own copy
    for name in sorted({c.provider for c in customers}):
        provider = registry.get(name)
        if isinstance(provider, PackagedProvider):
            provider.preload()
            provider.warm([c.settings for c in customers if c.provider == name], memo)
    warm_trust()
    ctx = multiprocessing.get_context("fork")
    tasks: Any = ctx.SimpleQueue()
    results: Any = ctx.Queue()
    threads = spread(inventory.workers, processes)
    for i in range(len(customers)):
        tasks.put(i)
    for _ in range(sum(threads)):
        tasks.put(None)
    workers = [ctx.Process(target=_worker, name=f"preflight-audit-{n}", daemon=True,
                           args=(tasks, results, customers, registry, catalogue, now, cache_root, secrets, deadline,
                                 threads[n], prepare, keep_snapshots, keep_results, states, memo))
               for n in range(processes)]
    return tasks, results, workers


def warm_trust() -> None:
    """The default trust store's TLS context (preflight.deadline.tls_context), made here before the fork: every
    worker inherits its CA certificates parsed (certifi's bundle: ~20 ms of CPU) rather than parsing them again
    for its first tenant. Quiet: a trust store that cannot be read is each tenant's to report, as on threads."""
    from preflight.transport import Transport

    with contextlib.suppress(Exception):
        Transport().context()


def _worker(tasks: Any, results: Any, customers: Sequence[Customer], registry: Registry, catalogue: Catalogue,
            now: datetime, cache_root: Path, secrets: RunSecrets, deadline: float | None, threads: int,
            prepare: Prepare | None, keep_snapshots: bool = True, keep_results: bool = True,
            states: bool = True, memo: RunMemo | None = None) -> None:
    """A worker process: audits tenants from `tasks` on `threads` threads until it draws a stop. `memo`: what the
    parent learned before the fork, this process's own copy, shared by its tenants. `states`: whether the parent
    watches its tenants' states (else none is sent)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it ends the workers
    gc.set_threshold(WORKER_GC_THRESHOLD, *gc.get_threshold()[1:])  # this process's alone: it ends with the audit
    keep_freed_memory()
    root = logging.getLogger()
    for handler in list(root.handlers):  # the parent's handlers write where this process cannot (a test's capture)
        root.removeHandler(handler)
    root.addHandler(_ToParent(results, secrets))
    never = threading.Event()
    memo = memo if memo is not None else RunMemo()

    def audit(i: int) -> None:
        own = secrets.child()
        tell = (lambda _key, state: results.put(("state", i, own.mask(state)))) if states else _quiet
        run = _run_one(customers[i], registry, catalogue, now, cache_root, tell, never, own, deadline, memo)
        try:
            files = prepare(run) if prepare is not None else None
            # A snapshot `prepare` rendered stays here unless kept: its text is among the files on_done writes;
            # so do the result's verdicts and findings: the files and what they tell of them are all it needs.
            snap = run.snapshot if keep_snapshots or files is None else None
            result = run.result if keep_results or files is None else _named(run.result)
            payload = pickle.dumps((own.values(), result, snap, run.seconds, files))
        except Exception:  # a result that cannot be rendered or travel: the tenant is reported, not lost
            log.debug("tenant %s: result not transferable", customers[i].key, exc_info=True)
            failed = _failed(customers[i], "unexpected error while auditing; re-run with --debug")
            payload = pickle.dumps((own.values(), failed, None, run.seconds, None))
        results.put(("done", i, payload))

    def loop() -> None:
        while (i := tasks.get()) is not None:
            audit(i)

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tenant") as pool:
        for _ in range(threads):
            pool.submit(loop)


def keep_freed_memory() -> bool:
    """Let this process's malloc keep MALLOC_TOP_PAD of freed memory at the top of each heap: only a process that
    ends with the audit (a worker; `preflight audit`'s own), as the setting cannot be undone. True if it did; only
    glibc's malloc has it."""
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return False
        import ctypes

        return bool(ctypes.CDLL(None).mallopt(_M_TOP_PAD, MALLOC_TOP_PAD))
    except (ValueError, OSError, AttributeError):  # no such confstr name, no C library to load, no mallopt
        return False


class _ToParent(logging.Handler):
    """A worker's log records, masked here (this process knows its tenants' tokens as they are issued), handed
    to the parent's handlers."""

    def __init__(self, results: Any, secrets: RunSecrets) -> None:
        super().__init__(logging.NOTSET)
        self.results = results
        self.addFilter(MaskingFilter(secrets))

    def emit(self, record: logging.LogRecord) -> None:
        record.exc_info = None  # its text is in exc_text (masked); a traceback cannot travel
        with contextlib.suppress(Exception):  # a record that cannot travel is dropped, never fails a tenant
            self.results.put(("log", -1, pickle.dumps(record)))


def select(customers: Sequence[Customer], only: Sequence[str], skip: Sequence[str]) -> tuple[Customer, ...]:
    keys = {c.key for c in customers}
    for name in [*only, *skip]:
        if name not in keys:
            raise InputError(f"no customer named {name!r} in the inventory (known: {', '.join(sorted(keys))})")
    return tuple(c for c in customers if (not only or c.key in only) and c.key not in skip)
