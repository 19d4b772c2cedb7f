"""TinyMail: a third provider defined only here, registered through the `preflight.providers` entry-point
group exactly as an installed plugin would be (tests/test_thirdparty.py writes the dist-info), to prove
the core names no provider. Its API is fictional: two resources, `sending` (org) and `account` (mailbox),
so their shapes are this module's own, not any real service's.

It implements only the required part of the contract (preflight.providers.Provider): no optional hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib.abc import Traversable
from typing import Any

from preflight.checks import Check, Context, Outcome, check, failed, passed
from preflight.errors import SignInError
from preflight.model import Method, Severity
from preflight.providers import CollectRequest
from preflight.resources import Payload, Schema

NAME = "tinymail"
TITLE = "TinyMail Hosting"


class Sending(Payload):
    paused: bool


class Account(Payload):
    enabled: bool


@check("tinymail.sending-paused", "Outbound mail is not paused for the organisation", severity=Severity.CRITICAL,
       cause="tenant-sending-blocked", scope="tenant", order=10, reads=("sending",))
def sending_paused(ctx: Context) -> Outcome:
    if ctx.org_as("sending", Sending).paused:
        return failed("TinyMail paused outbound mail for the organisation (sending.paused: true).",
                      {"sending.paused": True})
    return passed("Outbound mail is on (sending.paused: false).", {"sending.paused": False})


@check("tinymail.account-enabled", "The account can sign in", severity=Severity.CRITICAL, cause="account-disabled",
       methods=(Method.BASIC,), order=20, reads=("account",))
def account_enabled(ctx: Context) -> Outcome:
    if not ctx.mailbox_as("account", Account).enabled:
        return failed(f"{ctx.subject} is disabled (account.enabled: false).", {"account.enabled": False})
    return passed(f"{ctx.subject} is enabled (account.enabled: true).", {"account.enabled": True})


class TinyMail:
    name = NAME
    title = TITLE

    def checks(self) -> Sequence[Check]:
        return [sending_paused, account_enabled]

    def resources(self) -> Schema:
        return {"sending": Sending, "account": Account}

    def permissions(self) -> Mapping[str, str]:
        return {"sending": "the TinyMail admin role Reader", "account": "the TinyMail admin role Reader"}

    def demo_snapshots(self) -> Sequence[Traversable]:
        return []

    def commands(self) -> Mapping[str, Callable[..., Any]]:
        return {}

    def collect(self, request: CollectRequest) -> dict[str, Any]:
        raise SignInError("TinyMail has no live sign-in: audit it from a snapshot")


provider = TinyMail()


def snapshot(paused: bool = False) -> dict[str, Any]:
    """A snapshot of two mailboxes: ready@ is enabled, off@ is disabled, unread@'s account could not be read."""
    return {
        "schema": "preflight.snapshot/v1",
        "provider": NAME,
        "collected_at": "2026-11-26T10:00:00Z",
        "tenant": {"id": "tm-4711", "domain": "tiny.example"},
        "options": {"methods": ["basic"], "sender_ips": [], "app_id": None},
        "org": {"sending": {"paused": paused}},
        "mailboxes": {
            "ready@tiny.example": {"account": {"enabled": True}},
            "off@tiny.example": {"account": {"enabled": False}},
            "unread@tiny.example": {"account": {"error": {"status": 403, "code": "Forbidden",
                                                          "message": "not allowed"}}},
        },
    }
