"""The questions preflight asks Microsoft's Conditional Access What If evaluation, pure.

Graph (beta) `POST /identity/conditionalAccess/evaluate` takes a signInIdentity (#microsoft.graph.userSignIn
{userId} or #microsoft.graph.servicePrincipalSignIn {servicePrincipalId}), a signInContext
(#microsoft.graph.applicationContext {includeApplications: [appId]}), signInConditions (clientAppType,
ipAddress, country, ...) and appliedPoliciesOnly, and answers a collection of whatIfAnalysisResult: the
tenant's policies with policyApplies and analysisReasons. Sources: microsoft-graph-docs-contrib
api-reference/beta/api/conditionalaccessroot-evaluate.md and resources/{signinconditions, usersignin,
serviceprincipalsignin, applicationcontext, whatifanalysisresult}.md; maester365/maester
Test-MtConditionalAccessWhatIf.ps1 asks the same way (applicationContext, clientAppType, ipAddress).

The collector asks these questions and the checks recognise the answers by the question they were given
(snapshot resource `conditionalAccessWhatIf` per mailbox, `workloadConditionalAccessWhatIf` for the app):
both build the questions here so that they cannot drift apart.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

USER_SIGN_IN = "#microsoft.graph.userSignIn"
SERVICE_PRINCIPAL_SIGN_IN = "#microsoft.graph.servicePrincipalSignIn"
APPLICATION_CONTEXT = "#microsoft.graph.applicationContext"
EVALUATE_PATH = "/identity/conditionalAccess/evaluate"

# How each user sign-in method presents itself to Conditional Access, as What If's clientAppType.
# Basic SMTP AUTH is a legacy client: "other". A delegated OAuth sender is a browser (a confidential client:
# Microsoft's CA docs list "services registered as an OAuth confidential client" under Browser) or a mobile
# and desktop client (a public client); both are asked and the checks keep the answers for the types their
# own reading uses for the method.
CLIENT_APP_TYPES: dict[str, tuple[str, ...]] = {
    "basic": ("other",),
    "oauth-delegated": ("browser", "mobileAppsAndDesktopClients"),
}


def sample_addresses(sender_ips: Iterable[str]) -> list[str]:
    """The addresses to ask about: each single address as given, a range by its first and last address.

    What If takes one ipAddress per question; asking the ends of a range is what a question count allows.
    An entry that is no IP address or range is left out (the checks report it as an input error)."""
    out: list[str] = []
    for text in sender_ips:
        try:
            net = ipaddress.ip_network(str(text).strip(), strict=False)
        except ValueError:
            continue
        for addr in dict.fromkeys((net[0], net[-1])):
            if str(addr) not in out:
                out.append(str(addr))
    return out


def is_single_address(text: str) -> bool:
    try:
        return ipaddress.ip_network(text.strip(), strict=False).num_addresses == 1
    except ValueError:
        return False


def _conditions(client_app_type: str | None, ip: str | None) -> dict[str, Any]:
    conditions: dict[str, Any] = {}
    if client_app_type is not None:
        conditions["clientAppType"] = client_app_type
    if ip is not None:
        conditions["ipAddress"] = ip
    return conditions


def _question(identity: dict[str, Any], app_id: str, conditions: dict[str, Any]) -> dict[str, Any]:
    return {
        "signInIdentity": identity,
        "signInContext": {"@odata.type": APPLICATION_CONTEXT, "includeApplications": [app_id]},
        "signInConditions": conditions,
        "appliedPoliciesOnly": True,
    }


def user_questions(user_id: str, method: str, app_id: str, sender_ips: Sequence[str]) -> list[dict[str, Any]]:
    """What If request bodies for a user signing in to app_id with this method, from each sender address."""
    ips: list[str | None] = list(sample_addresses(sender_ips)) or [None]
    identity = {"@odata.type": USER_SIGN_IN, "userId": user_id}
    return [_question(identity, app_id, _conditions(kind, ip))
            for kind in CLIENT_APP_TYPES.get(method, ()) for ip in ips]


def service_principal_questions(sp_id: str, app_id: str, sender_ips: Sequence[str]) -> list[dict[str, Any]]:
    """What If request bodies for the sending app's own (client credentials) token from each sender address."""
    ips: list[str | None] = list(sample_addresses(sender_ips)) or [None]
    identity = {"@odata.type": SERVICE_PRINCIPAL_SIGN_IN, "servicePrincipalId": sp_id}
    return [_question(identity, app_id, _conditions(None, ip)) for ip in ips]


def describe(question: dict[str, Any]) -> str:
    """One line for a finding: what Microsoft was asked."""
    cond = question.get("signInConditions") or {}
    parts = []
    if cond.get("clientAppType"):
        parts.append(f"client app type {cond['clientAppType']}")
    parts.append(f"from {cond['ipAddress']}" if cond.get("ipAddress") else "with no IP address")
    return " ".join(parts)
