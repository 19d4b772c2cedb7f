"""A local stand-in for Google: token endpoint, OAuth consent, Directory, Policy, Gmail and Licensing APIs.

It serves one or more Workspaces (each built from a preflight snapshot or by hand) over HTTPS (trustme), in
the documented shapes: `nextPageToken` paging with each API's page-size parameter, Google's error bodies,
404 `notFound` for unknown users, 403 for non-admins, scope checks per method (the discovery documents'
scope lists). The token endpoint is driven by the real google-auth / google-auth-oauthlib code:

* JWT bearer (service accounts): the assertion's RS256 signature is verified with the registered public key
  and its claims checked (iss, kid, aud, iat/exp, scope, sub); domain-wide delegation is granted per
  Workspace and client id, and a scope outside the grant answers 401 unauthorized_client, as Google does.
* Authorization code with PKCE (installed-app OAuth), refresh tokens, and revocation.

Hooks for later tests: `latency(seen) -> seconds`, `fault(seen) -> Reply | None` (any reply, any route),
`clock_offset` (the Date header and JWT time checks), and a request log with the subject of every call.
"""

from __future__ import annotations

import base64
import copy
import email.utils
import hashlib
import json
import re
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import trustme
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.wire import Wire

GOOGLE_TOKEN_AUD = "https://oauth2.googleapis.com/token"  # google-auth puts this in `aud`, whatever token_uri is
AUTH = "https://www.googleapis.com/auth/"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


# --- Google's error bodies ---------------------------------------------------------------------------

_REASON = {400: "badRequest", 401: "authError", 403: "forbidden", 404: "notFound", 429: "rateLimitExceeded"}
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def google_error(code: int, message: str, reason: str | None = None, status: str | None = "") -> dict[str, Any]:
    """{"error": {"code", "message", "errors": [{"message", "domain": "global", "reason"}], "status"}}.

    status="" picks the canonical one for the code; None leaves it out, as Directory's classic errors do.
    """
    err: dict[str, Any] = {"code": code, "message": message,
                           "errors": [{"message": message, "domain": "global", "reason": reason or _REASON.get(code,
                                                                                                          "error")}]}
    if status is not None:
        err["status"] = status or _STATUS.get(code, "UNKNOWN")
    return {"error": err}


def from_recorded(err: dict[str, Any]) -> Reply:
    """A snapshot's recorded error served back the way Google would send it (so collecting it records it again)."""
    status = int(err.get("status") or 500)
    code = str(err.get("code") or "")
    message = str(err.get("message") or "")
    if re.fullmatch(r"[A-Z_]+", code):
        reason = {v: k for k, v in _STATUS.items()}.get(code)
        return Reply(status, google_error(status, message, _REASON.get(reason or status), code))
    return Reply(status, google_error(status, message, code or None, None))


NOT_AUTHORIZED = "Not Authorized to access this resource/api"
INSUFFICIENT_SCOPES = "Request had insufficient authentication scopes."


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    """One request as the fake saw it. `subject` is whose token it carried (None: none or unknown)."""

    method: str
    path: str
    query: dict[str, list[str]]
    subject: str | None = None
    scopes: frozenset[str] = frozenset()
    at: float = 0.0
    batched: bool = False  # a part of a Directory API batch request, not an HTTP request of its own

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


# --- a Workspace -------------------------------------------------------------------------------------


class Workspace:
    """One customer's directory and settings, as the APIs would show them."""

    def __init__(self, customer: dict[str, Any], *, domains: list[dict[str, Any]] | None = None,
                 org_units: list[dict[str, Any]] | None = None, policies: list[dict[str, Any]] | None = None) -> None:
        self.customer = customer
        self.domains = domains if domains is not None else [
            {"kind": "admin#directory#domain", "domainName": customer["customerDomain"], "isPrimary": True,
             "verified": True, "domainAliases": []}
        ]
        self.org_units = org_units or []
        self.policies = policies or []
        self.users: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.memberships: dict[str, list[dict[str, Any]]] = {}
        self.send_as: dict[str, list[dict[str, Any]]] = {}
        self.licenses: list[dict[str, Any]] = []
        self.tokens: dict[str, list[dict[str, Any]]] = {}
        self.asps: dict[str, list[dict[str, Any]]] = {}
        # Reports API audit log: (userKey: an owner's address or "all", applicationName) -> activities
        self.activities: dict[tuple[str, str], list[dict[str, Any]]] = {}
        # (owner, group id) -> members.hasMember payload or recorded error; otherwise direct membership decides
        self.nested: dict[tuple[str, str], dict[str, Any]] = {}
        # (resource, key) -> recorded error served instead; key None = every key of that resource
        self.errors: dict[tuple[str, str | None], dict[str, Any]] = {}
        # domain-wide delegation grants: client id -> scopes
        self.dwd: dict[str, set[str]] = {}

    @property
    def id(self) -> str:
        return str(self.customer["id"])

    def owns(self, domain: str) -> bool:
        names = {str(self.customer.get("customerDomain", "")).lower()}
        for d in self.domains:
            names.add(str(d.get("domainName", "")).lower())
            names.update(str(a.get("domainAliasName", "")).lower() for a in d.get("domainAliases") or [])
        return domain.lower() in names

    def add_user(self, user: dict[str, Any]) -> dict[str, Any]:
        self.users[str(user["primaryEmail"]).lower()] = user
        return user

    def add_admin(self, address: str, *, super_admin: bool = True) -> dict[str, Any]:
        n = len(self.users) + 1
        return self.add_user({
            "kind": "admin#directory#user", "id": f"10{n:019d}", "primaryEmail": address,
            "name": {"givenName": "Admin", "familyName": str(n), "fullName": f"Admin {n}"},
            "isAdmin": super_admin, "isDelegatedAdmin": not super_admin, "suspended": False, "archived": False,
            "orgUnitPath": "/", "isMailboxSetup": True, "customerId": self.id, "isEnrolledIn2Sv": True,
            "isEnforcedIn2Sv": True,
        })

    def grant(self, client_id: str, scopes: list[str] | set[str]) -> None:
        self.dwd[client_id] = set(scopes)

    def user(self, key: str) -> dict[str, Any] | None:
        key = key.lower()
        for u in self.users.values():
            names = {str(u.get("primaryEmail", "")).lower(), str(u.get("id", ""))}
            names.update(str(a).lower() for a in (u.get("aliases") or []) + (u.get("nonEditableAliases") or []))
            if key in names:
                return u
        return None

    def group(self, key: str) -> dict[str, Any] | None:
        key = key.lower()
        for g in self.groups.values():
            names = {str(g.get("email", "")).lower(), str(g.get("id", ""))}
            names.update(str(a).lower() for a in (g.get("aliases") or []) + (g.get("nonEditableAliases") or []))
            if key in names:
                return g
        return None

    def error(self, resource: str, key: str | None = None) -> dict[str, Any] | None:
        return self.errors.get((resource, key.lower() if key else None)) or self.errors.get((resource, None))

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any]) -> Workspace:
        """Serve what a snapshot recorded: payloads as data, recorded errors as the same errors."""
        org, boxes = snapshot["org"], snapshot["mailboxes"]
        tenant = snapshot.get("tenant") or {}
        customer = org.get("customer")
        recorded: dict[tuple[str, str | None], dict[str, Any]] = {}
        if not isinstance(customer, dict) or "error" in customer:
            if isinstance(customer, dict):
                recorded[("customer", None)] = customer["error"]
            customer = {"kind": "admin#directory#customer", "id": tenant.get("id") or "C00000000",
                        "customerDomain": tenant.get("domain") or "example.com"}
        ws = cls(copy.deepcopy(customer))
        for name, attr in (("domains", "domains"), ("orgUnits", "org_units"), ("policies", "policies")):
            value = org.get(name)
            if isinstance(value, dict) and "error" in value:
                recorded[(name, None)] = value["error"]
            elif isinstance(value, list):
                setattr(ws, attr, copy.deepcopy(value))
        if isinstance(org.get("delegationEvents"), list):
            ws.activities[("all", "admin")] = copy.deepcopy(org["delegationEvents"])
        elif isinstance(org.get("delegationEvents"), dict) and "error" in org["delegationEvents"]:
            recorded[("activities", "all")] = org["delegationEvents"]["error"]
        for product, failure in (org.get("licenseErrors") or {}).items():
            if isinstance(failure, dict) and isinstance(failure.get("error"), dict):
                recorded[("licenses", str(product).lower())] = failure["error"]
        for address, rec in boxes.items():
            address = address.lower()
            user, group = rec.get("user"), rec.get("group")
            owner: str | None = None
            if isinstance(user, dict) and "error" not in user:
                ws.add_user(copy.deepcopy(user))
                owner = str(user["primaryEmail"]).lower()
            elif isinstance(user, dict) and user["error"].get("status") != 404:
                recorded[("user", address)] = user["error"]
            if isinstance(group, dict) and "error" not in group:
                ws.groups[str(group["email"]).lower()] = copy.deepcopy(group)
            elif isinstance(group, dict) and group["error"].get("status") != 404:
                recorded[("group", address)] = group["error"]
            if owner is None:
                continue
            for name, store in (("userGroups", ws.memberships), ("sendAs", ws.send_as), ("tokens", ws.tokens),
                                ("asps", ws.asps)):
                value = rec.get(name)
                if isinstance(value, list):
                    store[owner] = copy.deepcopy(value)
                elif isinstance(value, dict) and "error" in value:
                    recorded[(name, owner)] = value["error"]
            logged = rec.get("advancedProtectionEvents")
            if isinstance(logged, list):
                ws.activities[(owner, "user_accounts")] = copy.deepcopy(logged)
            elif isinstance(logged, dict) and "error" in logged:
                recorded[("activities", owner)] = logged["error"]
            looked_up = rec.get("groupMembership")
            if isinstance(looked_up, dict):
                ws.nested.update({(owner, str(gid)): copy.deepcopy(v) for gid, v in looked_up.items()})
            lic = rec.get("licenses")
            if isinstance(lic, list):
                ws.licenses.extend(copy.deepcopy(a) for a in lic if a not in ws.licenses)
            elif isinstance(lic, dict) and "error" in lic:
                recorded[("licenses", None)] = lic["error"]
        ws.errors.update(recorded)
        return ws


# --- keys and clients --------------------------------------------------------------------------------


_KEY_CACHE: list[rsa.RSAPrivateKey] = []


def rsa_key(fresh: bool = False) -> rsa.RSAPrivateKey:
    """A throwaway RSA key (one per test session unless fresh: key generation is the slow part)."""
    if fresh or not _KEY_CACHE:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if fresh:
            return key
        _KEY_CACHE.append(key)
    return _KEY_CACHE[0]


@dataclass
class ServiceAccount:
    client_email: str
    client_id: str
    key_id: str
    public_key: rsa.RSAPublicKey
    disabled: bool = False


def _b64d(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class _Grant:
    workspace: Workspace | None
    subject: str | None  # user email; None for a service account's own token
    scopes: frozenset[str]
    expires: float


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    scopes: list[str]
    user: str
    challenge: str | None


# --- the server --------------------------------------------------------------------------------------


class FakeGoogle:
    def __init__(self, workspaces: list[Workspace], directory: Path) -> None:
        self.workspaces = workspaces
        self.service_accounts: dict[str, ServiceAccount] = {}
        self.oauth_clients: dict[str, str] = {}
        self.latency: Callable[[Seen], float] | None = None
        self.fault: Callable[[Seen], Reply | None] | None = None
        self.clock_offset = 0.0
        self.wire = Wire()  # how reply bodies are framed (tests/wire.py)
        self.log: list[Seen] = []
        self.issued: list[str] = []  # every token and secret handed out: none may ever appear in output
        self.browser_user: str | None = None
        self.consent_drop: set[str] = set()
        self.deny_consent = False
        # policies.list as the older reference text describes it: at most one setting.type clause, && only.
        # False: as the current text, which also allows ||.
        self.one_policy_type_clause = False
        self.in_flight = 0
        self.max_in_flight = 0
        # The Directory API's batch endpoint (False: it answers 404, as for an unknown path); batch_reply may
        # alter each of its replies (a garbled one, for the hostile tests).
        self.batching = True
        self.batch_reply: Callable[[Reply], Reply] | None = None
        self._grants: dict[str, _Grant] = {}
        self._refresh: dict[str, tuple[str, Workspace, str, list[str]]] = {}
        self._codes: dict[str, _Code] = {}
        self._lock = threading.Lock()
        self._inner = threading.local()
        self._ca = trustme.CA()
        self.ca_file = directory / "fake-google-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_file))
        self._server = self._make_server()
        port = self._server.server_address[1]
        self.url = f"https://127.0.0.1:{port}"
        self.token_uri = f"{self.url}/token"
        self.auth_uri = f"{self.url}/o/oauth2/auth"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FakeGoogle:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- setup helpers -----------------------------------------------------------------------------

    def workspace_of(self, address: str) -> Workspace | None:
        domain = address.rsplit("@", 1)[-1]
        return next((w for w in self.workspaces if w.owns(domain)), None)

    def key_file(self, directory: Path, *, client_email: str = "preflight@acme-tools.iam.gserviceaccount.com",
                 client_id: str = "104857600000000000001", register: bool = True, fresh_key: bool = False) -> Path:
        """A service-account JSON key file in Google's format, its public key registered with this fake."""
        key = rsa_key(fresh=fresh_key)
        key_id = secrets.token_hex(20)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        if register:
            self.service_accounts[client_email] = ServiceAccount(client_email, client_id, key_id, key.public_key())
        info = {
            "type": "service_account", "project_id": "acme-tools", "private_key_id": key_id, "private_key": pem,
            "client_email": client_email, "client_id": client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": self.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{quote(client_email)}",
            "universe_domain": "googleapis.com",
        }
        path = directory / f"{client_email.split('@')[0]}-{key_id[:8]}.json"
        path.write_text(json.dumps(info, indent=2))
        path.chmod(0o600)
        self.issued.append(key_id)  # the key id is not secret, but tests also look for the PEM body
        return path

    def client_secrets(self, directory: Path, *, client_id: str = "8675309-preflight.apps.googleusercontent.com",
                       kind: str = "installed") -> Path:
        secret = "GOCSPX-" + secrets.token_urlsafe(20)
        self.oauth_clients[client_id] = secret
        self.issued.append(secret)
        info = {kind: {"client_id": client_id, "project_id": "acme-tools", "auth_uri": self.auth_uri,
                       "token_uri": self.token_uri,
                       "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                       "client_secret": secret, "redirect_uris": ["http://localhost"]}}
        path = directory / f"client_secret_{client_id}.json"
        path.write_text(json.dumps(info, indent=2))
        return path

    @property
    def exchanges(self) -> int:
        """The HTTP exchanges answered: the log's entries but a batch's parts."""
        with self._lock:
            return len([s for s in self.log if not s.batched])

    def seen(self, prefix: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.log if s.path.startswith(prefix)]

    # --- HTTP plumbing ------------------------------------------------------------------------------

    def _make_server(self) -> ThreadingHTTPServer:
        fake = self
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body in one segment, sent at once: otherwise Nagle + delayed ACK add ~40 ms a reply.
            disable_nagle_algorithm = True
            wbufsize = 64 * 1024

            def date_time_string(self, timestamp: float | None = None) -> str:
                return email.utils.formatdate((timestamp or time.time()) + fake.clock_offset, usegmt=True)

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                reply = fake.handle(method, self.path, dict(self.headers.items()), body)
                raw = b"" if reply.body is None else (
                    reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode())
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                if reply.body is not None and "Content-Type" not in reply.headers:
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                fake.wire.send_body(self, raw, method)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_HEAD(self) -> None:
                self._serve("HEAD")

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # the default 5 drops SYNs under concurrent clients: a 1 s retransmit each

            def finish_request(self, request: Any, client_address: Any) -> None:
                # TLS per connection, in the connection's own thread: one slow client never blocks accept().
                try:
                    tls = ctx.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return
                super().finish_request(tls, client_address)

        return Server(("127.0.0.1", 0), Handler)

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query, keep_blank_values=True)
        grant = self._grant_of(headers)
        seen = Seen(method, unquote(parts.path), query, grant.subject if grant else None,
                    grant.scopes if grant else frozenset(), time.monotonic(), getattr(self._inner, "active", False))
        with self._lock:
            self.log.append(seen)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency is not None and not getattr(self._inner, "active", False):
                time.sleep(self.latency(seen))
            if self.fault is not None:
                forced = self.fault(seen)
                if forced is not None:
                    return forced
            return self._route(seen, grant, headers, body)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _grant_of(self, headers: dict[str, str]) -> _Grant | None:
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        if not auth.startswith("Bearer "):
            return None
        with self._lock:
            grant = self._grants.get(auth[7:])
        if grant is None or grant.expires < time.time():
            return None
        return grant

    def _route(self, seen: Seen, grant: _Grant | None, headers: dict[str, str], body: bytes) -> Reply:
        p = seen.path
        if p == "/token" and seen.method == "POST":
            return self._token(parse_qs(body.decode(), keep_blank_values=True), headers)
        if p == "/revoke" and seen.method == "POST":
            return self._revoke(parse_qs(body.decode()) or seen.query)
        if p == "/o/oauth2/auth":
            return self._authorize(seen)
        if p == "/batch/admin/directory_v1" and seen.method == "POST" and self.batching:
            reply = self._batch(headers, body)
            return self.batch_reply(reply) if self.batch_reply is not None else reply
        if seen.method != "GET":
            return Reply(405, google_error(405, "Method not allowed", "methodNotAllowed"))
        for pattern, scopes, handler in self._routes():
            m = re.fullmatch(pattern, p)
            if m is None:
                continue
            if grant is None:
                return Reply(401, google_error(401, "Request is missing required authentication credential. "
                                               "Expected OAuth 2 access token, login cookie or other valid "
                                               "authentication credential.", "required"),
                             {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})
            if not grant.scopes & scopes:
                return Reply(403, google_error(403, INSUFFICIENT_SCOPES, "insufficientPermissions"),
                             {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", '
                              'error="insufficient_scope"'})
            reply: Reply = handler(seen, grant, *m.groups())
            return reply
        return Reply(404, google_error(404, "Not Found", "notFound"))

    def _batch(self, headers: dict[str, str], body: bytes) -> Reply:
        """A Directory API batch: each part's GET answered as on its own (logged as such, its latency not waited
        again), in one multipart/mixed reply, as Google frames it."""
        ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        m = re.search(r'boundary="?([^";\s]+)', ctype)
        if m is None:
            return Reply(400, google_error(400, "Bad batch request", "badRequest"))
        inner = {k: v for k, v in headers.items() if k.lower() in ("authorization", "user-agent")}
        out: list[bytes] = []
        self._inner.active = True
        try:
            for part in body.decode().split("--" + m.group(1)):
                cid = re.search(r"Content-ID: <([^>]*)>", part)
                req = re.search(r"\r\n\r\nGET (\S+) HTTP/1.1", part)
                if cid is None or req is None:
                    continue
                reply = self.handle("GET", req.group(1), inner, b"")
                raw = b"" if reply.body is None else (
                    reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode())
                head = {"Content-Type": "application/json; charset=UTF-8", **reply.headers,
                        "Content-Length": str(len(raw))}
                out.append(f"--batch_fake\r\nContent-Type: application/http\r\nContent-ID: <response-{cid.group(1)}>"
                           f"\r\n\r\nHTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}\r\n".encode()
                           + "".join(f"{k}: {v}\r\n" for k, v in head.items()).encode() + b"\r\n" + raw + b"\r\n")
        finally:
            self._inner.active = False
        return Reply(200, b"".join(out) + b"--batch_fake--\r\n",
                     {"Content-Type": "multipart/mixed; boundary=batch_fake"})

    def _routes(self) -> list[tuple[str, set[str], Callable[..., Reply]]]:
        d = "/admin/directory/v1"

        def ro(name: str) -> set[str]:
            return {AUTH + name, AUTH + name + ".readonly"}

        return [
            (rf"{d}/customers/([^/]+)", ro("admin.directory.customer"), self._customer),
            (rf"{d}/customer/([^/]+)/orgunits", ro("admin.directory.orgunit"), self._org_units),
            (rf"{d}/customer/([^/]+)/domains", ro("admin.directory.domain"), self._domains),
            (rf"{d}/users/([^/]+)/tokens", {AUTH + "admin.directory.user.security"}, self._tokens),
            (rf"{d}/users/([^/]+)/asps", {AUTH + "admin.directory.user.security"}, self._asps),
            (r"/admin/reports/v1/activity/users/([^/]+)/applications/([^/]+)",
             {AUTH + "admin.reports.audit.readonly"}, self._activities),
            (rf"{d}/users/([^/]+)", ro("admin.directory.user"), self._user),
            (rf"{d}/groups/([^/]+)/hasMember/([^/]+)", ro("admin.directory.group") | ro("admin.directory.group.member"),
             self._has_member),
            (rf"{d}/groups/([^/]+)", ro("admin.directory.group"), self._group),
            (rf"{d}/groups", ro("admin.directory.group"), self._groups),
            (r"/v1/policies", ro("cloud-identity.policies"), self._policies),
            (r"/gmail/v1/users/([^/]+)/settings/sendAs", {"https://mail.google.com/", AUTH + "gmail.modify",
                                                          AUTH + "gmail.readonly", AUTH + "gmail.settings.basic"},
             self._send_as),
            (r"/apps/licensing/v1/product/([^/]+)/users", {AUTH + "apps.licensing"}, self._licenses),
        ]

    # --- API handlers -------------------------------------------------------------------------------

    def _admin(self, grant: _Grant, *, super_only: bool = False) -> Reply | None:
        ws = grant.workspace
        user = ws.user(grant.subject) if ws and grant.subject else None
        if user is None or not (user.get("isAdmin") or (not super_only and user.get("isDelegatedAdmin"))):
            if super_only:
                return Reply(403, google_error(403, "The caller does not have permission", "forbidden"))
            return Reply(403, google_error(403, NOT_AUTHORIZED, "forbidden", None))
        return None

    def _customer_ok(self, ws: Workspace, key: str) -> bool:
        return key in ("my_customer", ws.id)

    @staticmethod
    def _page(items: list[Any], seen: Seen, size_param: str, default: int, maximum: int, kind: str,
              key: str, extra: dict[str, Any] | None = None) -> Reply:
        token = seen.param("pageToken")
        start = 0
        if token:
            try:
                tag, _, offset = _b64d(token).decode().partition(":")
                if tag != kind:
                    raise ValueError(tag)
                start = int(offset)
            except ValueError:
                return Reply(400, google_error(400, "Invalid page token", "invalid"))
        try:
            size = int(seen.param(size_param) or default) or default
        except ValueError:
            return Reply(400, google_error(400, f"Invalid value for {size_param}", "invalid"))
        size = max(1, min(size, maximum))
        body: dict[str, Any] = dict(extra or {})
        chunk = items[start:start + size]
        if chunk:
            body[key] = chunk
        if start + size < len(items):
            body["nextPageToken"] = _b64e(f"{kind}:{start + size}".encode())
        return Reply(200, body)

    def _customer(self, seen: Seen, grant: _Grant, key: str) -> Reply:
        ws = grant.workspace
        assert ws is not None
        if (denied := self._admin(grant)) is not None:
            return denied
        if (err := ws.error("customer")) is not None:
            return from_recorded(err)
        if not self._customer_ok(ws, key):
            return Reply(403, google_error(403, NOT_AUTHORIZED, "forbidden", None))
        return Reply(200, ws.customer)

    def _org_units(self, seen: Seen, grant: _Grant, customer: str) -> Reply:
        ws = grant.workspace
        assert ws is not None
        if (denied := self._admin(grant)) is not None:
            return denied
        if (err := ws.error("orgUnits")) is not None:
            return from_recorded(err)
        if not self._customer_ok(ws, customer):
            return Reply(403, google_error(403, NOT_AUTHORIZED, "forbidden", None))
        kind = (seen.param("type") or "children").lower()
        if kind not in ("all", "children", "allincludingparent", "all_including_parent"):
            return Reply(400, google_error(400, f"Invalid value for type: {seen.param('type')}", "invalid", None))
        units = ws.org_units
        if kind == "all":
            units = [u for u in units if u.get("orgUnitPath") != "/"]
        elif kind == "children":
            units = [u for u in units if u.get("parentOrgUnitPath") == "/"]
        body: dict[str, Any] = {"kind": "admin#directory#orgUnits", "etag": '"fake"'}
        if units:
            body["organizationUnits"] = units
        return Reply(200, body)

    def _domains(self, seen: Seen, grant: _Grant, customer: str) -> Reply:
        ws = grant.workspace
        assert ws is not None
        if (denied := self._admin(grant)) is not None:
            return denied
        if (err := ws.error("domains")) is not None:
            return from_recorded(err)
        if not self._customer_ok(ws, customer):
            return Reply(403, google_error(403, NOT_AUTHORIZED, "forbidden", None))
        return Reply(200, {"kind": "admin#directory#domains", "etag": '"fake"', "domains": ws.domains})

    def _user(self, seen: Seen, grant: _Grant, key: str) -> Reply:
        ws = grant.workspace
        assert ws is not None
        if (denied := self._admin(grant)) is not None:
            return denied
        if (err := ws.error("user", key)) is not None:
            return from_recorded(err)
        if "@" in key and not ws.owns(key.rsplit("@", 1)[1]):
            return Reply(403, google_error(403, NOT_AUTHORIZED, "forbidden", None))
        user = ws.user(key)
        if user is None:
            return Reply(404, google_error(404, "Resource Not Found: userKey", "notFound", None))
        return Reply(200, user)

    def _group(self, seen: Seen, grant: _Grant, key: str) -> Reply:
        ws = grant.workspace
        assert ws is not None
        if (denied := self._admin(grant)) is not None:
            return denied
        if (err := ws.error("group", key)) is not None:
            return from_recorded(err)
        if "@" in key and not ws.owns(key.rsplit("@", 1)[1]):
            return Reply(403, google_error(403, NOT_AUTHORIZED, "forbidden", None))
        group = ws.group(key)
        if group is None:
            return Reply(404, google_error(404, "Resource Not Found: groupKey", "notFound", None))
        return Reply(200, group)

    def _groups(self, seen: Seen, grant: _Grant) -> Reply:
        ws = grant.workspace
        assert ws is not None
        if (denied := self._admin(grant)) is not None:
            return denied
        user_key = seen.param("userKey")
        if user_key is None:
            return Reply(400, google_error(400, "Bad Request", "badRequest", None))
        if seen.param("customer"):
            return Reply(400, google_error(400, "Invalid Input: customer and userKey cannot both be set",
                                           "invalid", None))
        user = ws.user(user_key)
        if user is None:
            return Reply(404, google_error(404, "Resource Not Found: userKey", "notFound", None))
        owner = str(user["primaryEmail"]).lower()
        if (err := ws.error("userGroups", owner)) is not None:
            return from_recorded(err)
        return self._page(ws.memberships.get(owner, []), seen, "maxResults", 200, 200, "groups", "groups",
                          {"kind": "admin#directory#groups", "etag": '"fake"'})

    def _has_member(self, seen: Seen, grant: _Grant, group: str, member: str) -> Reply:
        ws = grant.workspace
        assert ws is not None
        if (denied := self._admin(grant)) is not None:
            return denied
        user = ws.user(member)
        if user is None:
            return Reply(404, google_error(404, "Resource Not Found: memberKey", "notFound", None))
        owner = str(user["primaryEmail"]).lower()
        found = ws.nested.get((owner, group))
        if found is not None and "error" in found:
            return from_recorded(found["error"])
        if found is not None:
            return Reply(200, found)
        return Reply(200, {"isMember": group in {str(g.get("id")) for g in ws.memberships.get(owner, [])}})

    def _security_list(self, grant: _Grant, key: str, resource: str, kind: str) -> Reply:
        """tokens.list / asps.list: the user's items, or an error; Google omits `items` when there are none."""
        ws = grant.workspace
        assert ws is not None
        if (denied := self._admin(grant)) is not None:
            return denied
        user = ws.user(key)
        if user is None:
            return Reply(404, google_error(404, "Resource Not Found: userKey", "notFound", None))
        owner = str(user["primaryEmail"]).lower()
        if (err := ws.error(resource, owner)) is not None:
            return from_recorded(err)
        items = getattr(ws, resource).get(owner, [])
        return Reply(200, {"kind": kind, "etag": '"fake"', **({"items": items} if items else {})})

    def _tokens(self, seen: Seen, grant: _Grant, key: str) -> Reply:
        return self._security_list(grant, key, "tokens", "admin#directory#tokenList")

    def _asps(self, seen: Seen, grant: _Grant, key: str) -> Reply:
        return self._security_list(grant, key, "asps", "admin#directory#asps")

    def _activities(self, seen: Seen, grant: _Grant, user_key: str, application: str) -> Reply:
        """Reports API activities.list: one eventName at a time, newest first, `items` omitted when empty."""
        ws = grant.workspace
        assert ws is not None
        if (denied := self._admin(grant)) is not None:
            return denied
        key = user_key.lower()
        if key != "all":
            user = ws.user(key)
            if user is None:
                return Reply(400, google_error(400, "Bad Request", "badRequest", "INVALID_ARGUMENT"))
            key = str(user["primaryEmail"]).lower()
        if (err := ws.error("activities", key)) is not None:
            return from_recorded(err)
        event = seen.param("eventName")
        if event is not None and not re.fullmatch(r"[A-Za-z_]+", event):
            return Reply(400, google_error(400, f"Invalid value '{event}'. Values must match the following regular "
                                           "expression: '[A-Za-z_]+'", "invalid", "INVALID_ARGUMENT"))
        items = [a for a in ws.activities.get((key, application), [])
                 if event is None or any(e.get("name") == event for e in a.get("events") or [])]
        items.sort(key=lambda a: str(a["id"]["time"]), reverse=True)
        return self._page(items, seen, "maxResults", 1000, 1000, f"activities:{key}:{application}:{event}", "items",
                          {"kind": "admin#reports#activities", "etag": '"fake"'})

    def _policies(self, seen: Seen, grant: _Grant) -> Reply:
        ws = grant.workspace
        assert ws is not None
        if (denied := self._admin(grant, super_only=True)) is not None:
            return denied
        if (err := ws.error("policies")) is not None:
            return from_recorded(err)
        matcher = cel_type_filter(seen.param("filter"), one_type_clause=self.one_policy_type_clause)
        if matcher is None:  # google.rpc INVALID_ARGUMENT, with the classic `errors` list Google still adds
            return Reply(400, google_error(400, "Request contains an invalid argument.", "badRequest"))
        items = [p for p in ws.policies if matcher(str(p.get("setting", {}).get("type", "")))]
        return self._page(items, seen, "pageSize", 50, 100, "policies", "policies")

    def _send_as(self, seen: Seen, grant: _Grant, user_id: str) -> Reply:
        ws = grant.workspace
        assert ws is not None
        if user_id != "me" and (grant.subject or "").lower() != user_id.lower():
            return Reply(403, google_error(403, "Delegation denied for " + str(grant.subject), "forbidden"))
        user = ws.user(grant.subject or "")
        if user is None:
            return Reply(400, google_error(400, "Invalid user", "invalidArgument"))
        owner = str(user["primaryEmail"]).lower()
        if (err := ws.error("sendAs", owner)) is not None:
            return from_recorded(err)
        if user.get("isMailboxSetup") is False:
            return Reply(400, google_error(400, "Mail service not enabled", "failedPrecondition",
                                           "FAILED_PRECONDITION"))
        default = [{"sendAsEmail": user["primaryEmail"], "displayName": "", "replyToAddress": "", "signature": "",
                    "isPrimary": True, "isDefault": True}]
        return Reply(200, {"sendAs": ws.send_as.get(owner, default)})

    def _licenses(self, seen: Seen, grant: _Grant, product: str) -> Reply:
        ws = grant.workspace
        assert ws is not None
        if (denied := self._admin(grant)) is not None:
            return denied
        if (err := ws.error("licenses", product)) is not None:  # one product's failure, or every product's
            return from_recorded(err)
        customer = seen.param("customerId")
        if customer is None:
            return Reply(400, google_error(400, "Required parameter: customerId", "required", None))
        if customer not in (ws.id, ws.customer.get("customerDomain")):
            return Reply(403, google_error(403, NOT_AUTHORIZED, "forbidden", None))
        items = [a for a in ws.licenses if str(a.get("productId")) == product]
        return self._page(items, seen, "maxResults", 100, 1000, "licenses:" + product, "items",
                          {"kind": "licensing#licenseAssignmentList", "etag": '"fake"'})

    # --- OAuth 2.0 ----------------------------------------------------------------------------------

    def _issue(self, ws: Workspace | None, subject: str | None, scopes: list[str]) -> dict[str, Any]:
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        with self._lock:
            self._grants[token] = _Grant(ws, subject.lower() if subject else None, frozenset(scopes),
                                         time.time() + 3599)
            self.issued.append(token)
        return {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _token_error(self, status: int, error: str, description: str) -> Reply:
        return Reply(status, {"error": error, "error_description": description})

    def _token(self, form: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        one = {k: v[0] for k, v in form.items() if v}
        # Client authentication: client_secret_basic (RFC 6749 2.3.1, what requests-oauthlib sends) or the body.
        basic = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        if basic.startswith("Basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            one.setdefault("client_id", unquote(client_id))
            one.setdefault("client_secret", unquote(secret))
        kind = one.get("grant_type")
        if kind == JWT_BEARER:
            return self._jwt_grant(one.get("assertion", ""))
        if kind == "authorization_code":
            return self._code_grant(one)
        if kind == "refresh_token":
            return self._refresh_grant(one)
        return self._token_error(400, "unsupported_grant_type", f"Invalid grant_type: {kind}")

    def _jwt_grant(self, assertion: str) -> Reply:
        bad_sig = self._token_error(400, "invalid_grant", "Invalid JWT Signature.")
        try:
            head_b64, payload_b64, sig_b64 = assertion.split(".")
            header, claims = json.loads(_b64d(head_b64)), json.loads(_b64d(payload_b64))
        except ValueError:
            return self._token_error(400, "invalid_grant", "Invalid JWT: not a JWT")
        sa = self.service_accounts.get(str(claims.get("iss")))
        if sa is None:
            return self._token_error(400, "invalid_grant", "Invalid grant: account not found")
        if sa.disabled or header.get("alg") != "RS256" or header.get("kid") != sa.key_id:
            return bad_sig
        try:
            sa.public_key.verify(_b64d(sig_b64), f"{head_b64}.{payload_b64}".encode(), padding.PKCS1v15(),
                                 hashes.SHA256())
        except Exception:
            return bad_sig
        now = time.time() + self.clock_offset
        iat, exp = float(claims.get("iat", 0)), float(claims.get("exp", 0))
        if claims.get("aud") != GOOGLE_TOKEN_AUD:
            return self._token_error(400, "invalid_grant", "Invalid JWT: Failed audience check.")
        if exp - iat > 3600 or iat > now + 300 or exp < now - 300:
            return self._token_error(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 "
                                     "minutes) and in a reasonable timeframe. Check your iat and exp values in "
                                     "the JWT claim.")
        scopes = str(claims.get("scope") or "").split()
        if not scopes:
            return self._token_error(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        subject = claims.get("sub")
        if subject is None:
            return Reply(200, self._issue(None, None, scopes))
        ws = self.workspace_of(str(subject))
        if ws is None or ws.user(str(subject)) is None:
            return self._token_error(400, "invalid_grant", "Invalid email or User ID")
        if not set(scopes) <= ws.dwd.get(sa.client_id, set()):
            return self._token_error(401, "unauthorized_client", "Client is unauthorized to retrieve access tokens "
                                     "using this method, or client not authorized for any of the scopes requested.")
        return Reply(200, self._issue(ws, str(subject), scopes))

    def _authorize(self, seen: Seen) -> Reply:
        client_id, redirect = seen.param("client_id") or "", seen.param("redirect_uri") or ""
        if client_id not in self.oauth_clients:
            return Reply(401, b"Error 401: invalid_client\nThe OAuth client was not found.",
                         {"Content-Type": "text/plain"})
        host = urlsplit(redirect).hostname
        if urlsplit(redirect).scheme != "http" or host not in ("localhost", "127.0.0.1"):
            return Reply(400, b"Error 400: redirect_uri_mismatch", {"Content-Type": "text/plain"})
        if seen.param("response_type") != "code" or seen.param("code_challenge_method") not in (None, "S256"):
            return Reply(400, b"Error 400: invalid_request", {"Content-Type": "text/plain"})
        user = self.browser_user or seen.param("login_hint")
        if self.deny_consent or not user or self.workspace_of(user) is None:
            # The admin pressed Cancel (or picked an account outside every Workspace here).
            query = urlencode({"error": "access_denied", "state": seen.param("state") or ""})
            return Reply(302, None, {"Location": f"{redirect}?{query}"})
        requested = (seen.param("scope") or "").split()
        granted = [s for s in requested if s not in self.consent_drop]
        code = "4/0fake-" + secrets.token_urlsafe(16)
        with self._lock:
            self._codes[code] = _Code(client_id, redirect, granted, user, seen.param("code_challenge"))
            self.issued.append(code)
        query = urlencode({"state": seen.param("state") or "", "code": code, "scope": " ".join(granted)})
        return Reply(302, None, {"Location": f"{redirect}?{query}"})

    def _client_ok(self, one: dict[str, str]) -> bool:
        secret = self.oauth_clients.get(one.get("client_id", ""))
        return secret is not None and secret == one.get("client_secret")

    def _code_grant(self, one: dict[str, str]) -> Reply:
        if not self._client_ok(one):
            return self._token_error(401, "invalid_client", "Unauthorized")
        with self._lock:
            code = self._codes.pop(one.get("code", ""), None)
        if code is None or code.client_id != one.get("client_id") or code.redirect_uri != one.get("redirect_uri"):
            return self._token_error(400, "invalid_grant", "Bad Request")
        if code.challenge is not None:
            verifier = one.get("code_verifier", "")
            if _b64e(hashlib.sha256(verifier.encode()).digest()) != code.challenge:
                return self._token_error(400, "invalid_grant", "Invalid code verifier.")
        ws = self.workspace_of(code.user)
        assert ws is not None
        reply = self._issue(ws, code.user, code.scopes)
        refresh = "1//0fake-" + secrets.token_urlsafe(24)
        with self._lock:
            self._refresh[refresh] = (code.client_id, ws, code.user, code.scopes)
            self.issued.append(refresh)
        reply.update({"refresh_token": refresh, "scope": " ".join(code.scopes),
                      "id_token": self._id_token(code.client_id, code.user)})
        return Reply(200, reply)

    def _id_token(self, client_id: str, user: str) -> str:
        claims = {"iss": "https://accounts.google.com", "aud": client_id, "sub": "1" + str(abs(hash(user)))[:20],
                  "email": user, "email_verified": True, "iat": int(time.time()), "exp": int(time.time()) + 3600,
                  "hd": user.rsplit("@", 1)[1]}
        head = _b64e(json.dumps({"alg": "RS256", "kid": "fake", "typ": "JWT"}).encode())
        token = f"{head}.{_b64e(json.dumps(claims).encode())}.{_b64e(b'not-verified-by-preflight')}"
        self.issued.append(token)
        return token

    def _refresh_grant(self, one: dict[str, str]) -> Reply:
        if not self._client_ok(one):
            return self._token_error(401, "invalid_client", "Unauthorized")
        with self._lock:
            found = self._refresh.get(one.get("refresh_token", ""))
        if found is None or found[0] != one.get("client_id"):
            return self._token_error(400, "invalid_grant", "Token has been expired or revoked.")
        _, ws, user, scopes = found
        asked = one.get("scope", "").split()
        if asked and not set(asked) <= set(scopes):
            return self._token_error(400, "invalid_scope", "Bad Request")
        reply = self._issue(ws, user, asked or scopes)
        reply["scope"] = " ".join(asked or scopes)
        return Reply(200, reply)

    def _revoke(self, form: dict[str, list[str]]) -> Reply:
        token = (form.get("token") or [""])[0]
        with self._lock:
            if self._refresh.pop(token, None) is not None or self._grants.pop(token, None) is not None:
                return Reply(200, {})
        return Reply(400, {"error": "invalid_token", "error_description": "Token expired or revoked"})


# The clause forms the policies.list reference gives for `filter` ("Filter by application", "Filter by setting
# type", "Filter by customer"). Its current text (docs.cloud.google.com) combines them with && and || (and
# parentheses); its older text (cloud.google.com, the v1beta1 page, clients generated from the discovery document)
# allows at most one setting.type clause and one customer clause, joined by && only: `one_type_clause`.
# Anything else, e.g. a regex alternation inside one matches(), is refused as Google may refuse it.
_MATCHES = re.compile(r"setting\.type\.matches\('((?:[^'\\]|\\.)*)'\)")
_CUSTOMER = re.compile(r'customer\s*==\s*"customers/([A-Za-z0-9_]+)"')
_DOCUMENTED = (re.compile(r"\^settings/[a-z_]+\\\.\.\*\$"), re.compile(r"\^\.\*\\\.[a-z_]+\$"))


def _cel_string(raw: str) -> str | None:
    """A CEL single-quoted string's value: `\\\\` is a backslash; a lone backslash before `.` is invalid."""
    out, i = [], 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            nxt = raw[i + 1] if i + 1 < len(raw) else ""
            if nxt not in ("\\", "'", '"'):
                return None
            out.append(nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def cel_type_filter(text: str | None, *, one_type_clause: bool = False) -> Callable[[str], bool] | None:
    """A Policy API filter as a predicate on setting.type; None when it is not made of documented clauses, or
    (one_type_clause) has more than one setting.type or customer clause, or an ||."""
    if text is None:
        return lambda _t: True
    tokens: list[Any] = []
    counts = {"type": 0, "customer": 0, "||": 0}
    rest = text.strip()
    while rest:
        if m := _MATCHES.match(rest):
            pattern = _cel_string(m.group(1))
            if pattern is None or not any(d.fullmatch(pattern) for d in _DOCUMENTED):
                return None
            rx = re.compile(pattern)
            tokens.append(lambda t, rx=rx: rx.search(t) is not None)
            counts["type"] += 1
        elif m := _CUSTOMER.match(rest):
            tokens.append(lambda _t: True)  # the one customer this Workspace is
            counts["customer"] += 1
        elif m := re.match(r"&&|\|\||\(|\)", rest):
            tokens.append(m.group(0))
            counts["||"] += m.group(0) == "||"
        else:
            return None
        rest = rest[m.end():].lstrip()
    if one_type_clause and (counts["type"] > 1 or counts["customer"] > 1 or counts["||"]):
        return None
    return _parse_or(tokens)


def _parse_or(tokens: list[Any]) -> Callable[[str], bool] | None:
    """or := and ('||' and)*; and := atom ('&&' atom)*; atom := clause | '(' or ')'. None: not well formed."""
    pos = 0

    def atom() -> Callable[[str], bool] | None:
        nonlocal pos
        if pos >= len(tokens):
            return None
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            inner = disjunction()
            if inner is None or pos >= len(tokens) or tokens[pos] != ")":
                return None
            pos += 1
            return inner
        return tok if callable(tok) else None

    def chain(sub: Callable[[], Callable[[str], bool] | None], op: str, join: Callable[..., bool]
              ) -> Callable[[str], bool] | None:
        nonlocal pos
        parts = [sub()]
        while pos < len(tokens) and tokens[pos] == op:
            pos += 1
            parts.append(sub())
        if any(p is None for p in parts):
            return None
        found = [p for p in parts if p is not None]
        return lambda t: join(p(t) for p in found)

    def conjunction() -> Callable[[str], bool] | None:
        return chain(atom, "&&", all)

    def disjunction() -> Callable[[str], bool] | None:
        return chain(conjunction, "||", any)

    result = disjunction()
    return result if pos == len(tokens) else None


# --- a sample Workspace in documented shapes ---------------------------------------------------------


def sample_snapshot(domain: str = "acme.example", customer_id: str = "C03az79cb") -> dict[str, Any]:
    """A Workspace with a user, a user alias, a group, a suspended user and an unknown address.

    Field names and shapes: the Directory, Cloud Identity, Gmail and Licensing discovery documents.
    """
    root, sales = "03ph8a2z0abc123", "03ph8a2z1def456"

    def user(n: int, local: str, **over: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "kind": "admin#directory#user", "id": f"1{n:020d}", "etag": f'"etag-u{n}"',
            "primaryEmail": f"{local}@{domain}",
            "name": {"givenName": local.title(), "familyName": "Example", "fullName": f"{local.title()} Example"},
            "isAdmin": False, "isDelegatedAdmin": False, "lastLoginTime": "2026-11-20T09:12:44.000Z",
            "creationTime": "2023-02-01T10:00:00.000Z", "agreedToTerms": True, "suspended": False,
            "archived": False, "changePasswordAtNextLogin": False, "ipWhitelisted": False,
            "emails": [{"address": f"{local}@{domain}", "primary": True}], "customerId": customer_id,
            "orgUnitPath": "/Sales", "isMailboxSetup": True, "isEnrolledIn2Sv": True, "isEnforcedIn2Sv": False,
            "includeInGlobalAddressList": True,
        }
        base.update(over)
        return base

    jobs = user(1, "jobs", aliases=[f"careers@{domain}"])
    ops = user(2, "ops", suspended=True, suspensionReason="ADMIN")
    group = {"kind": "admin#directory#group", "id": "01ci93xb3tfg0x1", "etag": '"etag-g1"', "email": f"team@{domain}",
             "name": "Team", "directMembersCount": "4", "description": "", "adminCreated": True,
             "aliases": [f"hello@{domain}"], "nonEditableAliases": [f"team@{domain}.test-google-a.com"]}
    groups = [{"kind": "admin#directory#group", "id": f"02grp{n:010d}", "etag": f'"etag-m{n}"',
               "email": f"list{n}@{domain}", "name": f"List {n}", "directMembersCount": "3", "description": "",
               "adminCreated": True} for n in range(5)]

    def policy(n: int, kind: str, value: dict[str, Any], *, ou: str = root, sort: float = 101.0,
               group_id: str | None = None) -> dict[str, Any]:
        query: dict[str, Any] = {"sortOrder": sort}
        if group_id:
            query.update(group=f"groups/{group_id}",
                         query=f"entity.groups.exists(group, group.group_id == groupId('{group_id}'))")
        else:
            query.update(orgUnit=f"orgUnits/{ou}",
                         query=f"entity.org_units.exists(org_unit, org_unit.org_unit_id == orgUnitId('{ou}'))")
        return {"name": f"policies/ahv4hg7p{n:04d}", "customer": f"customers/{customer_id}", "policyQuery": query,
                "setting": {"type": f"settings/{kind}", "value": value}, "type": "ADMIN" if n % 2 else "SYSTEM"}

    policies = [
        policy(1, "gmail.service_status", {"serviceState": "ENABLED"}),
        policy(2, "security.two_step_verification_enrollment", {"allowEnrollment": True}),
        policy(3, "security.two_step_verification_enforcement", {"enforcedFrom": "1970-01-01T00:00:00Z"}),
        policy(4, "security.two_step_verification_enforcement_factor", {"allowedSignInFactorSet": "ALL"}),
        policy(5, "security.less_secure_apps", {"allowLessSecureApps": False}),
        policy(6, "api_controls.unconfigured_third_party_apps", {"accessLevel": "ALLOW_SIGN_IN_ONLY"}),
        policy(7, "security.advanced_protection_program",
               {"enableAdvancedProtectionSelfEnrollment": False, "securityCodeOption": "ALLOWED_WITH_REMOTE_ACCESS"}),
        policy(8, "gmail.service_status", {"serviceState": "DISABLED"}, ou=sales, sort=102.0),
        policy(9, "gmail.service_status", {"serviceState": "ENABLED"}, group_id="02grp0000000000", sort=103.0),
        policy(10, "gmail.imap_access", {"enableImapAccess": True}),
        policy(11, "api_controls.google_services", {"services": [{"scopesGroup": "DRIVE_ALL", "isEnabled": True}]}),
    ]
    org_units = [
        {"kind": "admin#directory#orgUnit", "etag": '"etag-ou0"', "name": domain, "description": "",
         "orgUnitPath": "/", "orgUnitId": f"id:{root}"},
        {"kind": "admin#directory#orgUnit", "etag": '"etag-ou1"', "name": "Sales", "description": "Sales team",
         "orgUnitPath": "/Sales", "orgUnitId": f"id:{sales}", "parentOrgUnitPath": "/",
         "parentOrgUnitId": f"id:{root}"},
    ]
    lic = {"kind": "licensing#licenseAssignment", "etags": '"etag-l1"', "productId": "Google-Apps",
           "productName": "Google Workspace", "skuId": "1010020028", "skuName": "Google Workspace Business Standard",
           "userId": f"jobs@{domain}", "selfLink": "https://licensing.googleapis.com/apps/licensing/v1/product/"
           f"Google-Apps/sku/1010020028/user/jobs@{domain}"}
    lic_ops = {**lic, "etags": '"etag-l2"', "userId": f"ops@{domain}",
               "selfLink": lic["selfLink"].replace("jobs@", "ops@")}
    send_as = [
        {"sendAsEmail": f"jobs@{domain}", "displayName": "Jobs", "replyToAddress": "", "signature": "",
         "isPrimary": True, "isDefault": True},
        {"sendAsEmail": f"careers@{domain}", "displayName": "Careers", "replyToAddress": "", "signature": "",
         "isDefault": False, "treatAsAlias": True, "verificationStatus": "accepted"},
    ]
    token = [{"kind": "admin#directory#token", "etag": '"etag-t1"', "clientId": "1234567890-ats.apps."
              "googleusercontent.com", "displayText": "Acme ATS", "anonymous": False, "nativeApp": False,
              "userKey": jobs["id"], "scopes": ["https://mail.google.com/", "openid"]}]
    not_found_user = {"error": {"status": 404, "code": "notFound", "message": "Resource Not Found: userKey"}}
    not_found_group = {"error": {"status": 404, "code": "notFound", "message": "Resource Not Found: groupKey"}}
    # Directory users.asps.list items (admin.directory_v1 discovery, schema Asp): epoch milliseconds as text.
    asps = [{"kind": "admin#directory#asp", "etag": '"etag-a1"', "codeId": 12, "name": "Scanner (3rd floor)",
             "creationTime": "1732521600000", "lastTimeUsed": "1763983200000", "userKey": jobs["id"]}]
    return {
        "schema": "preflight.snapshot/v1", "provider": "google", "collected_at": "2026-11-26T10:00:00Z",
        "tenant": {"id": customer_id, "domain": domain},
        "options": {"methods": ["basic", "oauth-delegated", "oauth-app"], "sender_ips": [], "app_id": None,
                    "from_addresses": {}},
        "org": {
            "customer": {"kind": "admin#directory#customer", "id": customer_id, "etag": '"etag-c"',
                         "customerDomain": domain, "alternateEmail": f"it@{domain}.example.net",
                         "customerCreationTime": "2019-04-01T08:00:00.000Z", "language": "en"},
            "domains": [{"kind": "admin#directory#domain", "etag": '"etag-d"', "domainName": domain,
                         "isPrimary": True, "verified": True, "creationTime": "1554105600000", "domainAliases": []}],
            "orgUnits": org_units,
            "policies": policies,
        },
        "mailboxes": {
            f"jobs@{domain}": {"user": jobs, "userGroups": groups, "sendAs": send_as, "licenses": [lic],
                               "tokens": token, "asps": asps},
            f"careers@{domain}": {"user": jobs, "userGroups": groups, "sendAs": send_as, "licenses": [lic],
                                  "tokens": token, "asps": asps},
            f"team@{domain}": {"user": not_found_user, "group": group},
            f"ops@{domain}": {"user": ops, "userGroups": [],
                              "groupMembership": {"02grp0000000000": {"isMember": False}}, "sendAs": [
                {"sendAsEmail": f"ops@{domain}", "displayName": "", "replyToAddress": "", "signature": "",
                 "isPrimary": True, "isDefault": True}], "licenses": [lic_ops], "tokens": [], "asps": []},
            f"nobody@{domain}": {"user": not_found_user, "group": not_found_group},
        },
    }


@dataclass
class Browser:
    """Stands in for the admin's web browser (the one thing that cannot run here): follows the consent
    redirect to google-auth-oauthlib's loopback server."""

    ca_file: Path
    opened: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.opened.append(url)
        threading.Thread(target=self._visit, args=(url,), daemon=True).start()
        return True

    def _visit(self, url: str) -> None:
        import requests

        try:
            first = requests.get(url, allow_redirects=False, timeout=10, verify=str(self.ca_file))
            location = first.headers.get("Location")
            if location:
                requests.get(location, timeout=10)
        except BaseException as exc:  # surfaced by the test
            self.errors.append(exc)


def secrets_of(fake: FakeGoogle, key_files: Sequence[Path] = ()) -> list[str]:
    """What must never be shown (check it with tests.leaks): every secret the fake handed out (not the 40-hex
    key ids, which are public) and the private key bodies of the key files."""
    found = [s for s in fake.issued if len(s) > 12 and not re.fullmatch(r"[0-9a-f]{40}", s)]
    for path in key_files:
        pem = json.loads(Path(path).read_text())["private_key"]
        found += [line for line in pem.splitlines() if line and not line.startswith("-----")]
    return found
