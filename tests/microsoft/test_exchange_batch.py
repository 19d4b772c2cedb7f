"""Exchange cmdlets in $batch requests of at most 10, against the strict fake: the same snapshot as one
InvokeCommand POST per cmdlet, each sub-response kept with its own cmdlet (matched by id), and a reply that
cannot be matched makes that cmdlet's resource an error, never another cmdlet's data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from preflight.snapshot import error_of
from preflight_providers.microsoft.clouds import Cloud
from tests.microsoft.fake import Call, ExchangeItem, FakeMicrosoft, Reply, exchange_error, throttle
from tests.microsoft.test_collect import cloned_mailboxes, differences, run_collect

pytestmark = pytest.mark.slow

MAILBOXES = 20


def singles(fake: FakeMicrosoft) -> list[Call]:
    """InvokeCommand POSTs sent on their own, not inside a $batch."""
    return [c for c in fake.calls("exchange", sub=False) if c.cmdlet]


def batches(fake: FakeMicrosoft) -> list[Call]:
    return [c for c in fake.calls("exchange", sub=False) if c.path.endswith("/$batch")]


def test_a_tenant_s_cmdlets_go_out_in_batches_of_at_most_ten(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                             tmp_path: Path) -> None:
    expected = cloned_mailboxes(MAILBOXES)
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    assert differences(expected, got) == []
    assert singles(microsoft_fake) == []
    cmdlets = microsoft_fake.calls("exchange", sub=True)
    # 5 tenant-level cmdlets, 2 filtered reads, 2 permission reads per mailbox, 1 filtered Get-User
    assert len(cmdlets) == 5 + 2 + 2 * MAILBOXES + 1
    assert max(microsoft_fake.exchange_batch_sizes) <= 10
    assert sum(microsoft_fake.exchange_batch_sizes) == len(cmdlets)
    assert len(batches(microsoft_fake)) == microsoft_fake.http_requests("exchange") <= 7  # 46 cmdlets


def test_a_refused_batch_endpoint_falls_back_to_one_cmdlet_per_request_for_the_rest_of_the_tenant(
        microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud, tmp_path: Path) -> None:
    expected = cloned_mailboxes(4)
    batched = run_collect(microsoft_fake, microsoft_cloud, tmp_path / "a", expected)
    microsoft_fake.log.clear()
    microsoft_fake.exchange_batch = False  # 404: no such route
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path / "b", expected)
    assert differences(expected, got) == []
    assert {k: v for k, v in got.items() if k != "collected_at"} == \
        {k: v for k, v in batched.items() if k != "collected_at"}
    assert len(batches(microsoft_fake)) == 1  # refused once, then remembered
    assert len(singles(microsoft_fake)) == 5 + 2 + 2 * 4 + 1
    assert microsoft_fake.calls("exchange", sub=True) == []


def test_sub_responses_out_of_order_are_matched_by_id(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                      tmp_path: Path) -> None:
    expected = cloned_mailboxes(6)
    microsoft_fake.exchange_batch_order = "reversed"
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    assert differences(expected, got) == []
    assert singles(microsoft_fake) == []


def test_a_sub_response_error_stays_with_its_own_cmdlet(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                        tmp_path: Path) -> None:
    def refuse(call: Call) -> Reply | None:
        if call.cmdlet == "Get-MailboxPermission" and call.parameters.get("Identity") == "user3@contoso.com":
            return exchange_error(403, "AccessDeniedException", "Access to user3 is denied.")
        return None

    expected = cloned_mailboxes(6)
    microsoft_fake.fault = refuse
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    err = error_of(got["mailboxes"]["user3@contoso.com"]["mailboxPermissions"])
    assert err == {"status": 403, "code": "AccessDeniedException", "message": "Access to user3 is denied."}
    for addr, box in got["mailboxes"].items():
        for name, value in box.items():
            if (addr, name) != ("user3@contoso.com", "mailboxPermissions"):
                assert value == expected["mailboxes"][addr][name], (addr, name)


def test_a_sub_response_s_next_link_is_followed_inside_later_batches(microsoft_fake: FakeMicrosoft,
                                                                     microsoft_cloud: Cloud, tmp_path: Path) -> None:
    expected = cloned_mailboxes(12)
    permission = expected["mailboxes"]["user0@contoso.com"]["mailboxPermissions"][0]
    expected["mailboxes"]["user0@contoso.com"]["mailboxPermissions"] = [dict(permission, User=f"u{i}")
                                                                        for i in range(3)]
    microsoft_fake.exchange_page_size = 5  # 12 mailboxes per filtered read: 3 pages each
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    assert differences(expected, got) == []
    assert singles(microsoft_fake) == []
    pages = [c for c in microsoft_fake.calls("exchange", sub=True) if "$skiptoken" in c.query]
    assert {c.cmdlet for c in pages} == {"Get-Mailbox", "Get-CASMailbox", "Get-User"}
    assert len(pages) == 3 * 2
    assert max(microsoft_fake.exchange_batch_sizes) <= 10


def test_a_throttled_sub_response_is_retried_after_its_retry_after(microsoft_fake: FakeMicrosoft,
                                                                    microsoft_cloud: Cloud, tmp_path: Path) -> None:
    expected = cloned_mailboxes(3)
    microsoft_fake.fault = throttle(lambda c: c.sub and c.cmdlet == "Get-CASMailbox", times=2, retry_after="7")
    sleeps: list[float] = []
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected, sleeps=sleeps)
    assert differences(expected, got) == []
    assert sleeps.count(7.0) == 2
    assert len([c for c in microsoft_fake.calls("exchange", sub=True) if c.cmdlet == "Get-CASMailbox"]) == 3


def test_a_sub_response_throttled_too_long_is_recorded_throttled(microsoft_fake: FakeMicrosoft,
                                                                 microsoft_cloud: Cloud, tmp_path: Path) -> None:
    expected = cloned_mailboxes(3)
    microsoft_fake.fault = throttle(lambda c: c.sub and c.cmdlet == "Get-TransportConfig", times=9,
                                    retry_after="3600")
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected, sleeps=[])
    err = error_of(got["org"]["transportConfig"]) or {}
    assert err.get("status") == 429 and "asked to retry after 3600 s" in str(err.get("message"))
    assert got["org"]["authenticationPolicies"] == expected["org"]["authenticationPolicies"]


def _cmdlet_of(items: list[ExchangeItem], rid: Any) -> str | None:
    return next((str(i.payload["CmdletInput"].get("CmdletName")) for i in items if i.id == rid), None)


def _tamper_transport(change: str) -> Any:
    def tamper(items: list[ExchangeItem], responses: list[dict[str, Any]]) -> list[Any]:
        out: list[Any] = []
        for r in responses:
            if _cmdlet_of(items, r["id"]) != "Get-TransportConfig":
                out.append(r)
            elif change == "duplicate":
                out += [r, {**r, "body": {"value": [{"SmtpClientAuthenticationDisabled": False}]}}]
            elif change == "no-status":
                out.append({k: v for k, v in r.items() if k != "status"})
            elif change == "not-an-object":
                out.append([r])
            elif change == "unknown-id":
                out.append({**r, "id": r["id"].upper()})
        return out

    return tamper


@pytest.mark.parametrize("change", ["missing", "duplicate", "no-status", "not-an-object", "unknown-id"])
def test_a_sub_response_that_cannot_be_matched_fails_closed(change: str, microsoft_fake: FakeMicrosoft,
                                                            microsoft_cloud: Cloud, tmp_path: Path) -> None:
    expected = cloned_mailboxes(3)
    microsoft_fake.exchange_batch_tamper = _tamper_transport(change)
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    err = error_of(got["org"]["transportConfig"]) or {}
    assert err.get("code") == "MalformedResponse", err
    for name in ("organizationConfig", "authenticationPolicies", "exchangeServicePrincipals"):
        assert got["org"][name] == expected["org"][name], name  # its batch neighbours are unaffected
    assert differences(expected, got) == ["org.transportConfig"]


def test_responses_under_positions_instead_of_ids_are_nobody_s_data(microsoft_fake: FakeMicrosoft,
                                                                    microsoft_cloud: Cloud, tmp_path: Path) -> None:
    def by_position(_items: list[ExchangeItem], responses: list[dict[str, Any]]) -> list[Any]:
        return [{**r, "id": str(i + 1)} for i, r in enumerate(responses)]

    expected = cloned_mailboxes(3)
    microsoft_fake.exchange_batch_tamper = by_position
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    for name in ("organizationConfig", "transportConfig", "authenticationPolicies"):
        assert (error_of(got["org"][name]) or {}).get("code") == "MalformedResponse", name
    for box in got["mailboxes"].values():
        for name in ("mailbox", "casMailbox", "exchangeUser", "mailboxPermissions", "recipientPermissions"):
            assert error_of(box[name]) is not None, name


def test_a_failed_cmdlet_does_not_stop_the_rest_of_its_batch(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                             tmp_path: Path) -> None:
    # The fake stops a batch at its first failed request unless it carries Prefer: odata.continue-on-error.
    expected = cloned_mailboxes(6)
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected,
                      tenant_kw={"refused_cmdlets": frozenset({"Get-OrganizationConfig"})})
    assert (error_of(got["org"]["organizationConfig"]) or {}).get("status") == 401
    expected["org"]["organizationConfig"] = got["org"]["organizationConfig"]
    assert differences(expected, got) == []


def test_each_batched_cmdlet_carries_the_bearer_as_peers_send_it(microsoft_fake: FakeMicrosoft,
                                                                  microsoft_cloud: Cloud, tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []

    def keep(items: list[ExchangeItem], responses: list[dict[str, Any]]) -> list[Any]:
        seen.extend(item.headers for item in items)
        return responses

    microsoft_fake.exchange_batch_tamper = keep
    expected = cloned_mailboxes(3)
    assert differences(expected, run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)) == []
    def bearer(headers: dict[str, str]) -> str | None:
        return next((v for k, v in headers.items() if k.lower() == "authorization"), None)

    outer = {bearer(h) for api, h in microsoft_fake.headers_seen
             if api == "exchange" and not any(k.lower() == "x-cmdletname" for k in h)}  # the $batch POSTs
    assert seen and len(outer) == 1 and None not in outer
    assert all(bearer(h) in outer for h in seen)
