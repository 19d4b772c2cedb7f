"""Sign in to Microsoft Entra ID with msal: device code, browser, certificate or client secret.

One msal application object per tenant, on that tenant's own authority (never /common or
/organizations: app-only tokens need the tenant, and a consultant's multi-tenant app must not mix
customers). Tokens stay in memory and in the owner-only token cache; they never reach logs, reports,
snapshots or exception messages.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, wait
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, Literal

import requests

from preflight.datafiles import load_toml
from preflight.deadline import Deadline, time_limit
from preflight.errors import InputError, SignInError, first_line, seconds
from preflight.http import MAX_BODY
from preflight.runsecrets import RunSecrets
from preflight.transport import (
    ACCEPT_ENCODING,
    FAILURES,
    USER_AGENT,
    Reply,
    Transport,
    TransportError,
    encode_params,
    request_url,
)

from . import tokencache
from .clouds import Cloud

Api = Literal["graph", "exchange"]
REFRESH_MARGIN = 300.0  # seconds: renew a token this long before it expires
BROWSER_LOGIN_SECONDS = 300.0  # --auth browser: the whole sign-in in the browser


class AuthMethod(StrEnum):
    DEVICE_CODE = "device-code"
    BROWSER = "browser"
    CERTIFICATE = "certificate"
    SECRET = "secret"

    @property
    def delegated(self) -> bool:
        return self in (AuthMethod.DEVICE_CODE, AuthMethod.BROWSER)


@cache
def signin_data() -> dict[str, Any]:
    return load_toml(__package__ or __name__, "data/signin.toml")


def preload() -> None:
    """What an audit reads once before it forks its workers (PackagedProvider.preload), which each worker would
    otherwise read again: the sign-in facts, and the token cache's encryption libraries (or why they do not load)."""
    import msal_extensions  # noqa: F401  (TokenCache.open imports it for every tenant)

    signin_data()
    tokencache._keyring_unusable()


@dataclass(frozen=True)
class SignInSettings:
    tenant: str
    client_id: str
    cloud: Cloud
    auth: AuthMethod = AuthMethod.DEVICE_CODE
    certificate: Path | None = None
    certificate_password_env: str | None = None
    client_secret_env: str | None = None
    account: str | None = None  # which cached delegated sign-in to use (and the login hint)
    cache_dir: Path | None = None  # this tenant's token cache folder; default: the user cache dir
    interactive: bool = True  # may it prompt (device code, browser, a password)?
    # Without an app registration: client_id is Microsoft's public Graph client and this its Exchange one.
    exchange_client_id: str | None = None

    @property
    def public(self) -> bool:
        return self.exchange_client_id is not None

    @property
    def tenant_cache_dir(self) -> Path:
        if self.cache_dir is not None:
            return self.cache_dir
        return tokencache.tenant_dir(tokencache.default_root(), self.cloud.name, self.tenant)

    def login_command(self) -> str:
        """The `preflight login microsoft` that fills the cache this delegated sign-in reads."""
        parts = ["preflight login microsoft", f"--tenant {self.tenant}"]
        if not self.public:
            parts.append(f"--client-id {self.client_id}")
        if self.cloud.name != "global":
            parts.append(f"--cloud {self.cloud.name}")
        if self.auth is not AuthMethod.DEVICE_CODE:
            parts.append(f"--auth {self.auth.value}")
        if self.account:
            parts.append(f"--account {self.account}")
        return " ".join(parts)

    def scopes(self, api: Api) -> list[str]:
        cloud = self.cloud
        if not self.auth.delegated:
            return [cloud.graph_scope if api == "graph" else cloud.exchange_scope]
        resource = cloud.graph_resource if api == "graph" else cloud.exchange_resource
        return [f"{resource}/{name}" for name in signin_data()["public" if self.public else "delegated"][api]]


def public_settings(tenant: str, cloud: Cloud, **kw: Any) -> SignInSettings:
    """Delegated sign-in through Microsoft's public clients: no app registration (signin.toml [public])."""
    public = signin_data()["public"]
    return SignInSettings(tenant=tenant, client_id=public["graph_client_id"], cloud=cloud,
                          exchange_client_id=public["exchange_client_id"], **kw)


def failure_hint(message: str) -> str:
    """The cause and fix for a refused sign-in, from the AADSTS code in its reply; "" when none is known."""
    from preflight.causes import load_catalogue

    code = re.search(r"\bAADSTS\d+\b", message)
    cause_id = signin_data().get("failures", {}).get(code.group(0)) if code else None
    if cause_id is None:
        return ""
    cause = load_catalogue().get(cause_id)
    return f" [{cause.id}] {cause.title}. Fix: {cause.fix('microsoft')}"


class TokenError(Exception):
    """A token for one API could not be had; the resources behind it are recorded as this error."""

    def __init__(self, api: Api, code: str, message: str) -> None:
        super().__init__(f"{api}: {code}: {message}")
        self.api = api
        self.code = code
        self.message = message

    def to_error(self) -> dict[str, Any]:
        return {"error": {"status": 401, "code": self.code, "message": self.message}}


def describe(result: Mapping[str, Any] | None) -> tuple[str, str]:
    """(error code, first line of the description) of an msal error reply. Entra puts the AADSTS code
    and the reason on the first line; trace and correlation ids follow on later lines."""
    if not result:
        return "no_token", "no token was returned"
    code = str(result.get("error") or "error")
    lines = str(result.get("error_description") or "").strip().splitlines()
    return code, (lines[0].strip() if lines else code)


def claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, decoded WITHOUT verifying it (for display and routing only)."""
    parts = token.split(".")
    if len(parts) < 2:
        return {}
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return {}
    return payload if isinstance(payload, dict) else {}


class _Reply:
    """What msal reads of a reply (msal.oauth2cli.http.Response): its status, headers and text."""

    __slots__ = ("_body", "headers", "status_code")

    def __init__(self, reply: Reply) -> None:
        self.status_code = reply.status
        self.headers = reply.headers
        self._body = reply.body

    @property
    def text(self) -> str:
        """The body decoded as requests' Response.text decodes it: the charset the headers name (JSON: UTF-8,
        other text: Latin-1), else a guessed one; undecodable bytes replaced."""
        if not self._body:
            return ""
        from requests.utils import get_encoding_from_headers

        encoding = get_encoding_from_headers(self.headers)
        if encoding is None:
            from requests.compat import chardet  # type: ignore[attr-defined]  # charset_normalizer

            encoding = chardet.detect(self._body)["encoding"]
        try:
            return str(self._body, encoding or "utf-8", errors="replace")
        except (LookupError, TypeError):
            return str(self._body, errors="replace")


def _requests_error(exc: BaseException) -> requests.RequestException:
    """The requests exception requests' HTTPAdapter raises for a failed exchange, which msal and the callers
    expect (msal keeps a cached token when a refresh fails with a RequestException)."""
    from requests import exceptions as rq
    from urllib3 import exceptions as u3

    if isinstance(exc, u3.ReadTimeoutError):
        return rq.ReadTimeout(exc)
    if isinstance(exc, u3.ConnectTimeoutError) and not isinstance(exc, u3.NewConnectionError):
        return rq.ConnectTimeout(exc)
    if isinstance(exc, u3.ProxyError):
        return rq.ProxyError(exc)
    if isinstance(exc, u3.SSLError):
        return rq.SSLError(exc)
    if isinstance(exc, u3.DecodeError):
        return rq.ContentDecodingError(exc)
    if isinstance(exc, TransportError) and "redirects" in str(exc):
        return rq.TooManyRedirects(str(exc))
    return rq.ConnectionError(exc)


# What one exchange can fail with on the wire (as preflight.http): urllib3's errors, the socket's, http.client's,
# preflight.transport's own.


class _TimeoutSession:
    """msal's http_client: each exchange is bounded in total (however slowly the reply trickles) and by the
    tenant's deadline, and the status of the last reply is kept for error messages. It sends through
    preflight.transport (the trust store and proxy requests would use, the process's shared connections:
    tenants signing in one after another reuse them), not requests' Session, whose cookie jars, setting
    merges and hooks cost more CPU than msal's exchange itself; failures are raised as requests'
    exceptions, as msal expects of its http_client."""

    def __init__(self, timeout: tuple[float, float], total: float = 60.0, deadline: Deadline | None = None) -> None:
        self._transport = Transport()
        self._timeout = timeout
        self._total = total
        self.deadline = deadline or Deadline.unbounded()
        self.last = threading.local()

    def get(self, url: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
            **kwargs: Any) -> _Reply:
        return self.request("GET", url, params=params, headers=headers, **kwargs)

    def post(self, url: str, params: Mapping[str, Any] | None = None, data: Any = None,
             headers: Mapping[str, str] | None = None, **kwargs: Any) -> _Reply:
        return self.request("POST", url, params=params, data=data, headers=headers, **kwargs)

    def close(self) -> None:
        """Nothing to close: the connections are the process's."""

    def request(self, method: str, url: str, *, params: Mapping[str, Any] | None = None, data: Any = None,
                headers: Mapping[str, str] | None = None, timeout: Any = None, allow_redirects: bool = True
                ) -> _Reply:
        self.last.status, self.last.type = None, ""
        limit = min(self._total, self.deadline.remaining())
        if limit <= 0:
            raise requests.Timeout("the deadline has passed")
        try:
            target = request_url(url, params)
        except ValueError as exc:
            raise requests.exceptions.InvalidURL(str(exc)) from None
        body, sent = _form(data, headers)
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout) if timeout else self._timeout
        wait = self._transport.timeout(min(connect, limit), min(read, limit))
        with time_limit(limit) as watch:
            try:
                reply = self._transport.send(method, target, body, sent, wait, allow_redirects=allow_redirects,
                                             max_body=MAX_BODY)
            except FAILURES as exc:
                if watch.expired:
                    raise requests.Timeout(f"no complete reply within {seconds(limit)} s") from None
                raise _requests_error(exc) from None
            if watch.expired:
                raise requests.Timeout(f"no complete reply within {seconds(limit)} s")
        self.last.status = reply.status
        self.last.type = reply.headers.get("Content-Type", "").split(";")[0].strip()
        return _Reply(reply)


# What requests sends unless told otherwise (its default_headers), less its name and keep-alive, which is the
# default of HTTP/1.1 anyway.
_SIGN_IN_HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING, "Accept": "*/*"}


def _form(data: Any, headers: Mapping[str, str] | None) -> tuple[bytes | None, dict[str, str]]:
    """The body and headers of one msal request as requests prepares them: a dict of fields form-encoded, a
    string or bytes body sent as it is, headers whose value is None left out."""
    sent = dict(_SIGN_IN_HEADERS)
    if headers:
        sent.update((k, v) for k, v in headers.items() if v is not None)
    if not data:
        return None, sent  # urllib3 says Content-Length: 0 for a POST, as requests did
    if isinstance(data, bytes):
        return data, sent
    if isinstance(data, str):
        return data.encode("utf-8"), sent
    if not any(k.lower() == "content-type" for k in sent):
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    return encode_params(data).encode("ascii"), sent


def _prompt_secret(label: str) -> str:
    return getpass.getpass(f"{label}: ")


_PEM_KEY = re.compile(r"-----BEGIN ((?:ENCRYPTED |RSA |EC )?PRIVATE KEY)-----.+?-----END \1-----", re.S)
_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class MicrosoftSignIn:
    """Signs in once, then hands out tokens for Graph and for the Exchange admin API."""

    def __init__(
        self,
        settings: SignInSettings,
        *,
        session: requests.Session | None = None,
        environ: Mapping[str, str] | None = None,
        prompt: Callable[[str], str] = _prompt_secret,
        out: Callable[[str], object] = lambda msg: sys.stderr.write(msg + "\n"),
        persistence: tokencache.PersistenceFactory | None = tokencache._encrypted_persistence,
        timeout: tuple[float, float] = (10.0, 60.0),
        can_prompt: Callable[[], bool] = lambda: sys.stdin.isatty(),
        secrets: RunSecrets | None = None,
        deadline: Deadline | None = None,
        total: float = 60.0,
    ) -> None:
        self.settings = settings
        self.secrets = secrets or RunSecrets()  # the client secret, passphrase and every token, for masking
        self._session = session or _TimeoutSession(timeout, total, deadline)
        self._environ = os.environ if environ is None else environ
        self._prompt = prompt
        self._can_prompt = can_prompt
        self._out = out
        self._persistence = persistence
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}
        self._app: Any = None
        self._exchange_app: Any = None  # the public Exchange client, when signing in without an app
        self._refused: dict[str, TokenError] = {}  # an API whose interactive sign-in was refused
        self._early_failure: dict[str, Exception] = {}  # why sign_in(threads)'s Exchange token could not be had
        self._client_credential: Any = None  # the secret or key: in memory only, never logged
        self._account: Any = None
        self.cache: tokencache.TokenCache | None = None
        self.username: str | None = None
        self.tenant_id: str | None = None

    # -- sign-in ---------------------------------------------------------------------------------

    def check_inputs(self) -> None:
        """Read the secret or certificate now (no network): bad input fails before anything else happens."""
        if not self.settings.auth.delegated and self._client_credential is None:
            self._client_credential = self._credential()

    def sign_in(self, threads: Executor | None = None) -> str:
        """Sign in (from the cache when possible) and return the Graph access token. `threads` (app-only): the
        Exchange admin API's token is asked for on one of them while Graph's is, not one round trip later (an
        audit's tenants waited for each in turn), and the cache is saved once for both."""
        self.check_inputs()
        s = self.settings
        directory = s.tenant_cache_dir
        if s.auth.delegated:
            account = s.account
            if account is None:
                known = tokencache.cached_accounts(directory)
                if len(known) > 1:
                    raise InputError(
                        f"several accounts are signed in to {s.tenant}: {', '.join(known)}; choose one with --account"
                    )
                account = known[0] if known else None
            path = tokencache.account_file(directory, account) if account else directory / ".signing-in.json"
        else:
            path = tokencache.app_file(directory, s.client_id)
        self.cache = tokencache.TokenCache(path, persistence=self._persistence, warn=self._out,
                                           durable=s.auth.delegated)
        token_cache = self.cache.open()
        self._app = self.build_app(token_cache)
        if s.public:
            self._exchange_app = self.build_app(token_cache, s.exchange_client_id)
            self._out(_public_notice(s))
        early = threads.submit(self._early_exchange) if threads is not None and not s.auth.delegated else None
        try:
            token = self._acquire("graph", interactive=True)
            if s.public:
                self._sign_in_exchange()
        finally:
            if early is not None:
                wait([early])  # it writes to the cache and to this object: never past the sign-in
            self._save()
        if s.auth.delegated and self.username and path.name == ".signing-in.json":
            self._rename_cache(path, tokencache.account_file(directory, self.username))
        return token

    def _early_exchange(self) -> None:
        """The Exchange token, asked for alongside Graph's; why it could not be had is what the first token() for
        it raises, as if asked for then."""
        try:
            self._acquire("exchange", interactive=False)
        except Exception as exc:  # whatever it was, that first token() raises it
            self._early_failure["exchange"] = exc

    def _sign_in_exchange(self) -> None:
        """The second public client's sign-in, same account and cache; a refusal leaves Exchange unknown."""
        try:
            self._acquire("exchange", interactive=True)
        except TokenError as exc:
            self._refused["exchange"] = exc
            self._out(f"Exchange admin API: {exc.code}: {exc.message}{failure_hint(exc.message)} "
                      "(Exchange settings will be unknown)")

    def build_app(self, token_cache: Any, client_id: str | None = None) -> Any:
        import msal

        s = self.settings
        common: dict[str, Any] = {
            "authority": s.cloud.authority(s.tenant),
            "token_cache": token_cache,
            "http_client": self._session,
            "instance_discovery": s.cloud.instance_discovery,
        }
        try:
            if s.auth.delegated:
                return msal.PublicClientApplication(client_id or s.client_id, **common)
            return msal.ConfidentialClientApplication(s.client_id, client_credential=self._client_credential, **common)
        except (InputError, SignInError):
            raise
        except requests.RequestException as exc:
            why = first_line(exc) if isinstance(exc, requests.Timeout) else type(exc).__name__
            raise SignInError(f"cannot reach {s.cloud.login} ({why})") from None
        except ValueError as exc:  # msal: tenant discovery failed, unreadable key, bad authority
            if "authority configuration" in str(exc) and self._last()[0] in (None, 400, 404):
                raise SignInError(
                    f"tenant {s.tenant} is not known to {s.cloud.login} (check --tenant and --cloud {s.cloud.name})"
                ) from None
            if self._last()[0] is not None:  # a reply msal could not read
                raise SignInError(f"tenant {s.tenant}: {self._not_oauth(exc)}") from None
            raise SignInError(f"tenant {s.tenant}: {self.secrets.mask(first_line(exc))}") from None
        except Exception as exc:  # msal's MsalServiceError for an error page (HTTP 5xx) during discovery
            raise SignInError(f"tenant {s.tenant}: {self._not_oauth(exc)}") from None

    def _credential(self) -> Any:
        s = self.settings
        if s.auth is AuthMethod.SECRET:
            return self._secret("--client-secret-env", s.client_secret_env, "Client secret")
        if s.certificate is None:
            raise InputError("--auth certificate needs --certificate PATH (a .pfx/.p12, or a PEM with key and cert)")
        return self._certificate(s.certificate)

    def _secret(self, option: str, env_name: str | None, label: str) -> str:
        if env_name:
            value = self._environ.get(env_name)
            if not value:
                raise InputError(f"{option} {env_name}: that environment variable is not set or is empty")
            self.secrets.add(value)
            return value
        if not self.settings.interactive or not self._can_prompt():
            raise InputError(f"{label.lower()} needed: pass {option} NAME (the name of an environment variable)")
        value = self._prompt(label)
        if not value:
            raise InputError(f"{label.lower()}: nothing was entered")
        self.secrets.add(value)
        return value

    def _certificate(self, path: Path) -> dict[str, Any]:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key, pkcs12

        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"--certificate {path}: cannot read file ({exc.strerror or type(exc).__name__})") from None
        given = None
        if self.settings.certificate_password_env:
            given = self._secret(
                "--certificate-password-env", self.settings.certificate_password_env, "Certificate password"
            )
        if b"-----BEGIN" not in data:  # PKCS#12
            password = self._unlock(
                path, given, lambda pw: pkcs12.load_key_and_certificates(data, pw)[0] is not None
            )
            credential: dict[str, Any] = {"private_key_pfx_path": str(path)}
        else:
            text = data.decode("ascii", "replace")
            key, cert = _PEM_KEY.search(text), _PEM_CERT.search(text)
            if key is None or cert is None:
                raise InputError(f"--certificate {path}: a PEM file needs both the private key and the certificate")
            key_pem = key.group(0).encode()
            self.secrets.add(key.group(0))
            password = self._unlock(path, given, lambda pw: load_pem_private_key(key_pem, pw) is not None)
            credential = {"private_key": key.group(0), "public_certificate": cert.group(0)}
        if password:
            credential["passphrase"] = password.decode()
        return credential

    def _unlock(self, path: Path, password: str | None, load: Callable[[bytes | None], bool]) -> bytes | None:
        """Check the key opens; ask for its password only when it is encrypted and none was given."""
        if password is not None:
            try:
                load(password.encode())
            except TypeError:  # cryptography: the key is not encrypted
                raise InputError(f"--certificate {path}: the key is not encrypted; drop the password") from None
            except ValueError:
                raise InputError(f"--certificate {path}: wrong password, or not a certificate file") from None
            return password.encode()
        try:
            load(None)
            return None
        except (TypeError, ValueError):
            pass  # encrypted (or unreadable): a password may open it
        try:
            secret = self._secret("--certificate-password-env", None, "Certificate password").encode()
        except InputError:
            raise InputError(
                f"--certificate {path}: the key is encrypted or unreadable; pass --certificate-password-env NAME"
            ) from None
        try:
            load(secret)
        except (TypeError, ValueError):
            raise InputError(f"--certificate {path}: wrong password, or not a certificate file") from None
        return secret

    # -- tokens ----------------------------------------------------------------------------------

    def token(self, api: Api) -> str:
        """A valid access token for `api`, from memory, the cache, or a refresh. Raises TokenError."""
        with self._lock:
            held = self._tokens.get(api)
            if held and held[1] - REFRESH_MARGIN > time.time():
                return held[0]
            if api in self._refused:
                raise self._refused[api]
            early = self._early_failure.pop(api, None)
            if early is not None:  # asked for during the sign-in and refused: once, as a call then would have
                raise early
            try:
                return self._acquire(api, interactive=False)
            finally:
                self._save()

    def headers(self, api: Api) -> Callable[[], dict[str, str]]:
        return lambda: {"Authorization": f"Bearer {self.token(api)}"}

    def _acquire(self, api: Api, *, interactive: bool) -> str:
        s = self.settings
        scopes = s.scopes(api)
        try:
            if s.auth.delegated:
                result = self._delegated(api, scopes, interactive)
            else:
                result = self._app.acquire_token_for_client(scopes=scopes)
        except requests.RequestException as exc:
            why = first_line(exc) if isinstance(exc, requests.Timeout) else type(exc).__name__
            reason = f"cannot reach {s.cloud.login} ({why})"
            result = {"error": "network_error", "error_description": reason}
        except Exception as exc:  # msal on a reply that is no OAuth response (HTML, truncated or empty JSON)
            result = {"error": "bad_response", "error_description": self._not_oauth(exc)}
        if isinstance(result, Mapping):
            self.secrets.add_token_response(dict(result))
        if not result or "access_token" not in result:
            code, message = describe(result)
            status = self._last()[0]
            if code != "bad_response" and status not in (None, 200, 400, 401):  # 429, 5xx: the service's state
                message = f"{self._service()} answered HTTP {status}: {message}"
            code, message = self.secrets.mask(code), self.secrets.mask(message)
            if api == "graph":
                raise SignInError(f"{s.tenant}: {code}: {message}{_device_code_hint(s.auth, result)}"
                                  f"{failure_hint(message)}")
            raise TokenError(api, code, message)
        token = str(result["access_token"])
        self._tokens[api] = (token, time.time() + float(result.get("expires_in") or 0))
        id_claims = result.get("id_token_claims") or {}
        # Unverified claims that route requests (X-AnchorMailbox, the Exchange URL): only text counts.
        name, tid = id_claims.get("preferred_username"), id_claims.get("tid") or claims(token).get("tid")
        self.username = self.username or (name if isinstance(name, str) else None)
        self.tenant_id = self.tenant_id or (tid if isinstance(tid, str) else None)
        return token

    def _delegated(self, api: Api, scopes: list[str], interactive: bool) -> dict[str, Any] | None:
        s = self.settings
        app = self._exchange_app if api == "exchange" and self._exchange_app is not None else self._app
        if self._account is None:
            accounts = app.get_accounts(username=s.account) if s.account else app.get_accounts()
            self._account = accounts[0] if accounts else None
        if self._account is not None:
            self.username = self.username or self._account.get("username")
        # The _with_error form says why a refresh failed (e.g. AADSTS65001: no consent for Exchange).
        result = app.acquire_token_silent_with_error(scopes, account=self._account) if self._account else None
        if result and "access_token" in result:
            return dict(result)
        if not interactive:
            # Another resource (Exchange) rides on the refresh token of the first sign-in; when the
            # app lacks that consent the reply says so, and only that API's resources go unknown.
            return dict(result) if result else {
                "error": "interaction_required",
                "error_description": f"no cached sign-in for {s.tenant}; run `{s.login_command()}`",
            }
        if not s.interactive:
            return {"error": "interaction_required",
                    "error_description": f"no cached sign-in for {s.tenant}; run `{s.login_command()}` first"}
        if s.auth is AuthMethod.BROWSER:
            from msal.oauth2cli.oauth2 import BrowserInteractionTimeoutError

            try:  # msal's loopback listener waits for ever unless told otherwise
                result = app.acquire_token_interactive(scopes, login_hint=s.account or self.username,
                                                       prompt="select_account", timeout=BROWSER_LOGIN_SECONDS)
            except BrowserInteractionTimeoutError:
                return {"error": "browser_timeout", "error_description": (
                    f"no answer from the browser within {BROWSER_LOGIN_SECONDS:g} s; run login again and finish "
                    "the sign-in in the browser")}
        else:
            flow = app.initiate_device_flow(scopes=scopes)
            if "user_code" not in flow:
                return dict(flow)
            label = f"[{'Graph' if api == 'graph' else 'Exchange admin API'}] " if s.public else ""
            message = flow.get("message") or f"Enter code {flow['user_code']} at {flow.get('verification_uri')}"
            self._out(label + str(message))
            result = app.acquire_token_by_device_flow(flow)
        if result and "access_token" in result:
            accounts = app.get_accounts(username=(result.get("id_token_claims") or {}).get("preferred_username"))
            self._account = accounts[0] if accounts else None
        return dict(result) if result else None

    def _service(self) -> str:
        return f"the Microsoft sign-in service ({self.settings.cloud.login})"

    def _not_oauth(self, exc: Exception) -> str:
        """One line for a reply msal could not read: which service, which HTTP status, what kind of body."""
        status, kind = self._last()
        what = f"HTTP {status}" if status else f"a reply msal could not use ({type(exc).__name__})"
        body = f" with a {kind} body" if kind and kind != "application/json" else ""
        return f"{self._service()} answered {what}{body} that is not a valid OAuth response"

    def _last(self) -> tuple[int | None, str]:
        """HTTP status and content type of the last reply msal got on this thread (our session keeps them)."""
        last = getattr(self._session, "last", None)
        return getattr(last, "status", None), str(getattr(last, "type", "") or "")

    # -- cache -----------------------------------------------------------------------------------

    def _save(self) -> None:
        if self.cache is not None:
            try:
                self.cache.save()
            except OSError as exc:
                self._out(f"Token cache {self.cache.path}: not saved ({exc.strerror or type(exc).__name__})")

    def _rename_cache(self, old: Path, new: Path) -> None:
        """A first delegated sign-in learns the account only at the end: file the cache under it."""
        cache = self.cache
        if cache is None:
            return
        if cache.encrypted and self._persistence is not None:
            # The keyring entry is keyed by the file's location: store the cache again under the new one.
            self._persistence(str(new)).save(cache.serialize())
            cache.clear()
            self.cache = tokencache.TokenCache(new, persistence=self._persistence, warn=lambda _msg: None)
            self._app.token_cache = self.cache.open()
            if self._exchange_app is not None:
                self._exchange_app.token_cache = self._app.token_cache
            return
        if old.exists():
            os.replace(old, new)
        cache.path = new

    @property
    def cache_location(self) -> str:
        if self.cache is None:
            return ""
        kind = "encrypted" if self.cache.encrypted else "plain file, mode 0600"
        return f"{self.cache.path} ({kind})"


def _device_code_hint(auth: AuthMethod, result: Mapping[str, Any] | None) -> str:
    """Why a device-code sign-in was refused, when Conditional Access did it (data/signin.toml)."""
    if auth is not AuthMethod.DEVICE_CODE or not result:
        return ""
    known = signin_data()["device_code"]
    said = f"{result.get('error_description')} " + " ".join(f"AADSTS{c}" for c in result.get("error_codes") or [])
    return f" ({known['hint']})" if any(code in said for code in known["ca_refusals"]) else ""


def _public_notice(s: SignInSettings) -> str:
    public = signin_data()["public"]
    return (f"No --client-id: signing in to {s.tenant} through Microsoft's public clients, with the same admin "
            f"account twice: {public['graph_client_name']} (Graph, read-only scopes), then "
            f"{public['exchange_client_name']} (Exchange admin API). No app registration is needed; see "
            "docs/microsoft-setup.md for what an admin consents to.")

