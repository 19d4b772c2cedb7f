"""msal's HTTP client (auth._TimeoutSession over preflight.transport): what reaches Entra ID, how replies are
decoded, and how a failed exchange is named, as requests named it before."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest
import requests
import trustme
from urllib3 import HTTPHeaderDict

from preflight.errors import SignInError
from preflight.transport import Reply
from preflight_providers.microsoft.auth import MicrosoftSignIn, _Reply
from preflight_providers.microsoft.clouds import Cloud
from tests.microsoft.conftest import SECRET, SECRET_ENV, settings, signed_in
from tests.microsoft.fake import FakeMicrosoft

DOMAIN = "contoso.com"


def _tenant(fake: FakeMicrosoft) -> None:
    from tests.microsoft.conftest import load_fixture, tenant_for

    fake.add_tenant(tenant_for(load_fixture("oauth-app-ready")))


def _domain() -> str:
    from tests.microsoft.conftest import load_fixture

    return str(load_fixture("oauth-app-ready")["tenant"]["domain"])


def test_the_token_request_is_a_form_post_with_the_client_credentials(
        microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud, tmp_path: Path) -> None:
    _tenant(microsoft_fake)
    signin = signed_in(microsoft_cloud, _domain(), tmp_path / "cache")
    signin.token("exchange")
    tokens = [c for c in microsoft_fake.log if c.api == "token"]
    assert [c.parameters["scope"] for c in tokens] == [microsoft_cloud.graph_scope, microsoft_cloud.exchange_scope]
    assert all(c.parameters["grant_type"] == "client_credentials" and c.parameters["client_secret"] == SECRET
               for c in tokens)
    sent = [h for api, h in microsoft_fake.headers_seen if api == "token"]
    assert len(sent) == 2
    for headers in sent:
        lower = {k.lower(): v for k, v in headers.items()}
        # Entra ID reads the token request's parameters only from a form body (RFC 6749 section 4.4.2).
        assert lower["content-type"] == "application/x-www-form-urlencoded"
        assert int(lower["content-length"]) > 0
        assert "cookie" not in lower


def test_the_openid_configuration_is_read_with_a_get_and_no_body(
        microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud, tmp_path: Path) -> None:
    _tenant(microsoft_fake)
    signed_in(microsoft_cloud, _domain(), tmp_path / "cache")
    oidc = [c for c in microsoft_fake.log if c.api == "oidc"]
    assert [c.method for c in oidc] == ["GET"]
    (headers,) = [h for api, h in microsoft_fake.headers_seen if api == "oidc"]
    assert "content-length" not in {k.lower() for k in headers}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _signin(cloud: Cloud, tmp_path: Path) -> MicrosoftSignIn:
    return MicrosoftSignIn(settings(cloud, DOMAIN, tmp_path / "cache"), environ={SECRET_ENV: SECRET},
                           persistence=None, out=lambda _m: None)


def test_a_sign_in_service_that_refuses_the_connection_is_named_with_the_kind_of_failure(
        microsoft_cloud: Cloud, tmp_path: Path) -> None:
    login = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(SignInError) as caught:
        _signin(dataclasses.replace(microsoft_cloud, login=login), tmp_path).sign_in()
    assert str(caught.value) == f"cannot reach {login} (ConnectionError)"


def test_a_sign_in_service_with_an_untrusted_certificate_is_a_tls_failure(
        microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))  # read when the sign-in is made, as requests did
    _tenant(microsoft_fake)
    with pytest.raises(SignInError) as caught:
        _signin(microsoft_cloud, tmp_path).sign_in()
    assert str(caught.value) == f"cannot reach {microsoft_cloud.login} (SSLError)"
    assert not microsoft_fake.log, "no request got through"


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", '{"error": "invalid_client", "error_description": "caf\u00e9"}'.encode()),
    ("application/json; charset=utf-8", b'{"a": "\xff"}'),
    ("application/json; charset=latin-1", '{"a": "caf\u00e9"}'.encode("latin-1")),
    ("text/html", "<p>caf\u00e9</p>".encode("latin-1")),
    ("text/html; charset='utf-8'", "<p>caf\u00e9</p>".encode()),
    ("application/json; charset=no-such-codec", b'{"a": 1}'),
    (None, b'{"access_token": "x"}'),
    (None, "<html>\u00e9t\u00e9 \u00e0 Paris, ceci est une page d'erreur</html>".encode("cp1252")),
    ("application/octet-stream", b""),
])
def test_a_reply_reads_as_the_text_requests_would_have_given_msal(content_type: str | None, body: bytes) -> None:
    headers = HTTPHeaderDict({"Content-Type": content_type} if content_type else {})
    theirs = requests.models.Response()
    theirs._content = body
    theirs.headers = requests.structures.CaseInsensitiveDict(headers)
    theirs.encoding = requests.utils.get_encoding_from_headers(theirs.headers)
    ours = _Reply(Reply(200, headers, body, "https://login.example/t/oauth2/v2.0/token"))
    assert ours.text == theirs.text
    assert ours.status_code == 200 and ours.headers.get("content-type") == content_type
