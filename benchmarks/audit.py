"""A consultant's audit of many tenants, Microsoft 365 and Google Workspace mixed, against the local fakes.

Usage: python benchmarks/audit.py [--tenants 50] [--mailboxes 20] [--google-share 0.5] [--latency 0.05]
                                  [--workers 8] [--repeat 3] [--mixed-only] [--wire plain|real]

Each fake runs in its own child process, so the CPU time and memory measured are preflight's own: the Microsoft
one (Entra ID token endpoint, Graph, Exchange admin REST) and the Google one (token endpoint, Directory, Policy
and Licensing APIs). Both add --latency to every HTTP request. Each Microsoft tenant signs in for real (msal,
client secret, its own token cache); each Google Workspace for real too (google-auth, one service-account key
with domain-wide delegation granted in every Workspace, impersonating that Workspace's admin). All are collected
and evaluated by `preflight audit`'s runner, in one inventory, the two providers interleaved, and each tenant's
files are written as it finishes.

Every audit runs in a fresh interpreter. Unless --mixed-only, the Microsoft tenants alone and the Google ones
alone are audited first (per-provider CPU), then the mix. Per scenario it prints, as the median of --repeat
runs: HTTP requests per mailbox per provider (sign-in included; a Graph $batch or a Directory API batch is one
request, its sub-requests are shown as reads: the calls the services answer), wall time, preflight's CPU time
(this process and its worker processes, not the fakes) per HTTP request and per read (and how much of it the
parent process spent), the fakes' own CPU time per HTTP request (each fake reports its process's CPU time from the
moment it was set up), the CPU floor they imply on this machine ((preflight's CPU + the fakes') / cores: the fakes
share the cores, so no wall time can be below it), the speed-up over making the same requests one after another
(requests x latency / wall), and peak RSS (the largest of this process and its worker processes); then preflight's
CPU per request by provider, from the one-provider runs. Run it at a quiet moment: the load average at the start
of each run is printed with it.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.wire import Wire  # noqa: E402  (after the path: the tests' fakes are not installed)

CLIENT_ID = "3f6b1c2d-4e5a-4b7c-8d9e-0a1b2c3d4e5f"
SECRET = "benchmark-client-secret-value"
GOOGLE_CLIENT_ID = "104857600000000000001"  # the service account's client id (FakeGoogle.key_file's default)
GOOGLE_FIXTURE = ROOT / "tests/google/fixtures/gmail_group_override.json"
GOOGLE_DOMAIN, GOOGLE_CUSTOMER = "tailspin.example", "C01b2c3d4"  # as written in the fixture
# How the fakes frame their replies (tests/wire.py). "plain": a Content-Length body, as before (and as base
# versions without tests/wire.py serve). "real": as the services do: Google's front ends stream JSON chunked and
# compress only for a User-Agent naming gzip, which preflight's does not; Microsoft's chunked and gzipped [I].
WIRES = {"plain": {"microsoft": Wire(), "google": Wire()},
         "real": {"microsoft": Wire(chunked=True, gzip=True), "google": Wire(chunked=True)}}


def serve_microsoft(conn: Any, work: str, tenants: int, mailboxes: int, latency: float, wire: str) -> None:
    """Child process: the Microsoft fake with one tenant per customer; reports its mailboxes, then its request count."""
    import trustme

    from benchmarks.microsoft import tenant_snapshot
    from tests.microsoft.fake import App, FakeMicrosoft, FakeTenant

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(Path(work) / "ca.pem"))
    fake = FakeMicrosoft(tls=ca, latency=latency).start()
    fake.wire = WIRES[wire]["microsoft"]
    fake.cloud_file(Path(work) / "clouds.toml")
    template = tenant_snapshot(mailboxes)
    for i in range(tenants):
        fake.add_tenant(FakeTenant(id=str(uuid.UUID(int=i + 1)), domains=(f"t{i:03d}.example",), snapshot=template,
                                   apps={CLIENT_ID: App(CLIENT_ID, secret=SECRET)}))
    conn.send(sorted(template["mailboxes"]))
    ready = _own_cpu()  # set up: from here on its CPU time is serving preflight's requests
    conn.recv()  # the audit is over
    conn.send((len(fake.calls(sub=False)), len(fake.calls()), _own_cpu() - ready))
    fake.stop()


def workspace_snapshot(mailboxes: int) -> dict[str, Any]:
    """The gmail-group-override fixture with its two users cloned, in turn, into `mailboxes` distinct ones.

    helpdesk@ is directly in the group a Gmail policy targets; agent@ is not, so the collector asks Directory
    whether it is a nested member (members.hasMember): both kinds of mailbox, half and half.
    """
    template: dict[str, Any] = json.loads(GOOGLE_FIXTURE.read_text(encoding="utf-8"))
    originals = [template["mailboxes"].pop(a) for a in ("helpdesk@tailspin.example", "agent@tailspin.example")]
    for i in range(mailboxes):
        addr = f"user{i:04d}@{GOOGLE_DOMAIN}"
        clone = copy.deepcopy(originals[i % 2])
        clone["user"].update(id=f"1{i:020d}", etag=f'"{GOOGLE_CUSTOMER}-user{i:04d}-etag"', primaryEmail=addr,
                             emails=[{"address": addr, "primary": True}],
                             nonEditableAliases=[f"user{i:04d}@{GOOGLE_DOMAIN}.test-google-a.com"])
        for lic in clone["licenses"]:
            lic.update(userId=addr, etags=f'"{addr}-{lic["skuId"]}"',
                       selfLink=lic["selfLink"].rsplit("/user/", 1)[0] + f"/user/{addr}")
        template["mailboxes"][addr] = clone
    return template


def serve_google(conn: Any, work: str, workspaces: int, mailboxes: int, latency: float, wire: str) -> None:
    """Child process: the Google fake with one Workspace per customer, each granting the one service account
    domain-wide delegation of every service-account scope; reports its address, key file, CA and mailboxes,
    then its request count."""
    from preflight_providers.google import settings
    from tests.google.fake import FakeGoogle, Workspace

    scopes = [s.url for s in settings.scopes() if "service-account" in s.auth]
    template = json.dumps(workspace_snapshot(mailboxes))
    spaces = []
    for i in range(workspaces):
        # Its own domain and customer id: the fake finds a Workspace by domain, and the collector checks both.
        snap = json.loads(template.replace(GOOGLE_DOMAIN, f"g{i:03d}.example").replace(GOOGLE_CUSTOMER,
                                                                                        f"C{i:08d}"))
        ws = Workspace.from_snapshot(snap)
        ws.add_admin(f"admin@g{i:03d}.example")
        ws.grant(GOOGLE_CLIENT_ID, scopes)
        spaces.append(ws)
    fake = FakeGoogle(spaces, Path(work))
    fake.latency = lambda _seen: latency
    fake.wire = WIRES[wire]["google"]
    with fake:
        key = fake.key_file(Path(work), client_id=GOOGLE_CLIENT_ID)
        boxes = sorted(json.loads(template)["mailboxes"])
        conn.send((fake.url, str(key), str(fake.ca_file), [b.split("@")[0] for b in boxes]))
        ready = _own_cpu()
        conn.recv()  # the audit is over
        # HTTP requests, and the calls answered: a Directory batch request is one HTTP request, its parts calls
        conn.send((fake.exchanges, len(fake.log), _own_cpu() - ready))


def _own_cpu() -> float:
    """CPU seconds of this process, every thread (a fake answers each request on a thread of its own)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def is_google(i: int, share: float) -> bool:
    """Spread the Google Workspaces evenly through the inventory: customer i is one when the count steps up."""
    return int((i + 1) * share) > int(i * share)


def run_once(args: argparse.Namespace) -> dict[str, Any]:
    """One audit in this process (a fresh one: peak RSS is a high-water mark). Returns its measurements."""
    kinds = ["google" if is_google(i, args.google_share) else "microsoft" for i in range(args.tenants)]
    n_google, n_microsoft = kinds.count("google"), kinds.count("microsoft")
    work = tempfile.mkdtemp(prefix="preflight-audit-bench-")
    fork = mp.get_context("fork")
    children: dict[str, tuple[Any, Any]] = {}  # provider -> (pipe end, process)
    for name, target, count in (("microsoft", serve_microsoft, n_microsoft), ("google", serve_google, n_google)):
        if count:
            parent, child = mp.Pipe()
            proc = fork.Process(target=target, args=(child, work, count, args.mailboxes, args.latency, args.wire))
            proc.start()
            children[name] = (parent, proc)
    ms_boxes: list[str] = children["microsoft"][0].recv() if "microsoft" in children else []
    google: tuple[str, str, str, list[str]] = children["google"][0].recv() if "google" in children else \
        ("", "", "", [])
    api_root, key_file, google_ca, google_locals = google
    bundle = Path(work) / "ca-bundle.pem"
    bundle.write_text("".join(Path(p).read_text() for p in (f"{work}/ca.pem", google_ca) if p and Path(p).exists()))
    os.environ.update(REQUESTS_CA_BUNDLE=str(bundle), PREFLIGHT_MICROSOFT_CLOUDS=f"{work}/clouds.toml",
                      BENCH_SECRET=SECRET, XDG_CONFIG_HOME=f"{work}/config")  # no saved Google profile applies
    os.environ.pop("PREFLIGHT_GOOGLE_PROFILE", None)

    from preflight.audit.inventory import Customer, Inventory
    from preflight.audit.output import Consolidated, place_tenant, render_tenant, write_tenant
    from preflight.audit.runner import TenantRun, keep_freed_memory, run_audit
    from preflight.causes import load_catalogue
    from preflight.model import Method
    from preflight.providers import Registry
    from preflight.report.common import Labels

    def microsoft(n: int) -> Customer:
        return Customer(key=f"t{n:03d}", name=f"Tenant {n:03d}", provider="microsoft",
                        settings={"tenant": f"t{n:03d}.example", "client_id": CLIENT_ID, "auth": "secret",
                                  "client_secret_env": "BENCH_SECRET", "cloud": "fake"},
                        mailboxes=tuple(ms_boxes), methods=(Method.BASIC, Method.OAUTH_APP),
                        app_id="9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d")

    def workspace(n: int) -> Customer:
        domain = f"g{n:03d}.example"
        # As an inventory section would give it; api_root points the Google APIs at the fake (the key file's
        # token_uri already points at its token endpoint). Licences are read because the fixture recorded them.
        return Customer(key=f"g{n:03d}", name=f"Workspace {n:03d}", provider="google",
                        settings={"auth": "service-account", "key_file": key_file, "admin": f"admin@{domain}",
                                  "domain": domain, "with_licenses": True, "api_root": api_root},
                        mailboxes=tuple(f"{local}@{domain}" for local in google_locals),
                        methods=(Method.BASIC, Method.OAUTH_DELEGATED))

    counters = {"microsoft": 0, "google": 0}
    customers = []
    for kind in kinds:
        customers.append(microsoft(counters[kind]) if kind == "microsoft" else workspace(counters[kind]))
        counters[kind] += 1
    inventory = Inventory(Path("benchmark"), tuple(customers), args.workers)
    order = {c.key: i for i, c in enumerate(customers)}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu_before, system_before, parent_before = _cpu(), _cpu(system_only=True), _cpu(children=False)
    kernel_before = _kernel_counts()
    started = time.perf_counter()
    now = datetime.now(UTC)
    out = Path(work) / "out"

    keep_freed_memory()  # as `preflight audit` does, its process ending with the audit
    registry = Registry.from_entry_points()
    labels = Labels.of(registry, load_catalogue())  # as `preflight audit` does: once, before the workers fork
    verdicts = 0
    # As `preflight audit` does: each tenant's files go to disk as it finishes, with its share of the consolidated
    # files (written at the end, inside the measured section: their memory is part of the user's peak RSS).
    with Consolidated(out, now, labels=labels) as consolidated:
        stage = consolidated.staging()  # as `preflight audit` does: each worker writes its tenants' files there

        def done(run: TenantRun) -> None:
            nonlocal verdicts
            rendered = run.files or render_tenant(run, now, labels=labels)  # here only if its worker died
            verdicts += sum(rendered.share.verdicts.values())  # its result came without them
            if rendered.staged is not None:
                place_tenant(rendered.staged, out)
            else:
                write_tenant(run, out, now, files=rendered.files)
            consolidated.add(rendered.share, order[run.customer.key])

        if args.threads_only:
            from preflight.audit import runner

            runner.worker_processes = lambda _inventory, _registry: 0
        runs, interrupted = run_audit(inventory, registry, load_catalogue(), now, Path(work) / "cache",
                                      on_done=done, keep_snapshots=False, keep_results=False,
                                      prepare=lambda run: render_tenant(run, now, labels=labels, stage=stage))
        consolidated.write(interrupted, {order[r.customer.key] for r in runs})
    wall = time.perf_counter() - started
    # The fakes are not reaped yet, so RUSAGE_CHILDREN holds only preflight's own worker processes (if any).
    cpu, system = _cpu() - cpu_before, _cpu(system_only=True) - system_before
    parent_cpu = _cpu(children=False) - parent_before
    kernel = {k: v - kernel_before[k] for k, v in _kernel_counts().items()}
    peak_kb = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    counts: dict[str, tuple[int, int, float]] = {}
    for name, (parent, proc) in children.items():
        parent.send("done")
        counts[name] = parent.recv()
        proc.join()
    shutil.rmtree(work, ignore_errors=True)  # the fakes' keys and CA, the audit's folder: ~15 MB a run
    failed = [r for r in runs if r.result.errors]
    return {
        "tenants": {"microsoft": n_microsoft, "google": n_google}, "mailboxes": args.mailboxes,
        "failed": len(failed), "first_error": failed[0].result.errors[0] if failed else None,
        "verdicts": verdicts,
        "http": {k: v[0] for k, v in counts.items()}, "reads": {k: v[1] for k, v in counts.items()},
        "fakes_cpu": {k: v[2] for k, v in counts.items()},
        "wall": wall, "cpu": cpu, "system": system, "parent_cpu": parent_cpu, "kernel": kernel,
        "peak_mb": peak_kb / 1024, "before_mb": rss_before / 1024,
        "tenant_seconds": {k: [r.seconds for r in runs if r.customer.provider == k] for k in counts},
    }


def _cpu(system_only: bool = False, children: bool = True) -> float:
    """CPU seconds of this process and of its reaped children (preflight's worker processes, if any); with
    system_only, only the kernel's share (system calls: sockets, TLS records, threads); without children, only
    this process's (the audit's parent: it receives each tenant's result and writes its files)."""
    usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, *([resource.RUSAGE_CHILDREN] * children))]
    return sum(u.ru_stime + (0.0 if system_only else u.ru_utime) for u in usage)


def _kernel_counts() -> dict[str, int]:
    """What drives the kernel's share, in this process and its reaped children (as _cpu): page faults (fresh
    memory, copy-on-write after a fork), and context switches, voluntary (a thread waiting: the network, a lock,
    the GIL) and involuntary (preempted)."""
    usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return {"faults": sum(u.ru_minflt + u.ru_majflt for u in usage), "waits": sum(u.ru_nvcsw for u in usage),
            "preempted": sum(u.ru_nivcsw for u in usage), "parent_faults": usage[0].ru_minflt + usage[0].ru_majflt}


def _scenario(args: argparse.Namespace, share: float) -> dict[str, Any]:
    """run_once in a fresh interpreter: each measurement starts from an empty process (peak RSS, caches)."""
    cmd = [sys.executable, __file__, "--one", "--tenants", str(args.tenants), "--mailboxes", str(args.mailboxes),
           "--google-share", str(share), "--latency", str(args.latency), "--workers", str(args.workers),
           "--wire", args.wire, *(["--threads-only"] if args.threads_only else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"benchmark run failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _compiled() -> None:
    """Byte-compile preflight as an installed copy is (pip writes the .pyc of what it installs): with an
    editable install and PYTHONDONTWRITEBYTECODE set, each run would otherwise compile every module from
    source and count that CPU as the audit's."""
    import compileall

    import preflight
    import preflight_providers

    for package in (preflight, preflight_providers):
        for folder in package.__path__:
            compileall.compile_dir(folder, quiet=1)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _median(runs: list[dict[str, Any]], key: Callable[[dict[str, Any]], float]) -> float:
    return statistics.median(key(r) for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--mailboxes", type=int, default=20)
    parser.add_argument("--google-share", type=float, default=0.5, metavar="FRACTION",
                        help="the share of tenants that are Google Workspaces (0: all Microsoft, 1: all Google)")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=8, help="tenants audited in parallel")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each scenario; medians are printed")
    parser.add_argument("--mixed-only", action="store_true", help="skip the one-provider runs")
    parser.add_argument("--wire", choices=sorted(WIRES), default="plain",
                        help="how the fakes frame replies: plain Content-Length bodies, or as the real services do "
                             "(chunked; Microsoft gzipped too)")
    parser.add_argument("--threads-only", action="store_true",
                        help="audit every tenant on threads in one process (as before worker processes), to compare")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # internal: one run, JSON out
    args = parser.parse_args()
    if not 0.0 <= args.google_share <= 1.0:
        parser.error("--google-share must be between 0 and 1")
    if args.one:
        print(json.dumps(run_once(args)))
        return

    scenarios = {"mixed": args.google_share}
    if not args.mixed_only and 0 < args.google_share < 1:
        scenarios = {"microsoft only": 0.0, "google only": 1.0, **scenarios}
    print(f"{args.tenants} tenants x {args.mailboxes} mailboxes, {args.latency * 1000:.0f} ms per request, "
          f"{args.workers} tenants in parallel, {_cores()} cores, {args.wire} replies; median of {args.repeat} "
          "run(s) each")
    _compiled()
    per_request: dict[str, float] = {}  # provider -> preflight's CPU ms per HTTP request, in its one-provider run
    for label, share in scenarios.items():
        runs = []
        for _ in range(args.repeat):
            load = os.getloadavg()[0]
            runs.append({**_scenario(args, share), "load": load})
        _report(label, runs, args)
        if len(runs[0]["http"]) == 1:
            (name,) = runs[0]["http"]
            per_request[name] = _median(runs, lambda r: r["cpu"] * 1000 / sum(r["http"].values()))
    if per_request:
        print("\npreflight CPU per HTTP request by provider (its one-provider run): "
              + ", ".join(f"{name} {ms:.2f} ms" for name, ms in per_request.items()))


def _report(label: str, runs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    first = runs[0]
    http = _median(runs, lambda r: sum(r["http"].values()))
    wall = _median(runs, lambda r: r["wall"])
    cpu = _median(runs, lambda r: r["cpu"])
    tenants = sum(first["tenants"].values())
    print(f"\n{label}: {first['tenants']['microsoft']} Microsoft + {first['tenants']['google']} Google tenants, "
          f"{first['verdicts']} mailbox x method verdicts, {first['failed']} tenant(s) could not be audited"
          + (f" ({first['first_error']})" if first["first_error"] else ""))
    for name, count in first["tenants"].items():
        if not count:
            continue
        h, reads = first["http"][name], first["reads"][name]
        secs = sorted(s for r in runs for s in r["tenant_seconds"][name])
        print(f"  {name:<10} HTTP requests {h} = {h / (count * args.mailboxes):.2f} per mailbox, {h / count:.0f} per "
              f"tenant (sign-in included; {reads} reads counting each batch's sub-requests); a tenant took "
              f"{statistics.median(secs):.1f} s median, {secs[-1]:.1f} s at most")
    loads = ", ".join(f"{r['load']:.1f}" for r in runs)
    walls = ", ".join(f"{r['wall']:.2f}" for r in runs)
    print(f"  wall time       {wall:.2f} s   (runs: {walls}; 1-minute load average at their start: {loads})")
    system = _median(runs, lambda r: r["system"])
    parent = _median(runs, lambda r: r["parent_cpu"])
    reads = _median(runs, lambda r: sum(r["reads"].values()))
    print(f"  preflight CPU   {cpu:.2f} s = {cpu * 1000 / http:.2f} ms per HTTP request, "
          f"{cpu * 1000 / reads:.2f} ms per read ({system:.2f} s of it in the kernel; {parent:.2f} s in the parent "
          "process: the providers' imports before the fork, each tenant's result received)")
    faults, waits, preempted = (_median(runs, lambda r, k=k: r["kernel"][k]) for k in ("faults", "waits", "preempted"))
    parent_faults = _median(runs, lambda r: r["kernel"]["parent_faults"])
    print(f"  kernel counts   {faults:.0f} page faults ({parent_faults:.0f} in the parent), {waits:.0f} voluntary "
          f"context switches (waits: network, locks, the GIL), {preempted:.0f} involuntary (preempted)")
    fakes = _median(runs, lambda r: sum(r["fakes_cpu"].values()))
    each = ", ".join(f"{name} {statistics.median(r['fakes_cpu'][name] * 1000 / r['http'][name] for r in runs):.2f} ms"
                     for name in first["fakes_cpu"])
    print(f"  fakes' CPU      {fakes:.2f} s = {fakes * 1000 / http:.2f} ms per HTTP request ({each} per request each "
          "answered; the fakes share this machine's cores with preflight)")
    cores = _cores()
    floor = _median(runs, lambda r: (r["cpu"] + sum(r["fakes_cpu"].values())) / cores)
    print(f"  CPU floor       {floor:.2f} s = (preflight CPU + fakes' CPU) / {cores} cores: no wall time below it on "
          f"this machine; the wall time is {wall / floor:.2f}x it")
    busy = _median(runs, lambda r: sum(sum(v) for v in r["tenant_seconds"].values()))
    slots = min(args.workers, tenants)
    print(f"  tenant time     {busy:.1f} s summed over the tenants = {busy / slots:.2f} s for each of the {slots} "
          f"tenants in parallel: the wall time if every slot always had a tenant (they had one "
          f"{busy / slots / wall:.0%} of the wall time)")
    print(f"  speed-up        {http * args.latency / wall:.1f}x over the same {http:.0f} requests one after another "
          f"({http * args.latency:.1f} s)")
    print(f"  peak RSS        {_median(runs, lambda r: r['peak_mb']):.0f} MB (before the audit "
          f"{_median(runs, lambda r: r['before_mb']):.0f} MB); {tenants} tenants")


if __name__ == "__main__":
    main()
