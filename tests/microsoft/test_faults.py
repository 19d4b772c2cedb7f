"""An audit under a mix of faults ends with the fault-free findings wherever retries succeeded, and
`unknown` exactly where they ran out: no crash, no hang, exit 3 for a tenant left incomplete."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

from preflight.audit.inventory import Customer, Inventory
from preflight.audit.runner import TenantRun, run_audit
from preflight.causes import load_catalogue
from preflight.exitcodes import Exit, exit_code
from preflight.model import Method, Status
from preflight.providers import Registry
from tests.conftest import NOW
from tests.microsoft.conftest import CLIENT_ID, SECRET, load_fixture, tenant_for
from tests.microsoft.fake import DROP, Call, FakeMicrosoft, Fault, Reply, graph_error

pytestmark = pytest.mark.slow

FIXTURES = ["oauth-app-ready", "security-defaults", "send-as", "several-layers", "shared-mailbox",
            "ca-location-outside", "accounts"]
STARVED = "t0.example"  # every Get-CASMailbox call for this tenant fails: its retries run out


def soon(reply: Reply) -> Reply:
    reply.headers["Retry-After"] = "0"  # honoured by the client; keeps the test fast
    return reply


def mixed_faults(seed: int) -> Fault:
    """20% throttled, 5% server errors, 2% dropped connections, 1% truncated JSON — at most twice in a row
    for the same request, so retries succeed — plus one resource that always fails."""
    seen: dict[str, int] = defaultdict(int)
    lock = threading.Lock()

    def hook(call: Call) -> Reply | None:
        if call.api not in ("graph", "exchange"):
            return None  # sign-in itself is not under test here
        if call.tenant == str(uuid.UUID(int=1)) and call.cmdlet == "Get-CASMailbox":
            return soon(graph_error(503, "ServiceUnavailable", "Service unavailable"))
        key = repr((call.api, call.method, call.path, sorted(call.query.items()), call.tenant, call.cmdlet,
                    sorted((k, repr(v)) for k, v in call.parameters.items()), call.sub))
        with lock:
            attempt = seen[key]
            seen[key] += 1
        if attempt >= 2:
            return None
        roll = random.Random(f"{seed}|{key}|{attempt}").random()
        if roll < 0.20:
            return soon(graph_error(429, "TooManyRequests", "Too many requests"))
        if call.sub:
            return None
        if roll < 0.25:
            return soon(graph_error(503, "ServiceUnavailable", "Service unavailable"))
        if roll < 0.27:
            return DROP
        if roll < 0.28:
            return Reply(200, b'{"value": [{"id": "trunc')
        return None

    return hook


def inventory() -> Inventory:
    customers = []
    for i, name in enumerate(FIXTURES):
        snap = load_fixture(name)
        opts = snap["options"]
        customers.append(Customer(
            key=f"t{i}", name=f"{name} (t{i})", provider="microsoft",
            settings={"tenant": f"t{i}.example", "client_id": CLIENT_ID, "auth": "secret",
                      "client_secret_env": "PF_TEST_SECRET", "cloud": "fake"},
            mailboxes=tuple(snap["mailboxes"]), methods=tuple(Method(m) for m in opts["methods"]),
            sender_ips=tuple(opts["sender_ips"]), from_addresses=dict(opts["from_addresses"]),
            app_id=opts["app_id"]))
    return Inventory(Path("faults.toml"), tuple(customers), workers=4)


def serve_all(fake: FakeMicrosoft) -> None:
    for i, name in enumerate(FIXTURES):
        snap = load_fixture(name)
        snap["tenant"] = {**snap["tenant"], "id": str(uuid.UUID(int=i + 1)), "domain": f"t{i}.example"}
        fake.add_tenant(tenant_for(snap))


def statuses(runs: list[TenantRun]) -> dict[tuple[str, str, str | None, str | None], Status]:
    return {(r.customer.key, f.check, f.subject, f.method.value if f.method else None): f.status
            for r in runs for f in r.result.findings}


def audit(fake: FakeMicrosoft, tmp: Path) -> tuple[list[TenantRun], float]:
    started = time.monotonic()
    runs, interrupted = run_audit(inventory(), Registry.from_entry_points(), load_catalogue(), NOW, tmp)
    assert not interrupted
    return runs, time.monotonic() - started


def test_faults_change_nothing_but_what_could_not_be_read(
    microsoft_fake: FakeMicrosoft, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PF_TEST_SECRET", SECRET)
    serve_all(microsoft_fake)
    clean, _ = audit(microsoft_fake, tmp_path / "clean")
    assert all(not r.result.errors for r in clean), [r.result.errors for r in clean]
    clean_requests = microsoft_fake.http_requests()

    microsoft_fake.fault = mixed_faults(seed=7)
    faulty, seconds = audit(microsoft_fake, tmp_path / "faulty")
    assert seconds < 60  # no hang
    assert all(not r.result.errors for r in faulty), [r.result.errors for r in faulty]
    assert microsoft_fake.http_requests() - clean_requests > 1.2 * clean_requests  # the faults were really there

    before, after = statuses(clean), statuses(faulty)
    assert before.keys() == after.keys()
    changed = {k: (before[k], after[k]) for k in before if before[k] is not after[k]}
    assert changed, "the starved resource must leave something unknown"
    assert all(k[0] == "t0" and new is Status.UNKNOWN for k, (_, new) in changed.items()), changed
    starved = next(r for r in faulty if r.customer.key == "t0")
    unknown = [f for f in starved.result.findings if f.status is Status.UNKNOWN]
    assert any("casMailbox" in f.message and "503" in f.message for f in unknown)
    assert exit_code([starved.result]) is Exit.INCOMPLETE
    assert exit_code([next(r for r in clean if r.customer.key == "t0").result]) is Exit.OK
