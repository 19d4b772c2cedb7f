"""A consultant's audit of many tenants, against the local Microsoft fake with injected latency.

Usage: python benchmarks/audit.py [--tenants 50] [--mailboxes 20] [--latency 0.05] [--workers 8]

The fake (Entra ID token endpoint, Graph, Exchange admin REST) runs in a child process so the memory
measured is preflight's own. Each tenant signs in for real (msal, client secret, its own token cache) and
is collected and evaluated by `preflight audit`'s runner. Prints tenants, mailboxes, requests, wall time,
peak memory, and the speed-up over making the same requests one after another (requests x latency / wall).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIENT_ID = "3f6b1c2d-4e5a-4b7c-8d9e-0a1b2c3d4e5f"
SECRET = "benchmark-client-secret-value"


def serve(conn: Any, work: str, tenants: int, mailboxes: int, latency: float) -> None:
    """Child process: the fake with one tenant per customer; reports its address, then its request count."""
    import trustme

    from benchmarks.microsoft import tenant_snapshot
    from tests.microsoft.fake import App, FakeMicrosoft, FakeTenant

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(Path(work) / "ca.pem"))
    fake = FakeMicrosoft(tls=ca, latency=latency).start()
    fake.cloud_file(Path(work) / "clouds.toml")
    template = tenant_snapshot(mailboxes)
    for i in range(tenants):
        fake.add_tenant(FakeTenant(id=str(uuid.UUID(int=i + 1)), domains=(f"t{i:03d}.example",), snapshot=template,
                                   apps={CLIENT_ID: App(CLIENT_ID, secret=SECRET)}))
    conn.send(sorted(template["mailboxes"]))
    conn.recv()  # the audit is over
    conn.send(len(fake.calls()))
    fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--mailboxes", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=8, help="tenants audited in parallel")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="preflight-audit-bench-")
    parent, child = mp.Pipe()
    proc = mp.get_context("fork").Process(target=serve, args=(child, work, args.tenants, args.mailboxes,
                                                                args.latency))
    proc.start()
    addresses = parent.recv()
    os.environ.update(REQUESTS_CA_BUNDLE=f"{work}/ca.pem", PREFLIGHT_MICROSOFT_CLOUDS=f"{work}/clouds.toml",
                      BENCH_SECRET=SECRET)

    from preflight.audit.inventory import Customer, Inventory
    from preflight.audit.output import write_tenant
    from preflight.audit.runner import run_audit
    from preflight.causes import load_catalogue
    from preflight.model import Method
    from preflight.providers import Registry

    customers = tuple(
        Customer(key=f"t{i:03d}", name=f"Tenant {i:03d}", provider="microsoft",
                 settings={"tenant": f"t{i:03d}.example", "client_id": CLIENT_ID, "auth": "secret",
                           "client_secret_env": "BENCH_SECRET", "cloud": "fake"},
                 mailboxes=tuple(addresses), methods=(Method.BASIC, Method.OAUTH_APP),
                 app_id="9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d")
        for i in range(args.tenants)
    )
    inventory = Inventory(Path("benchmark"), customers, args.workers)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    now = datetime.now(UTC)
    out = Path(work) / "out"
    # As `preflight audit` does: each tenant's snapshot and report go to disk as it finishes.
    runs, _ = run_audit(inventory, Registry.from_entry_points(), load_catalogue(), now, Path(work) / "cache",
                        on_done=lambda run: write_tenant(run, out, now), keep_snapshots=False)
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    parent.send("done")
    requests = parent.recv()
    proc.join()

    failed = [r for r in runs if r.result.errors]
    verdicts = sum(len(r.result.mailboxes) for r in runs)
    print(f"tenants                 {args.tenants} ({len(failed)} could not be audited"
          + (f": {failed[0].result.errors[0]}" if failed else "") + ")")
    print(f"mailboxes               {args.tenants * args.mailboxes} ({verdicts} mailbox x method verdicts)")
    print(f"latency per request     {args.latency * 1000:.0f} ms; tenants in parallel {args.workers}")
    print(f"HTTP requests           {requests} (sign-in included), {requests / (args.tenants * args.mailboxes):.2f}"
          " per mailbox")
    print(f"wall time               {wall:.1f} s  (aim: < 20 s for 50 x 20)")
    print(f"sequential would take   {requests * args.latency:.1f} s  -> speed-up {requests * args.latency / wall:.1f}x")
    print(f"peak memory (RSS)       {peak_mb:.0f} MB (before the audit: {rss_before / 1024:.0f} MB; aim < 300 MB)")
    held = sum(len(json.dumps(r.result.to_dict())) for r in runs) / 1e6
    print(f"results held            {held:.1f} MB as JSON ({held * 1000 / args.tenants:.0f} kB per tenant); "
          f"RSS growth per tenant {(peak_mb * 1024 - rss_before) / args.tenants:.0f} kB")


if __name__ == "__main__":
    main()
