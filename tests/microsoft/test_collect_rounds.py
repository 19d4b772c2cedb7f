"""A tenant's reads go out in as few rounds and requests as their dependencies allow, and collect the same."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from preflight_providers.microsoft.clouds import Cloud
from tests.microsoft.fake import Call, FakeMicrosoft, Reply
from tests.microsoft.test_collect import cloned_mailboxes, differences, run_collect

# The organisation's resources in the order the snapshot held them before the grants were read alongside (the fake
# answers a Graph $batch in reverse order).
ORG_ORDER = ["organizationConfig", "servicePrincipal", "exchangeOnlineServicePrincipal", "authorizationPolicy",
             "namedLocations", "conditionalAccessPolicies", "securityDefaults", "oauth2PermissionGrants",
             "servicePrincipalAppRoles", "transportConfig", "authenticationPolicies", "exchangeServicePrincipals",
             "applicationRoleAssignments", "workloadConditionalAccessWhatIf"]
HELD = 10.0  # seconds a read is held for another to arrive (never reached when they go out together)


def exchange_batches(fake: FakeMicrosoft) -> list[Call]:
    return [c for c in fake.calls("exchange", sub=False) if c.path.endswith("/$batch")]


def test_get_user_fills_the_per_mailbox_cmdlets_batches(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                        tmp_path: Path) -> None:
    expected = cloned_mailboxes(20)
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    assert differences(expected, got) == []
    cmdlets = microsoft_fake.calls("exchange", sub=True)
    assert len(cmdlets) == 5 + 2 + 2 * 20 + 1  # tenant-level, filtered mailbox reads, permissions, Get-User
    # The 5 tenant-level cmdlets in one batch, the other 43 in 5 (not 5 and one for Get-User alone).
    assert len(exchange_batches(microsoft_fake)) == 1 + 5
    assert max(microsoft_fake.exchange_batch_sizes) <= 10


def test_the_app_s_grants_are_read_alongside_the_reads_that_wait_for_the_users(
        microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud, tmp_path: Path) -> None:
    expected = cloned_mailboxes(3)
    held: list[bool] = []
    lock = threading.Lock()

    def hold_the_grants_read(call: Call) -> Reply | None:
        with lock:
            first = call.sub and call.path.endswith("/appRoleAssignments") and not held
            if first:
                held.append(False)
        if first:
            gate = threading.Event()
            for _ in range(int(HELD / 0.01)):
                if microsoft_fake.calls("graph-beta", sub=False) and len(exchange_batches(microsoft_fake)) >= 2:
                    held[0] = True
                    break
                gate.wait(0.01)
        return None

    microsoft_fake.fault = hold_the_grants_read
    got: Any = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    assert held == [True]  # the beta reads and the per-mailbox cmdlets went out while the grants were read
    assert differences(expected, got) == []
    assert list(got["org"]) == ORG_ORDER  # the snapshot's order, as before: the grants after Graph's others

