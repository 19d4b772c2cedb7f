"""CPU per request of preflight.http: Http.get and follow_pages against a local HTTPS keep-alive server.

Usage (from the repository root):
    python -m benchmarks.http_cpu [--requests 2000] [--repeat 5] [--secrets 25] [--latency 0.05] [--threads 8]
                                  [--profile [user|member|graph]]

The server runs in a process of its own, so the CPU counted (this process's, all its threads: the caller's and
the alarm thread) is the client's alone. Replies are JSON of the sizes collectors read: a Google user (about
2 KB), a hasMember answer, pages of a Google groups listing (pageToken) and a 100-user Graph page (about 40 KB).
The client's registry holds `--secrets` known secrets (a Google tenant learns a token per mailbox owner), whose
forms every reply body is masked with. Prints the CPU per request in milliseconds for each kind, and the load;
and the context switches per request, voluntary (a thread waited: for its reply, or with --threads for the
interpreter lock another thread held) + involuntary.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import ssl
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

USER = {
    "kind": "admin#directory#user", "id": "107391540918412345678", "etag": '"abcDEF123"',
    "primaryEmail": "jobs@example.com",
    "name": {"givenName": "Jobs", "familyName": "Mailer", "fullName": "Jobs Mailer"},
    "isAdmin": False, "isDelegatedAdmin": False, "lastLoginTime": "2026-11-30T08:12:44.000Z",
    "creationTime": "2021-03-02T10:00:00.000Z", "agreedToTerms": True, "suspended": False, "archived": False,
    "changePasswordAtNextLogin": False, "ipWhitelisted": False,
    "emails": [{"address": "jobs@example.com", "primary": True}, {"address": "jobs@example.net"}],
    "languages": [{"languageCode": "en", "preference": "preferred"}], "nonEditableAliases": ["jobs@example.net"],
    "customerId": "C01abcdef", "orgUnitPath": "/Service accounts", "isMailboxSetup": True,
    "isEnrolledIn2Sv": True, "isEnforcedIn2Sv": False, "includeInGlobalAddressList": True,
    "thumbnailPhotoUrl": "https://lh3.googleusercontent.com/a-/AOh14Gj0abcdefghijklmnopqrstuvwxyz0123456789",
    "recoveryEmail": "ops@example.org", "recoveryPhone": "+15555550100",
}
GROUP = {"kind": "admin#directory#group", "id": "03x8tuzt1abcdef", "etag": '"etag-value-1234567890"',
         "email": "team@example.com", "name": "Team", "directMembersCount": "12",
         "description": "A team of people who send mail", "adminCreated": True,
         "nonEditableAliases": ["team@example.com.test-google-a.com"]}
GRAPH_USER = {"id": "3b9f7c1e-1111-4a2b-9c3d-5e6f7a8b9c0d", "displayName": "Jobs Mailer",
              "userPrincipalName": "jobs@contoso.onmicrosoft.com", "mail": "jobs@contoso.com",
              "accountEnabled": True, "userType": "Member", "proxyAddresses": ["SMTP:jobs@contoso.com"],
              "assignedLicenses": [{"disabledPlans": [], "skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df"}]}
PAGES = 3


def _replies() -> dict[str, Callable[[dict[str, list[str]]], bytes]]:
    def groups(query: dict[str, list[str]]) -> bytes:
        page = int((query.get("pageToken") or ["0"])[0])
        body: dict[str, Any] = {"kind": "admin#directory#groups", "etag": '"e"', "groups": [GROUP] * 5}
        if page + 1 < PAGES:
            body["nextPageToken"] = str(page + 1)
        return json.dumps(body).encode()

    user = json.dumps(USER).encode()
    member = json.dumps({"isMember": True}).encode()
    graph = json.dumps({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
                        "value": [GRAPH_USER] * 100}).encode()
    return {"/user": lambda _q: user, "/member": lambda _q: member, "/groups": groups, "/graph": lambda _q: graph}


def serve(cert: bytes, key: bytes, port: Any, latency: float) -> None:
    replies = _replies()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes: no delayed-ACK stall between them

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            body = replies[parts.path](parse_qs(parts.query))
            if latency:
                time.sleep(latency)
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

    httpd = Server(("127.0.0.1", 0), Handler)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "cert.pem").write_bytes(cert + key)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(Path(tmp) / "cert.pem"))
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    port.value = httpd.server_address[1]
    httpd.serve_forever()


def _calls(call: Callable[[], Any], count: int, took: list[float]) -> None:
    """`count` calls; the CPU time of the thread making them added to `took`."""
    begun = time.thread_time()
    for _ in range(count):
        call()
    took.append(time.thread_time() - begun)


def measure(label: str, count: int, call: Callable[[], Any], per: int = 1, repeat: int = 1, threads: int = 1
            ) -> float:
    """The median over `repeat` runs of CPU per request (and its least: the steadiest figure on a busy machine),
    and the process's context switches per request (voluntary: its threads waited, for a reply or for the
    interpreter lock). With `threads`, that many threads make `count` calls each at once, as an audit's tenants
    and reading threads do; "in the calling thread" is then the calling thread's CPU per request it made."""
    call()  # a connection made and kept, first-use caches filled
    runs = []
    for _ in range(repeat):
        usage, started, wall = resource.getrusage(resource.RUSAGE_SELF), time.process_time(), time.perf_counter()
        mine: list[float] = []
        others = [threading.Thread(target=_calls, args=(call, count, [])) for _ in range(threads - 1)]
        for other in others:
            other.start()
        _calls(call, count, mine)
        for other in others:
            other.join()
        done, calls = resource.getrusage(resource.RUSAGE_SELF), count * per * threads
        runs.append(((time.process_time() - started) / calls * 1000, mine[0] / (count * per) * 1000,
                     (time.perf_counter() - wall) / (count * per) * 1000, (done.ru_nvcsw - usage.ru_nvcsw) / calls,
                     (done.ru_nivcsw - usage.ru_nivcsw) / calls))
    ms, caller, took, waits, preempted = (statistics.median(r[i] for r in runs) for i in range(5))
    print(f"{label:44} {ms:7.3f} ms CPU per request (least {min(r[0] for r in runs):.3f}; {caller:.3f} in the "
          f"calling thread; {took:.3f} ms wall; {waits:.1f} + {preempted:.1f} context switches)")
    return ms


def main() -> None:
    import trustme

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per kind")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each kind; medians are printed")
    parser.add_argument("--secrets", type=int, default=25, help="known secrets in the client's registry")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds the server waits before each reply")
    parser.add_argument("--threads", type=int, default=1, help="threads making requests at once (each --requests)")
    parser.add_argument("--profile", nargs="?", const="user", choices=["user", "member", "graph"],
                        help="cProfile the gets of one kind (default: user), top functions")
    args = parser.parse_args()

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    port = mp.get_context("fork").Value("i", 0)
    pems = (cert.cert_chain_pems[0].bytes(), cert.private_key_pem.bytes())
    server = mp.get_context("fork").Process(target=serve, args=(*pems, port, args.latency), daemon=True)
    server.start()
    while not port.value:
        time.sleep(0.01)

    from preflight.http import Http, follow_pages
    from preflight.runsecrets import RunSecrets

    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        secrets = RunSecrets()
        secrets.add("client-secret~value.1234567890", *(f"ya29.a0Af{i:04d}" + "x" * 180 for i in range(args.secrets)))
        http = Http(auth=lambda: {"Authorization": "Bearer ya29.a0Af0000" + "x" * 180}, verify=str(bundle),
                    secrets=secrets)
        base = f"https://127.0.0.1:{port.value}"
        n = args.requests

        def user() -> Any:
            return http.get(f"{base}/user", params={"projection": "full"})

        print(f"{n} requests per kind x {args.repeat}, {args.threads} thread(s), {len(secrets)} known secrets, "
              f"load {os.getloadavg()[0]:.2f}")
        r, t = args.repeat, args.threads
        measure("Http.get, a Google user (2 KB)", n, user, repeat=r, threads=t)
        measure("Http.get, hasMember (20 B)", n, lambda: http.get(f"{base}/member"), repeat=r, threads=t)
        measure(f"follow_pages, {PAGES} pages of groups (per page)", n // PAGES,
                lambda: follow_pages(http, f"{base}/groups", params={"userKey": "jobs@example.com", "maxResults": 200},
                                     items_key="groups", next_params=lambda b: {"pageToken": p} if (
                                         p := b.get("nextPageToken")) else None), per=PAGES, repeat=r, threads=t)
        measure("Http.get, a Graph page of 100 users (40 KB)", max(1, n // 10), lambda: http.get(f"{base}/graph"),
                repeat=r, threads=t)
        if args.profile:
            import cProfile
            import pstats

            kinds = {"user": user, "member": lambda: http.get(f"{base}/member"),
                     "graph": lambda: http.get(f"{base}/graph")}
            profile = cProfile.Profile(time.thread_time)  # the calling thread's CPU
            profile.runcall(lambda: [kinds[args.profile]() for _ in range(n)])
            pstats.Stats(profile).sort_stats("tottime").print_stats(40)
    server.terminate()


if __name__ == "__main__":
    main()
