"""The Microsoft fake's $batch parser refuses what Graph refuses (graph concepts/json-batching.md), for v1.0
and beta alike: a fake that accepted more would let a malformed batch from the collector pass."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.microsoft.fake import Reply, batch_requests, exchange_batch_requests


def body(requests: Any) -> bytes:
    return json.dumps({"requests": requests}).encode()


def get(rid: str, url: str = "/users/a@contoso.com") -> dict[str, Any]:
    return {"id": rid, "method": "GET", "url": url}


def test_a_well_formed_batch_is_read_request_by_request() -> None:
    items = batch_requests("POST", body([get("1", "users/a@contoso.com?$select=id"),
                                         {"id": "2", "method": "post", "url": "/identity/conditionalAccess/evaluate",
                                          "headers": {"Content-Type": "application/json"}, "body": {"x": 1}}]))
    assert isinstance(items, list)
    first, second = items
    assert (first.path, first.query, first.has_body) == ("/users/a@contoso.com", {"$select": ["id"]}, False)
    assert (second.method, second.headers, second.body, second.refused()) == (
        "POST", {"content-type": "application/json"}, {"x": 1}, None)


@pytest.mark.parametrize(("method", "payload", "message"), [
    ("GET", body([get("1")]), "Invalid batch payload format."),
    ("POST", b"{not json", "Unable to read JSON request payload."),
    ("POST", b"[]", "Invalid batch payload format."),
    ("POST", b'{"requests": {}}', "Invalid batch payload format."),
    ("POST", body([get(str(i)) for i in range(21)]), "Limit of requests in the batch is 20."),
    ("POST", body([{"method": "GET", "url": "/users"}]), "Invalid batch payload format."),
    ("POST", body([{"id": 1, "method": "GET", "url": "/users"}]), "Invalid batch payload format."),
    ("POST", body([{"id": "1", "url": "/users"}]), "Invalid batch payload format."),
    ("POST", body([{"id": "1", "method": "GET"}]), "Invalid batch payload format."),
    ("POST", body([get("a"), get("A")]), "Invalid batch payload format."),  # ids compare without case
    ("POST", body([{**get("1"), "headers": ["Content-Type"]}]), "Invalid batch payload format."),
])
def test_the_whole_batch_is_refused_as_graph_refuses_it(method: str, payload: bytes, message: str) -> None:
    reply = batch_requests(method, payload)
    assert isinstance(reply, Reply) and reply.status == 400
    assert reply.body["error"]["message"] == message  # type: ignore[index]


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "text/plain"}])
def test_a_request_with_a_body_but_no_json_content_type_is_refused_alone(headers: dict[str, str]) -> None:
    items = batch_requests("POST", body([get("1"), {"id": "2", "method": "POST", "url": "/x", "headers": headers,
                                                    "body": {}}]))
    assert isinstance(items, list)
    assert items[0].refused() is None
    refused = items[1].refused()
    assert refused is not None and refused.status == 400


ORIGIN = "https://127.0.0.1:8443"
INVOKE = f"{ORIGIN}/adminapi/beta/contoso.com/InvokeCommand"


def cmdlet(rid: str, url: str = INVOKE, **over: Any) -> dict[str, Any]:
    return {"id": rid, "method": "POST", "url": url, "headers": {"X-CmdletName": "Get-Mailbox"},
            "body": {"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {}}}, **over}


def test_a_well_formed_exchange_batch_is_read_cmdlet_by_cmdlet() -> None:
    items = exchange_batch_requests(body([cmdlet("a"), cmdlet("b", INVOKE + "?$skiptoken=5")]), ORIGIN)
    assert isinstance(items, list)
    assert [(i.id, i.tenant_key, i.query) for i in items] == [("a", "contoso.com", {}),
                                                              ("b", "contoso.com", {"$skiptoken": ["5"]})]
    assert items[0].payload["CmdletInput"]["CmdletName"] == "Get-Mailbox"


@pytest.mark.parametrize("payload", [
    b"{not json",
    b'{"requests": {}}',
    body([cmdlet(str(i)) for i in range(11)]),  # at most 10 (KelvinTegelaar/CIPP-API New-ExoBulkRequest.ps1)
    body([cmdlet("a", method="GET")]),
    body([{k: v for k, v in cmdlet("a").items() if k != "id"}]),
    body([cmdlet("")]),
    body([cmdlet("a"), cmdlet("a")]),
    body([cmdlet("a", url="/adminapi/beta/contoso.com/InvokeCommand")]),  # relative
    body([cmdlet("a", url="https://elsewhere.test/adminapi/beta/contoso.com/InvokeCommand")]),
    body([cmdlet("a", url=f"{ORIGIN}/adminapi/beta/contoso.com/$batch")]),
    body([cmdlet("a", body={"CmdletName": "Get-Mailbox"})]),  # no CmdletInput
    body([cmdlet("a", body=None)]),
    body([cmdlet("a", headers=["X-CmdletName"])]),
])
def test_the_whole_exchange_batch_is_refused_when_any_request_is_off_shape(payload: bytes) -> None:
    reply = exchange_batch_requests(payload, ORIGIN)
    assert isinstance(reply, Reply) and reply.status == 400
