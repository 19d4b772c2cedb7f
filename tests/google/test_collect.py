"""The Google collector against the local fake, signed in by the real google-auth service-account code."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from preflight.errors import InputError, SignInError
from preflight.memo import RunMemo
from preflight.pipeline import unreachable
from preflight.snapshot import Options, error_of, parse
from preflight_providers.google import provider, settings
from preflight_providers.google.api import GoogleApi
from preflight_providers.google.auth import ServiceAccountSigner, load_key_file
from preflight_providers.google.collect import Target, _Work, admin_scope_keys, collect
from tests.google.fake import AUTH, FakeGoogle, Reply, Seen, Workspace, google_error, sample_snapshot, secrets_of
from tests.leaks import assert_no_leak

pytestmark = pytest.mark.slow

ADMIN = "admin@acme.example"
ALL = [s.url for s in settings.scopes() if "service-account" in s.auth]
BOXES = ("jobs@acme.example", "careers@acme.example", "team@acme.example", "ops@acme.example",
         "nobody@acme.example")


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeGoogle, Workspace, Path]]:
    ws = Workspace.from_snapshot(sample_snapshot())
    ws.add_admin(ADMIN)
    with FakeGoogle([ws], tmp_path) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_file))
        key = fake.key_file(tmp_path)
        ws.grant("104857600000000000001", ALL)
        yield fake, ws, key


def api_for(fake: FakeGoogle, key: Path, sleeps: list[float], admin: str = ADMIN, memo: RunMemo | None = None,
            **cfg: Any) -> GoogleApi:
    config = replace(settings.api(), endpoints=settings.api().endpoints.rooted_at(fake.url), **cfg)
    return GoogleApi(ServiceAccountSigner(load_key_file(key), admin, memo=memo), config=config, sleep=sleeps.append,
                     memo=memo)


def target(**over: Any) -> Target:
    base = Target(BOXES, "acme.example", None, True, True, True, Options())
    return replace(base, **over)


def test_collects_every_resource_verbatim(world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, _, key = world
    sleeps: list[float] = []
    # Small pages so groups.list and policies.list are followed across several pages.
    api = api_for(fake, key, sleeps, groups_page_size=2, policy_page_size=4, policy_page_interval=1.0)
    result = collect(api, target())
    expected = sample_snapshot()
    org = dict(result.snapshot["org"])
    by_name = sorted(org.pop("policies"), key=lambda p: p["name"])
    assert by_name == sorted(expected["org"]["policies"], key=lambda p: p["name"])  # listed per application
    assert org == {k: v for k, v in expected["org"].items() if k != "policies"}
    assert result.snapshot["mailboxes"] == expected["mailboxes"]
    assert result.snapshot["tenant"] == {"id": "C03az79cb", "domain": "acme.example"}
    # policies: one listing whose filter ORs the per-application clauses of api.toml, followed across pages of 4
    pages = fake.seen("/v1/policies")
    assert all(p.param("pageSize") == "4" for p in pages)
    assert {p.param("filter") for p in pages} == {" || ".join(settings.api().policy_filters)}
    assert len(pages) == 3 and len({p.param("pageToken") for p in pages}) == 3 and not pages[0].param("pageToken")
    # groups: 5 per member, maxResults 2 -> 3 pages each
    group_pages = [s for s in fake.seen("/admin/directory/v1/groups") if s.param("userKey")]
    assert {s.param("maxResults") for s in group_pages} == {"2"}
    # Pages of the Policy API are spaced: the first started at once, the second and third waited (recorded, not
    # slept).
    assert len([s for s in sleeps if s > 0.5]) == 2


def test_policies_are_listed_per_application_when_google_refuses_a_combined_filter(
        world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, _, key = world
    fake.one_policy_type_clause = True  # as the older policies.list text: one setting.type clause, && only
    sleeps: list[float] = []
    snap = collect(api_for(fake, key, sleeps), target(mailboxes=("jobs@acme.example",))).snapshot
    assert sorted(snap["org"]["policies"], key=lambda p: p["name"]) == sorted(
        sample_snapshot()["org"]["policies"], key=lambda p: p["name"])
    filters = list(settings.api().policy_filters)
    assert [p.param("filter") for p in fake.seen("/v1/policies")] == [" || ".join(filters), *filters]
    assert len([s for s in sleeps if s > 0.5]) == 3  # every request after the refused one kept the pace


def test_a_refused_combined_filter_is_remembered_for_the_run(world: tuple[FakeGoogle, Workspace, Path]) -> None:
    """Google's grammar is the same for every Workspace: once it refused the combined filter, the run's next
    Workspaces list per clause at once, with the same policies; another run asks again."""
    fake, _, key = world
    fake.one_policy_type_clause = True
    filters = list(settings.api().policy_filters)
    expected = sorted(sample_snapshot()["org"]["policies"], key=lambda p: p["name"])
    memo = RunMemo()
    for _ in range(2):
        snap = collect(api_for(fake, key, [], memo=memo), target(mailboxes=("jobs@acme.example",))).snapshot
        assert sorted(snap["org"]["policies"], key=lambda p: p["name"]) == expected
    assert [p.param("filter") for p in fake.seen("/v1/policies")] == [" || ".join(filters), *filters, *filters]
    collect(api_for(fake, key, [], memo=RunMemo()), target(mailboxes=("jobs@acme.example",)))
    assert [p.param("filter") for p in fake.seen("/v1/policies")][2 * len(filters) + 1:] == [
        " || ".join(filters), *filters]


def test_an_accepted_combined_filter_stays_one_listing_for_every_workspace(
        world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, _, key = world
    memo = RunMemo()
    for _ in range(2):
        collect(api_for(fake, key, [], memo=memo), target(mailboxes=("jobs@acme.example",)))
    assert [p.param("filter") for p in fake.seen("/v1/policies")] == [" || ".join(settings.api().policy_filters)] * 2


def test_a_key_is_parsed_once_per_run_and_kept_in_memory_only(world: tuple[FakeGoogle, Workspace, Path],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives import serialization

    fake, _, key = world
    parsed: list[bytes] = []
    real = serialization.load_pem_private_key

    def counted(data: bytes, *args: Any, **kwargs: Any) -> Any:
        parsed.append(data)
        return real(data, *args, **kwargs)

    monkeypatch.setattr(serialization, "load_pem_private_key", counted)
    memo = RunMemo()
    first = ServiceAccountSigner(load_key_file(key), ADMIN, memo=memo)
    second = ServiceAccountSigner(load_key_file(key), "other@acme.example", memo=memo)
    assert len(parsed) == 1
    # Each signer still impersonates its own admin: the parsed key is shared, its tokens are not.
    assert first.bearer(ALL[0]) and first.principal == ADMIN and second.principal == "other@acme.example"
    ServiceAccountSigner(load_key_file(key), ADMIN, memo=RunMemo())  # another run parses it again
    assert len(parsed) == 2
    assert_no_leak(repr(memo) + repr(first), secrets_of(fake, [key]))


def test_a_policy_listing_that_fails_after_the_fallback_leaves_the_policies_unread(
        world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, _, key = world
    fake.one_policy_type_clause = True
    gmail = settings.api().policy_filters[-1]
    fake.fault = lambda s: Reply(403, google_error(403, "The caller does not have permission", "forbidden")) \
        if s.path == "/v1/policies" and s.param("filter") == gmail else None
    snap = collect(api_for(fake, key, []), target(mailboxes=("jobs@acme.example",))).snapshot
    # Not the security and API-controls policies alone: checks must not read a partial listing as complete.
    assert snap["org"]["policies"] == {"error": {"status": 403, "code": "PERMISSION_DENIED",
                                                 "message": "The caller does not have permission"}}


def test_reads_as_admin_and_gmail_as_each_owner(world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, _, key = world
    collect(api_for(fake, key, []), target())
    directory = fake.seen("/admin/directory/v1/")
    assert directory and {s.subject for s in directory} == {ADMIN}
    assert {s.subject for s in fake.seen("/v1/policies")} == {ADMIN}
    gmail = fake.seen("/gmail/v1/users/")
    # careers@ is an alias of jobs@: its send-as list is read as the owner, once per mailbox entry.
    assert sorted(s.path.split("/")[4] for s in gmail) == ["jobs@acme.example", "jobs@acme.example",
                                                           "ops@acme.example"]
    assert all(s.subject == s.path.split("/")[4] for s in gmail)
    assert all(s.scopes == {AUTH + "gmail.readonly"} for s in gmail)
    # One token for the admin, carrying the admin scopes this run reads (and no more); Gmail's per owner.
    admin_scopes = {settings.scope(k).url for k in admin_scope_keys(target())}
    assert all(s.scopes == admin_scopes for s in fake.log if s.subject == ADMIN)
    assert len(fake.seen("/token")) == 1 + 2  # the admin's, then jobs@'s and ops@'s Gmail tokens
    # users.get with projection=full, orgunits with the root included (policies can target it).
    user_gets = [s for s in fake.seen("/admin/directory/v1/users/") if not s.path.endswith(("/tokens", "/asps"))]
    assert {s.param("projection") for s in user_gets} == {"full"}
    assert fake.seen("/admin/directory/v1/customer/my_customer/orgunits")[0].param("type") == "allIncludingParent"


def test_group_lookup_only_after_user_404(world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, ws, key = world
    ws.errors[("user", "ops@acme.example")] = {"status": 403, "code": "forbidden", "message": "Not Authorized"}
    snap = collect(api_for(fake, key, []), target()).snapshot
    assert snap["mailboxes"]["ops@acme.example"] == {
        "user": {"error": {"status": 403, "code": "forbidden", "message": "Not Authorized"}}}
    looked_up = sorted(s.path.rsplit("/", 1)[1] for s in fake.seen("/admin/directory/v1/groups/"))
    assert looked_up == ["nobody@acme.example", "team@acme.example"]
    assert snap["mailboxes"]["nobody@acme.example"]["group"]["error"]["status"] == 404


def test_only_documented_policy_filters_are_sent_and_the_fake_refuses_others(
        world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, _, key = world
    # A regex alternation inside one matches() is not a documented form: the fake refuses it, so a collector that
    # sent it would lose every policy check.
    alternation = "setting.type.matches('^settings/(security|api_controls|gmail)\\\\..*$')"
    snap = collect(api_for(fake, key, [], policy_filters=(alternation,)), target()).snapshot
    assert snap["org"]["policies"]["error"] == {"status": 400, "code": "INVALID_ARGUMENT",
                                                "message": "Request contains an invalid argument."}
    assert len(fake.seen("/v1/policies")) == 1  # one clause: nothing to fall back to
    snap = collect(api_for(fake, key, []), target()).snapshot
    assert isinstance(snap["org"]["policies"], list) and snap["org"]["policies"]
    assert [s.param("filter") for s in fake.seen("/v1/policies")][1:] == [" || ".join(settings.api().policy_filters)]


def test_policy_api_forbidden_for_a_delegated_admin(world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, ws, key = world
    ws.add_admin("helpdesk@acme.example", super_admin=False)
    snap = collect(api_for(fake, key, [], admin="helpdesk@acme.example"), target()).snapshot
    assert snap["org"]["policies"] == {"error": {"status": 403, "code": "PERMISSION_DENIED",
                                                 "message": "The caller does not have permission"}}
    assert snap["mailboxes"]["jobs@acme.example"]["user"]["primaryEmail"] == "jobs@acme.example"


def test_policy_429_is_retried_with_backoff_honouring_retry_after(world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, _, key = world
    calls = {"n": 0}

    def quota(seen: Any) -> Reply | None:
        if seen.path != "/v1/policies":
            return None
        calls["n"] += 1
        if calls["n"] == 1:
            return Reply(429, google_error(429, "Quota exceeded for quota metric 'Read requests' and limit 'Read "
                                                "requests per minute' of service 'cloudidentity.googleapis.com'.",
                                           "rateLimitExceeded"), {"Retry-After": "7"})
        if calls["n"] == 2:
            return Reply(429, google_error(429, "Too many requests", "rateLimitExceeded"))
        return None

    fake.fault = quota
    sleeps: list[float] = []
    snap = collect(api_for(fake, key, sleeps), target(mailboxes=("jobs@acme.example",))).snapshot
    assert len(snap["org"]["policies"]) == 11
    # The per-minute read quota waits 30 s as ScubaGoggles does (a Retry-After of 7 would only hit it again),
    # then a plain 429 backs off exponentially (0.5 * 2**1).
    assert 30.0 in sleeps and 1.0 in sleeps and 7.0 not in sleeps


def test_a_403_rate_limit_reason_is_retried_and_a_plain_403_is_not(world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, _, key = world
    calls = {"n": 0}

    def limited(seen: Any) -> Reply | None:
        if seen.path != "/admin/directory/v1/users/jobs@acme.example":
            return None
        calls["n"] += 1
        if calls["n"] <= 2:  # GAM retries these whatever the status (glgapi.py)
            reason = "userRateLimitExceeded" if calls["n"] == 1 else "quotaExceeded"
            return Reply(403, google_error(403, "Quota exceeded for quota metric 'Queries'", reason, None))
        return None

    fake.fault = limited
    sleeps: list[float] = []
    snap = collect(api_for(fake, key, sleeps), target(mailboxes=("jobs@acme.example",))).snapshot
    assert snap["mailboxes"]["jobs@acme.example"]["user"]["primaryEmail"] == "jobs@acme.example"
    assert calls["n"] == 3 and 0.5 in sleeps and 1.0 in sleeps
    fake.fault = lambda seen: Reply(403, google_error(403, "Not Authorized to access this resource/api", "forbidden",
                                                      None)) if seen.path.startswith("/admin/directory/v1/users/") \
        else None
    user_gets = "/admin/directory/v1/users/jobs@acme.example"
    before = len([s for s in fake.log if s.path == user_gets])
    snap = collect(api_for(fake, key, []), target(mailboxes=("jobs@acme.example",))).snapshot
    assert snap["mailboxes"]["jobs@acme.example"]["user"]["error"]["status"] == 403
    assert len([s for s in fake.log if s.path == user_gets]) == before + 1


def test_policy_429_that_persists_is_recorded_not_fatal(world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, _, key = world
    fake.fault = lambda s: Reply(429, google_error(429, "Quota exceeded", "rateLimitExceeded")) \
        if s.path == "/v1/policies" else None
    sleeps: list[float] = []
    snap = collect(api_for(fake, key, sleeps), target(mailboxes=("jobs@acme.example",))).snapshot
    assert snap["org"]["policies"]["error"]["status"] == 429
    assert len(fake.seen("/v1/policies")) == settings.api().policy_max_retries + 1
    assert snap["mailboxes"]["jobs@acme.example"]["user"]["primaryEmail"] == "jobs@acme.example"


def test_missing_delegation_costs_only_its_resources(world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, ws, key = world
    ws.grant("104857600000000000001", [s for s in ALL if "policies" not in s and "gmail" not in s])
    snap = collect(api_for(fake, key, []), target()).snapshot
    err = snap["org"]["policies"]["error"]
    assert err["status"] == 401 and err["code"] == "unauthorized_client"
    assert "104857600000000000001" in err["message"] and "cloud-identity.policies.readonly" in err["message"]
    assert snap["mailboxes"]["jobs@acme.example"]["sendAs"]["error"]["code"] == "unauthorized_client"
    assert isinstance(snap["org"]["orgUnits"], list) and isinstance(snap["org"]["customer"], dict)
    # Google refused the admin's token for all its scopes (one grant missing), so each scope was asked on its own:
    # one token request per (scope, subject), not one per mailbox.
    jwt_posts = [s for s in fake.seen("/token")]
    assert len(jwt_posts) == 1 + 8 + 2  # the shared one; each of the 8 admin scopes once; Gmail for jobs@, ops@
    assert not fake.seen("/v1/policies")


def test_no_token_at_all_is_a_sign_in_error(world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, ws, key = world
    ws.dwd.clear()
    with pytest.raises(SignInError, match="unauthorized_client"):
        collect(api_for(fake, key, []), target())
    assert not fake.seen("/admin/")


def test_unregistered_key_is_refused_by_signature_check(world: tuple[FakeGoogle, Workspace, Path],
                                                         tmp_path: Path) -> None:
    fake, _, key = world
    # Same service account, a different private key: Google checks the signature with the registered key.
    (tmp_path / "other").mkdir()
    other = fake.key_file(tmp_path / "other", register=False, fresh_key=True)
    info = json.loads(other.read_text())
    info["private_key_id"] = json.loads(key.read_text())["private_key_id"]
    other.write_text(json.dumps(info))
    with pytest.raises(SignInError, match="Invalid JWT Signature"):
        collect(api_for(fake, other, []), target())


def test_subject_outside_the_workspace_is_refused(world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, _, key = world
    with pytest.raises(SignInError, match="Invalid email or User ID"):
        collect(api_for(fake, key, [], admin="ghost@acme.example"), target())


def test_wrong_customer_is_refused(world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, _, key = world
    with pytest.raises(SignInError, match="does not own globex.example"):
        collect(api_for(fake, key, []), target(domain="globex.example"))
    with pytest.raises(SignInError, match="not C999"):
        collect(api_for(fake, key, []), target(customer_id="C999"))


def test_an_unreadable_customer_is_checked_by_domains_and_refused_when_those_are_unreadable_too(
        world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, ws, key = world
    forbidden = {"status": 403, "code": "forbidden", "message": "Not Authorized to access this resource/api"}
    ws.errors[("customer", None)] = forbidden
    one = ("jobs@acme.example",)
    snap = collect(api_for(fake, key, []), target(mailboxes=one)).snapshot
    assert snap["org"]["customer"] == {"error": forbidden} and snap["tenant"]["domain"] == "acme.example"
    with pytest.raises(SignInError, match="does not own globex.example"):
        collect(api_for(fake, key, []), target(domain="globex.example", mailboxes=one))
    with pytest.raises(SignInError, match="cannot confirm .* customer C03az79cb.*give --domain"):
        collect(api_for(fake, key, []), target(domain=None, customer_id="C03az79cb", mailboxes=one))
    ws.errors[("domains", None)] = forbidden
    with pytest.raises(SignInError, match=r"cannot confirm .*customers.get \(403 forbidden.*domains.list \(403"):
        collect(api_for(fake, key, []), target(mailboxes=one))
    before = len(fake.seen("/v1/policies"))
    with pytest.raises(SignInError):
        collect(api_for(fake, key, []), target(mailboxes=one))
    assert len(fake.seen("/v1/policies")) == before  # refused before reading any setting


def test_nested_membership_is_asked_only_for_policy_groups_the_user_is_not_directly_in(
        world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, ws, key = world
    ws.nested[("ops@acme.example", "02grp0000000000")] = {"isMember": True}  # through a nested group
    snap = collect(api_for(fake, key, []), target()).snapshot
    assert snap["mailboxes"]["ops@acme.example"]["groupMembership"] == {"02grp0000000000": {"isMember": True}}
    assert "groupMembership" not in snap["mailboxes"]["jobs@acme.example"]  # a direct member: nothing to ask
    asked = fake.seen("/admin/directory/v1/groups/02grp0000000000/hasMember/")
    assert [s.path.rsplit("/", 1)[1] for s in asked] == ["ops@acme.example"]


def test_two_addresses_of_one_owner_ask_its_nested_membership_once_and_both_get_the_answer(
        world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, ws, key = world
    ws.users["ops@acme.example"]["aliases"] = ["ops-alias@acme.example"]
    ws.nested[("ops@acme.example", "02grp0000000000")] = {"isMember": True}
    snap = collect(api_for(fake, key, []), target(mailboxes=("ops-alias@acme.example", "jobs@acme.example",
                                                            "ops@acme.example"))).snapshot
    assert list(snap["mailboxes"]) == ["ops-alias@acme.example", "jobs@acme.example", "ops@acme.example"]
    for addr in ("ops-alias@acme.example", "ops@acme.example"):
        assert snap["mailboxes"][addr]["groupMembership"] == {"02grp0000000000": {"isMember": True}}
        assert list(snap["mailboxes"][addr]) == ["user", "userGroups", "sendAs", "tokens", "asps", "licenses",
                                                 "groupMembership"]
    asked = fake.seen("/admin/directory/v1/groups/02grp0000000000/hasMember/")
    assert [s.path.rsplit("/", 1)[1] for s in asked] == ["ops@acme.example"]


def test_nested_membership_waits_for_the_policies_however_late_they_answer(
        world: tuple[FakeGoogle, Workspace, Path]) -> None:
    """The mailboxes' groups are known long before the (paced, paged) policies: the owners wait, none is lost."""
    fake, ws, key = world
    ws.nested[("ops@acme.example", "02grp0000000000")] = {"isMember": False}
    groups_read = threading.Event()

    def policies_last(seen: Seen) -> Reply | None:
        if seen.path == "/admin/directory/v1/groups" and seen.param("userKey") == "ops@acme.example":
            groups_read.set()
        elif seen.path == "/v1/policies":
            groups_read.wait(30)
        return None

    fake.fault = policies_last
    api = api_for(fake, key, [], policy_page_size=1)
    snap = collect(api, target(), workers=2).snapshot
    assert snap["mailboxes"]["ops@acme.example"]["groupMembership"] == {"02grp0000000000": {"isMember": False}}
    assert len(fake.seen("/v1/policies")) > 5


def test_secondary_domain_is_accepted(world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, ws, key = world
    ws.domains.append({"kind": "admin#directory#domain", "domainName": "acme-jobs.example", "isPrimary": False,
                       "verified": True, "domainAliases": [{"domainAliasName": "acme.test", "verified": True}]})
    for domain in ("acme-jobs.example", "acme.test"):
        snap = collect(api_for(fake, key, []), target(domain=domain, mailboxes=("jobs@acme.example",))).snapshot
        assert snap["tenant"]["domain"] == domain


def test_policies_outside_the_filter_are_not_collected(world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, ws, key = world
    ws.policies.append({"name": "policies/drive1", "customer": "customers/C03az79cb",
                        "policyQuery": {"orgUnit": "orgUnits/03ph8a2z0abc123", "sortOrder": 1.0},
                        "setting": {"type": "settings/drive_and_docs.external_sharing",
                                    "value": {"externalSharingMode": "ALLOWED"}}, "type": "ADMIN"})
    snap = collect(api_for(fake, key, []), target(mailboxes=("jobs@acme.example",))).snapshot
    types = {p["setting"]["type"] for p in snap["org"]["policies"]}
    assert "settings/drive_and_docs.external_sharing" not in types and len(types) == 9


def test_mailboxes_are_read_concurrently_within_the_bound(world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, ws, key = world
    many = tuple(f"user{n}@acme.example" for n in range(12))
    for n, addr in enumerate(many):
        ws.add_user({**ws.users["jobs@acme.example"], "id": f"2{n:020d}", "primaryEmail": addr, "aliases": []})
    fake.latency = lambda s: 0.05 if s.path.startswith("/admin/directory/v1/users/") else 0.0
    fake.batching = False  # each mailbox read on its own (as when a batch is not answered), on the pool's threads
    result = collect(api_for(fake, key, []), target(mailboxes=many, with_sendas=False, with_licenses=False,
                                                    with_tokens=False), workers=4)
    assert len(result.snapshot["mailboxes"]) == 12
    assert 3 <= fake.max_in_flight <= 4
    assert result.requests == len([s for s in fake.log if s.subject])


def test_opt_in_resources_are_absent_unless_asked(world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, _, key = world
    snap = collect(api_for(fake, key, []), target(with_sendas=False, with_licenses=False, with_tokens=False)).snapshot
    for rec in snap["mailboxes"].values():
        assert not {"sendAs", "licenses", "tokens"} & set(rec)
    assert not fake.seen("/gmail/") and not fake.seen("/apps/licensing/")
    assert not [s for s in fake.seen("/admin/directory/v1/users/") if s.path.endswith("/tokens")]


def test_no_mail_service_is_recorded_as_failed_precondition(world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, ws, key = world
    ws.users["ops@acme.example"]["isMailboxSetup"] = False
    snap = collect(api_for(fake, key, []), target(mailboxes=("ops@acme.example",))).snapshot
    assert snap["mailboxes"]["ops@acme.example"]["sendAs"] == {
        "error": {"status": 400, "code": "FAILED_PRECONDITION", "message": "Mail service not enabled"}}


def test_snapshot_holds_no_secret(world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, _, key = world
    snap = collect(api_for(fake, key, []), target()).snapshot
    assert_no_leak(json.dumps(snap), secrets_of(fake, [key]))
    assert fake.issued  # the check above had something to look for


def test_bad_key_files_are_input_errors(tmp_path: Path) -> None:
    cases = {
        "missing.json": None,
        "notjson.json": "{oops",
        "user.json": json.dumps({"type": "authorized_user", "client_id": "x"}),
        "client.json": json.dumps({"installed": {"client_id": "x"}}),
        "partial.json": json.dumps({"type": "service_account", "client_email": "a@b.iam.gserviceaccount.com"}),
        "http.json": json.dumps({"type": "service_account", "client_email": "a@b", "client_id": "1",
                                 "private_key": "k", "private_key_id": "i", "token_uri": "http://127.0.0.1/token"}),
    }
    messages = []
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(InputError) as info:
            load_key_file(path)
        messages.append(str(info.value))
    assert "cannot read service account key file" in messages[0]
    assert "invalid JSON" in messages[1]
    assert "type: 'authorized_user'" in messages[2]
    assert "use --auth oauth" in messages[3]
    assert "lacks client_id, private_key, private_key_id" in messages[4]
    assert "not https" in messages[5]


def test_retired_token_uri_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"type": "service_account", "client_email": "a@b", "client_id": "1",
                                "private_key": "k", "private_key_id": "i",
                                "token_uri": "https://accounts.google.com/o/oauth2/auth"}))
    assert load_key_file(path).token_uri == "https://oauth2.googleapis.com/token"


def test_unparseable_private_key_is_an_input_error_without_the_key(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_text(json.dumps({"type": "service_account", "client_email": "a@b", "client_id": "1",
                                "private_key": "-----BEGIN PRIVATE KEY-----\nSECRETSTUFF\n-----END PRIVATE KEY-----\n",
                                "private_key_id": "i", "token_uri": "https://oauth2.googleapis.com/token"}))
    with pytest.raises(InputError) as info:
        ServiceAccountSigner(load_key_file(path), ADMIN)
    assert "does not load" in str(info.value) and "SECRETSTUFF" not in str(info.value)
    assert "SECRETSTUFF" not in repr(load_key_file(path))


def test_unreachable_apis_are_reported_as_such(world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, _, key = world
    sleeps: list[float] = []
    api = api_for(fake, key, sleeps)
    api.config = replace(api.config, endpoints=api.config.endpoints.rooted_at("https://127.0.0.1:9"))
    got = parse(collect(api, target(mailboxes=("jobs@acme.example",))).snapshot)
    assert "could not reach the Google Workspace admin APIs (ConnectionError" in str(unreachable(got, provider.title))
    assert sleeps  # connection failures were retried with back-off first


def test_a_transient_token_failure_is_not_remembered_but_a_refusal_is(
        world: tuple[FakeGoogle, Workspace, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import google.auth._exponential_backoff as backoff
    import google.oauth2._client as client

    from preflight.http import ApiError

    # google-auth retries a 5xx itself, waiting 1-2 s between tries: not in a test.
    no_wait = types.SimpleNamespace(
        ExponentialBackoff=lambda: backoff.ExponentialBackoff(initial_wait_seconds=0.0))  # type: ignore[no-untyped-call]
    monkeypatch.setattr(client, "_exponential_backoff", no_wait)
    fake, ws, key = world
    signer = ServiceAccountSigner(load_key_file(key), ADMIN)
    outage = [True]
    fake.fault = lambda seen: (Reply(503, {"error": "internal_failure", "error_description": "Backend Error"})
                               if seen.path == "/token" and outage[0] else None)
    scope = settings.scope("directory.user").url
    with pytest.raises(ApiError) as info:
        signer.bearer(scope)
    assert info.value.code == "internal_failure"
    outage[0] = False
    assert signer.bearer(scope)  # the outage is over: the next request gets its token
    # A refused grant stays refused for the run: no second request to the token endpoint.
    ws.grant("104857600000000000001", [s for s in ALL if "policies" not in s])
    refused = settings.scope("policies").url
    for _ in range(2):
        with pytest.raises(ApiError, match="unauthorized_client"):
            signer.bearer(refused)
    asked = [s for s in fake.seen("/token")]
    with pytest.raises(ApiError):
        signer.bearer(refused)
    assert len(fake.seen("/token")) == len(asked)


def test_one_token_carries_the_shared_scopes_until_google_refuses_it_then_each_scope_is_asked(
        world: tuple[FakeGoogle, Workspace, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import google.auth._exponential_backoff as backoff
    import google.oauth2._client as client

    from preflight.http import ApiError

    no_wait = types.SimpleNamespace(  # google-auth retries a 5xx itself, waiting 1-2 s between tries: not in a test
        ExponentialBackoff=lambda: backoff.ExponentialBackoff(initial_wait_seconds=0.0))  # type: ignore[no-untyped-call]
    monkeypatch.setattr(client, "_exponential_backoff", no_wait)
    fake, ws, key = world
    signer = ServiceAccountSigner(load_key_file(key), ADMIN)
    user, group, policies = (settings.scope(k).url for k in ("directory.user", "directory.group", "policies"))
    signer.share([user, group, policies])
    fake.fault = lambda seen: (Reply(503, {"error": "internal_failure", "error_description": "Backend Error"})
                               if seen.path == "/token" else None)
    # A fault of the shared token that refuses no grant is reported as it is, and not remembered: asking per
    # scope would only meet the same fault.
    with pytest.raises(ApiError, match="internal_failure"):
        ServiceAccountSigner(load_key_file(key), ADMIN).bearer(user)
    per_scope = len(fake.seen("/token"))  # one token asked, with google-auth's own retries
    with pytest.raises(ApiError) as info:
        signer.bearer(user)
    assert info.value.code == "internal_failure"
    faults = len(fake.seen("/token"))
    assert faults == 2 * per_scope  # the shared token alone was asked, as often
    fake.fault = None
    first = signer.bearer(user)
    assert len(fake.seen("/token")) == faults + 1
    assert fake._grants[first].scopes == {user, group, policies}
    assert signer.bearer(group) == signer.bearer(policies) == first  # one token, signed and fetched once
    assert len(fake.seen("/token")) == faults + 1
    assert signer.bearer(settings.scope("licensing").url) != first  # a scope not shared gets its own token
    # A new signer for a Workspace whose delegation lacks one of the shared scopes: Google refuses the token for
    # all of them (401 unauthorized_client); each scope is then asked alone, and only the missing one is refused,
    # named in the error.
    ws.grant("104857600000000000001", [s for s in ALL if s != policies])
    signer = ServiceAccountSigner(load_key_file(key), ADMIN)
    signer.share([user, group, policies])
    before = len(fake.seen("/token"))
    assert signer.bearer(user) and signer.bearer(group)
    with pytest.raises(ApiError) as info:
        signer.bearer(policies)
    assert info.value.code == "unauthorized_client" and policies in info.value.message
    assert user not in info.value.message
    assert len(fake.seen("/token")) - before == 1 + 3  # the refused shared one is not asked again
    assert signer.bearer(user) and len(fake.seen("/token")) - before == 4


def test_a_product_the_customer_lacks_does_not_blank_the_other_licences(
        world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, _, key = world
    missing = {"101031": Reply(400, google_error(400, "Invalid Input", "invalid", None)),
               "101034": Reply(404, google_error(404, "Not Found", "notFound", None))}
    fake.fault = lambda seen: next((r for p, r in missing.items() if seen.path.endswith(f"/product/{p}/users")), None)
    snap = collect(api_for(fake, key, []), target()).snapshot
    assert snap["mailboxes"]["jobs@acme.example"]["licenses"] == sample_snapshot()["mailboxes"][
        "jobs@acme.example"]["licenses"]
    assert "licenseErrors" not in snap["org"]
    # One product that fails otherwise (403, 5xx) leaves only that product unknown, as GAM and ScubaGoggles skip
    # it: the others are kept and the failure is recorded, so a licence clause naming it stays undecided.
    missing["101034"] = Reply(403, google_error(403, "Not Authorized to access this resource/api", "forbidden", None))
    snap = collect(api_for(fake, key, []), target()).snapshot
    assert snap["mailboxes"]["jobs@acme.example"]["licenses"] == sample_snapshot()["mailboxes"][
        "jobs@acme.example"]["licenses"]
    assert snap["org"]["licenseErrors"] == {"101034": {"error": {
        "status": 403, "code": "forbidden", "message": "Not Authorized to access this resource/api"}}}
    # A failure that hits every product (401, the API not enabled for the project, or all products failing)
    # makes every user's licences unknown.
    disabled = Reply(403, google_error(403, "Enterprise License Manager API has not been used in project 1234 "
                                       "before or it is disabled.", "accessNotConfigured", "PERMISSION_DENIED"))
    missing.update({"Google-Apps": disabled})
    snap = collect(api_for(fake, key, []), target()).snapshot
    assert snap["mailboxes"]["jobs@acme.example"]["licenses"]["error"]["status"] == 403
    assert "licenseErrors" not in snap["org"]
    missing.update({"Google-Apps": Reply(403, google_error(403, "Forbidden", "forbidden", None)),
                    "101031": Reply(503, google_error(503, "Backend Error", "backendError"))})
    snap = collect(api_for(fake, key, []), target()).snapshot
    assert error_of(snap["mailboxes"]["jobs@acme.example"]["licenses"]) is not None


def test_the_audit_log_is_read_only_when_asked_one_event_name_at_a_time(
        world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, ws, key = world
    snap = collect(api_for(fake, key, []), target()).snapshot
    assert "delegationEvents" not in snap["org"] and not fake.seen("/admin/reports/")
    ws.activities[("all", "admin")] = [{
        "kind": "admin#reports#activity", "id": {"time": "2026-10-02T14:11:09.512Z", "applicationName": "admin"},
        "events": [{"type": "DOMAIN_SETTINGS", "name": "AUTHORIZE_API_CLIENT_ACCESS", "parameters": [
            {"name": "API_CLIENT_NAME", "value": "104857600000000000001"},
            {"name": "API_SCOPES", "multiValue": ["https://mail.google.com/"]}]}]}]
    snap = collect(api_for(fake, key, []), target(with_audit_log=True)).snapshot
    assert snap["org"]["delegationEvents"] == ws.activities[("all", "admin")]
    assert snap["mailboxes"]["jobs@acme.example"]["advancedProtectionEvents"] == []
    admin_log = fake.seen("/admin/reports/v1/activity/users/all/applications/admin")
    assert [s.param("eventName") for s in admin_log] == list(settings.api().delegation[1])
    assert all(AUTH + "admin.reports.audit.readonly" in s.scopes for s in fake.seen("/admin/reports/"))
    owners = {s.path.split("/")[6] for s in fake.seen("/admin/reports/v1/activity/users/") if "/all/" not in s.path}
    assert owners == {"jobs@acme.example", "ops@acme.example"}


def test_a_read_that_raises_ends_the_wait_with_its_exception() -> None:
    """Reads record their API errors; anything else (a defect) is raised where the collector waits, never lost."""
    def defect() -> None:
        raise RuntimeError("a defect")

    with ThreadPoolExecutor(2) as pool:
        work = _Work(pool, 2)
        done: list[int] = []
        work.add(lambda: work.add(partial(done.append, 1)))  # a call may add calls: the wait covers them too
        work.wait()
        assert done == [1]
        work.add(defect)
        with pytest.raises(RuntimeError, match="a defect"):
            work.wait()


def test_the_runs_next_workspace_reads_on_the_threads_the_first_one_started(
        world: tuple[FakeGoogle, Workspace, Path]) -> None:
    fake, _, key = world
    fake.batching = False  # each mailbox's users.get on its own: on a thread of the pool
    memo = RunMemo()
    threads: list[set[threading.Thread]] = []  # the objects, held: a thread's id may be reused once it ends
    for _ in range(2):
        api = api_for(fake, key, [], memo=memo)
        seen: set[threading.Thread] = set()
        user = api.user

        def spy(address: str, user: Any = user, seen: set[threading.Thread] = seen) -> Any:
            seen.add(threading.current_thread())
            return user(address)

        api.user = spy  # type: ignore[method-assign]
        collect(api, target(), workers=3)
        threads.append(seen)
    assert 1 <= len(threads[0]) <= 3 and threads[1] <= threads[0]
