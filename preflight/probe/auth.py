"""SASL exchanges for AUTH PLAIN, LOGIN and XOAUTH2 over a Wire, with every credential line masked.

The transcript gets a description of each credential line ("[password hidden]"), never the line.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from preflight.probe.secrets import Secret
from preflight.probe.wire import Reply, Wire

MECHANISMS = ("PLAIN", "LOGIN", "XOAUTH2")
PASSWORD_MECHANISMS = ("PLAIN", "LOGIN")
MAX_STEPS = 4  # no mechanism here needs more 334 round trips; a server asking for more is cancelled


@dataclass
class Exchange:
    replies: list[Reply] = field(default_factory=list)
    challenge: dict[str, Any] | None = None  # decoded XOAUTH2 error challenge (RFC 7628 / Gmail)

    @property
    def final(self) -> Reply:
        return self.replies[-1]


def _b64(data: str) -> str:
    return base64.b64encode(data.encode("utf-8")).decode("ascii")


def choose(offered: list[str], password: bool, explicit: str | None) -> str:
    """The mechanism to use: the one asked for, XOAUTH2 for a token, else PLAIN or LOGIN as offered."""
    if explicit:
        return explicit
    if not password:
        return "XOAUTH2"
    for mech in PASSWORD_MECHANISMS:
        if mech in offered:
            return mech
    return "PLAIN"


def authenticate(wire: Wire, mechanism: str, user: str, secret: Secret) -> Exchange:
    if mechanism == "PLAIN":
        return _plain(wire, user, secret)
    if mechanism == "LOGIN":
        return _login(wire, user, secret)
    return _xoauth2(wire, user, secret)


def _finish(wire: Wire, ex: Exchange, reply: Reply) -> Exchange:
    """A server that keeps sending 334 gets `*` (cancel) and its final answer is read."""
    steps = 0
    while reply.code == 334 and steps < MAX_STEPS:
        steps += 1
        reply = wire.command("*")
        ex.replies.append(reply)
    return ex


def _plain(wire: Wire, user: str, secret: Secret) -> Exchange:
    ex = Exchange()
    payload = _b64(f"\0{user}\0{secret.reveal()}")
    reply = wire.command(f"AUTH PLAIN {payload}", shown=f"AUTH PLAIN [user {user}, password hidden]")
    ex.replies.append(reply)
    return _finish(wire, ex, reply)


def _login(wire: Wire, user: str, secret: Secret) -> Exchange:
    ex = Exchange()
    reply = wire.command("AUTH LOGIN")
    ex.replies.append(reply)
    if reply.code != 334:
        return ex
    reply = wire.command(_b64(user))  # the user name is not a secret, and a wrong one is a common mistake
    ex.replies.append(reply)
    if reply.code != 334:
        return ex
    reply = wire.command(_b64(secret.reveal()), shown="[password hidden]")
    ex.replies.append(reply)
    return _finish(wire, ex, reply)


def decode_challenge(reply: Reply) -> dict[str, Any] | None:
    """An XOAUTH2 error challenge: `334 <base64 JSON with status, schemes, scope>`."""
    if reply.code != 334 or not reply.lines:
        return None
    try:
        data = json.loads(base64.b64decode(reply.lines[0].strip(), validate=True).decode("utf-8"))
    except (binascii.Error, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _xoauth2(wire: Wire, user: str, secret: Secret) -> Exchange:
    ex = Exchange()
    payload = _b64(f"user={user}\x01auth=Bearer {secret.reveal()}\x01\x01")
    reply = wire.command(f"AUTH XOAUTH2 {payload}", shown=f"AUTH XOAUTH2 [user {user}, bearer token hidden]")
    ex.replies.append(reply)
    if reply.code == 334:
        ex.challenge = decode_challenge(reply)
        if ex.challenge is not None:
            wire.transcript.info(f"XOAUTH2 error challenge: {json.dumps(ex.challenge, separators=(',', ':'))}")
        # The protocol wants an empty response to the error challenge; the server then sends the real reply.
        reply = wire.command("", shown="(empty response to the error challenge)")
        ex.replies.append(reply)
    return _finish(wire, ex, reply)
