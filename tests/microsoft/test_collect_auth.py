"""Sign-in with the real msal against the fake Entra ID: secrets, certificates, device code, the token cache."""

from __future__ import annotations

import datetime as dt
import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from msal_extensions import FilePersistence

from preflight.errors import InputError, SignInError
from preflight_providers.microsoft import inputs, tokencache, tokenlint
from preflight_providers.microsoft.auth import AuthMethod, MicrosoftSignIn, TokenError, claims, describe
from preflight_providers.microsoft.clouds import EXTRA_CLOUDS_ENV, Cloud, get_cloud, load_clouds
from tests.microsoft.conftest import CLIENT_ID, SECRET, load_fixture, settings, tenant_for
from tests.microsoft.fake import FakeMicrosoft, FakeTenant

pytestmark = pytest.mark.slow

DOMAIN = "contoso.com"


def make_cert(tmp_path: Path, name: str = "app") -> tuple[Path, Path, bytes, Any]:
    """A self-signed certificate as an Entra app would hold it: (PEM key+cert, PFX, cert PEM, key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"preflight-{name}")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    pem = tmp_path / f"{name}.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()) + cert_pem)
    pfx = tmp_path / f"{name}.pfx"
    pfx.write_bytes(pkcs12.serialize_key_and_certificates(
        b"app", key, cert, None, serialization.BestAvailableEncryption(b"pfx-password")))
    return pem, pfx, cert_pem, key


def add(fake: FakeMicrosoft, **app: Any) -> FakeTenant:
    return fake.add_tenant(tenant_for(load_fixture("oauth-app-ready"), **app))


def signin(cloud: Cloud, tmp_path: Path, auth: AuthMethod = AuthMethod.SECRET, *, environ: dict[str, str] | None = None,
           out: list[str] | None = None, **kw: Any) -> MicrosoftSignIn:
    lines = out if out is not None else []
    return MicrosoftSignIn(settings(cloud, DOMAIN, tmp_path / "cache", auth, **kw),
                           environ={"PF_TEST_SECRET": SECRET} if environ is None else environ,
                           persistence=kw.pop("persistence", None), out=lines.append)


# -- client credentials -------------------------------------------------------------------------------


def test_client_secret_gets_graph_and_exchange_tokens(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                       tmp_path: Path) -> None:
    tenant = add(microsoft_fake)
    s = signin(microsoft_cloud, tmp_path)
    graph = claims(s.sign_in())
    exchange = claims(s.token("exchange"))
    assert graph["aud"] == "https://graph.fake.test" and "Policy.Read.All" in graph["roles"]
    assert exchange["aud"] == "https://outlook.fake.test" and exchange["roles"] == ["Exchange.ManageAsApp"]
    assert s.tenant_id == tenant.id
    assert s.token("graph") == s.token("graph")  # held in memory, not asked for again
    assert len(microsoft_fake.calls("token")) == 2


def test_a_wrong_secret_is_a_sign_in_error_that_never_shows_the_secret(microsoft_fake: FakeMicrosoft,
                                                                       microsoft_cloud: Cloud, tmp_path: Path) -> None:
    add(microsoft_fake)
    s = signin(microsoft_cloud, tmp_path, environ={"PF_TEST_SECRET": "not-the-secret-value"})
    with pytest.raises(SignInError) as info:
        s.sign_in()
    assert "invalid_client: AADSTS7000215: Invalid client secret provided" in str(info.value)
    assert "not-the-secret-value" not in str(info.value) and "Trace ID" not in str(info.value)


def test_an_unknown_tenant_is_a_sign_in_error(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                              tmp_path: Path) -> None:
    s = MicrosoftSignIn(settings(microsoft_cloud, "fabrikam.com", tmp_path), environ={"PF_TEST_SECRET": SECRET},
                        persistence=None)
    with pytest.raises(SignInError, match=r"tenant fabrikam.com is not known to 127.0.0.1:\d+ \(check --tenant and"):
        s.sign_in()


def test_the_secret_comes_only_from_the_environment_or_a_prompt(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                                tmp_path: Path) -> None:
    add(microsoft_fake)
    with pytest.raises(InputError, match="--client-secret-env PF_TEST_SECRET: that environment variable is not set"):
        signin(microsoft_cloud, tmp_path, environ={}).sign_in()
    unattended = MicrosoftSignIn(settings(microsoft_cloud, DOMAIN, tmp_path, client_secret_env=None), environ={},
                                 persistence=None, can_prompt=lambda: False)
    with pytest.raises(InputError, match="pass --client-secret-env NAME"):
        unattended.sign_in()
    asked: list[str] = []
    prompted = MicrosoftSignIn(settings(microsoft_cloud, DOMAIN, tmp_path, client_secret_env=None), environ={},
                               persistence=None, can_prompt=lambda: True,
                               prompt=lambda label: asked.append(label) or SECRET)
    prompted.sign_in()
    assert asked == ["Client secret"]


@pytest.mark.parametrize("form", ["pem", "pfx"])
def test_a_certificate_signs_the_client_assertion(form: str, microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                  tmp_path: Path) -> None:
    pem, pfx, cert_pem, _key = make_cert(tmp_path)
    add(microsoft_fake, secret=None, certificate_pem=cert_pem)
    env = {"PFX_PASSWORD": "pfx-password"} if form == "pfx" else {}
    s = signin(microsoft_cloud, tmp_path, AuthMethod.CERTIFICATE, environ=env,
               certificate=pem if form == "pem" else pfx,
               certificate_password_env="PFX_PASSWORD" if form == "pfx" else None)
    assert claims(s.sign_in())["appid"] == CLIENT_ID
    form_sent = microsoft_fake.calls("token")[0].parameters
    assert form_sent["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert "client_secret" not in form_sent


def test_a_certificate_the_app_does_not_know_is_refused(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                        tmp_path: Path) -> None:
    pem, _pfx, _cert, _key = make_cert(tmp_path, "stranger")
    _p, _x, registered, _k = make_cert(tmp_path, "registered")
    add(microsoft_fake, secret=None, certificate_pem=registered)
    with pytest.raises(SignInError, match="AADSTS700027"):
        signin(microsoft_cloud, tmp_path, AuthMethod.CERTIFICATE, environ={}, certificate=pem).sign_in()


def test_certificate_problems_are_input_errors(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                               tmp_path: Path) -> None:
    pem, pfx, cert_pem, _key = make_cert(tmp_path)
    add(microsoft_fake, secret=None, certificate_pem=cert_pem)
    cases = [
        ({}, tmp_path / "absent.pem", None, "cannot read file"),
        ({"PW": "wrong"}, pfx, "PW", "wrong password"),
        ({}, pfx, None, "the key is encrypted or unreadable; pass --certificate-password-env NAME"),
        ({"PW": "x"}, pem, "PW", "the key is not encrypted"),
    ]
    only_cert = tmp_path / "cert-only.pem"
    only_cert.write_bytes(cert_pem)
    cases.append(({}, only_cert, None, "needs both the private key and the certificate"))
    for environ, path, env_name, message in cases:
        s = signin(microsoft_cloud, tmp_path, AuthMethod.CERTIFICATE, environ=environ, certificate=path,
                   certificate_password_env=env_name, interactive=False)
        with pytest.raises(InputError, match=message):
            s.sign_in()


# -- delegated: device code ---------------------------------------------------------------------------


def test_device_code_signs_in_once_then_silently_per_account(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                              tmp_path: Path) -> None:
    tenant = add(microsoft_fake)
    out: list[str] = []
    first = signin(microsoft_cloud, tmp_path, AuthMethod.DEVICE_CODE, out=out)
    token = claims(first.sign_in())
    assert token["scp"] == "Policy.Read.All Directory.Read.All" and token["upn"] == tenant.device_user
    assert any("enter the code FAKE" in line for line in out)  # msal's own device-code message
    assert claims(first.token("exchange"))["scp"] == "Exchange.Manage"  # from the refresh token, no prompt
    cache_dir = tmp_path / "cache"
    assert tokencache.cached_accounts(cache_dir) == [tenant.device_user]
    assert not (cache_dir / ".signing-in.json").exists()

    again = signin(microsoft_cloud, tmp_path, AuthMethod.DEVICE_CODE, out=out)
    again.sign_in()
    assert len(microsoft_fake.calls("devicecode")) == 1  # the second run needed nobody at a browser
    assert again.username == tenant.device_user


def test_device_code_refused_by_conditional_access_says_so(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                             tmp_path: Path) -> None:
    add(microsoft_fake).device_code_blocked = True
    with pytest.raises(SignInError, match="AADSTS53003.*blocks device code flow.*--auth browser"):
        signin(microsoft_cloud, tmp_path, AuthMethod.DEVICE_CODE).sign_in()
    # a client-credentials refusal is not about device code flow
    microsoft_fake.tenants[DOMAIN].apps[CLIENT_ID].secret = "another"
    with pytest.raises(SignInError) as info:
        signin(microsoft_cloud, tmp_path).sign_in()
    assert "device code" not in str(info.value)


def test_without_exchange_consent_only_exchange_is_refused(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                           tmp_path: Path) -> None:
    add(microsoft_fake, delegated={"graph": ("Policy.Read.All", "Directory.Read.All")})
    s = signin(microsoft_cloud, tmp_path, AuthMethod.DEVICE_CODE)
    s.sign_in()
    with pytest.raises(TokenError) as info:
        s.token("exchange")
    assert info.value.code == "invalid_grant" and "AADSTS65001" in info.value.message
    assert info.value.to_error()["error"]["status"] == 401


def test_unattended_runs_never_prompt(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud, tmp_path: Path) -> None:
    add(microsoft_fake)
    with pytest.raises(SignInError, match=f"run `preflight login microsoft --tenant [^ ]+ --client-id {CLIENT_ID} "
                                          "--cloud fake` first"):
        signin(microsoft_cloud, tmp_path, AuthMethod.DEVICE_CODE, interactive=False).sign_in()
    assert microsoft_fake.calls("devicecode") == []


def test_several_cached_accounts_need_a_choice(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                               tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    for name in ("a@contoso.com", "b@contoso.com"):
        tokencache.write_private(tokencache.account_file(cache_dir, name), "{}")
    with pytest.raises(InputError, match="a@contoso.com, b@contoso.com; choose one with --account"):
        signin(microsoft_cloud, tmp_path, AuthMethod.DEVICE_CODE).sign_in()


# -- the token cache ----------------------------------------------------------------------------------


def test_the_cache_file_is_owner_only_from_the_start(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                     tmp_path: Path) -> None:
    add(microsoft_fake)
    s = signin(microsoft_cloud, tmp_path)
    s.sign_in()
    path = tmp_path / "cache" / f"app-{CLIENT_ID}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    assert json.loads(path.read_text())["AccessToken"]  # msal's serialised cache
    # The next run reads the cached token instead of asking Entra again.
    signin(microsoft_cloud, tmp_path).sign_in()
    assert len(microsoft_fake.calls("token")) == 1


def test_a_cache_readable_by_others_is_tightened_before_use(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text("{}")
    path.chmod(0o644)
    warnings: list[str] = []
    tokencache.TokenCache(path, persistence=None, warn=warnings.append).open()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert warnings and "was readable by others" in warnings[0]


def test_without_a_keyring_the_cache_is_plain_0600_and_says_so_once(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def no_keyring(_location: str) -> Any:
        raise ImportError("Unable to import module 'gi'")

    monkeypatch.setattr(tokencache, "_TOLD", set())
    warnings: list[str] = []
    for name in ("t.json", "u.json"):  # a second tenant's cache in the same run says nothing new
        tokencache.TokenCache(tmp_path / name, persistence=no_keyring, warn=warnings.append).open()
    assert len(warnings) == 1
    assert "not encrypted on this machine (Unable to import module 'gi')" in warnings[0]
    assert "mode 0600" in warnings[0] and "To have them encrypted" in warnings[0]


class KeyringStandIn(FilePersistence):  # type: ignore[misc]
    """msal-extensions' persistence interface; a real keyring (libsecret, Keychain, DPAPI) cannot run here."""

    is_encrypted = True


def test_an_encrypted_persistence_is_used_when_it_works(microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud,
                                                        tmp_path: Path) -> None:
    add(microsoft_fake)
    warnings: list[str] = []
    s = MicrosoftSignIn(settings(microsoft_cloud, DOMAIN, tmp_path / "cache"), environ={"PF_TEST_SECRET": SECRET},
                        persistence=KeyringStandIn, out=warnings.append)
    s.sign_in()
    assert s.cache is not None and s.cache.encrypted and "(encrypted)" in s.cache_location
    assert warnings == []


def test_an_unreadable_cache_is_replaced_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    tokencache.write_private(path, '{"AccessToken": ')
    warnings: list[str] = []
    cache = tokencache.TokenCache(path, persistence=None, warn=warnings.append).open()
    assert list(cache.search("AccessToken")) == [] and "is unreadable" in warnings[0]


def test_clearing_a_cache_removes_it(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    tokencache.write_private(path, "{}")
    assert tokencache.TokenCache(path, persistence=None).clear() == [path]
    assert not path.exists()


# -- small pieces -------------------------------------------------------------------------------------


def test_error_replies_are_described_by_their_first_line() -> None:
    reply = {"error": "invalid_client", "error_description": "AADSTS7000222: The provided client secret keys "
             "are expired.\r\nTrace ID: x\r\nCorrelation ID: y"}
    assert describe(reply) == ("invalid_client", "AADSTS7000222: The provided client secret keys are expired.")
    assert describe(None) == ("no_token", "no token was returned")
    assert claims("not-a-jwt") == {} and claims("a.!!!.c") == {}


def test_clouds_are_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(EXTRA_CLOUDS_ENV, raising=False)
    clouds = load_clouds()
    assert set(clouds) == {"global", "usgov", "usgovhigh", "dod", "china"}
    assert clouds["dod"].graph_url == "https://dod-graph.microsoft.us/v1.0"
    assert clouds["usgovhigh"].exchange_resource == "https://outlook.office365.us"
    assert clouds["usgov"].authority("contoso.com") == "https://login.microsoftonline.com/contoso.com"
    # 21Vianet: Exchange Online is partner.outlook.cn (CSS-Exchange Get-CloudServiceEndpoint.ps1), and the
    # probe's token lint accepts that audience for the SMTP tokens --token-from gets there
    assert clouds["china"].exchange_url == "https://partner.outlook.cn"
    assert clouds["china"].exchange_scope == "https://partner.outlook.cn/.default"
    audiences = tokenlint.rules()["audiences"]
    assert all(c.exchange_resource in audiences for c in clouds.values())
    with pytest.raises(InputError, match="unknown cloud 'mars'"):
        get_cloud("mars")
    bad = tmp_path / "bad.toml"
    bad.write_text('[x]\nlogin = "h"\n')
    monkeypatch.setenv(EXTRA_CLOUDS_ENV, str(bad))
    with pytest.raises(InputError, match="cloud 'x' needs the string fields"):
        load_clouds()


@pytest.mark.parametrize(("call", "message"), [
    (lambda: inputs.tenant("common tenant"), "is not a tenant id"),
    (lambda: inputs.guid("1234", "--client-id"), "--client-id: '1234' is not a GUID"),
    (lambda: inputs.address("jobs@", "--mailbox"), "--mailbox: 'jobs@' is not an email address"),
    (lambda: inputs.cidr("10.0.0.0/33"), "--sender-ip: '10.0.0.0/33' is not an IP address"),
    (lambda: inputs.from_addresses(["x@contoso.com=y@contoso.com"], ["a@contoso.com"]), "is not one of the --mailbox"),
    (lambda: inputs.from_addresses(["x@contoso.com", "y@contoso.com"], ["a@contoso.com"]), "or MAILBOX=ADDR pairs"),
])
def test_bad_input_is_one_clear_line(call: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        call()


def test_inputs_are_normalised() -> None:
    assert inputs.tenant("Contoso.OnMicrosoft.com") == "contoso.onmicrosoft.com"
    assert inputs.tenant("0E48C885-F1C8-5B09-A252-E0617BA01B3E") == "0e48c885-f1c8-5b09-a252-e0617ba01b3e"
    assert inputs.cidr("203.0.113.7") == "203.0.113.7/32"
    assert inputs.from_addresses(["noreply@contoso.com", "b@contoso.com=x@contoso.com"],
                                 ["a@contoso.com", "b@contoso.com"]) == {
        "a@contoso.com": "noreply@contoso.com", "b@contoso.com": "x@contoso.com"}


class _NoBindings:
    """A meta-path finder for which msal-extensions' keyring bindings do not import, counting the attempts."""

    def __init__(self) -> None:
        self.tried = 0

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "msal_extensions.libsecret":
            self.tried += 1
            raise ImportError("Unable to import module 'gi'")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="msal-extensions imports its bindings on Linux")
def test_keyring_bindings_that_do_not_import_are_tried_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    finder = _NoBindings()
    monkeypatch.delitem(sys.modules, "msal_extensions.libsecret", raising=False)
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    tokencache._keyring_unusable.cache_clear()
    try:
        for location in ("a.json", "b.json"):  # two tenants' caches
            with pytest.raises(ImportError, match="^Unable to import module 'gi'$"):
                tokencache._encrypted_persistence(location)
    finally:
        tokencache._keyring_unusable.cache_clear()
    assert finder.tried == 1
