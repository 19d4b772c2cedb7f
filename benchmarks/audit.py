"""A consultant's audit of many tenants, Microsoft 365 and Google Workspace mixed, against the local fakes.

Usage: python benchmarks/audit.py [--tenants 50] [--mailboxes 20] [--google-share 0.5] [--latency 0.05]
                                  [--workers 8]

Each fake runs in its own child process, so the memory measured is preflight's own: the Microsoft one (Entra ID
token endpoint, Graph, Exchange admin REST) and the Google one (token endpoint, Directory, Policy and Licensing
APIs). Both add --latency to every request. Each Microsoft tenant signs in for real (msal, client secret, its own
token cache); each Google Workspace for real too (google-auth, one service-account key with domain-wide delegation
granted in every Workspace, impersonating that Workspace's admin). All are collected and evaluated by
`preflight audit`'s runner, in one inventory, the two providers interleaved. Prints tenants, mailboxes, requests
(in all and per provider), wall time, peak memory, and the speed-up over making the same requests one after
another (requests x latency / wall).
"""

from __future__ import annotations

import argparse
import copy
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
GOOGLE_CLIENT_ID = "104857600000000000001"  # the service account's client id (FakeGoogle.key_file's default)
GOOGLE_FIXTURE = ROOT / "tests/google/fixtures/gmail_group_override.json"
GOOGLE_DOMAIN, GOOGLE_CUSTOMER = "tailspin.example", "C01b2c3d4"  # as written in the fixture


def serve_microsoft(conn: Any, work: str, tenants: int, mailboxes: int, latency: float) -> None:
    """Child process: the Microsoft fake with one tenant per customer; reports its mailboxes, then its request count."""
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


def serve_google(conn: Any, work: str, workspaces: int, mailboxes: int, latency: float) -> None:
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
    with fake:
        key = fake.key_file(Path(work), client_id=GOOGLE_CLIENT_ID)
        boxes = sorted(json.loads(template)["mailboxes"])
        conn.send((fake.url, str(key), str(fake.ca_file), [b.split("@")[0] for b in boxes]))
        conn.recv()  # the audit is over
        conn.send(len(fake.log))


def is_google(i: int, share: float) -> bool:
    """Spread the Google Workspaces evenly through the inventory: customer i is one when the count steps up."""
    return int((i + 1) * share) > int(i * share)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--mailboxes", type=int, default=20)
    parser.add_argument("--google-share", type=float, default=0.5, metavar="FRACTION",
                        help="the share of tenants that are Google Workspaces (0: all Microsoft, 1: all Google)")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=8, help="tenants audited in parallel")
    args = parser.parse_args()
    if not 0.0 <= args.google_share <= 1.0:
        parser.error("--google-share must be between 0 and 1")

    kinds = ["google" if is_google(i, args.google_share) else "microsoft" for i in range(args.tenants)]
    n_google, n_microsoft = kinds.count("google"), kinds.count("microsoft")
    work = tempfile.mkdtemp(prefix="preflight-audit-bench-")
    fork = mp.get_context("fork")
    children: dict[str, tuple[Any, Any]] = {}  # provider -> (pipe end, process)
    for name, target, count in (("microsoft", serve_microsoft, n_microsoft), ("google", serve_google, n_google)):
        if count:
            parent, child = mp.Pipe()
            proc = fork.Process(target=target, args=(child, work, count, args.mailboxes, args.latency))
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
    from preflight.audit.output import write_tenant
    from preflight.audit.runner import TenantRun, run_audit
    from preflight.causes import load_catalogue
    from preflight.model import Method
    from preflight.providers import Registry

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
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    now = datetime.now(UTC)
    out = Path(work) / "out"

    def done(run: TenantRun) -> None:  # as `preflight audit` does: each tenant's files go to disk as it finishes
        write_tenant(run, out, now)

    runs, _ = run_audit(inventory, Registry.from_entry_points(), load_catalogue(), now, Path(work) / "cache",
                        on_done=done, keep_snapshots=False)
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    per_provider: dict[str, int] = {}
    for name, (parent, proc) in children.items():
        parent.send("done")
        per_provider[name] = parent.recv()
        proc.join()
    requests = sum(per_provider.values())

    failed = [r for r in runs if r.result.errors]
    verdicts = sum(len(r.result.mailboxes) for r in runs)
    print(f"tenants                 {args.tenants}: {n_microsoft} Microsoft, {n_google} Google "
          f"({len(failed)} could not be audited" + (f": {failed[0].result.errors[0]}" if failed else "") + ")")
    print(f"mailboxes               {args.tenants * args.mailboxes} ({verdicts} mailbox x method verdicts)")
    print(f"latency per request     {args.latency * 1000:.0f} ms; tenants in parallel {args.workers}")
    print(f"HTTP requests           {requests} (sign-in included), {requests / (args.tenants * args.mailboxes):.2f}"
          " per mailbox")
    for name, count in (("microsoft", n_microsoft), ("google", n_google)):
        if not count:
            continue
        secs = sorted(r.seconds for r in runs if r.customer.provider == name)
        print(f"  {name:<21} {per_provider[name]} ({per_provider[name] / (count * args.mailboxes):.2f} per mailbox, "
              f"{per_provider[name] / count:.0f} per tenant); a tenant took {sum(secs) / len(secs):.1f} s on "
              f"average, {secs[-1]:.1f} s at most")
    print(f"wall time               {wall:.1f} s  (aim: < 20 s for 50 x 20)")
    print(f"sequential would take   {requests * args.latency:.1f} s  -> speed-up {requests * args.latency / wall:.1f}x")
    print(f"peak memory (RSS)       {peak_mb:.0f} MB (before the audit: {rss_before / 1024:.0f} MB; aim < 300 MB)")
    held = sum(len(json.dumps(r.result.to_dict())) for r in runs) / 1e6
    print(f"results held            {held:.1f} MB as JSON ({held * 1000 / args.tenants:.0f} kB per tenant); "
          f"RSS growth per tenant {(peak_mb * 1024 - rss_before) / args.tenants:.0f} kB")


if __name__ == "__main__":
    main()
