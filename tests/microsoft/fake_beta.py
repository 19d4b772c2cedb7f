"""Microsoft Graph beta in the fake: /beta/$batch (GET and POST sub-requests), the Conditional Access What If
action and the per-user MFA state, strict about request shapes as the Graph docs give them.

- POST /identity/conditionalAccess/evaluate (api-reference/beta/api/conditionalaccessroot-evaluate.md): the body
  must hold signInIdentity (#microsoft.graph.userSignIn {userId} or #microsoft.graph.servicePrincipalSignIn
  {servicePrincipalId}), signInContext and signInConditions, with only documented members and enum values
  (resources/signinconditions.md); anything else is a 400 as Graph gives one. The answer is the one the served
  snapshot recorded for that exact question (`conditionalAccessWhatIf` of the user's mailbox, or
  `workloadConditionalAccessWhatIf` of the tenant); a question nobody recorded is a 501, so a test that asks
  something unexpected fails instead of passing on an invented answer.
- GET /users/{id | userPrincipalName}/authentication/requirements (api-reference/beta/api/authentication-get.md):
  the mailbox's recorded `authenticationRequirements`.
- $batch: the strict parser shared with v1.0 (tests/microsoft/fake.py `batch_requests`).
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import TYPE_CHECKING, Any

from tests.microsoft.fake import Reply, graph_error

if TYPE_CHECKING:
    from tests.microsoft.fake import FakeMicrosoft, FakeTenant

EVALUATE = "/identity/conditionalAccess/evaluate"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
TOP = {"signInIdentity", "signInContext", "signInConditions", "appliedPoliciesOnly"}
IDENTITIES = {
    "#microsoft.graph.userSignIn": ("userId", {"@odata.type", "userId", "externalUserType", "externalTenantId"}),
    "#microsoft.graph.servicePrincipalSignIn": ("servicePrincipalId", {"@odata.type", "servicePrincipalId"}),
}
CONTEXTS = {
    "#microsoft.graph.applicationContext": {"@odata.type", "includeApplications"},
    "#microsoft.graph.userActionContext": {"@odata.type", "userAction"},
    "#microsoft.graph.authContext": {"@odata.type", "authenticationContextValue"},
}
RISK = {"low", "medium", "high", "hidden", "none", "unknownFutureValue"}
ENUMS = {
    "clientAppType": {"all", "browser", "mobileAppsAndDesktopClients", "exchangeActiveSync", "easSupported", "other",
                      "unknownFutureValue"},
    "devicePlatform": {"android", "iOS", "windows", "windowsPhone", "macOS", "all", "unknownFutureValue", "linux"},
    "insiderRiskLevel": {"none", "minor", "moderate", "elevated", "unknownFutureValue"},
    "servicePrincipalRiskLevel": RISK, "signInRiskLevel": RISK, "userRiskLevel": RISK,
}
CONDITIONS = {"@odata.type", "authenticationFlow", "country", "deviceInfo", "ipAddress", *ENUMS}


def evaluate_error(body: Any) -> str | None:
    """Why Graph would refuse this evaluate body, or None when it is well formed."""
    if not isinstance(body, dict):
        return "The request body is not a JSON object."
    if set(body) - TOP:
        return f"Invalid parameter(s): {', '.join(sorted(set(body) - TOP))}."
    missing = [k for k in ("signInIdentity", "signInContext", "signInConditions") if not isinstance(body.get(k), dict)]
    if missing:
        return f"Required parameter(s) missing or not objects: {', '.join(missing)}."
    if "appliedPoliciesOnly" in body and not isinstance(body["appliedPoliciesOnly"], bool):
        return "appliedPoliciesOnly must be a Boolean."
    identity, context, conditions = body["signInIdentity"], body["signInContext"], body["signInConditions"]
    kind = IDENTITIES.get(identity.get("@odata.type"))
    if kind is None:
        return f"signInIdentity has an unknown @odata.type {identity.get('@odata.type')!r}."
    key, allowed = kind
    if set(identity) - allowed or not GUID.match(str(identity.get(key) or "")):
        return f"signInIdentity must carry a GUID {key} and nothing undocumented."
    members = CONTEXTS.get(context.get("@odata.type"))
    if members is None or set(context) - members:
        return "signInContext is not a documented signInContext."
    apps = context.get("includeApplications")
    if context["@odata.type"].endswith("applicationContext") and (
            not isinstance(apps, list) or not apps or not all(isinstance(a, str) for a in apps)):
        return "applicationContext.includeApplications must be a non-empty list of app ids."
    if set(conditions) - CONDITIONS:
        return f"signInConditions has undocumented member(s): {', '.join(sorted(set(conditions) - CONDITIONS))}."
    for name, values in ENUMS.items():
        if name in conditions and conditions[name] not in values:
            return f"Requested value '{conditions[name]}' is not a member of the enum for {name}."
    if "ipAddress" in conditions:
        try:
            ipaddress.ip_address(str(conditions["ipAddress"]))
        except ValueError:
            return f"ipAddress '{conditions['ipAddress']}' is not an IP address."
    return None


def _is_error(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"error"} and isinstance(value["error"], dict)


def _error_reply(value: dict[str, Any]) -> Reply:
    err = value["error"]
    return graph_error(int(err.get("status") or 500), str(err.get("code")), str(err.get("message") or ""))


def _recorded(recorded: Any, body: dict[str, Any]) -> Reply | None:
    if _is_error(recorded):
        return _error_reply(recorded)
    for item in recorded if isinstance(recorded, list) else []:
        if isinstance(item, dict) and item.get("request") == body:
            response = item.get("response")
            return _error_reply(response) if _is_error(response) else Reply(200, response)
    return None


def _user_box(tenant: FakeTenant, key: str) -> dict[str, Any] | None:
    key = key.lower()
    for box in tenant.boxes.values():
        user = box.get("user")
        if isinstance(user, dict) and key in (str(user.get("id", "")).lower(),
                                              str(user.get("userPrincipalName", "")).lower()):
            return box
    return None


def evaluate(tenant: FakeTenant, body: Any) -> Reply:
    why = evaluate_error(body)
    if why is not None:
        return graph_error(400, "BadRequest", why)
    identity = body["signInIdentity"]
    reply: Reply | None = None
    if "userId" in identity:
        box = _user_box(tenant, identity["userId"])
        if box is None:
            return graph_error(404, "Request_ResourceNotFound", f"User '{identity['userId']}' does not exist.")
        reply = _recorded(box.get("conditionalAccessWhatIf"), body)
    else:
        sp = tenant.org.get("servicePrincipal")
        if not isinstance(sp, dict) or sp.get("id") != identity["servicePrincipalId"]:
            return graph_error(404, "Request_ResourceNotFound",
                               f"Service principal '{identity['servicePrincipalId']}' does not exist.")
        reply = _recorded(tenant.org.get("workloadConditionalAccessWhatIf"), body)
    return reply or graph_error(501, "NotImplemented", "The fake has no recorded What If answer for this question.")


def requirements(tenant: FakeTenant, key: str) -> Reply:
    box = _user_box(tenant, key)
    if box is None:
        return graph_error(404, "Request_ResourceNotFound", f"Resource '{key}' does not exist.")
    value = box.get("authenticationRequirements")
    if value is None:
        return graph_error(501, "NotImplemented", "The fake has no recorded per-user MFA state for this user.")
    return _error_reply(value) if _is_error(value) else Reply(200, value)


def dispatch(tenant: FakeTenant, method: str, path: str, body: Any) -> Reply:
    if path == EVALUATE:
        if method != "POST":
            return graph_error(405, "Request_BadRequest", "evaluate is an action: POST it.")
        return evaluate(tenant, body)
    m = re.fullmatch(r"/users/([^/]+)/authentication/requirements", path)
    if m and method == "GET":
        return requirements(tenant, m.group(1))
    return graph_error(400, "BadRequest", f"Resource not found for the segment '{path.strip('/').split('/')[0]}'.")


def serve(fake: FakeMicrosoft, tenant: FakeTenant, method: str, path: str, body: bytes) -> Reply:
    """A /beta request that passed the bearer check (path relative to /beta)."""
    if path == "/$batch":
        return fake.batch(tenant, "graph-beta", method, body,
                          lambda item: dispatch(tenant, item.method, item.path, item.body))
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        return graph_error(400, "BadRequest", "Unable to read JSON request payload.")
    return dispatch(tenant, method, path, payload)
