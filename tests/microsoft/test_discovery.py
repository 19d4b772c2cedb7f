"""`preflight check ADDRESS`: discovery against a real DNS server on loopback and the Microsoft fake's
OpenID configuration over TLS, the probe against a local SMTP server, the zero-setup sign-in through the
real msal, and proof that no lookup leaves the machine (and that --offline makes none at all)."""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from preflight.cli import main
from preflight.discovery import Discoverer, Lookup, Mx, Srv, Tenant, classify, domain_of, submission_for
from preflight.discovery_cli import AddressCheck, run_address_check
from preflight.errors import InputError
from preflight.output import Format
from preflight.runsecrets import RunSecrets, run_scope
from preflight_providers.microsoft.clouds import EXTRA_CLOUDS_ENV, Cloud, load_clouds
from preflight_providers.microsoft.discovery import TenantLookup
from tests.dnsserver import Zones, dns_server, resolver_for
from tests.jwts import unsigned_jwt
from tests.leaks import assert_clean_run
from tests.microsoft.fake import FakeMicrosoft, Reply
from tests.microsoft.test_public_signin import public_tenant
from tests.probe.servers import Pki, make_pki, smtp_server

pytestmark = pytest.mark.slow

SMTP_HOST = "smtp.fake.test"


def zones() -> Zones:
    z = Zones()
    z.add("contoso.com", "MX", "0 contoso-com.mail.protection.outlook.com.")
    z.add("fabrikam.com", "MX", "1 smtp.google.com.")
    z.add("northwind.test", "MX", "5 alt1.aspmx.l.google.com.").add("northwind.test", "MX", "1 aspmx.l.google.com.")
    z.add("gateway.test", "MX", "10 eu-smtp-inbound-1.mimecast.test.")
    z.add("other.test", "MX", "10 mx.other.test.")
    z.add("_submission._tcp.other.test", "SRV", "0 1 587 mail.other.test.")
    z.add("nosubmit.test", "MX", "10 mx.nosubmit.test.").add("_submission._tcp.nosubmit.test", "SRV", "0 0 0 .")
    z.add("nullmx.test", "MX", "0 .")
    z.add(SMTP_HOST, "A", "127.0.0.1")
    z.servfail.add("broken.test")
    z.silent.add("slow.test")
    return z


@pytest.fixture
def dns() -> Iterator[tuple[Zones, int]]:
    z = zones()
    with dns_server(z) as port:
        yield z, port


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def fake_clouds(fake: FakeMicrosoft, smtp_port: int = 9) -> dict[str, Cloud]:
    """global and china both pointing at the fake: the two clouds discovery asks."""
    fake_cloud = load_clouds()["fake"]
    return {name: replace(fake_cloud, name=name, title=f"fake {name}", smtp=f"{SMTP_HOST}:{smtp_port}")
            for name in ("global", "china")}


def clouds_file(fake: FakeMicrosoft, path: Path, smtp_port: int) -> Path:
    """A PREFLIGHT_MICROSOFT_CLOUDS file overriding global and china with the fake: nothing reaches Microsoft."""
    text = "".join(
        f'[{name}]\ntitle = "fake {name}"\nlogin = "{fake.host}"\ngraph = "{fake.host}"\nexchange = "{fake.host}"\n'
        f'graph_scope = "https://graph.fake.test/.default"\nexchange_scope = "https://outlook.fake.test/.default"\n'
        f'instance_discovery = false\nsmtp = "{SMTP_HOST}:{smtp_port}"\n\n' for name in ("global", "china"))
    path.write_text(text, encoding="utf-8")
    return path


# -- pure parts ------------------------------------------------------------------------------------------

def test_domain_of_accepts_addresses_and_refuses_the_rest() -> None:
    assert domain_of("Jobs@Contoso.COM") == "contoso.com"
    assert domain_of("jobs@bücher.example") == "xn--bcher-kva.example"
    for bad in ("contoso.com", "jobs@", "jobs@-bad-.com", "jobs@localhost", "a@b@"):
        with pytest.raises(InputError):
            domain_of(bad)


def test_the_best_mx_decides_and_a_tenant_claims_a_gateway_domain() -> None:
    none = Tenant("not-found")
    found = Tenant("found", "6f0c1b2a-0000-4000-8000-000000000001", "global", provider="microsoft")
    assert classify(Lookup("ok", (Mx(0, "contoso-com.mail.protection.outlook.com"),)), none)[0] == "microsoft"
    assert classify(Lookup("ok", (Mx(0, "contoso-com.b-v1.mx.microsoft"),)), none)[0] == "microsoft"
    assert classify(Lookup("ok", (Mx(1, "smtp.google.com"),)), found)[0] == "google"  # Entra used for SSO only
    gateway = Lookup("ok", (Mx(10, "eu-smtp-inbound-1.mimecast.com"),))
    assert classify(gateway, none) == (None, "MX eu-smtp-inbound-1.mimecast.com is neither Microsoft 365 nor "
                                             "Google Workspace")
    provider, why = classify(gateway, found)
    assert provider == "microsoft" and "gateway" in why
    assert classify(Lookup("servfail", detail="x"), none)[0] is None  # a failed lookup never guesses


def test_submission_comes_from_the_provider_then_from_srv(microsoft_cloud: Cloud) -> None:
    clouds = {"global": replace(microsoft_cloud, name="global", smtp="smtp.office365.com:587"),
              "usgovhigh": replace(microsoft_cloud, name="usgovhigh", smtp="smtp.office365.us:587")}
    no_mx: Lookup[Mx] = Lookup("ok")
    owners = {"microsoft": TenantLookup(clouds)}
    srv = Lookup("ok", (Srv(10, 0, 2525, "backup.other.test."), Srv(0, 5, 587, "mail.other.test.")))
    assert submission_for("microsoft", Tenant("found", "x", "usgovhigh"), no_mx, srv, owners).target == \
        "smtp.office365.us:587"  # type: ignore[union-attr]
    gov_mx = Lookup("ok", (Mx(0, "contoso-us.mail.protection.office365.us"),))
    assert submission_for("microsoft", Tenant("error"), gov_mx, srv, owners).target == \
        "smtp.office365.us:587"  # type: ignore[union-attr]
    assert submission_for("google", Tenant("not-found"), no_mx, srv, owners).target == \
        "smtp.gmail.com:587"  # type: ignore[union-attr]
    assert submission_for(None, Tenant("not-found"), no_mx, srv, owners).target == \
        "mail.other.test:587"  # type: ignore[union-attr]
    assert submission_for(None, Tenant("not-found"), no_mx, Lookup("ok", (Srv(0, 0, 0, "."),)), owners) is None


# -- DNS and the OpenID configuration, for real ---------------------------------------------------------

def test_dns_answers_and_failures(dns: tuple[Zones, int]) -> None:
    _zones, port = dns
    d = Discoverer(resolver=resolver_for(port, lifetime=0.5), owners={})
    assert d.mx("contoso.com") == Lookup("ok", (Mx(0, "contoso-com.mail.protection.outlook.com"),))
    assert [r.host for r in d.mx("northwind.test").records] == ["aspmx.l.google.com", "alt1.aspmx.l.google.com"]
    assert d.srv("other.test").records == (Srv(0, 1, 587, "mail.other.test."),)
    assert d.mx("nx.test").status == "nxdomain"
    assert d.mx("broken.test").status == "servfail"
    assert d.mx("slow.test").status == "timeout"
    assert d.srv("contoso.com").status == "nxdomain"
    null = d.mx("nullmx.test")
    assert null.status == "nodata" and "null MX" in null.detail


def test_discovery_of_each_kind_of_domain(dns: tuple[Zones, int], microsoft_fake: FakeMicrosoft) -> None:
    _zones, port = dns
    tenant = microsoft_fake.add_tenant(public_tenant())
    microsoft_fake.add_tenant(replace(public_tenant(), id="0b7f7f2e-5d5c-4a8e-9c51-3b1e8d0c2a10",
                                      domains=("gateway.test",)))
    gov = replace(public_tenant(), id="5a1e7c3d-2b4f-4d6a-8e9c-0f1a2b3c4d5e", domains=("gov.test",),
                  region={"cloud_instance_name": "microsoftonline.us", "tenant_region_scope": "USGov",
                          "tenant_region_sub_scope": "DODCON"})
    microsoft_fake.add_tenant(gov)
    d = Discoverer(resolver=resolver_for(port, lifetime=0.5),
                   owners={"microsoft": TenantLookup(fake_clouds(microsoft_fake))})

    ms = d.discover("contoso.com")
    assert (ms.provider, ms.tenant.id, ms.tenant.cloud) == ("microsoft", tenant.id, "global")
    assert ms.submission is not None and ms.submission.target == f"{SMTP_HOST}:9"

    google = d.discover("fabrikam.com")
    assert (google.provider, google.tenant.status) == ("google", "not-found")
    assert google.submission is not None and google.submission.target == "smtp.gmail.com:587"

    gateway = d.discover("gateway.test")
    assert gateway.provider == "microsoft" and "mimecast" in gateway.basis

    assert d.discover("gov.test").tenant.cloud == "usgovhigh"

    other = d.discover("other.test")
    assert other.provider is None and other.submission is not None
    assert (other.submission.target, other.submission.source) == ("mail.other.test:587",
                                                                   "the domain's _submission._tcp SRV record")
    assert d.discover("nosubmit.test").notes  # SRV "." = no submission service

    for name in ("nx.test", "broken.test"):
        failed = d.discover(name)
        assert failed.provider is None and failed.submission is None
    # the unknown domains were asked of both clouds (worldwide, then 21Vianet), never of anyone else
    asked = {c.tenant for c in microsoft_fake.calls("oidc")}
    assert {"contoso.com", "fabrikam.com", "other.test", "nx.test"} <= asked


def test_an_unreadable_openid_configuration_is_an_error_not_a_tenant(microsoft_fake: FakeMicrosoft) -> None:
    from tests.microsoft.fake import Reply

    microsoft_fake.fault = lambda call: Reply(200, {"issuer": "x"}) if call.api == "oidc" else None
    got = Discoverer(resolver=resolver_for(9, 0.1), owners={"microsoft": TenantLookup(fake_clouds(microsoft_fake))}
                     ).tenant("contoso.com")
    assert got.status == "error" and "token_endpoint" in got.detail
    microsoft_fake.fault = lambda call: Reply(503, b"<html>busy</html>") if call.api == "oidc" else None
    got = Discoverer(resolver=resolver_for(9, 0.1), owners={"microsoft": TenantLookup(fake_clouds(microsoft_fake))}
                     ).tenant("contoso.com")
    assert got.status == "error" and "503" in got.detail


# -- the command -----------------------------------------------------------------------------------------

class NetworkGuard:
    """Refuses every name lookup and connection that is not to loopback (or, with none_at_all, any)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, none_at_all: bool = False) -> None:
        self.none_at_all = none_at_all
        self.seen: list[str] = []
        real_getaddrinfo, real_connect, real_sendto = socket.getaddrinfo, socket.socket.connect, socket.socket.sendto

        def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
            self._check(str(host))
            return real_getaddrinfo(host, *args, **kw)

        def connect(sock: socket.socket, address: Any) -> Any:
            self._check(str(address[0]) if isinstance(address, tuple) else "unix")
            return real_connect(sock, address)

        def sendto(sock: socket.socket, data: bytes, *args: Any) -> Any:
            self._check(str(args[-1][0]))
            return real_sendto(sock, data, *args)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "sendto", sendto)

    def _check(self, host: str) -> None:
        self.seen.append(host)
        if self.none_at_all:
            raise AssertionError(f"--offline looked up or connected to {host}")
        if host in ("localhost", "unix"):
            return
        try:
            loopback = ipaddress.ip_address(host.split("%")[0]).is_loopback
        except ValueError:
            loopback = False
        assert loopback, f"a lookup or connection left the machine: {host}"


def test_offline_makes_no_lookup_at_all(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    guard = NetworkGuard(monkeypatch, none_at_all=True)
    with pytest.raises(SystemExit) as info:
        main(["check", "jobs@contoso.com", "--offline"])
    out = capsys.readouterr().out
    assert info.value.code == 3 and guard.seen == []
    assert "not looked up (--offline)" in out and "Not checked:" in out and "preflight explain" in out


def check(address: str, port: int, smtp_port: int, pki: Pki, **kw: Any) -> AddressCheck:
    discoverer = Discoverer(resolver=resolver_for(port, lifetime=0.5))
    return AddressCheck(address=address, discoverer=discoverer, probe_resolver=discoverer.addresses,
                        ca_file=pki.ca_file, timeout=5.0, **kw)


@pytest.fixture
def world(dns: tuple[Zones, int], microsoft_fake: FakeMicrosoft, pki: Pki, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """DNS, the fake Entra ID/Graph/Exchange as the global cloud, and an Exchange-like SMTP server."""
    _zones, port = dns
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("NO_COLOR", "1")
    leaf = pki.ca.issue_cert(SMTP_HOST)
    with smtp_server(pki, leaf=leaf) as smtp:
        monkeypatch.setenv(EXTRA_CLOUDS_ENV, str(clouds_file(microsoft_fake, tmp_path / "clouds.toml", smtp.port)))
        yield {"dns": port, "smtp": smtp.port, "fake": microsoft_fake, "pki": pki}


def test_a_microsoft_address_without_a_sign_in_gets_discovery_and_probe_and_is_never_prompted(
        world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    tenant = world["fake"].add_tenant(public_tenant())
    guard = NetworkGuard(monkeypatch)
    asked: list[str] = []
    req = check("jobs@contoso.com", world["dns"], world["smtp"], world["pki"], can_ask=lambda: False,
                ask=lambda q: asked.append(q) or True)
    code = run_address_check(req)
    out = capsys.readouterr().out
    assert code == 3 and asked == []  # stdin is no terminal: no question, no sign-in
    assert "Microsoft 365 (MX contoso-com.mail.protection.outlook.com)" in out
    assert f"Tenant      {tenant.id} (global cloud)" in out
    assert f"Submission  {SMTP_HOST}:{world['smtp']} with STARTTLS" in out
    assert "250-AUTH" in out or "AUTH" in out  # the probe's transcript ran against the local server
    assert "no cached sign-in for contoso.com; run `preflight login microsoft --tenant contoso.com`" in out
    assert world["fake"].calls("devicecode") == []
    assert guard.seen and all(h in ("127.0.0.1", "localhost") for h in guard.seen)


def test_agreeing_signs_in_through_the_public_clients_and_runs_the_checks(
        world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from preflight_providers.microsoft.auth import signin_data

    fake = world["fake"]
    tenant = fake.add_tenant(public_tenant())
    NetworkGuard(monkeypatch)
    req = check("alice@contoso.com", world["dns"], world["smtp"], world["pki"], can_ask=lambda: True,
                ask=lambda _q: True)
    code = run_address_check(req)
    captured = capsys.readouterr()
    public = signin_data()["public"]
    assert [c.parameters["client_id"] for c in fake.calls("devicecode")] == [public["graph_client_id"],
                                                                             public["exchange_client_id"]]
    assert f"Signed in as {tenant.device_user}" in captured.err
    assert "alice@contoso.com" in captured.out and code in (0, 1, 3)
    assert "Tenant settings not checked" not in captured.out

    # The next run finds the cached sign-in and asks nobody; a JSON report keeps stdout to itself.
    again = check("alice@contoso.com", world["dns"], world["smtp"], world["pki"], can_ask=lambda: False,
                  fmt=Format.json)
    assert run_address_check(again) == code
    assert len(fake.calls("devicecode")) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["targets"][0]["tenant"] and "Probing" in captured.err


def test_an_other_provider_address_is_probed_at_its_srv_host(
        world: dict[str, Any], dns: tuple[Zones, int], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    zones_, _port = dns
    zones_.add("_submission._tcp.other.test", "SRV", f"0 5 {world['smtp']} {SMTP_HOST}.")
    NetworkGuard(monkeypatch)
    code = run_address_check(check("jobs@other.test", world["dns"], world["smtp"], world["pki"],
                                   can_ask=lambda: False))
    out = capsys.readouterr().out
    assert "another provider or unknown (MX mx.other.test is neither" in out
    assert f"Probing {SMTP_HOST}:{world['smtp']}" in out
    assert "is not served by Microsoft 365 or Google Workspace" in out and code == 3


def test_a_domain_whose_dns_fails_says_so_and_probes_nothing(
        world: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    NetworkGuard(monkeypatch)
    code = run_address_check(check("jobs@broken.test", world["dns"], world["smtp"], world["pki"],
                                   can_ask=lambda: False))
    out = capsys.readouterr().out
    assert "the MX lookup failed (servfail" in out and "Probing" not in out and code == 3


def test_bad_addresses_are_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("contoso.com", "jobs@@contoso.com", "jobs@contoso"):
        with pytest.raises(SystemExit) as info:
            main(["check", bad, "--offline"])
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err, err


def test_the_provider_subcommands_still_work(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["check", "microsoft", "--help"])
    assert info.value.code == 0 and "--tenant" in capsys.readouterr().out


def test_a_failed_sign_in_is_one_line_with_what_the_service_echoed_masked(
        world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fake = world["fake"]
    fake.add_tenant(public_tenant())
    NetworkGuard(monkeypatch)
    # A token the service echoes back (masked by its shape) and a secret this run already knows (by its value).
    echoed = unsigned_jwt({"aud": "https://graph.fake.test", "sentinel": "S3NT1NEL-DISCOVERY", "tid": "x"})
    known = "opaqueSENTINELdiscovery4f9a8b7c6d5e"
    fake.fault = lambda call: Reply(400, {"error": "invalid_request", "error_description": (
        f"AADSTS9000: you sent {echoed} and {known}")}) if call.api == "devicecode" else None
    req = check("jobs@contoso.com", world["dns"], world["smtp"], world["pki"], can_ask=lambda: True,
                ask=lambda _q: True)
    secrets = RunSecrets()
    secrets.add(known)
    with run_scope(secrets):
        code = run_address_check(req)
    out, err = capsys.readouterr()
    line = next(line for line in out.splitlines() if "sign-in failed" in line)
    assert code == 4 and line.startswith("Tenant settings not checked: sign-in failed: ") and "AADSTS9000" in line
    assert_clean_run(out, err, [echoed, known])
