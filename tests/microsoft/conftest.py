"""Fixtures for the Microsoft sign-in and collector tests: a TLS-serving fake of Entra ID, Graph and
Exchange (tests/microsoft/fake.py) that the real msal and requests talk to, and its cloud entry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from preflight_providers.microsoft.auth import AuthMethod, MicrosoftSignIn, SignInSettings
from preflight_providers.microsoft.clouds import EXTRA_CLOUDS_ENV, Cloud, get_cloud
from tests.microsoft.fake import App, FakeMicrosoft, FakeTenant

FIXTURES = Path(__file__).parent / "fixtures"
CLIENT_ID = "3f6b1c2d-4e5a-4b7c-8d9e-0a1b2c3d4e5f"
SECRET = "Qx8~fake.client-secret_VALUE-1234567890"
SECRET_ENV = "PF_TEST_SECRET"  # where `--client-secret-env` finds SECRET


def load_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def fixture_names() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.json"))


def tenant_for(snapshot: dict[str, Any], **app: Any) -> FakeTenant:
    """A fake tenant serving this snapshot, with our app registered (client secret by default)."""
    tenant = snapshot.get("tenant") or {}
    domains = tuple(d for d in (tenant.get("domain"),) if d)
    registered = App(CLIENT_ID, **({"secret": SECRET} | app))
    return FakeTenant(id=str(tenant.get("id")), domains=domains, snapshot=snapshot, apps={CLIENT_ID: registered})


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """SECRET in the environment variable SECRET_ENV, for a command run with `--client-secret-env`."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    return SECRET_ENV


@pytest.fixture(scope="session")
def microsoft_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def microsoft_ca_file(microsoft_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    microsoft_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def microsoft_fake(microsoft_ca: trustme.CA, microsoft_ca_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
            ) -> Iterator[FakeMicrosoft]:
    """The fake over HTTPS; requests (ours and msal's) trust its CA; cloud "fake" points at it."""
    fake = FakeMicrosoft(tls=microsoft_ca).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(microsoft_ca_file))
    monkeypatch.setenv(EXTRA_CLOUDS_ENV, str(fake.cloud_file(tmp_path / "clouds.toml")))
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def microsoft_cloud(microsoft_fake: FakeMicrosoft) -> Cloud:
    return get_cloud("fake")


def settings(cloud: Cloud, tenant: str, cache: Path, auth: AuthMethod = AuthMethod.SECRET, **kw: Any
             ) -> SignInSettings:
    env = {"client_secret_env": SECRET_ENV} if auth is AuthMethod.SECRET else {}
    return SignInSettings(tenant=tenant, client_id=CLIENT_ID, cloud=cloud, auth=auth, cache_dir=cache, **(env | kw))


def signed_in(cloud: Cloud, tenant: str, cache: Path, **kw: Any) -> MicrosoftSignIn:
    """App-only sign-in with the client secret, through the real msal, against the fake."""
    signin = MicrosoftSignIn(settings(cloud, tenant, cache, **kw), environ={SECRET_ENV: SECRET},
                             persistence=None, out=lambda _m: None)
    signin.sign_in()
    return signin


def audit_inventory(domain: str) -> str:
    """An audit inventory of one customer signing in to the fake with the client secret in SECRET_ENV."""
    return (f'[customer.alpha]\nprovider = "microsoft"\ntenant = "{domain}"\nauth = "secret"\n'
            f'client_id = "{CLIENT_ID}"\nclient_secret_env = "{SECRET_ENV}"\ncloud = "fake"\n'
            f'mailboxes = ["jobs@{domain}"]\n')
