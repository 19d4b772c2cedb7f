"""A local stand-in for Microsoft Entra ID (OpenID configuration, token and device-code endpoints),
Microsoft Graph v1.0 (including $batch) and the Exchange Online admin REST endpoint (InvokeCommand).

It serves a preflight snapshot's payloads in the shapes the real services use, so the real msal and
requests code paths run against it:

- Entra ID: /{tenant}/v2.0/.well-known/openid-configuration, /{tenant}/oauth2/v2.0/token (client secret,
  certificate client assertion checked against the registered certificate, device code, refresh token)
  and /{tenant}/oauth2/v2.0/devicecode; errors as {"error", "error_description": "AADSTS...", ...}.
- Graph: the resources preflight reads; lists page with @odata.nextLink; $batch (v1.0 and beta, one strict
  parser: `batch_requests`) answers each request with its own status, headers and body; errors as
  {"error": {"code", "message", "innerError"}}.
- Exchange: POST /adminapi/beta/{tenant}/InvokeCommand with {"CmdletInput": {...}}; results in "value",
  paging with @odata.nextLink; failures as {"error": {"message": "Error executing cmdlet", "details":
  [{"message": "<id>|<exception type>|<reason>"}]}}. POST /adminapi/beta/{tenant}/$batch with up to 10
  InvokeCommand POSTs (the form KelvinTegelaar/CIPP-API New-ExoBulkRequest.ps1 sends), strictly parsed
  (`exchange_batch_requests`), each answered as InvokeCommand would answer it alone; `exchange_batch`
  turns the route off (404) and `exchange_batch_order` / `exchange_batch_tamper` change the replies.

Many tenants can be served at once (keyed by id and domains). For fault injection set `latency`
(seconds per HTTP request) and `fault` (a function that may answer a call instead of the fake: a 429
with Retry-After, a 500, a dropped reply...). Every HTTP request and every $batch sub-request is logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.jwts import b64url, claims_of, unsigned_jwt
from tests.wire import Wire

GRAPH_AUDIENCE = "https://graph.fake.test"
EXCHANGE_AUDIENCE = "https://outlook.fake.test"
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
SYSTEM_MAILBOX = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}"
CLOUD = "fake"

_GRAPH_OBJECTS = {
    "/policies/identitySecurityDefaultsEnforcementPolicy": (
        "securityDefaults", "policies/identitySecurityDefaultsEnforcementPolicy/$entity"),
    "/policies/authorizationPolicy": ("authorizationPolicy", "policies/authorizationPolicy/$entity"),
}
_GRAPH_LISTS = {
    "/identity/conditionalAccess/policies": ("conditionalAccessPolicies", "identity/conditionalAccess/policies"),
    "/identity/conditionalAccess/namedLocations": ("namedLocations", "identity/conditionalAccess/namedLocations"),
}
_EXCHANGE_ORG = {
    "Get-OrganizationConfig": ("organizationConfig", True),
    "Get-TransportConfig": ("transportConfig", True),
    "Get-AuthenticationPolicy": ("authenticationPolicies", False),
    "Get-ServicePrincipal": ("exchangeServicePrincipals", False),
    "Get-ManagementRoleAssignment": ("applicationRoleAssignments", False),
}
_EXCHANGE_BOX = {
    "Get-Mailbox": "mailbox",
    "Get-CASMailbox": "casMailbox",
    "Get-User": "exchangeUser",
    "Get-MailboxPermission": "mailboxPermissions",
    "Get-RecipientPermission": "recipientPermissions",
}
_CLAUSE = re.compile(r"\(\s*(\w+)\s+-eq\s+'((?:[^']|'')*)'\s*\)", re.I)


@dataclass
class App:
    """An app registration with its service principal in one tenant."""

    client_id: str
    secret: str | None = None
    certificate_pem: bytes | None = None  # client assertions signed by this certificate's key are accepted
    graph_roles: tuple[str, ...] = ("Policy.Read.All", "Directory.Read.All", "MailboxSettings.Read")
    exchange_roles: tuple[str, ...] = ("Exchange.ManageAsApp",)
    # Delegated consent per API, for public clients (device code).
    delegated: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {"graph": ("Policy.Read.All", "Directory.Read.All"), "exchange": ("Exchange.Manage",)}
    )


@dataclass
class FakeTenant:
    id: str
    domains: tuple[str, ...]
    snapshot: dict[str, Any]  # org and mailboxes: what Graph and Exchange answer
    apps: dict[str, App] = field(default_factory=dict)
    device_user: str = "admin@contoso.onmicrosoft.com"  # who "approves" a device code
    # What the OpenID configuration says of the tenant's cloud (worldwide; GCC High would be cloud_instance_name
    # "microsoftonline.us", tenant_region_scope "USGov", tenant_region_sub_scope "DODCON").
    region: dict[str, str] = field(default_factory=lambda: {"cloud_instance_name": "microsoftonline.com",
                                                              "tenant_region_scope": "EU"})
    device_code_blocked: bool = False  # a Conditional Access policy blocks device code flow for that user
    initial_domain: str = "contoso.onmicrosoft.com"  # where the system mailbox lives under its UPN
    # Exchange cmdlets the caller's role does not include: each answers 401 "User is not allowed to call ..."
    # (MicrosoftDocs/office-docs-powershell#7970) while the others work.
    refused_cmdlets: frozenset[str] = frozenset()
    # Cmdlets that write only warnings: the reply carries @adminapi.warnings and "value": null.
    warnings_only: dict[str, str] = field(default_factory=dict)
    # Cmdlets whose missing object Exchange reports as HTTP 500 (not 404) ManagementObjectNotFoundException.
    not_found_as_500: bool = False

    @property
    def org(self) -> dict[str, Any]:
        return dict(self.snapshot.get("org") or {})

    @property
    def boxes(self) -> dict[str, dict[str, Any]]:
        return dict(self.snapshot.get("mailboxes") or {})


@dataclass(frozen=True)
class Call:
    """What a fault hook sees: one HTTP request, or one request inside a Graph $batch."""

    api: str  # "oidc", "token", "devicecode", "graph", "graph-beta", "exchange"
    method: str
    path: str  # Graph: relative to /v1.0; others: the URL path
    query: dict[str, list[str]]
    tenant: str | None
    cmdlet: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    sub: bool = False  # inside a $batch


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-able, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)


Fault = Callable[[Call], Reply | None]
DROP = Reply(0)  # a fault reply that closes the connection without answering


def graph_error(status: int, code: str, message: str) -> Reply:
    inner = {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "request-id": str(uuid.uuid4()),
             "client-request-id": str(uuid.uuid4())}
    return Reply(status, {"error": {"code": code, "message": message, "innerError": inner}})


MAX_BATCH = 20
_BAD_BATCH = "Invalid batch payload format."


@dataclass(frozen=True)
class BatchItem:
    """One request of a JSON batch."""

    id: str
    method: str
    path: str  # relative to the version root
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased: HTTP compares them without case
    body: Any
    has_body: bool

    def refused(self) -> Reply | None:
        """Graph's answer to this request alone when it is malformed: a body needs its Content-Type."""
        if self.has_body and self.headers.get("content-type") != "application/json":
            return graph_error(400, "BadRequest", "Content-Type header must be specified for a request with a body.")
        return None


def batch_requests(method: str, body: bytes) -> list[BatchItem] | Reply:
    """The requests of a JSON batch (graph concepts/json-batching.md), or the 400 Graph answers for the
    whole batch: not a POST, not JSON, no `requests` list, more than 20 requests, a request without a
    string id, method and url, or two requests whose ids differ only in case."""
    if method != "POST":
        return graph_error(400, "BadRequest", _BAD_BATCH)
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        return graph_error(400, "BadRequest", "Unable to read JSON request payload.")
    if not isinstance(payload, dict) or not isinstance(payload.get("requests"), list):
        return graph_error(400, "BadRequest", _BAD_BATCH)
    requests = payload["requests"]
    if len(requests) > MAX_BATCH:
        return graph_error(400, "BadRequest", f"Limit of requests in the batch is {MAX_BATCH}.")
    items, ids = [], set()
    for req in requests:
        required = ("id", "method", "url")
        if not isinstance(req, dict) or not all(req.get(k) and isinstance(req[k], str) for k in required):
            return graph_error(400, "BadRequest", _BAD_BATCH)
        headers = req.get("headers") or {}
        if not isinstance(headers, dict) or req["id"].lower() in ids:
            return graph_error(400, "BadRequest", _BAD_BATCH)
        ids.add(req["id"].lower())
        url = req["url"]
        parts = urlsplit(url if url.startswith("/") else "/" + url)
        items.append(BatchItem(req["id"], req["method"].upper(), unquote(parts.path),
                               parse_qs(parts.query, keep_blank_values=True),
                               {str(k).lower(): str(v) for k, v in headers.items()}, req.get("body"), "body" in req))
    return items


MAX_EXCHANGE_BATCH = 10


@dataclass(frozen=True)
class ExchangeItem:
    """One InvokeCommand POST inside an Exchange $batch."""

    id: str
    tenant_key: str  # the {tenant} of its URL
    query: dict[str, list[str]]
    headers: dict[str, str]
    payload: dict[str, Any]  # {"CmdletInput": {...}}


def exchange_batch_requests(body: bytes, origin: str) -> list[ExchangeItem] | Reply:
    """The requests of an Exchange $batch, or the 400 for the whole batch: not JSON, no `requests` list,
    more than 10 requests, a request that is not a POST to an InvokeCommand URL on `origin` (scheme://host:port)
    with a string id, a JSON object body holding a CmdletInput object and an object of headers, or two
    requests with the same id. Microsoft documents none of it; the fake is strict so a malformed batch from
    the collector cannot pass."""
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        return _bad_exchange_batch("Unable to read JSON request payload.")
    if not isinstance(payload, dict) or not isinstance(payload.get("requests"), list):
        return _bad_exchange_batch(_BAD_BATCH)
    requests = payload["requests"]
    if len(requests) > MAX_EXCHANGE_BATCH:
        return _bad_exchange_batch(f"Limit of requests in the batch is {MAX_EXCHANGE_BATCH}.")
    items: list[ExchangeItem] = []
    ids: set[str] = set()
    for req in requests:
        if not isinstance(req, dict) or not isinstance(req.get("id"), str) or not req["id"] or req["id"] in ids:
            return _bad_exchange_batch(_BAD_BATCH)
        ids.add(req["id"])
        if not isinstance(req.get("method"), str) or req["method"].upper() != "POST":
            return _bad_exchange_batch(f"Request {req['id']}: only POST to InvokeCommand is batched.")
        url = urlsplit(str(req.get("url") or ""))
        m = re.fullmatch(r"/adminapi/beta/([^/]+)/InvokeCommand", unquote(url.path))
        if f"{url.scheme}://{url.netloc}" != origin or m is None:
            return _bad_exchange_batch(f"Request {req['id']}: not an InvokeCommand URL.")
        cmd, headers = req.get("body"), req.get("headers") or {}
        if not isinstance(cmd, dict) or not isinstance(cmd.get("CmdletInput"), dict) or not isinstance(headers, dict):
            return _bad_exchange_batch(f"Request {req['id']}: the body has no CmdletInput.")
        items.append(ExchangeItem(req["id"], m.group(1), parse_qs(url.query, keep_blank_values=True),
                                  {str(k): str(v) for k, v in headers.items()}, cmd))
    return items


def _bad_exchange_batch(message: str) -> Reply:
    return Reply(400, {"error": {"code": "BadRequest", "message": message}})


def _sub_body(body: Any) -> Any:
    """A reply body as a $batch response carries it: JSON, or null for an empty one."""
    if not isinstance(body, bytes):
        return body
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def exchange_error(status: int, kind: str, message: str) -> Reply:
    return Reply(status, {"error": {
        "code": "InternalServerError" if status >= 500 else ("NotFound" if status == 404 else "BadRequest"),
        "message": "Error executing cmdlet",
        "details": [{"code": "Context", "target": "",
                     "message": f"Ex6F9304|Microsoft.Exchange.Configuration.Tasks.{kind}|{message}"}],
        "innererror": {"message": "Error executing cmdlet",
                       "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException", "stacktrace": ""},
    }})


def token_error(status: int, error: str, aadsts: str, text: str) -> Reply:
    trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    return Reply(status, {
        "error": error,
        "error_description": f"{aadsts}: {text}\r\nTrace ID: {trace}\r\nCorrelation ID: {corr}\r\nTimestamp: {stamp}",
        "error_codes": [int(aadsts[6:])], "timestamp": stamp, "trace_id": trace, "correlation_id": corr,
        "error_uri": "https://login.microsoftonline.com/error?code=" + aadsts[6:],
    })


def throttle(matches: Callable[[Call], bool], times: int = 1, retry_after: str = "0") -> Fault:
    """A fault hook answering 429 with Retry-After to the first `times` calls that match."""
    left = {"n": times}
    lock = threading.Lock()

    def hook(call: Call) -> Reply | None:
        if not matches(call):
            return None
        with lock:
            if left["n"] <= 0:
                return None
            left["n"] -= 1
        reply = graph_error(429, "TooManyRequests", "Too many requests")
        reply.headers["Retry-After"] = retry_after
        return reply

    return hook


def smtp_addresses(obj: Any) -> set[str]:
    found: set[str] = set()
    if not isinstance(obj, dict):
        return found
    for proxy in list(obj.get("EmailAddresses") or []) + list(obj.get("proxyAddresses") or []):
        kind, sep, addr = str(proxy).partition(":")
        if sep and kind.lower() == "smtp":
            found.add(addr.lower())
    for key in ("PrimarySmtpAddress", "WindowsEmailAddress", "UserPrincipalName", "userPrincipalName", "mail"):
        if obj.get(key):
            found.add(str(obj[key]).lower())
    return found


def _selected(value: Any, query: dict[str, list[str]]) -> Any:
    """Graph's $select: only the named properties (and @odata annotations) come back."""
    select = (query.get("$select") or [""])[0]
    if not select or not isinstance(value, dict) or _is_error(value):
        return value
    wanted = set(select.split(","))
    return {k: v for k, v in value.items() if k in wanted or k.startswith("@odata")}


def _is_error(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"error"} and isinstance(value["error"], dict)


class FakeMicrosoft:
    def __init__(self, *, tls: Any = None, latency: float = 0.0, page_size: int = 100,
                 exchange_page_size: int = 1000) -> None:
        self.tls = tls  # a trustme.CA: serve HTTPS with a certificate it issued for 127.0.0.1
        self.latency = latency
        self.page_size = page_size
        self.exchange_page_size = exchange_page_size
        self.wire = Wire()  # how reply bodies are framed (tests/wire.py)
        self.exchange_batch = True  # False: /adminapi/beta/{tenant}/$batch answers 404 (no such route)
        self.exchange_batch_order = "sent"  # or "reversed": sub-responses in another order than the requests
        # Rewrites an Exchange $batch's responses before they are sent (a hostile server); it is given the
        # requests they answer.
        self.exchange_batch_tamper: Callable[[list[ExchangeItem], list[dict[str, Any]]], list[Any]] | None = None
        self.exchange_batch_sizes: list[int] = []  # requests in each well-formed Exchange $batch served
        self.fault: Fault | None = None
        self.tenants: dict[str, FakeTenant] = {}
        self.log: list[Call] = []
        self.headers_seen: list[tuple[str, dict[str, str]]] = []  # (api, request headers)
        self.issued: list[str] = []  # every access and refresh token handed out, to prove none leaks
        self._lock = threading.Lock()
        self._codes: dict[str, dict[str, Any]] = {}  # device codes
        self._refresh: dict[str, dict[str, Any]] = {}  # refresh tokens
        self._server: ThreadingHTTPServer | None = None
        self._open: set[Any] = set()  # the sockets of connections being served, cut when the fake stops
        # Kept after stop: a request the client gave up on may still be answered by its handler thread then.
        self._port: int | None = None

    # -- set-up ------------------------------------------------------------------------------------

    def add_tenant(self, tenant: FakeTenant) -> FakeTenant:
        for key in (tenant.id, *tenant.domains):
            self.tenants[key.lower()] = tenant
        return tenant

    @property
    def host(self) -> str:
        assert self._port is not None, "the fake is not started"
        return f"127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def cloud_file(self, path: Path, name: str = CLOUD) -> Path:
        """A PREFLIGHT_MICROSOFT_CLOUDS file whose cloud `name` points every endpoint at this fake."""
        path.write_text(
            f'[{name}]\ntitle = "Local fake"\nlogin = "{self.host}"\ngraph = "{self.host}"\n'
            f'exchange = "{self.host}"\ngraph_scope = "{GRAPH_AUDIENCE}/.default"\n'
            f'exchange_scope = "{EXCHANGE_AUDIENCE}/.default"\ninstance_discovery = false\n',
            encoding="utf-8",
        )
        return path

    def start(self) -> FakeMicrosoft:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One write per reply and no Nagle: otherwise delayed ACKs add ~40 ms to every request.
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                with fake._lock:
                    fake._open.add(self.connection)

            def finish(self) -> None:
                with fake._lock:
                    fake._open.discard(self.connection)
                super().finish()

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if fake.latency:
                    time.sleep(fake.latency)
                reply = fake.handle(method, self.path, {k: v for k, v in self.headers.items()}, body)
                if reply is None or reply.status == 0:  # a fault that drops the connection (see DROP)
                    self.close_connection = True
                    return
                data = reply.body if isinstance(reply.body, bytes) else (
                    b"" if reply.body is None else json.dumps(reply.body).encode())
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json; charset=utf-8", **reply.headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                fake.wire.send_body(self, data, method)

            def log_message(self, *_args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                # After stop, a handler finishing a request its client gave up on (a deadline) must not print
                # a traceback into whatever test runs next; while serving, errors stay loud.
                if fake._server is self:
                    super().handle_error(request, client_address)

        server = Server(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.tls.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
            server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self._server, self._port = server, server.server_address[1]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving, kept-alive connections included: a service that went away answers nothing more."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            live, self._open = list(self._open), set()
        for sock in live:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def __enter__(self) -> FakeMicrosoft:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- accounting --------------------------------------------------------------------------------

    def calls(self, api: str | None = None, *, sub: bool | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.log if (api is None or c.api == api) and (sub is None or c.sub == sub)]

    def http_requests(self, api: str | None = None) -> int:
        return len(self.calls(api, sub=False))

    def _record(self, call: Call, headers: dict[str, str] | None = None) -> Reply | None:
        with self._lock:
            self.log.append(call)
            if headers is not None:
                self.headers_seen.append((call.api, headers))
        return self.fault(call) if self.fault else None

    # -- dispatch ----------------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply | None:
        parts = urlsplit(raw_path)
        path, query = unquote(parts.path), parse_qs(parts.query, keep_blank_values=True)
        if path.startswith("/v1.0/"):
            return self._graph_http(method, path[len("/v1.0"):], query, headers, body)
        if path.startswith("/beta/"):
            return self._graph_http(method, path[len("/beta"):], query, headers, body, beta=True)
        m = re.fullmatch(r"/adminapi/beta/([^/]+)/InvokeCommand", path)
        if m and method == "POST":
            return self._exchange(m.group(1), query, headers, json.loads(body or b"{}"))
        m = re.fullmatch(r"/adminapi/beta/([^/]+)/\$batch", path)
        if m and method == "POST":
            return self._exchange_batch(m.group(1), path, query, headers, body)
        m = re.fullmatch(r"/([^/]+)/v2\.0/\.well-known/openid-configuration", path)
        if m:
            fault = self._record(Call("oidc", method, path, query, m.group(1)), headers)
            return fault or self._openid(m.group(1))
        m = re.fullmatch(r"/([^/]+)/oauth2/v2\.0/(token|devicecode)", path)
        if m and method == "POST":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            fault = self._record(Call(m.group(2), method, path, query, m.group(1), parameters=form), headers)
            if fault:
                return fault
            return self._token(m.group(1), form) if m.group(2) == "token" else self._devicecode(m.group(1), form)
        return Reply(404, {"error": {"code": "NotFound", "message": f"no route for {method} {path}"}})

    def _tenant(self, key: str | None) -> FakeTenant | None:
        return self.tenants.get((key or "").lower())

    # -- Entra ID ----------------------------------------------------------------------------------

    def _openid(self, key: str) -> Reply:
        tenant = self._tenant(key)
        if tenant is None:
            return token_error(400, "invalid_tenant", "AADSTS90002",
                               f"Tenant '{key}' not found. Check to make sure you have the correct tenant ID and "
                               "are signing into the correct cloud.")
        base = f"{self.url}/{tenant.id}"
        return Reply(200, {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{self.url}/{tenant.id}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{self.url}/{tenant.id}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{self.url}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce",
                                 "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            **tenant.region,
        })

    def _resource_of(self, scopes: list[str]) -> tuple[str | None, list[str]]:
        """(audience, permission names) of a scope list; reserved OIDC scopes do not count."""
        resource, names = None, []
        for scope in scopes:
            if scope in ("openid", "profile", "offline_access", "email"):
                continue
            for aud in (GRAPH_AUDIENCE, EXCHANGE_AUDIENCE):
                if scope.startswith(aud + "/"):
                    if resource not in (None, aud):
                        return "mixed", []
                    resource = aud
                    names.append(scope[len(aud) + 1:])
        return resource, names

    def _token(self, key: str, form: dict[str, str]) -> Reply:
        tenant = self._tenant(key)
        if tenant is None:
            return token_error(400, "invalid_request", "AADSTS90002", f"Tenant '{key}' not found.")
        app = tenant.apps.get(form.get("client_id", ""))
        if app is None:
            return token_error(400, "unauthorized_client", "AADSTS700016",
                               f"Application with identifier '{form.get('client_id')}' was not found in the directory "
                               f"'{tenant.domains[0] if tenant.domains else tenant.id}'.")
        grant = form.get("grant_type")
        scopes = form.get("scope", "").split()
        if grant == "client_credentials":
            refused = self._client_auth(tenant, app, form)
            if refused:
                return refused
            resource, names = self._resource_of(scopes)
            if resource in (None, "mixed") or names != [".default"]:
                return token_error(400, "invalid_scope", "AADSTS1002012",
                                   f"The provided value for scope {' '.join(scopes)} is not valid. Client credential "
                                   "flows must have a scope value with /.default suffixed to the resource identifier.")
            roles = app.graph_roles if resource == GRAPH_AUDIENCE else app.exchange_roles
            return Reply(200, self._access(tenant, app, resource, roles=list(roles)))
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            with self._lock:
                code = self._codes.get(form.get("device_code", ""))
                if code is None:
                    return token_error(400, "expired_token", "AADSTS70019", "Verification code expired.")
                code["polls"] += 1
                if code["polls"] == 1:
                    return token_error(400, "authorization_pending", "AADSTS70016",
                                       "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
                self._codes.pop(form["device_code"])
            if tenant.device_code_blocked:
                return token_error(400, "invalid_grant", "AADSTS53003",
                                   "Access has been blocked by Conditional Access policies. The access policy does "
                                   "not allow token issuance.")
            return self._delegated(tenant, app, code["resource"], code["names"])
        if grant == "refresh_token":
            with self._lock:
                held = self._refresh.get(form.get("refresh_token", ""))
            if held is None or held["tenant"] is not tenant:
                return token_error(400, "invalid_grant", "AADSTS9002313", "Invalid request. Request is malformed.")
            if held["client"] != app.client_id:  # a refresh token is bound to the client it was issued to
                return token_error(400, "invalid_grant", "AADSTS70000", "Provided grant is invalid or malformed.")
            resource, names = self._resource_of(scopes)
            if resource in (None, "mixed"):
                return token_error(400, "invalid_scope", "AADSTS70011", "The provided value for scope is not valid.")
            return self._delegated(tenant, app, str(resource), names)
        return token_error(400, "unsupported_grant_type", "AADSTS70003", f"grant_type {grant} is not supported.")

    def _client_auth(self, tenant: FakeTenant, app: App, form: dict[str, str]) -> Reply | None:
        if form.get("client_secret") is not None:
            if app.secret is not None and secrets.compare_digest(form["client_secret"], app.secret):
                return None
            return token_error(401, "invalid_client", "AADSTS7000215",
                               "Invalid client secret provided. Ensure the secret being sent in the request is the "
                               f"client secret value, not the client secret ID, for a secret added to app "
                               f"'{app.client_id}'.")
        assertion = form.get("client_assertion")
        if assertion and app.certificate_pem:
            cert = x509.load_pem_x509_certificate(app.certificate_pem)
            header = jwt.get_unverified_header(assertion)
            want256 = b64url(cert.fingerprint(hashes.SHA256()))
            want1 = b64url(cert.fingerprint(hashes.SHA1()))  # the legacy x5t header is SHA-1
            got256, got1 = (str(header[k]).rstrip("=") if header.get(k) else None for k in ("x5t#S256", "x5t"))
            if (got256, got1) == (None, None) or got256 not in (None, want256) or got1 not in (None, want1):
                return token_error(401, "invalid_client", "AADSTS700027",
                                   "The certificate with identifier used to sign the client assertion is not "
                                   "registered on application.")
            try:
                jwt.decode(assertion, cert.public_key(), algorithms=["PS256", "RS256"],  # type: ignore[arg-type]
                           audience=f"{self.url}/{tenant.id}/oauth2/v2.0/token", issuer=app.client_id)
            except jwt.PyJWTError as exc:
                return token_error(401, "invalid_client", "AADSTS700027",
                                   f"Client assertion failed signature validation. ({type(exc).__name__})")
            return None
        return token_error(401, "invalid_client", "AADSTS7000218",
                           "The request body must contain the following parameter: 'client_assertion' or "
                           "'client_secret'.")

    def _access(self, tenant: FakeTenant, app: App, resource: str | None, *, roles: list[str] | None = None,
                scp: str | None = None, user: str | None = None) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {"aud": resource, "iss": f"https://sts.fake.test/{tenant.id}/", "iat": now,
                                  "nbf": now, "exp": now + 3599, "tid": tenant.id, "appid": app.client_id,
                                  "ver": "1.0", "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, user or app.client_id))}
        if roles is not None:
            claims["roles"] = roles
        if scp is not None:
            claims.update(scp=scp, upn=user, unique_name=user)
        token = unsigned_jwt(claims)
        with self._lock:
            self.issued.append(token)
        return {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}

    def _devicecode(self, key: str, form: dict[str, str]) -> Reply:
        tenant = self._tenant(key)
        if tenant is None or form.get("client_id") not in tenant.apps:
            return token_error(400, "unauthorized_client", "AADSTS700016", "Application was not found.")
        resource, names = self._resource_of(form.get("scope", "").split())
        device_code = secrets.token_urlsafe(24)
        user_code = "FAKE" + secrets.token_hex(2).upper()
        with self._lock:
            self._codes[device_code] = {"resource": resource, "names": names, "polls": 0}
        return Reply(200, {
            "user_code": user_code, "device_code": device_code,
            "verification_uri": "https://microsoft.com/devicelogin", "expires_in": 900, "interval": 0,
            "message": f"To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter "
                       f"the code {user_code} to authenticate.",
        })

    def _delegated(self, tenant: FakeTenant, app: App, resource: str, names: list[str]) -> Reply:
        api = "graph" if resource == GRAPH_AUDIENCE else "exchange"
        consented = app.delegated.get(api) or ()
        # Named scopes need consent for each; /.default is whatever was consented (none: no consent).
        if not consented or not set(names) <= {*consented, ".default"}:
            return token_error(400, "invalid_grant", "AADSTS65001",
                               f"The user or administrator has not consented to use the application with ID "
                               f"'{app.client_id}'. Send an interactive authorization request for this user and "
                               "resource.")
        user = tenant.device_user
        oid = str(uuid.uuid5(uuid.NAMESPACE_URL, user))
        body = self._access(tenant, app, resource, scp=" ".join(consented), user=user)
        refresh = secrets.token_urlsafe(32)
        with self._lock:
            self._refresh[refresh] = {"tenant": tenant, "user": user, "client": app.client_id}
            self.issued.append(refresh)
        now = int(time.time())
        id_claims = {"aud": app.client_id, "iss": f"{self.url}/{tenant.id}/v2.0", "iat": now, "nbf": now,
                     "exp": now + 3600, "name": "Fake Admin", "oid": oid, "preferred_username": user,
                     "sub": b64url(hashlib.sha256(oid.encode()).digest()), "tid": tenant.id, "ver": "2.0"}
        body.update(
            scope=" ".join(f"{resource}/{s}" for s in consented),
            refresh_token=refresh,
            id_token=unsigned_jwt(id_claims),
            client_info=b64url(json.dumps({"uid": oid, "utid": tenant.id}).encode()),
        )
        return Reply(200, body)

    # -- authorisation of API calls ----------------------------------------------------------------

    def _bearer(self, headers: dict[str, str], audience: str) -> tuple[FakeTenant | None, Reply | None]:
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        if not auth.startswith("Bearer "):
            return None, graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        claims = claims_of(auth[len("Bearer "):])
        if claims.get("aud") != audience:
            return None, graph_error(401, "InvalidAuthenticationToken", "Access token validation failure. "
                                     "Invalid audience.")
        if claims.get("exp", 0) < time.time():
            return None, graph_error(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is "
                                     "expired.")
        return self._tenant(claims.get("tid")), None

    # -- Graph -------------------------------------------------------------------------------------

    def _graph_http(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
                    body: bytes, *, beta: bool = False) -> Reply | None:
        tenant, refused = self._bearer(headers, GRAPH_AUDIENCE)
        tid = tenant.id if tenant else None
        fault = self._record(Call("graph-beta" if beta else "graph", method, path, query, tid), headers)
        if fault:
            return fault
        if refused or tenant is None:
            return refused or graph_error(401, "InvalidAuthenticationToken", "Unknown tenant.")
        if beta and path == "/auditLogs/signIns":
            from tests.microsoft import fake_signins

            return fake_signins.sign_ins(self, tenant, query, beta=True)
        if beta:
            from tests.microsoft import fake_beta  # the beta endpoints live in their own module

            return fake_beta.serve(self, tenant, method, path, body)
        if path == "/$batch":
            return self.batch(tenant, "graph", method, body, lambda item: self._get(
                tenant, item.method, item.path, item.query, {**headers, **item.headers}))
        return self._get(tenant, method, path, query, headers)

    def _get(self, tenant: FakeTenant, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str]
             ) -> Reply:
        if method != "GET":
            return graph_error(405, "Request_BadRequest", "Only GET is served.")
        return self._graph(tenant, path, query, headers)

    def batch(self, tenant: FakeTenant, api: str, method: str, body: bytes,
              serve: Callable[[BatchItem], Reply]) -> Reply:
        """A $batch that passed the bearer check: each well-formed request is logged, offered to the fault
        hook, then answered by `serve`."""
        items = batch_requests(method, body)
        if isinstance(items, Reply):
            return items
        responses = []
        for item in items:
            reply = self._record(Call(api, item.method, item.path, item.query, tenant.id,
                                      parameters=item.body if isinstance(item.body, dict) else {}, sub=True))
            if reply is None:
                reply = item.refused() or serve(item)
            responses.append({"id": item.id, "status": reply.status,
                              "headers": {"Content-Type": "application/json", **reply.headers}, "body": reply.body})
        responses.reverse()  # Graph answers in any order; callers must match by id
        return Reply(200, {"responses": responses})

    def _graph(self, tenant: FakeTenant, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        org, base = tenant.org, f"{self.url}/v1.0/$metadata#"
        if path in _GRAPH_OBJECTS:
            name, context = _GRAPH_OBJECTS[path]
            return self._object(org.get(name), base + context, path)
        if path in _GRAPH_LISTS:
            name, context = _GRAPH_LISTS[path]
            return self._list(org.get(name, []), base + context, path, query)
        m = re.fullmatch(r"/servicePrincipals\(appId='([^']+)'\)", path)
        if m:
            app_id = m.group(1)
            options_app = (tenant.snapshot.get("options") or {}).get("app_id")
            value = (org.get("exchangeOnlineServicePrincipal") if app_id == EXCHANGE_APP_ID
                     else org.get("servicePrincipal") if app_id == options_app else None)
            value = _selected(value, query)
            return self._object(value, base + "servicePrincipals/$entity", f"servicePrincipals(appId='{app_id}')")
        m = re.fullmatch(r"/applications\(appId='([^']+)'\)", path)
        if m:
            options_app = (tenant.snapshot.get("options") or {}).get("app_id")
            value = _selected(org.get("application") if m.group(1) == options_app else None, query)
            return self._object(value, base + "applications/$entity", f"applications(appId='{m.group(1)}')")
        m = re.fullmatch(r"/servicePrincipals/([^/]+)/appRoleAssignments", path)
        if m:
            return self._list(org.get("servicePrincipalAppRoles", []), base + f"servicePrincipals('{m.group(1)}')"
                              "/appRoleAssignments", path, query)
        if path == "/auditLogs/signIns":
            from tests.microsoft import fake_signins  # the sign-in log lives in its own module

            return fake_signins.sign_ins(self, tenant, query)
        if path == "/oauth2PermissionGrants":
            return self._list(org.get("oauth2PermissionGrants", []), base + "oauth2PermissionGrants", path, query)
        if path == "/users":
            return self._find_users(tenant, query, headers)
        m = re.fullmatch(r"/users/([^/]+)(/transitiveMemberOf|/mailboxSettings)?", path)
        if m:
            return self._user(tenant, m.group(1), m.group(2), query)
        return graph_error(400, "BadRequest", f"Resource not found for the segment '{path.strip('/').split('/')[0]}'.")

    def _object(self, value: Any, context: str, name: str) -> Reply:
        if value is None:
            return graph_error(404, "Request_ResourceNotFound",
                               f"Resource '{name}' does not exist or one of its queried reference-property objects "
                               "are not present.")
        if _is_error(value):
            err = value["error"]
            return graph_error(int(err.get("status") or 500), str(err.get("code")), str(err.get("message") or ""))
        return Reply(200, value if "@odata.context" in value else {"@odata.context": context, **value})

    def _list(self, value: Any, context: str, path: str, query: dict[str, list[str]]) -> Reply:
        if _is_error(value):
            return self._object(value, context, path)
        skip = int((query.get("$skiptoken") or ["0"])[0])
        page = value[skip: skip + self.page_size]
        body: dict[str, Any] = {"@odata.context": context, "value": page}
        if skip + self.page_size < len(value):
            rest = "&".join(f"{k}={v[0]}" for k, v in query.items() if k != "$skiptoken")
            more = f"{rest}&" if rest else ""
            body["@odata.nextLink"] = f"{self.url}/v1.0{path}?{more}$skiptoken={skip + self.page_size}"
        return Reply(200, body)

    def _box_of_user(self, tenant: FakeTenant, key: str) -> tuple[str | None, dict[str, Any] | None]:
        key = key.lower()
        for addr, box in tenant.boxes.items():
            user = box.get("user")
            if isinstance(user, dict) and not _is_error(user) and key in (
                    str(user.get("id", "")).lower(), str(user.get("userPrincipalName", "")).lower()):
                return addr, box
        recorded = tenant.boxes.get(key)
        if recorded is not None and _is_error(recorded.get("user")):
            return key, recorded  # the snapshot recorded this lookup as an error: answer with it
        return None, None

    def _user(self, tenant: FakeTenant, key: str, nav: str | None, query: dict[str, list[str]]) -> Reply:
        _addr, box = self._box_of_user(tenant, key)
        base = f"{self.url}/v1.0/$metadata#"
        if box is None:
            return self._object(None, "", key)
        user = box.get("user")
        if _is_error(user):
            return self._object(user, "", key)
        if nav == "/transitiveMemberOf":
            return self._list(box.get("memberOf", []), base + "directoryObjects", f"/users/{key}{nav}", query)
        if nav == "/mailboxSettings":
            settings = box.get("mailboxSettings")
            if settings is None:
                return graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
            return self._object(settings, base + f"users('{key}')/mailboxSettings", key)
        return self._object(user, base + "users(id,displayName,userPrincipalName,mail,accountEnabled,userType,"
                            "assignedLicenses,assignedPlans,proxyAddresses)/$entity", key)

    def _find_users(self, tenant: FakeTenant, query: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        if "$count" in query and headers.get("ConsistencyLevel", headers.get("consistencylevel")) != "eventual":
            return graph_error(400, "Request_UnsupportedQuery",
                               "$count is not currently supported. Add the ConsistencyLevel: eventual header.")
        flt = (query.get("$filter") or [""])[0]
        wanted = {a.lower() for a in re.findall(r"smtp:([^']+)'", flt, re.I)}
        wanted |= {a.lower() for a in re.findall(r"mail eq '([^']+)'", flt)}
        found, seen = [], set()
        for box in tenant.boxes.values():
            user = box.get("user")
            if isinstance(user, dict) and not _is_error(user) and user.get("id") not in seen:
                proxies = {str(p).split(":", 1)[-1].lower() for p in user.get("proxyAddresses") or []
                           if str(p).lower().startswith("smtp:")}
                if wanted & (proxies | {str(user.get("mail") or "").lower()}):
                    found.append(user)
                    seen.add(user.get("id"))
        body: dict[str, Any] = {"@odata.context": f"{self.url}/v1.0/$metadata#users", "value": found}
        if "$count" in query:
            body["@odata.count"] = len(found)
        return Reply(200, body)

    # -- Exchange ----------------------------------------------------------------------------------

    def _exchange_batch(self, key: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
                        body: bytes) -> Reply | None:
        token_tenant, _refused = self._bearer(headers, EXCHANGE_AUDIENCE)
        fault = self._record(Call("exchange", "POST", path, query, token_tenant.id if token_tenant else None),
                             headers)
        if fault:
            return fault
        if not self.exchange_batch:
            return Reply(404, {"error": {"code": "NotFound", "message": f"no route for POST {path}"}})
        tenant, refused = self._exchange_caller(key, headers)
        if refused or tenant is None:
            return refused
        items = exchange_batch_requests(body, self.url)
        if isinstance(items, Reply):
            return items
        responses = []
        outer = {k: v for k, v in headers.items() if k.lower() not in ("x-anchormailbox", "x-cmdletname")}
        # OData stops at the first failed request unless the batch prefers otherwise (OData/WebApi#447).
        go_on = any(k.lower() == "prefer" and "odata.continue-on-error" in v.lower() for k, v in headers.items())
        for item in items:
            if responses and responses[-1]["status"] >= 400 and not go_on:
                break
            if self._tenant(item.tenant_key) is not tenant:  # another tenant's InvokeCommand
                return _bad_exchange_batch(f"Request {item.id}: not this tenant's InvokeCommand URL.")
            reply = self._exchange(item.tenant_key, item.query, {**outer, **item.headers}, item.payload, sub=True)
            reply = reply or Reply(502, {"error": {"code": "BadGateway", "message": "no reply"}})
            responses.append({"id": item.id, "status": reply.status,
                              "headers": {"Content-Type": "application/json", **reply.headers},
                              "body": _sub_body(reply.body)})
        if self.exchange_batch_order == "reversed":
            responses.reverse()
        with self._lock:
            self.exchange_batch_sizes.append(len(items))
        out: list[Any] = self.exchange_batch_tamper(items, responses) if self.exchange_batch_tamper else responses
        return Reply(200, {"responses": out})

    def _exchange_caller(self, key: str, headers: dict[str, str]) -> tuple[FakeTenant | None, Reply | None]:
        """The tenant whose InvokeCommand the bearer may call, or Exchange's bare 401."""
        token_tenant, refused = self._bearer(headers, EXCHANGE_AUDIENCE)
        claims = claims_of(next((v for k, v in headers.items() if k.lower() == "authorization"), " ").split(" ")[-1])
        tenant = self._tenant(key)
        if refused or not ({"Exchange.ManageAsApp"} & set(claims.get("roles") or [])
                           or "Exchange.Manage" in str(claims.get("scp") or "").split()) \
                or tenant is None or tenant is not token_tenant:
            # Exchange answers a token without Exchange.ManageAsApp / Exchange.Manage with a bare 401.
            return None, Reply(401, b"", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return tenant, None

    def _exchange(self, key: str, query: dict[str, list[str]], headers: dict[str, str], payload: Any,
                  *, sub: bool = False) -> Reply | None:
        cmdlet_input = (payload.get("CmdletInput") if isinstance(payload, dict) else None) or {}
        cmdlet, params = str(cmdlet_input.get("CmdletName")), dict(cmdlet_input.get("Parameters") or {})
        token_tenant, _refused = self._bearer(headers, EXCHANGE_AUDIENCE)
        fault = self._record(Call("exchange", "POST", f"/adminapi/beta/{key}/InvokeCommand", query,
                                  token_tenant.id if token_tenant else None, cmdlet, params, sub=sub), headers)
        if fault:
            return fault
        tenant, refused = self._exchange_caller(key, headers)
        if refused or tenant is None:
            return refused
        claims = claims_of(next((v for k, v in headers.items() if k.lower() == "authorization"), " ").split(" ")[-1])
        anchor = next((v for k, v in headers.items() if k.lower() == "x-anchormailbox"), None)
        if anchor is None:
            return exchange_error(400, "ArgumentException", "X-AnchorMailbox header is required.")
        if not self._anchor_routes(tenant, anchor, claims):
            # A routing hint to no mailbox of this tenant fails every call (the exact text is the fake's).
            return exchange_error(500, "ADObjectNotFoundException",
                                  f"The anchor mailbox '{anchor}' could not be found in this organization.")
        if cmdlet in tenant.refused_cmdlets:
            message = f"User is not allowed to call {cmdlet}"
            return Reply(401, {"error": {"code": "Unauthorized", "message": message, "innererror": {
                "message": message, "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException"}}})
        context = f"{self.url}/adminapi/beta/{tenant.id}/$metadata#Collection(Exchange.GenericHashTable)"
        if cmdlet in tenant.warnings_only:
            return Reply(200, {"@odata.context": context, "adminapi.warnings@odata.type": "#Collection(String)",
                               "@adminapi.warnings": [tenant.warnings_only[cmdlet]], "value": None})
        result = self._cmdlet(tenant, cmdlet, params)
        if isinstance(result, Reply):
            return result
        skip = int((query.get("$skiptoken") or ["0"])[0])
        page = result[skip: skip + self.exchange_page_size]
        reply: dict[str, Any] = {
            "@odata.context": context,
            "adminapi.warnings@odata.type": "#Collection(String)", "@adminapi.warnings": [], "value": page,
        }
        if skip + self.exchange_page_size < len(result):
            reply["@odata.nextLink"] = (f"{self.url}/adminapi/beta/{key}/InvokeCommand"
                                        f"?$skiptoken={skip + self.exchange_page_size}")
        return Reply(200, reply)

    @staticmethod
    def _anchor_routes(tenant: FakeTenant, anchor: str, claims: dict[str, Any]) -> bool:
        """The forms peers send: APP: the system mailbox at the tenant id (CIPP-API New-ExoRequest), UPN: the
        system mailbox at the initial onmicrosoft.com domain (older CIPP), or UPN: the signed-in user."""
        kind, _, address = anchor.partition(":")
        local, _, domain = address.partition("@")
        if kind == "APP":
            return local == SYSTEM_MAILBOX and domain.lower() == tenant.id.lower()
        if kind == "UPN":
            if local == SYSTEM_MAILBOX:
                return domain.lower() == tenant.initial_domain.lower()
            return bool(claims.get("upn")) and address.lower() == str(claims["upn"]).lower()
        return False

    def _cmdlet(self, tenant: FakeTenant, cmdlet: str, params: dict[str, Any]) -> list[Any] | Reply:
        if cmdlet in _EXCHANGE_ORG:
            name, single = _EXCHANGE_ORG[cmdlet]
            value = tenant.org.get(name, None if single else [])
            if isinstance(value, dict) and _is_error(value):
                return self._exchange_refusal(value)
            if value is None:
                return exchange_error(500, "ManagementObjectNotFoundException", f"{cmdlet} returned nothing.")
            return [value] if single else list(value)
        if cmdlet not in _EXCHANGE_BOX:
            return exchange_error(400, "CmdletNotFoundException",
                                  f"The term '{cmdlet}' is not recognized as a name of a cmdlet.")
        name = _EXCHANGE_BOX[cmdlet]
        if "Filter" in params:
            return self._filtered(tenant, name, str(params["Filter"]))
        identity = str(params.get("Identity") or "")
        box = self._box_for_identity(tenant, name, identity)
        value = box.get(name) if box is not None else None
        if cmdlet == "Get-RecipientPermission":
            value = self._from_permissions(tenant, identity, value)
        if value is None:
            return exchange_error(500 if tenant.not_found_as_500 else 404, "ManagementObjectNotFoundException",
                                  f"The operation couldn't be performed because object '{identity}' couldn't be "
                                  "found on 'AM0PR01A001DC01.EURPR01A001.PROD.OUTLOOK.COM'.")
        if _is_error(value):
            return self._exchange_refusal(value)
        return list(value) if isinstance(value, list) else [value]

    def _from_permissions(self, tenant: FakeTenant, identity: str, value: Any) -> Any:
        froms = (tenant.snapshot.get("options") or {}).get("from_addresses") or {}
        for addr, sender in froms.items():
            if str(sender).lower() == identity.lower() and "fromRecipientPermissions" in tenant.boxes.get(addr, {}):
                return tenant.boxes[addr]["fromRecipientPermissions"]
        return value

    @staticmethod
    def _exchange_refusal(value: dict[str, Any]) -> Reply:
        err = value["error"]
        status = int(err.get("status") or 500)
        if status == 401:
            return Reply(401, b"", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return exchange_error(status, str(err.get("code") or "Error"), str(err.get("message") or ""))

    def _box_for_identity(self, tenant: FakeTenant, name: str, identity: str) -> dict[str, Any] | None:
        identity = identity.lower()
        boxes = tenant.boxes
        if identity in boxes:
            return boxes[identity]
        for box in boxes.values():
            if identity in smtp_addresses(box.get(name)) | smtp_addresses(box.get("mailbox")) | \
                    smtp_addresses(box.get("user")):
                return box
        return None

    def _filtered(self, tenant: FakeTenant, name: str, flt: str) -> list[Any] | Reply:
        clauses = [(prop.lower(), value.replace("''", "'").lower()) for prop, value in _CLAUSE.findall(flt)]
        leftover = re.sub(r"-or", "", _CLAUSE.sub("", flt), flags=re.I).strip()
        if not clauses or leftover:
            return exchange_error(400, "ParameterBindingException", f"Cannot bind parameter 'Filter' to '{flt}'.")
        found = []
        for addr, box in tenant.boxes.items():
            value: Any = box.get(name)
            for prop, wanted in clauses:
                if prop == "emailaddresses":
                    hit = wanted in smtp_addresses(value) | ({addr} if "EmailAddresses" not in (value or {}) else set())
                elif prop == "userprincipalname":
                    user: dict[str, Any] = box["user"] if isinstance(box.get("user"), dict) else {}
                    hit = wanted in {str((value or {}).get("UserPrincipalName", "")).lower(),
                                     str(user.get("userPrincipalName", "")).lower()} - {""}
                else:
                    return exchange_error(400, "ParameterBindingException", f"Unsupported filter property {prop}.")
                if hit:
                    if _is_error(value):
                        if value["error"].get("status") in (401, 403):
                            return self._exchange_refusal(value)
                        break  # not found: a filter simply does not return it
                    if value is not None:
                        found.append(value)
                    break
        return found

