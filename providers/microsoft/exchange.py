"""The Exchange Online admin REST endpoint (InvokeCommand), isolated here because it is unofficial.

    POST https://{exchange host}/adminapi/beta/{tenant}/InvokeCommand
    {"CmdletInput": {"CmdletName": "Get-CASMailbox", "Parameters": {"Identity": "a@contoso.com"}}}

It is what the ExchangeOnlineManagement PowerShell module calls underneath. Results sit in "value";
a long result pages through "@odata.nextLink" (some replies spell it "odata.nextLink"), fetched by
POSTing the same body to the link. A failed cmdlet answers {"error": {"message": "Error executing
cmdlet", "details": [{"message": "<id>|<exception type>|<reason>"}]}}; the reason is recorded.
Payloads are kept verbatim: booleans may arrive as strings, and the checks handle that.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

from preflight.http import ApiError, Http

MAX_PAGES = 200
WARNINGS = "@adminapi.warnings"


def _next_link(body: Mapping[str, Any]) -> str | None:
    link = body.get("@odata.nextLink") or body.get("odata.nextLink")
    return str(link) if link else None


def _facts() -> dict[str, Any]:
    from .auth import signin_data

    return dict(signin_data()["exchange"])


def cmdlet_error(exc: ApiError) -> ApiError:
    """The cmdlet's own reason: error.details[].message is "<id>|<exception type>|<text>". An object that
    does not exist is a 404 whether Exchange said 404 or 500 (ManagementObjectNotFoundException)."""
    err = exc.body.get("error") if isinstance(exc.body, dict) else None
    details = err.get("details") if isinstance(err, dict) else None
    if isinstance(details, dict):
        details = [details]
    for detail in details if isinstance(details, list) else []:
        text = str(detail.get("message") or "") if isinstance(detail, dict) else ""
        if not text:
            continue
        parts = text.split("|")
        if len(parts) >= 3:
            kind = parts[1].rsplit(".", 1)[-1]
            status = 404 if kind in _facts()["not_found"] else exc.status
            return ApiError(status, kind or exc.code, "|".join(parts[2:]).strip(), exc.body)
        return ApiError(exc.status, exc.code, text.strip(), exc.body)
    if exc.status in (401, 403) and not exc.message:
        # A refused token comes back with an empty body: say what that means.
        return ApiError(exc.status, exc.code, "the Exchange admin API refused the request", exc.body)
    return exc


def token_refused(error: Any) -> bool:
    """A recorded error that refuses the token itself (every cmdlet would be refused alike), as opposed to
    a 401 for one cmdlet the caller's Exchange role does not include."""
    err = error.get("error") if isinstance(error, dict) else None
    return isinstance(err, dict) and err.get("status") == 401 and \
        _facts()["cmdlet_refused"] not in str(err.get("message") or "")


class Exchange:
    def __init__(self, http: Http, base_url: str, tenant: str, anchor_mailbox: str) -> None:
        self.http = http
        self.url = f"{base_url.rstrip('/')}/adminapi/beta/{tenant}/InvokeCommand"
        self.anchor = anchor_mailbox  # the X-AnchorMailbox header value, e.g. "APP:SystemMailbox{...}@<tenant id>"
        self.warnings: list[str] = []  # @adminapi.warnings of replies that carried no objects
        base = urlsplit(base_url)
        self._host, self._port = (base.hostname or "").lower(), base.port or 443

    def _trusted(self, current: str, link: str, what: str, status: int) -> str:
        """Where a redirect or next-page link may take the bearer token: https on the cloud's Exchange
        host or a subdomain of it. Anything else is refused rather than followed."""
        url = urljoin(current, link)
        parts = urlsplit(url)
        try:
            port = parts.port or 443
        except ValueError:
            port = -1
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" or port != self._port or not (
                host == self._host or host.endswith("." + self._host)):
            raise ApiError(status, "UntrustedRedirect",
                           f"the Exchange admin API's {what} points outside https://{self._host}: not followed")
        return url

    def invoke(self, cmdlet: str, parameters: Mapping[str, Any] | None = None) -> list[Any]:
        """Every object the cmdlet returned (all pages). Raises ApiError with the cmdlet's reason."""
        if not cmdlet.startswith("Get-"):
            raise ValueError(f"preflight only reads: refusing to run {cmdlet}")
        body = {"CmdletInput": {"CmdletName": cmdlet, "Parameters": dict(parameters or {})}}
        headers = {
            "X-AnchorMailbox": self.anchor,
            "X-CmdletName": cmdlet,
            "Prefer": "odata.maxpagesize=1000",
        }
        items: list[Any] = []
        url, seen = self.url, set()
        for _ in range(MAX_PAGES):
            reply = self._post(url, body, {**headers, "client-request-id": str(uuid.uuid4())})
            if isinstance(reply, dict) and reply.get("value") is None and isinstance(reply.get(WARNINGS), list):
                # A cmdlet that wrote only warnings returns no objects (CIPP New-ExoRequest handles the same).
                self.warnings.extend(str(w) for w in reply[WARNINGS])
                reply = {**reply, "value": []}
            if not isinstance(reply, dict) or not isinstance(reply.get("value"), list):
                raise ApiError(200, "MalformedResponse", f"{cmdlet}: reply has no 'value' list")
            items.extend(reply["value"])
            link = _next_link(reply)
            if not link:
                return items
            if link in seen:
                raise ApiError(200, "PagingLoop", f"{cmdlet}: the next-page link repeats an earlier page")
            seen.add(link)
            url = self._trusted(url, link, "next-page link", 200)
        raise ApiError(200, "TooManyPages", f"{cmdlet}: more than {MAX_PAGES} pages")

    def invoke_one(self, cmdlet: str, parameters: Mapping[str, Any] | None = None) -> Any:
        """A single-object cmdlet (Get-TransportConfig, Get-OrganizationConfig): its object."""
        warned = len(self.warnings)
        items = self.invoke(cmdlet, parameters)
        if not items:
            said = "; ".join(self.warnings[warned:])
            raise ApiError(200, "EmptyResult", f"{cmdlet} returned no object" + (f" (warning: {said})" if said else ""))
        return items[0]

    def _post(self, url: str, body: Any, headers: Mapping[str, str]) -> Any:
        # requests would turn a redirected POST into a GET; follow a redirect by POSTing again.
        for _ in range(3):
            try:
                status, reply_headers, reply = self.http.request(
                    "POST", url, json_body=body, headers=headers, allow_redirects=False
                )
            except ApiError as exc:
                raise cmdlet_error(exc) from None
            location = reply_headers.get("Location")
            if 300 <= status < 400 and location:
                url = self._trusted(url, location, "redirect", status)
                continue
            return reply
        raise ApiError(status, "TooManyRedirects", "the Exchange admin API redirected too often")
