"""The collector against the local fake: real msal sign-in, real HTTP over TLS, documented payload shapes.

The fixtures (tests/microsoft/fixtures, documented shapes) are served by the fake; collecting them back
must reproduce them resource by resource: that proves the requests, paging, batching, alias lookup,
Exchange filters and error recording without trusting any of them separately.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from preflight.errors import SignInError
from preflight.http import ApiError
from preflight.model import Method, Status
from preflight.pipeline import unreachable
from preflight.providers import CollectRequest
from preflight.snapshot import Options, error_of, parse
from preflight_providers.microsoft import provider
from preflight_providers.microsoft.clouds import Cloud
from preflight_providers.microsoft.collect import Target
from preflight_providers.microsoft.exchange import Exchange
from preflight_providers.microsoft.run import clients, collect
from tests.conftest import evaluate_data
from tests.microsoft.conftest import CLIENT_ID, SECRET, fixture_names, load_fixture, signed_in, tenant_for
from tests.microsoft.fake import Call, FakeMicrosoft, Reply, exchange_error, graph_error, throttle

pytestmark = pytest.mark.slow

# Resources a collector adds that a hand-written fixture may leave out: the errors recorded for a
# mailbox that does not exist, and the SendAs rights read for a --from address.
OPTIONAL = {"exchangeUser", "mailboxPermissions", "recipientPermissions", "fromRecipientPermissions", "mailboxSettings",
            "conditionalAccessWhatIf"}
# Microsoft's What If answers (Graph beta): a fixture without them gets the fake's "no recorded answer" error.
OPTIONAL_ORG = {"workloadConditionalAccessWhatIf", "applicationRoleAssignments"}


def run_collect(fake: FakeMicrosoft, cloud: Cloud, tmp_path: Path, snapshot: dict[str, Any], *,
                sleeps: list[float] | None = None, tenant_kw: dict[str, Any] | None = None,
                **app: Any) -> dict[str, Any]:
    tenant = fake.add_tenant(tenant_for(snapshot, **app))
    for key, value in (tenant_kw or {}).items():
        setattr(tenant, key, value)
    signin = signed_in(cloud, tenant.domains[0] if tenant.domains else tenant.id, tmp_path / "cache")
    options = parse(snapshot).options
    wants_settings = any("mailboxSettings" in box for box in snapshot["mailboxes"].values())
    target = Target(signin.settings.tenant, cloud.name, tuple(snapshot["mailboxes"]), options, signin.tenant_id,
                    mailbox_settings=wants_settings)
    waits = sleeps if sleeps is not None else []
    window = snapshot["org"].get("smtpSignInWindow")
    if isinstance(window, dict) and "days" in window:  # opt-in sign-in log: read the window the fixture holds
        target = dataclasses.replace(target, sign_in_days=window["days"],
                                     sign_ins_tenant="tenantSmtpSignIns" in snapshot["org"])
        end = datetime.fromisoformat(window["since"].replace("Z", "+00:00")) + timedelta(days=window["days"])
        return collect(signin, target, sleep=waits.append, clock=lambda: end)
    return collect(signin, target, sleep=waits.append)


def differences(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    froms = expected["options"].get("from_addresses") or {}
    diffs = [f"org.{k}" for k, v in expected["org"].items() if got["org"].get(k) != v]
    diffs += [f"org.{k} (extra)" for k in set(got["org"]) - set(expected["org"]) - OPTIONAL_ORG]
    for addr, box in expected["mailboxes"].items():
        for name, value in box.items():
            if name == "fromRecipientPermissions" and addr not in froms:
                continue  # no --from for this mailbox: nothing to read send-as rights on
            if got["mailboxes"][addr].get(name) != value:
                diffs.append(f"{addr}.{name}")
        diffs += [f"{addr}.{n} (extra)" for n in set(got["mailboxes"][addr]) - set(box) - OPTIONAL]
    return diffs


@pytest.mark.parametrize("name", fixture_names())
def test_collecting_a_served_fixture_gives_it_back(name: str, microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                   tmp_path: Path) -> None:
    expected = load_fixture(name)
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    assert differences(expected, got) == []
    assert got["schema"] == "preflight.snapshot/v1" and got["provider"] == "microsoft"
    assert got["options"] == parse(expected).options.to_dict()
    assert got["tenant"]["id"] == expected["tenant"]["id"] and got["tenant"]["cloud"] == "fake"


def test_an_alias_is_resolved_to_the_account_that_owns_it(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                          tmp_path: Path) -> None:
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, load_fixture("accounts"))
    assert got["mailboxes"]["careers@contoso.com"]["user"]["userPrincipalName"] == "jobs@contoso.com"
    lookups = [c for c in microsoft_fake.calls("graph", sub=True) if c.path == "/users"]
    assert len(lookups) == 2  # careers@ (an alias) and missing@ (nobody): one proxyAddresses lookup each
    missing = got["mailboxes"]["missing@contoso.com"]
    assert error_of(missing["user"])["status"] == 404  # type: ignore[index]
    assert error_of(missing["mailbox"])["status"] == 404  # type: ignore[index]
    assert error_of(missing["exchangeUser"])["code"] == "ManagementObjectNotFoundException"  # type: ignore[index]


def test_a_failed_alias_lookup_is_recorded_and_the_address_is_not_called_missing(
        microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud, tmp_path: Path) -> None:
    def refuse(call: Call) -> Reply | None:
        if call.api == "graph" and call.path == "/users":
            return graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        if call.api == "exchange" and call.cmdlet == "Get-Mailbox":
            return exchange_error(403, "AccessDeniedException", "User is not allowed to call Get-Mailbox.")
        return None

    microsoft_fake.fault = refuse
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, load_fixture("accounts"))
    missing = got["mailboxes"]["missing@contoso.com"]
    assert error_of(missing["userLookup"])["status"] == 403  # type: ignore[index]
    result = evaluate_data(got)
    f = next(f for f in result.findings if f.check == "ms.mailbox-exists" and f.subject == "missing@contoso.com")
    assert f.status is Status.UNKNOWN and "403" in f.message
    microsoft_fake.fault = None
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, load_fixture("accounts"))
    assert got["mailboxes"]["missing@contoso.com"]["userLookup"] == []  # looked up, nobody has it


def test_the_app_service_principal_is_read_without_its_credential_metadata(microsoft_fake: FakeMicrosoft,
                                                                           microsoft_cloud: Cloud,
                                                                           tmp_path: Path) -> None:
    served = load_fixture("oauth-app-ready")
    sp = served["org"]["servicePrincipal"]
    served["org"]["servicePrincipal"] = {**sp, "accountEnabled": True, "servicePrincipalType": "Application",
        "keyCredentials": [{"customKeyIdentifier": "5A2B0F6C1D3E4F5A6B7C8D9E0F1A2B3C4D5E6F70",
                            "displayName": "CN=sender", "endDateTime": "2027-05-01T00:00:00Z",
                            "keyId": "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d", "startDateTime": "2026-05-01T00:00:00Z",
                            "type": "AsymmetricX509Cert", "usage": "Verify", "key": None}],
        "passwordCredentials": [{"customKeyIdentifier": None, "displayName": "smtp", "hint": "Qx8",
                                 "endDateTime": "2027-05-01T00:00:00Z", "keyId": "1c2d3e4f-5061-4b7c-9d8e-0f1a2b3c4d5e",
                                 "startDateTime": "2026-05-01T00:00:00Z", "secretText": None}]}
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, served)
    assert got["org"]["servicePrincipal"] == sp  # id, appId, displayName only
    asked = [c for c in microsoft_fake.calls("graph", sub=True) if c.path.startswith("/servicePrincipals(appId=")]
    assert all(c.query.get("$select") for c in asked) and len(asked) == 2


def test_every_resource_refused_is_recorded_and_the_run_goes_on(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                                tmp_path: Path) -> None:
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, load_fixture("forbidden"))
    values = list(got["org"].values()) + [v for box in got["mailboxes"].values() for v in box.values()]
    assert len(values) > 20
    assert all((error_of(v) or {}).get("status") == 403 for v in values)
    assert unreachable(parse(got), provider.title) is None  # refused is not unreachable: exit 3 (incomplete), not 4


def test_throttled_batch_requests_are_retried_after_their_retry_after(microsoft_fake: FakeMicrosoft,
                                                                      microsoft_cloud: Cloud, tmp_path: Path) -> None:
    expected = load_fixture("oauth-app-ready")
    # Round 1: both per-mailbox requests throttled; round 2: one of them again; round 3: through.
    microsoft_fake.fault = throttle(lambda c: c.sub and c.path.startswith("/users/"), times=3, retry_after="7")
    waits: list[float] = []
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected, sleeps=waits)
    assert differences(expected, got) == []
    assert waits == [7.0, 7.0]  # each retry round waited what the throttled responses asked for
    user_subs = [c for c in microsoft_fake.calls("graph", sub=True) if c.path.startswith("/users/")]
    assert len(user_subs) == 2 + 2 + 1  # only throttled requests are sent again


def test_a_request_throttled_past_the_retries_is_recorded_as_429(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                                tmp_path: Path) -> None:
    microsoft_fake.fault = throttle(lambda c: c.sub and c.path.endswith("/transitiveMemberOf"), times=99)
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, load_fixture("oauth-app-ready"))
    err = error_of(got["mailboxes"]["jobs@contoso.com"]["memberOf"])
    assert err is not None and err["status"] == 429 and err["code"] == "TooManyRequests"
    assert error_of(got["mailboxes"]["jobs@contoso.com"]["user"]) is None


def test_long_collections_are_read_through_every_page(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                      tmp_path: Path) -> None:
    expected = copy.deepcopy(load_fixture("ca-legacy-included"))
    policy = expected["org"]["conditionalAccessPolicies"][0]
    expected["org"]["conditionalAccessPolicies"] = [dict(policy, id=f"{i:08d}-0000-4000-8000-000000000000")
                                                    for i in range(7)]
    box = expected["mailboxes"][next(iter(expected["mailboxes"]))]
    box["memberOf"] = [{"@odata.type": "#microsoft.graph.group", "id": f"g{i}", "displayName": f"G{i}"}
                       for i in range(5)]
    permission = box["mailboxPermissions"][0]
    box["mailboxPermissions"] = [dict(permission, User=f"user{i}") for i in range(3)]
    microsoft_fake.page_size, microsoft_fake.exchange_page_size = 2, 1
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    assert differences(expected, got) == []
    pages = [c for c in microsoft_fake.calls("graph", sub=False) if "$skiptoken" in c.query]
    assert len(pages) == 3 + 2  # 7 policies in 4 pages (1 in the batch), 5 groups in 3 pages
    exchange_pages = [c for c in microsoft_fake.calls("exchange") if "$skiptoken" in c.query]
    assert len(exchange_pages) == 2


def test_a_refused_exchange_token_is_recorded_once_for_every_exchange_resource(
        microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud, tmp_path: Path) -> None:
    expected = load_fixture("oauth-app-ready")
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected, exchange_roles=())  # no Exchange.ManageAsApp
    # The probe and the tenant-level cmdlets sent with it, in one $batch refused whole; no cmdlet per mailbox
    # after a 401.
    assert microsoft_fake.http_requests("exchange") == 1
    assert {c.cmdlet for c in microsoft_fake.calls("exchange") if c.cmdlet} <= {
        "Get-OrganizationConfig", "Get-TransportConfig", "Get-AuthenticationPolicy", "Get-ServicePrincipal",
        "Get-ManagementRoleAssignment"}
    assert not [c for c in microsoft_fake.calls("exchange") if {"Identity", "Filter"} & set(c.parameters)]
    for name in ("organizationConfig", "transportConfig", "authenticationPolicies", "exchangeServicePrincipals"):
        assert (error_of(got["org"][name]) or {}).get("status") == 401, name
    box = got["mailboxes"]["jobs@contoso.com"]
    for name in ("mailbox", "casMailbox", "exchangeUser", "mailboxPermissions", "recipientPermissions"):
        assert (error_of(box[name]) or {}).get("status") == 401, name
    assert box["user"] == expected["mailboxes"]["jobs@contoso.com"]["user"]  # Graph still read


def test_a_cmdlet_refused_by_exchange_rbac_is_that_cmdlet_s_error_only(microsoft_fake: FakeMicrosoft,
                                                                       microsoft_cloud: Cloud, tmp_path: Path) -> None:
    # 401 {"error": {"code": "Unauthorized", "message": "User is not allowed to call Get-Mailbox"}}
    # (MicrosoftDocs/office-docs-powershell#7970) refuses one cmdlet, not the token
    expected = load_fixture("oauth-app-ready")
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected,
                      tenant_kw={"refused_cmdlets": frozenset({"Get-OrganizationConfig", "Get-Mailbox"})})
    for name in ("organizationConfig",):
        assert error_of(got["org"][name]) == {"status": 401, "code": "Unauthorized",
                                              "message": "User is not allowed to call Get-OrganizationConfig"}
    assert got["org"]["transportConfig"] == expected["org"]["transportConfig"]
    box, want = got["mailboxes"]["jobs@contoso.com"], expected["mailboxes"]["jobs@contoso.com"]
    assert (error_of(box["mailbox"]) or {}).get("message") == "User is not allowed to call Get-Mailbox"
    for name in ("casMailbox", "exchangeUser", "mailboxPermissions", "recipientPermissions"):
        assert box[name] == want[name], name
    result = evaluate_data(got)
    smtp = next(f for f in result.findings if f.check == "ms.smtp-auth-enabled")
    assert smtp.status is Status.PASS  # read from Get-CASMailbox / Get-TransportConfig, which were allowed


def test_app_only_calls_anchor_on_the_system_mailbox_at_the_tenant_id(microsoft_fake: FakeMicrosoft,
                                                                      microsoft_cloud: Cloud, tmp_path: Path) -> None:
    expected = load_fixture("oauth-app-ready")
    tenant = microsoft_fake.add_tenant(tenant_for(expected))
    signin = signed_in(microsoft_cloud, "contoso.com", tmp_path / "cache")  # typed as a vanity domain
    _graph, exchange, refusal = clients(signin)
    assert refusal is None and exchange is not None
    system = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}"
    assert exchange.anchor == f"APP:{system}@{tenant.id}"  # the form CIPP-API New-ExoRequest sends
    assert exchange.invoke_one("Get-TransportConfig") == expected["org"]["transportConfig"]
    # the fake routes only what Exchange can: the system mailbox at the vanity domain routes nowhere
    for anchor, works in ((f"UPN:{system}@contoso.com", False), (f"APP:{system}@contoso.com", False),
                          (f"UPN:{system}@contoso.onmicrosoft.com", True)):
        other = Exchange(exchange.http, microsoft_cloud.exchange_url, tenant.id, anchor)
        if works:
            assert other.invoke_one("Get-TransportConfig") == expected["org"]["transportConfig"]
        else:
            with pytest.raises(ApiError) as info:
                other.invoke_one("Get-TransportConfig")
            assert info.value.status == 500 and "anchor mailbox" in info.value.message


def test_warning_only_replies_and_not_found_as_500_are_read_for_what_they_are(
        microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud, tmp_path: Path) -> None:
    expected = load_fixture("accounts")
    served = copy.deepcopy(expected)
    for name in ("mailbox", "casMailbox"):  # the fake's own not-found answer, here a 500
        del served["mailboxes"]["missing@contoso.com"][name]
    warning = "The authentication policy couldn't be found."
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, served, tenant_kw={
        "not_found_as_500": True,
        "warnings_only": {"Get-AuthenticationPolicy": warning, "Get-TransportConfig": warning}})
    assert got["org"]["authenticationPolicies"] == []  # no objects, not a malformed reply
    transport = error_of(got["org"]["transportConfig"]) or {}
    assert transport.get("code") == "EmptyResult" and warning in str(transport.get("message"))
    missing = got["mailboxes"]["missing@contoso.com"]
    assert (error_of(missing["mailbox"]) or {}).get("status") == 404
    assert (error_of(missing["mailbox"]) or {}).get("code") == "ManagementObjectNotFoundException"
    result = evaluate_data(got)
    gone = next(f for f in result.findings if f.check == "ms.mailbox-exists" and f.subject == "missing@contoso.com")
    assert gone.status is Status.FAIL


def test_a_rejected_exchange_filter_falls_back_to_one_mailbox_at_a_time(microsoft_fake: FakeMicrosoft,
                                                                        microsoft_cloud: Cloud, tmp_path: Path) -> None:
    def no_filters(call: Call) -> Reply | None:
        if call.api == "exchange" and "Filter" in call.parameters:
            return exchange_error(400, "ParameterBindingException", "Cannot bind parameter 'Filter'.")
        return None

    expected = load_fixture("accounts")
    microsoft_fake.fault = no_filters
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    assert differences(expected, got) == []
    by_identity = [c for c in microsoft_fake.calls("exchange")
                   if c.cmdlet == "Get-CASMailbox" and "Identity" in c.parameters]
    assert len(by_identity) == len(expected["mailboxes"])


def test_a_redirected_cmdlet_is_posted_again_to_the_new_location(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                                 tmp_path: Path) -> None:
    def redirect(call: Call) -> Reply | None:
        if call.api == "exchange" and "moved" not in call.query:
            return Reply(302, b"", {"Location": f"{microsoft_fake.url}{call.path}?moved=1"})
        return None

    expected = load_fixture("oauth-app-ready")
    microsoft_fake.fault = redirect
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    assert differences(expected, got) == []
    moved = [c for c in microsoft_fake.calls("exchange") if "moved" in c.query]
    assert all(c.method == "POST" for c in moved)  # a redirected $batch is POSTed again, as is each cmdlet
    assert {c.path.rsplit("/", 1)[1] for c in moved} == {"$batch", "InvokeCommand"}
    assert all(c.cmdlet for c in moved if c.sub)  # with its cmdlet


def test_odd_items_in_a_filtered_cmdlet_reply_do_not_end_the_collection(microsoft_fake: FakeMicrosoft,
                                                                        microsoft_cloud: Cloud, tmp_path: Path) -> None:
    def odd(call: Call) -> Reply | None:
        if call.api == "exchange" and "Filter" in call.parameters:
            context = f"{microsoft_fake.url}/adminapi/beta/$metadata#Collection(Exchange.GenericHashTable)"
            return Reply(200, {"@odata.context": context, "value": ["not an object", None, 7]})
        return None

    expected = load_fixture("oauth-app-ready")
    microsoft_fake.fault = odd
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    assert differences(expected, got) == []  # each address was asked again by -Identity
    by_identity = {c.cmdlet for c in microsoft_fake.calls("exchange") if "Identity" in c.parameters}
    assert by_identity >= {"Get-User", "Get-Mailbox"}


def test_a_relative_redirect_is_followed_on_the_same_host(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                          tmp_path: Path) -> None:
    def redirect(call: Call) -> Reply | None:
        if call.api == "exchange" and "moved" not in call.query:
            return Reply(307, b"", {"Location": f"{call.path}?moved=1"})
        return None

    expected = load_fixture("oauth-app-ready")
    microsoft_fake.fault = redirect
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    assert differences(expected, got) == []
    assert any("moved" in c.query for c in microsoft_fake.calls("exchange"))


@pytest.mark.parametrize("where", ["https://localhost:{port}{path}?moved=1",  # another host name
                                   "http://127.0.0.1:{port}{path}?moved=1"])  # not https
def test_a_redirect_off_the_exchange_host_is_not_followed_and_gets_no_token(
        where: str, microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud, tmp_path: Path) -> None:
    port = microsoft_fake.host.rsplit(":", 1)[1]

    def redirect(call: Call) -> Reply | None:
        if call.api == "exchange" and "moved" not in call.query:
            return Reply(302, b"", {"Location": where.format(port=port, path=call.path)})
        return None

    microsoft_fake.fault = redirect
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, load_fixture("oauth-app-ready"))
    assert not [c for c in microsoft_fake.calls("exchange") if "moved" in c.query]  # never sent, token included
    err = error_of(got["org"]["transportConfig"])
    assert err is not None and err["code"] == "UntrustedRedirect" and err["status"] == 302
    assert error_of(got["mailboxes"]["jobs@contoso.com"]["casMailbox"]) is not None
    assert got["mailboxes"]["jobs@contoso.com"]["user"]["id"]  # Graph is unaffected


def test_unreachable_apis_are_reported_as_such(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                               tmp_path: Path) -> None:
    snapshot = load_fixture("oauth-app-ready")
    tenant = microsoft_fake.add_tenant(tenant_for(snapshot))
    signin = signed_in(microsoft_cloud, tenant.domains[0], tmp_path / "cache")
    signin.token("exchange")
    microsoft_fake.stop()  # signed in, then the network goes away
    target = Target(tenant.domains[0], "fake", ("jobs@contoso.com",), Options(), tenant.id)
    got = collect(signin, target, sleep=lambda _s: None, timeout=(0.5, 0.5))
    assert "could not reach the Microsoft 365 admin APIs (ConnectionError" in str(
        unreachable(parse(got), provider.title))


def cloned_mailboxes(n: int) -> dict[str, Any]:
    """The oauth-app-ready fixture with its mailbox cloned n times, each with its own addresses."""
    template = load_fixture("oauth-app-ready")
    box = template["mailboxes"].pop("jobs@contoso.com")
    for i in range(n):
        addr = f"user{i}@contoso.com"
        clone = copy.deepcopy(box)
        clone["user"].update(id=f"{i:08d}-1111-4111-8111-111111111111", userPrincipalName=addr, mail=addr,
                             proxyAddresses=[f"SMTP:{addr}"])
        for name in ("mailbox", "casMailbox", "exchangeUser"):
            clone[name].update(UserPrincipalName=addr, PrimarySmtpAddress=addr, EmailAddresses=[f"SMTP:{addr}"])
        template["mailboxes"][addr] = clone
    return template


def test_requests_per_mailbox_stay_under_one(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                               tmp_path: Path) -> None:
    many = cloned_mailboxes(60)
    got = run_collect(microsoft_fake, microsoft_cloud, tmp_path, many)
    assert differences(many, got) == []
    api_requests = sum(microsoft_fake.http_requests(api) for api in ("graph", "graph-beta", "exchange"))
    # Graph and Exchange reads in $batch requests: 20 Graph reads or 10 cmdlets (2 permission reads per mailbox) each
    assert api_requests / 60 <= 0.6, api_requests


def test_audits_collect_through_the_provider_with_their_own_cache(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    expected = load_fixture("send-as")
    microsoft_fake.add_tenant(tenant_for(expected))
    monkeypatch.setenv("CUSTOMER_SECRET", SECRET)
    options = expected["options"]
    request = CollectRequest(
        settings={"tenant": "contoso.com", "client_id": CLIENT_ID, "auth": "secret", "cloud": "fake",
                  "client_secret_env": "CUSTOMER_SECRET"},
        mailboxes=list(expected["mailboxes"]), methods=[Method(m) for m in options["methods"]],
        sender_ips=options["sender_ips"], from_addresses=options["from_addresses"], app_id=options["app_id"],
        cache_dir=tmp_path / "customer-cache",
    )
    got = provider.collect(request)
    assert differences(expected, got) == []
    assert [p.name for p in (tmp_path / "customer-cache").iterdir()] == [f"app-{CLIENT_ID}.json"]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # where `preflight login` caches
    unattended = CollectRequest(settings={**request.settings, "auth": "device-code"}, mailboxes=["a@contoso.com"],
                                methods=[Method.BASIC], cache_dir=tmp_path / "other-cache")
    with pytest.raises(SignInError, match="run `preflight login microsoft --tenant contoso.com "):
        provider.collect(unattended)  # an audit never waits for someone at a browser
