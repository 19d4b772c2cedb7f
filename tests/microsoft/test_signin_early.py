"""An audit's app-only sign-in: the Exchange token is asked for while Graph's is, the cache saved once, unsynced."""

from __future__ import annotations

import json
import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msal
import pytest

from preflight.errors import SignInError
from preflight.memo import RunMemo
from preflight.model import Method
from preflight.providers import CollectRequest
from preflight_providers.microsoft import tokencache
from preflight_providers.microsoft.auth import AuthMethod, MicrosoftSignIn, TokenError
from preflight_providers.microsoft.clouds import Cloud
from preflight_providers.microsoft.run import collect_request
from tests.microsoft.conftest import CLIENT_ID, SECRET, SECRET_ENV, load_fixture, settings, tenant_for
from tests.microsoft.fake import EXCHANGE_AUDIENCE, Call, FakeMicrosoft, Reply, token_error

HELD = 10.0  # seconds the first token request is held for the second (never reached when they go out together)


def _is_exchange(call: Call) -> bool:
    return EXCHANGE_AUDIENCE in str(call.parameters.get("scope"))


def _request(domain: str, boxes: tuple[str, ...], cache: Path) -> CollectRequest:
    return CollectRequest(settings={"tenant": domain, "client_id": CLIENT_ID, "auth": "secret",
                                    "client_secret_env": SECRET_ENV, "cloud": "fake"},
                          mailboxes=boxes, methods=tuple(Method), cache_dir=cache, memo=RunMemo())


def _signin(cloud: Cloud, cache: Path) -> MicrosoftSignIn:
    return MicrosoftSignIn(settings(cloud, "contoso.com", cache), environ={SECRET_ENV: SECRET}, persistence=None,
                           out=lambda _msg: None)


def test_an_audit_asks_for_both_tokens_at_once_and_saves_its_cache_once(
        microsoft_fake: FakeMicrosoft, tmp_path: Path, secret_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    domain, boxes = str(snapshot["tenant"]["domain"]), tuple(snapshot["mailboxes"])
    lock = threading.Lock()
    held: list[bool] = []  # for the first token request: did the second arrive while it was held?

    def hold_the_first_token_request(call: Call) -> Reply | None:
        with lock:
            first = call.api == "token" and not held
            if first:
                held.append(False)
        if first:
            gate = threading.Event()
            for _ in range(int(HELD / 0.01)):
                if len(microsoft_fake.calls("token")) >= 2:
                    held[0] = True
                    break
                gate.wait(0.01)
        return None

    writes: list[Path] = []
    real_write = tokencache.write_whole
    monkeypatch.setattr(tokencache, "write_whole", lambda path, *a, **kw: (writes.append(path),
                                                                             real_write(path, *a, **kw))[1])
    microsoft_fake.fault = hold_the_first_token_request
    data = collect_request(_request(domain, boxes, tmp_path / "cache"))
    assert held == [True]  # the second token request came while the first was still unanswered
    assert {_is_exchange(c) for c in microsoft_fake.calls("token")} == {True, False}
    assert len(microsoft_fake.calls("token")) == 2
    assert data["org"]["organizationConfig"] == snapshot["org"]["organizationConfig"]  # the Exchange token worked
    path = tmp_path / "cache" / f"app-{CLIENT_ID}.json"
    assert writes == [path]  # one save for both tokens
    assert len(json.loads(path.read_text())["AccessToken"]) == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    microsoft_fake.fault = None
    again = collect_request(_request(domain, boxes, tmp_path / "cache"))  # the next run's tokens: from the cache
    assert len(microsoft_fake.calls("token")) == 2
    data.pop("collected_at"), again.pop("collected_at")
    assert again == data


def test_an_exchange_token_refused_at_sign_in_is_raised_by_the_first_call_for_it(
        microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud, tmp_path: Path) -> None:
    microsoft_fake.add_tenant(tenant_for(load_fixture("oauth-app-ready")))
    microsoft_fake.fault = lambda call: token_error(400, "invalid_scope", "AADSTS1002012", "no such scope") \
        if call.api == "token" and _is_exchange(call) else None
    s = _signin(microsoft_cloud, tmp_path / "cache")
    with ThreadPoolExecutor(2) as threads:
        assert s.sign_in(threads)
    assert len(microsoft_fake.calls("token")) == 2
    with pytest.raises(TokenError, match="AADSTS1002012") as refused:
        s.token("exchange")
    assert refused.value.api == "exchange" and refused.value.code == "invalid_scope"
    assert len(microsoft_fake.calls("token")) == 2  # that first call raised what the sign-in was told
    with pytest.raises(TokenError, match="AADSTS1002012"):
        s.token("exchange")  # a later one asks msal again, as it always did (msal keeps a 400 for a minute)


def test_a_graph_refusal_still_fails_the_sign_in_once_both_answers_are_in(
        microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud, tmp_path: Path) -> None:
    microsoft_fake.add_tenant(tenant_for(load_fixture("oauth-app-ready")))
    microsoft_fake.fault = lambda call: token_error(400, "invalid_scope", "AADSTS1002012", "no such scope") \
        if call.api == "token" and not _is_exchange(call) else None
    s = _signin(microsoft_cloud, tmp_path / "cache")
    with ThreadPoolExecutor(2) as threads, pytest.raises(SignInError, match="AADSTS1002012"):
        s.sign_in(threads)
    assert len(microsoft_fake.calls("token")) == 2  # both asked and answered before sign_in returned


def test_without_threads_the_exchange_token_is_asked_for_when_first_needed(
        microsoft_fake: FakeMicrosoft, microsoft_cloud: Cloud, tmp_path: Path) -> None:
    microsoft_fake.add_tenant(tenant_for(load_fixture("oauth-app-ready")))
    s = _signin(microsoft_cloud, tmp_path / "cache")
    s.sign_in()
    assert [_is_exchange(c) for c in microsoft_fake.calls("token")] == [False]
    s.token("exchange")
    assert [_is_exchange(c) for c in microsoft_fake.calls("token")] == [False, True]


def _changed_cache() -> Any:
    cache = msal.SerializableTokenCache()
    cache.add({"client_id": CLIENT_ID, "scope": ["https://graph.fake.test/.default"],
               "token_endpoint": "https://login.fake.test/t/oauth2/v2.0/token",
               "response": {"access_token": "a" * 40, "expires_in": 3600, "token_type": "Bearer"}, "data": {}})
    return cache


@pytest.mark.parametrize("durable", [True, False])
def test_only_a_durable_cache_is_synced_to_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                durable: bool) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    cache = tokencache.TokenCache(tmp_path / "t" / "app.json", persistence=None, durable=durable)
    cache.open()
    cache._cache = _changed_cache()
    cache.save()
    assert bool(synced) is durable
    assert json.loads((tmp_path / "t" / "app.json").read_text())["AccessToken"]
    assert stat.S_IMODE((tmp_path / "t").stat().st_mode) == 0o700


@pytest.mark.parametrize("auth", [AuthMethod.SECRET, AuthMethod.DEVICE_CODE])
def test_app_only_caches_are_unsynced_and_delegated_ones_synced(microsoft_cloud: Cloud, tmp_path: Path,
                                                                 auth: AuthMethod) -> None:
    s = MicrosoftSignIn(settings(microsoft_cloud, "contoso.com", tmp_path / "cache", auth), persistence=None,
                        environ={SECRET_ENV: SECRET}, out=lambda _msg: None)
    s.build_app = lambda *_a, **_kw: (_ for _ in ()).throw(SignInError("stop here"))  # type: ignore[method-assign]
    with pytest.raises(SignInError, match="stop here"):
        s.sign_in()
    assert s.cache is not None and s.cache.durable is auth.delegated
