"""Signing in to Google: a service account with domain-wide delegation, or an admin's installed-app OAuth.

Both give the collector one thing: a bearer token for (scope, subject). google-auth and
google-auth-oauthlib are imported inside the functions that use them, so importing this module is cheap.

A service account gets one token per subject for the scopes the collector shares (every read-only admin scope
the run requests anyway: a JWT assertion may carry several, space-separated), so a Workspace costs one signature
and one token round trip, not one per scope. Google refuses a domain-wide delegation token outright when any
requested scope is not granted (401 unauthorized_client); then each scope is asked on its own, so one missing
grant makes only its own resources `unknown`, and the refusal names that scope.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import os
import re
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from preflight.deadline import Deadline, bounded_session, time_limit
from preflight.errors import InputError, SignInError, seconds
from preflight.http import MAX_BODY, ApiError
from preflight.memo import RunMemo
from preflight.runsecrets import RunSecrets
from preflight.transport import ACCEPT_ENCODING, FAILURES, USER_AGENT, Reply, Transport, is_timeout, request_url

from . import settings

MAX_KEY_FILE = 64 * 1024
_DEFAULT_TIMEOUT = 30.0


class Signer(Protocol):
    kind: str  # "service-account" or "oauth"

    @property
    def principal(self) -> str:
        """Who the admin APIs see: the impersonated admin, or the admin who signed in."""
        ...

    def bearer(self, scope: str, subject: str | None = None) -> str:
        """An access token for one scope, acting as `subject` (None: the admin). ApiError when refused."""
        ...

    def share(self, scopes: Sequence[str], subject: str | None = None) -> None:
        """Let one token acting as `subject` carry all these scopes, when the sign-in kind allows it."""
        ...


def _is_https(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.netloc)


def _read_json_file(path: Path, what: str) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_KEY_FILE:
            raise InputError(f"{path}: too large to be a {what}")
        data = json.loads(path.read_text(encoding="utf-8"))
    except InputError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise InputError(f"{path}: cannot read {what} ({reason})") from None
    except ValueError:
        raise InputError(f"{path}: not a {what} (invalid JSON)") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a {what} (expected a JSON object)")
    return data


# --- service account ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyFile:
    path: Path
    info: dict[str, Any]  # holds the private key: never log, print or store it

    @property
    def client_email(self) -> str:
        return str(self.info["client_email"])

    @property
    def client_id(self) -> str:
        return str(self.info["client_id"])

    @property
    def private_key_id(self) -> str:
        return str(self.info["private_key_id"])

    @property
    def token_uri(self) -> str:
        return str(self.info["token_uri"])

    def __repr__(self) -> str:  # keeps the key out of tracebacks and debuggers' reprs
        return f"KeyFile({str(self.path)!r}, client_email={self.client_email!r})"


def load_key_file(path: Path) -> KeyFile:
    """A service-account JSON key, checked for what domain-wide delegation needs. InputError otherwise."""
    info = _read_json_file(path, "service account key file")
    kind = info.get("type")
    if kind != "service_account":
        hint = " (that is an OAuth client file: use --auth oauth --client-secrets)" if "installed" in info else ""
        raise InputError(f"{path}: not a service account key file (type: {kind!r}){hint}")
    missing = [k for k in ("client_email", "client_id", "private_key", "private_key_id") if not info.get(k)]
    if missing:
        raise InputError(f"{path}: service account key file lacks {', '.join(missing)}")
    api = settings.api()
    token_uri = str(info.get("token_uri") or api.endpoints.token)
    if token_uri in api.endpoints.retired_token_uris:
        token_uri = api.endpoints.token
    if not _is_https(token_uri):
        raise InputError(f"{path}: token_uri {token_uri!r} is not https; the signed assertion must not travel in clear")
    return KeyFile(path, {**info, "token_uri": token_uri})


class _Reply:
    """What google-auth reads of a reply (google.auth.transport.Response): its status, headers and bytes."""

    __slots__ = ("data", "headers", "status")

    def __init__(self, reply: Reply) -> None:
        self.status = reply.status
        self.headers = reply.headers
        self.data = reply.body


# What requests sends unless told otherwise, less its name and keep-alive (HTTP/1.1's default anyway).
_TOKEN_HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING, "Accept": "*/*"}


def transport(timeout: float, deadline: Deadline | None = None) -> Any:
    """A google-auth transport that remembers the HTTP status of the last reply on this thread, and bounds each
    exchange in total (a token reply trickling a byte at a time is cut at `timeout`) and by the deadline.

    It sends through preflight.transport (the trust store and proxy requests would use, the process's shared
    connections), not requests' Session, whose per-request merges and hooks cost more CPU than the token
    exchange itself. google-auth's RefreshError carries the token endpoint's JSON but not its status; the
    snapshot records both.
    """
    from google.auth import exceptions as gex
    from google.auth.transport import Request

    limit_of = deadline or Deadline.unbounded()
    sender = Transport()

    class _Request(Request):
        def __init__(self) -> None:
            self.last = threading.local()

        def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None,
                     timeout: float | None = None, **kwargs: Any) -> Any:
            self.last.status = None
            self.last.host = urlsplit(url).netloc
            limit = min(timeout or default_timeout, limit_of.remaining())
            if limit <= 0:
                raise gex.TransportError("the deadline has passed")  # type: ignore[no-untyped-call]
            try:
                target = request_url(url)
            except ValueError as exc:
                raise gex.TransportError(f"the URL cannot be used ({exc})") from None  # type: ignore[no-untyped-call]
            data = body.encode("utf-8") if isinstance(body, str) else body
            sent = {**_TOKEN_HEADERS, **(headers or {})}
            with time_limit(limit) as watch:
                try:
                    reply = sender.send(method, target, data, sent, sender.timeout(limit, limit), max_body=MAX_BODY)
                except (*FAILURES, ValueError) as exc:  # ValueError: a header value http.client refuses to send
                    late = watch.expired or is_timeout(exc)
                    why = f"no complete reply within {seconds(limit)} s (timeout)" if late else type(exc).__name__
                    raise gex.TransportError(why) from None  # type: ignore[no-untyped-call]
                if watch.expired:
                    raise gex.TransportError(f"no complete reply within {seconds(limit)} s (timeout)")  # type: ignore[no-untyped-call]
            self.last.status = reply.status
            return _Reply(reply)

    default_timeout = timeout
    return _Request()


def refresh(creds: Any, request: Any, secrets: RunSecrets) -> None:
    """creds.refresh, with a token reply google-auth cannot read (truncated JSON, an HTML error page, a bare
    string: google-auth then fails with TypeError or KeyError) turned into the ApiError naming the endpoint and
    its HTTP status. Every token it issues joins the run's secrets."""
    try:
        creds.refresh(request)
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        last = getattr(request, "last", None)
        status, host = getattr(last, "status", None), getattr(last, "host", "") or "the token endpoint"
        raise ApiError(status, "BadTokenResponse", f"the Google sign-in service ({host}) answered "
                       f"{f'HTTP {status}' if status else type(exc).__name__} with a reply that is not a valid OAuth "
                       "token response") from None
    secrets.add(getattr(creds, "token", None), getattr(creds, "refresh_token", None))


def refresh_error(exc: Exception) -> tuple[str, str]:
    """(error code, description) of a google-auth RefreshError: the token endpoint's JSON rides in args[1]."""
    if len(exc.args) > 1 and not isinstance(exc.args[1], dict):  # no JSON body: an error page, a proxy's text
        return "BadTokenResponse", "the reply is not an OAuth token response"
    data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
    error = data.get("error")
    if isinstance(error, dict):  # a Google API error ({"error": {"code": 429, "status", "message"}}), not OAuth's
        code = str(error.get("status") or error.get("code") or "RefreshError")
        return code, str(error.get("message") or code)
    code = str(error or "RefreshError")
    first = exc.args[0] if exc.args and isinstance(exc.args[0], str) else code
    return code, str(data.get("error_description") or first)


def refused_for_good(exc: Exception) -> bool:
    """A refusal that asking again this run cannot change (a missing grant, a revoked token), as opposed to a
    transient fault (5xx, internal_failure), which the next request may get past."""
    return not getattr(exc, "retryable", False) and refresh_error(exc)[0] in settings.api().permanent_token_errors


def token_error(exc: Exception, status: int | None, hint: str = "") -> ApiError:
    """A google-auth refresh/transport failure as the ApiError the snapshot records. No secrets in it.

    The hint (what to do) comes first: reports shorten long messages, and Google's own text is the longer part.
    """
    from google.auth import exceptions as gex

    if isinstance(exc, gex.RefreshError):
        code, message = refresh_error(exc)
        if code in ("BadTokenResponse", "RefreshError") and status is not None:  # the body was no OAuth JSON
            code, message = "BadTokenResponse", "the reply is not an OAuth token response"
        if code == "BadTokenResponse" or (status is not None and status >= 429):
            message = f"the Google sign-in service answered HTTP {status}: {message}"
        return ApiError(status, code, f"{hint}; Google says: {message}" if hint else message)
    kind = "Timeout" if "timeout" in str(exc).lower() or "timed out" in str(exc).lower() else "ConnectionError"
    return ApiError(None, kind, f"the token endpoint could not be reached ({type(exc).__name__})")


def key_credentials(info: dict[str, Any], memo: RunMemo) -> Any:
    """The key's credentials, its private key parsed once per run (an audit's parent, before it forks): an audit
    may use one key for many Workspaces. Kept in the run's memory only, under the digest of the key file's
    content."""
    digest = hashlib.sha256(json.dumps(info, sort_keys=True).encode("utf-8")).hexdigest()
    return memo.once(("google", "service-account key", digest), lambda: _credentials(info))


def _credentials(info: dict[str, Any]) -> Any:
    """What google-auth's Credentials.from_service_account_info builds, from the signer of _rsa_signer when it
    gives one; from google-auth's own parsing otherwise (an EC key, a private_key that is no text), so that such
    a key fails as it always did."""
    from google.auth import credentials
    from google.oauth2 import service_account

    signer = _rsa_signer(info)
    if signer is None:
        return service_account.Credentials.from_service_account_info(info)  # type: ignore[no-untyped-call]
    return service_account.Credentials(  # type: ignore[no-untyped-call]
        signer, service_account_email=info["client_email"], token_uri=info["token_uri"],
        project_id=info.get("project_id"), trust_boundary=info.get("trust_boundary"),
        universe_domain=info.get("universe_domain", credentials.DEFAULT_UNIVERSE_DOMAIN),
    )


def _rsa_signer(info: dict[str, Any]) -> Any | None:
    """google-auth's RSASigner for the key file's RSA key, loaded without cryptography's key validation, which
    tests p and q for primality: about 30 ms of CPU per key, more than a Workspace's every request, paid once per
    key before an audit forks (a consultant's audit has a key per customer). ValueError for a key that does not
    parse, or whose numbers do not fit together.

    The key is the user's own key file, issued by Google: a trusted source, as cryptography's documentation asks of
    unsafe_skip_rsa_key_validation. A garbled one is still refused here: a damaged PEM does not parse, and damaged
    numbers fail the checks below (the product of p and q, and each CRT value against d, e, p and q), which leave
    out only the primality of p and q, a flaw no accident produces. An invalid key reaching OpenSSL could misbehave;
    one with p or q composite only signs wrongly (and Google refuses the signature). None: not a text RSA key,
    left to google-auth's own path (an EC key, a number where the PEM belongs)."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from google.auth import crypt

    pem = info.get("private_key")
    if not isinstance(pem, str):
        return None
    key = load_pem_private_key(pem.encode("utf-8"), password=None, unsafe_skip_rsa_key_validation=True)
    if not isinstance(key, rsa.RSAPrivateKey):
        return None
    if not _consistent(key.private_numbers()):
        raise ValueError("the RSA key's numbers do not fit together")
    return crypt.RSASigner(key, info.get("private_key_id"))  # type: ignore[no-untyped-call]


def _consistent(k: Any) -> bool:
    """What cryptography's RSA key validation checks of a private key's numbers, but p and q being prime."""
    n, e, p, q, d = k.public_numbers.n, k.public_numbers.e, k.p, k.q, k.d
    odd = all(x > 1 and x % 2 == 1 for x in (e, p, q))
    return (odd and p * q == n and d > 1 and (e * d) % ((p - 1) * (q - 1) // math.gcd(p - 1, q - 1)) == 1
            and k.dmp1 == d % (p - 1) and k.dmq1 == d % (q - 1) and (k.iqmp * q) % p == 1)


class ServiceAccountSigner:
    """Tokens from a service-account key with domain-wide delegation, per subject: one for the scopes shared for
    that subject, or one per scope (any other scope, or every scope once the shared token was refused). Cached
    until google-auth finds them near expiry; a key signs an assertion only when a token is needed."""

    kind = "service-account"

    def __init__(self, key: KeyFile, admin: str, *, timeout: float = _DEFAULT_TIMEOUT,
                 secrets: RunSecrets | None = None, deadline: Deadline | None = None,
                 memo: RunMemo | None = None) -> None:
        """`memo`: the run's (preflight.memo), where a key parsed for one Workspace waits for the next."""
        self.secrets = secrets or RunSecrets()
        self.secrets.add(str(key.info.get("private_key") or ""))
        try:
            self._base = key_credentials(key.info, memo if memo is not None else RunMemo())
        except (ValueError, TypeError, KeyError) as exc:
            # The message of a key-parsing error never includes the key itself, only its kind.
            raise InputError(f"{key.path}: the private key does not load ({type(exc).__name__})") from None
        self.key = key
        self.admin = admin
        self._request = transport(timeout, deadline)
        self._shared: dict[str, tuple[str, ...]] = {}  # subject -> the scopes one token carries for it
        self._creds: dict[tuple[tuple[str, ...], str], Any] = {}
        self._failed: dict[tuple[tuple[str, ...], str], ApiError] = {}
        self._locks: dict[tuple[tuple[str, ...], str], threading.Lock] = {}
        self._guard = threading.Lock()

    @property
    def principal(self) -> str:
        return self.admin

    def _lock(self, key: tuple[tuple[str, ...], str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def share(self, scopes: Sequence[str], subject: str | None = None) -> None:
        """Ask for these scopes in one token when `subject` first needs any of them. Only the scopes the run
        reads anyway: the token carries no more privilege than the per-scope tokens together."""
        with self._guard:
            self._shared[(subject or self.admin).lower()] = tuple(dict.fromkeys(scopes))

    def bearer(self, scope: str, subject: str | None = None) -> str:
        who = (subject or self.admin).lower()
        with self._guard:
            shared = self._shared.get(who, ())
        if scope in shared and (shared, who) not in self._failed:
            try:
                return self._token(shared, who)
            except ApiError:
                if (shared, who) not in self._failed:  # a fault, not a refusal: asking per scope would not help
                    raise
            # Refused for good: one missing grant refuses a token for several scopes whole, and only per scope
            # does the refusal say which grant is missing.
        return self._token((scope,), who)

    def _token(self, scopes: tuple[str, ...], who: str) -> str:
        """The token for these scopes; a definitive refusal stays refused for this run (don't hammer the
        endpoint)."""
        from google.auth import exceptions as gex

        key = (scopes, who)
        with self._lock(key):
            if key in self._failed:
                raise self._failed[key]
            creds = self._creds.get(key)
            if creds is None:
                creds = self._creds[key] = self._base.with_scopes(list(scopes)).with_subject(who)
            if not creds.valid:
                try:
                    refresh(creds, self._request, self.secrets)
                except gex.RefreshError as exc:
                    hint = self._hint(exc, " ".join(scopes), who)
                    err = token_error(exc, getattr(self._request.last, "status", None), hint)
                    err = ApiError(err.status, err.code, self.secrets.mask(err.message))
                    if refused_for_good(exc):
                        self._failed[key] = err
                    raise err from None
                except gex.TransportError as exc:
                    raise token_error(exc, None) from None
            return str(creds.token)

    def authenticate_key(self) -> ApiError | None:
        """A token for the service account itself (no subject): proves the key is live, apart from delegation.

        Google answers invalid_grant "Invalid JWT Signature." for a deleted or disabled key.
        """
        from google.auth import exceptions as gex

        creds = self._base.with_scopes([settings.scope("identity.email").url])
        try:
            refresh(creds, self._request, self.secrets)
        except gex.RefreshError as exc:
            err = token_error(exc, getattr(self._request.last, "status", None))
            return ApiError(err.status, err.code, self.secrets.mask(err.message))
        except gex.TransportError as exc:
            return token_error(exc, None)
        except ApiError as exc:
            return exc
        return None

    def _hint(self, exc: Exception, scope: str, subject: str) -> str:
        if refresh_error(exc)[0] == "unauthorized_client":
            return (f"the domain-wide delegation of client {self.key.client_id} does not grant {scope} for {subject} "
                    "(run `preflight auth-check google`)")
        return ""


# --- installed-app OAuth -----------------------------------------------------------------------------


def load_client_secrets(path: Path) -> dict[str, Any]:
    """The admin's own OAuth client file (Desktop app type), as google-auth-oauthlib wants it."""
    data = _read_json_file(path, "OAuth client file")
    if "installed" not in data:
        if "web" in data:
            raise InputError(f"{path}: a Web application OAuth client cannot use the loopback redirect; "
                             "create an OAuth client of type Desktop app")
        if data.get("type") == "service_account":
            raise InputError(f"{path}: that is a service account key: use --auth service-account --key-file")
        raise InputError(f"{path}: not a Google OAuth client file (no 'installed' section)")
    section = data["installed"]
    missing = [k for k in ("client_id", "client_secret", "auth_uri", "token_uri") if not section.get(k)]
    if missing:
        raise InputError(f"{path}: OAuth client file lacks installed.{', installed.'.join(missing)}")
    for k in ("auth_uri", "token_uri"):
        if not _is_https(str(section[k])):
            raise InputError(f"{path}: installed.{k} is not https")
    return data


@contextlib.contextmanager
def _relaxed_scope() -> Iterator[None]:
    """Google's granular consent lets the admin untick scopes; oauthlib would raise on the changed scope.

    preflight records what was granted instead and reports the rest as missing.
    """
    old = os.environ.get("OAUTHLIB_RELAX_TOKEN_SCOPE")
    os.environ["OAUTHLIB_RELAX_TOKEN_SCOPE"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("OAUTHLIB_RELAX_TOKEN_SCOPE", None)
        else:
            os.environ["OAUTHLIB_RELAX_TOKEN_SCOPE"] = old


def _claims(id_token: str | None) -> dict[str, Any]:
    """The payload of an ID token received straight from the token endpoint over TLS (OIDC §3.1.3.7 allows
    skipping the signature check in that case). Only the email is used, for display and a profile guard."""
    if not id_token or id_token.count(".") != 2:
        return {}
    payload = id_token.split(".")[1]
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class OAuthLogin:
    token_info: dict[str, Any]  # what the profile stores: refresh token, client id/secret, token_uri, scopes
    account: str | None
    granted: list[str]
    requested: list[str]

    @property
    def missing(self) -> list[str]:
        return [s for s in self.requested if s not in self.granted]


BROWSER_LOGIN_SECONDS = 300.0  # the whole browser sign-in: consent in the browser, then the code exchange


def run_installed_flow(
    client_config: dict[str, Any],
    scopes: list[str],
    *,
    open_browser: bool = True,
    timeout_seconds: float | None = None,
    login_hint: str | None = None,
    secrets: RunSecrets | None = None,
) -> OAuthLogin:
    """The loopback-redirect flow: a local listener on localhost receives the code; PKCE protects it.

    The whole sign-in (the admin's consent in the browser, then the code exchange) ends within
    `timeout_seconds` (default BROWSER_LOGIN_SECONDS). The client secret, the code, the PKCE verifier and every
    token issued join `secrets`.
    """
    from google_auth_oauthlib.flow import InstalledAppFlow

    from .loopback import listening

    secrets = secrets if secrets is not None else RunSecrets()
    section = client_config["installed"]
    secrets.add(str(section.get("client_secret") or ""))
    bound = BROWSER_LOGIN_SECONDS if timeout_seconds is None else timeout_seconds
    limit = Deadline(bound)
    try:
        flow = InstalledAppFlow.from_client_config(client_config, scopes=scopes)
        with listening("preflight is signed in.", secrets) as listener:
            flow.redirect_uri = listener.redirect_uri
            extra: dict[str, str] = {"prompt": "consent"}  # consent again, or Google returns no new refresh token
            if login_hint:
                extra["login_hint"] = login_hint
            url, state = flow.authorization_url(**extra)
            secrets.add(flow.code_verifier)
            redirect = listener.expect(state)
            # stdout is for data: the URL goes to stderr.
            sys.stderr.write(f"Open this URL in a browser to sign in as a Workspace admin:\n{url}\n")
            if open_browser:
                _open_browser(url)
            params = listener.wait(redirect, limit)
        if params is None:
            raise SignInError(f"no answer from the browser within {bound:g} s; run login again and "
                              "finish the sign-in in the browser")
        if "code" not in params:
            error = params.get("error", "")
            said = error if re.fullmatch(r"[a-z_]{1,40}", error) else "no code"  # OAuth error codes are this shape
            raise SignInError(f"the sign-in was refused in the browser ({said})")
        creds = _exchange(flow, params["code"], limit, secrets)
    except (SignInError, InputError):
        raise
    except Exception as exc:
        raise SignInError(secrets.mask(_flow_error(exc))) from None
    if not creds.refresh_token:
        raise SignInError("Google returned no refresh token; remove preflight under myaccount.google.com > "
                          "Security > Third-party access and sign in again")
    granted = list(creds.granted_scopes or scopes)
    account = _claims(creds.id_token).get("email")
    info = {
        "type": "authorized_user",
        "client_id": section["client_id"],
        "client_secret": section["client_secret"],
        "refresh_token": creds.refresh_token,
        "token_uri": section["token_uri"],
        "scopes": granted,
        "account": account or "",
    }
    return OAuthLogin(info, account, granted, list(scopes))


def _open_browser(url: str) -> None:
    import webbrowser

    with contextlib.suppress(webbrowser.Error):  # no browser here (an SSH session): the URL printed is the way
        webbrowser.get().open(url, new=1, autoraise=True)


def _exchange(flow: Any, code: str, limit: Deadline, secrets: RunSecrets) -> Any:
    """The code exchange, bounded in total by what is left of the sign-in's time; a reply of any shape that is
    no token response is one line naming the sign-in service and its HTTP status."""
    import requests

    from preflight.deadline import DeadlineAdapter

    session = flow.oauth2session
    adapter = DeadlineAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    seen: dict[str, Any] = {}
    session.hooks["response"].append(lambda resp, *_a, **_k: seen.update(status=resp.status_code))
    host = urlsplit(str(flow.client_config["token_uri"])).netloc
    remaining = limit.remaining()
    if remaining <= 0:
        raise SignInError(f"the browser sign-in took longer than {limit.seconds:g} s; run login again")
    try:
        with _relaxed_scope(), time_limit(remaining) as watch:
            try:
                token = flow.fetch_token(code=code, timeout=(min(10.0, remaining), remaining))
            except requests.RequestException as exc:
                why = f"no complete reply within {seconds(remaining)} s" if watch.expired else type(exc).__name__
                raise SignInError(f"the Google sign-in service ({host}) could not be reached ({why})") from None
    except SignInError:
        raise
    except Exception as exc:  # oauthlib: an OAuth error reply, or a body that is no token response
        status = seen.get("status")
        answered = f"answered HTTP {status}" if status else "failed"
        said = _oauth_error(getattr(exc, "error", None), getattr(exc, "description", None))
        raise SignInError(secrets.mask(_one_line(f"the Google sign-in service ({host}) {answered}: {said}"))) \
            from None
    secrets.add_token_response(dict(token) if isinstance(token, dict) else None)
    return flow.credentials


def _oauth_error(error: object, description: object) -> str:
    """What an OAuth error reply said, shortened: its error code (RFC 6749 5.2) and description, or a Google API
    error's status and message ({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": ...}})."""
    if isinstance(error, dict):
        found: dict[str, Any] = error
        error, description = found.get("status") or found.get("code"), found.get("message")
    if not isinstance(error, (str, int)) or error in ("", "missing_token"):  # oauthlib: no token in the reply
        return "a reply that is not an OAuth token response"
    text = f"{error}: {description}" if isinstance(description, str) and description else str(error)
    return text[:300]


def _flow_error(exc: Exception) -> str:
    text = str(exc)
    for code in ("invalid_client", "invalid_grant", "redirect_uri_mismatch", "invalid_scope", "unauthorized_client"):
        if code in text:
            return f"Google refused the sign-in ({code})"
    return f"the OAuth sign-in failed ({type(exc).__name__})"


class OAuthSigner:
    """An admin's own consent: one refresh token, every granted scope, acting only as that admin."""

    kind = "oauth"

    def __init__(self, info: dict[str, Any], *, timeout: float = _DEFAULT_TIMEOUT,
                 secrets: RunSecrets | None = None, deadline: Deadline | None = None) -> None:
        from google.oauth2 import credentials

        self.secrets = secrets or RunSecrets()
        self.secrets.add(*(str(info.get(k) or "") for k in ("refresh_token", "client_secret", "token")))
        token_uri = str(info.get("token_uri") or settings.api().endpoints.token)
        if not _is_https(token_uri):
            raise InputError("the stored sign-in has no https token_uri; run `preflight login google` again")
        try:
            creds = credentials.Credentials.from_authorized_user_info(info)  # type: ignore[no-untyped-call]
        except (ValueError, KeyError, TypeError):
            raise InputError("the stored sign-in is not in the expected format; run `preflight login google` "
                             "again") from None
        # google-auth pins authorized-user files to Google's endpoint; ours records the token_uri of the admin's
        # own client file, which exchanged the code, and refreshing must go to the same place.
        self._creds = creds.with_token_uri(token_uri)
        self.account = str(info.get("account") or "")
        self._request = transport(timeout, deadline)
        self._lock = threading.Lock()
        self._failed: ApiError | None = None

    @property
    def principal(self) -> str:
        return self.account or "the signed-in admin"

    def share(self, scopes: Sequence[str], subject: str | None = None) -> None:
        """Nothing to do: the one token of this sign-in already carries every scope the admin granted."""

    def bearer(self, scope: str, subject: str | None = None) -> str:
        from google.auth import exceptions as gex

        if subject is not None and subject.lower() != self.account.lower():
            raise ApiError(None, "NotDelegated", f"an admin's OAuth sign-in cannot act as {subject}; reading "
                           "another user's Gmail settings needs --auth service-account (domain-wide delegation)")
        with self._lock:
            if self._failed is not None:
                raise self._failed
            if not self._creds.valid:
                try:
                    refresh(self._creds, self._request, self.secrets)
                except gex.RefreshError as exc:
                    hint = ""
                    if refresh_error(exc)[0] == "invalid_grant":
                        hint = "the stored sign-in was revoked or expired: run `preflight login google` again"
                    err = token_error(exc, getattr(self._request.last, "status", None), hint)
                    err = ApiError(err.status, err.code, self.secrets.mask(err.message))
                    if refused_for_good(exc):
                        self._failed = err
                    raise err from None
                except gex.TransportError as exc:
                    raise token_error(exc, None) from None
            return str(self._creds.token)

    @property
    def granted(self) -> list[str]:
        return list(self._creds.granted_scopes or self._creds.scopes or [])


def revoke(token_info: dict[str, Any], *, timeout: float = 10.0, secrets: RunSecrets | None = None) -> str | None:
    """Revoke the stored refresh token at Google (its revoke endpoint sits next to the token endpoint).

    None on success, otherwise why not (masked: the endpoint's reply may quote the token). The token travels
    in the POST body, never in a URL, and the exchange ends within `timeout` however slowly it is answered.
    """
    import requests

    secrets = secrets if secrets is not None else RunSecrets()
    token = token_info.get("refresh_token")
    secrets.add(str(token or ""), str(token_info.get("client_secret") or ""))
    token_uri = str(token_info.get("token_uri") or "")
    if not token or not _is_https(token_uri) or not token_uri.endswith("/token"):
        return "no revocable token"
    url = token_uri[: -len("/token")] + "/revoke"
    with time_limit(timeout) as watch:
        try:
            resp = bounded_session().post(url, data={"token": token}, timeout=timeout)
            body = resp.content
        except requests.RequestException as exc:
            why = f"no complete reply within {seconds(timeout)} s" if watch.expired else type(exc).__name__
            return f"revoke endpoint unreachable ({why})"
    if watch.expired:
        return f"revoke endpoint unreachable (no complete reply within {seconds(timeout)} s)"
    if resp.status_code == 200:
        return None
    try:
        data = json.loads(body)
        code = data.get("error") if isinstance(data, dict) else None
    except ValueError:
        code = None
    said = f" {str(code)[:100]}" if isinstance(code, str) and code else ""
    return secrets.mask(_one_line(f"HTTP {resp.status_code}{said}"))


def _one_line(text: str) -> str:
    return " ".join(text.split())
