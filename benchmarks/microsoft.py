"""Collecting one Microsoft 365 tenant with many mailboxes, against the local fake with injected latency.

Usage: python benchmarks/microsoft.py [--mailboxes 200] [--latency 0.05] [--workers 8]

Every HTTP request to the fake (Entra ID, Graph, Exchange) waits --latency seconds before it is answered,
like a round trip to Microsoft. The real sign-in (msal, client secret) and the real collector run over
TLS. Prints the requests made, requests per mailbox, the wall time, and the time the request count and
the concurrency imply (requests x latency / workers): the collector should stay within 2x of it.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fake lives with the tests

import trustme  # noqa: E402

from preflight.snapshot import parse  # noqa: E402
from preflight_providers.microsoft.auth import AuthMethod, MicrosoftSignIn, SignInSettings  # noqa: E402
from preflight_providers.microsoft.clouds import EXTRA_CLOUDS_ENV, get_cloud  # noqa: E402
from preflight_providers.microsoft.collect import Collector, Target  # noqa: E402
from preflight_providers.microsoft.run import clients  # noqa: E402
from tests.microsoft.fake import App, FakeMicrosoft, FakeTenant  # noqa: E402

CLIENT_ID = "3f6b1c2d-4e5a-4b7c-8d9e-0a1b2c3d4e5f"
SECRET = "benchmark-client-secret-value"


def tenant_snapshot(mailboxes: int) -> dict[str, Any]:
    """The oauth-app-ready fixture with its one mailbox cloned into `mailboxes` distinct ones."""
    fixture = ROOT / "tests/microsoft/fixtures/oauth-app-ready.json"
    template: dict[str, Any] = json.loads(fixture.read_text(encoding="utf-8"))
    box = template["mailboxes"].pop("jobs@contoso.com")
    for i in range(mailboxes):
        addr = f"user{i:04d}@contoso.com"
        clone = copy.deepcopy(box)
        clone["user"].update(id=f"{i:08d}-1111-4111-8111-111111111111", userPrincipalName=addr, mail=addr,
                             proxyAddresses=[f"SMTP:{addr}"])
        for name in ("mailbox", "casMailbox", "exchangeUser"):
            clone[name].update(UserPrincipalName=addr, PrimarySmtpAddress=addr, EmailAddresses=[f"SMTP:{addr}"])
        clone["mailboxSettings"] = {
            "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#users('{addr}')/mailboxSettings",
            "userPurpose": "user",
        }
        template["mailboxes"][addr] = clone
    return template


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mailboxes", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every HTTP request")
    parser.add_argument("--workers", type=int, default=8, help="concurrent requests the collector allows")
    args = parser.parse_args()

    snapshot = tenant_snapshot(args.mailboxes)
    work = Path(tempfile.mkdtemp(prefix="preflight-bench-"))
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(work / "ca.pem"))
    os.environ["REQUESTS_CA_BUNDLE"] = str(work / "ca.pem")
    fake = FakeMicrosoft(tls=ca, latency=args.latency).start()
    try:
        os.environ[EXTRA_CLOUDS_ENV] = str(fake.cloud_file(work / "clouds.toml"))
        tenant = FakeTenant(id=snapshot["tenant"]["id"], domains=("contoso.com",), snapshot=snapshot,
                            apps={CLIENT_ID: App(CLIENT_ID, secret=SECRET)})
        fake.add_tenant(tenant)
        settings = SignInSettings("contoso.com", CLIENT_ID, get_cloud("fake"), AuthMethod.SECRET,
                                  client_secret_env="BENCH_SECRET", cache_dir=work / "cache")
        signin = MicrosoftSignIn(settings, environ={"BENCH_SECRET": SECRET}, persistence=None, out=lambda _m: None)

        started = time.perf_counter()
        signin.sign_in()
        graph, exchange, refusal = clients(signin)
        signed_in = time.perf_counter() - started
        before = len(fake.calls())

        target = Target("contoso.com", "fake", tuple(snapshot["mailboxes"]), parse(snapshot).options, tenant.id,
                        mailbox_settings=True)
        collector = Collector(graph, exchange, exchange_refusal=refusal, workers=args.workers)
        started = time.perf_counter()
        collected = collector.collect(target)
        wall = time.perf_counter() - started
    finally:
        fake.stop()

    calls = fake.calls()[before:]
    graph_http = sum(1 for c in calls if c.api == "graph" and not c.sub)
    graph_sub = sum(1 for c in calls if c.api == "graph" and c.sub)
    exchange_http = sum(1 for c in calls if c.api == "exchange")
    requests = graph_http + exchange_http
    implied = requests * args.latency / args.workers
    same = all(collected["mailboxes"][a] == snapshot["mailboxes"][a] for a in snapshot["mailboxes"])

    print(f"mailboxes                 {args.mailboxes}")
    print(f"latency per request       {args.latency * 1000:.0f} ms, concurrency {args.workers}")
    print(f"sign-in (msal, 2 tokens)  {signed_in:.2f} s")
    print(f"HTTP requests             {requests}  (Graph {graph_http} carrying {graph_sub} batched reads, "
          f"Exchange {exchange_http})")
    print(f"requests per mailbox      {requests / args.mailboxes:.2f}  (aim: <= 3)")
    print(f"wall time                 {wall:.2f} s")
    print(f"implied by count/conc.    {implied:.2f} s  = {requests} x {args.latency:.3f} s / {args.workers}")
    print(f"wall / implied            {wall / implied:.2f}  (aim: <= 2)")
    print(f"snapshot matches served   {'yes' if same else 'NO'}")
    print("Per mailbox: 2 Exchange permission cmdlets (one -Identity each); Get-Mailbox, Get-CASMailbox and "
          "Get-User 20 mailboxes per -Filter; Graph user, transitiveMemberOf and mailboxSettings 20 per $batch.")


if __name__ == "__main__":
    main()
