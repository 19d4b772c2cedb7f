"""SASL exchanges for AUTH PLAIN, LOGIN, XOAUTH2 and OAUTHBEARER over a Wire, credential lines masked.

The transcript gets a description of each credential line ("[password hidden]"), never the line.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from preflight.explain import decode_challenge
from preflight.probe.secrets import Secret
from preflight.probe.wire import Reply, Wire

MECHANISMS = ("PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER")
PASSWORD_MECHANISMS = ("PLAIN", "LOGIN")
TOKEN_MECHANISMS = ("XOAUTH2", "OAUTHBEARER")
MAX_STEPS = 4  # no mechanism here needs more 334 round trips; a server asking for more is cancelled


@dataclass
class Exchange:
    replies: list[Reply] = field(default_factory=list)
    challenge: dict[str, Any] | None = None  # decoded error challenge (RFC 7628 / Gmail's XOAUTH2)

    @property
    def final(self) -> Reply:
        return self.replies[-1]


def _b64(data: str) -> str:
    return base64.b64encode(data.encode("utf-8")).decode("ascii")


def choose(offered: list[str], password: bool, explicit: str | None) -> str:
    """The mechanism to use: the one asked for, XOAUTH2 for a token, else PLAIN or LOGIN as offered."""
    if explicit:
        return explicit
    if not password:  # XOAUTH2 where offered (what Microsoft and Google document), else the RFC 7628 one
        return "OAUTHBEARER" if "OAUTHBEARER" in offered and "XOAUTH2" not in offered else "XOAUTH2"
    for mech in PASSWORD_MECHANISMS:
        if mech in offered:
            return mech
    return "PLAIN"


def authenticate(wire: Wire, mechanism: str, user: str, secret: Secret, host: str, port: int) -> Exchange:
    if mechanism == "PLAIN":
        return _plain(wire, user, secret)
    if mechanism == "LOGIN":
        return _login(wire, user, secret)
    if mechanism == "OAUTHBEARER":
        # RFC 7628 §3.1: GS2 header, then host, port and the bearer token as key=value pairs.
        payload = f"n,a={_saslname(user)},\x01host={host}\x01port={port}\x01auth=Bearer {secret.reveal()}\x01\x01"
        return _bearer(wire, "OAUTHBEARER", user, payload, abort=_b64("\x01"))
    return _bearer(wire, "XOAUTH2", user, f"user={user}\x01auth=Bearer {secret.reveal()}\x01\x01", abort="")


def _saslname(user: str) -> str:
    return user.replace("=", "=3D").replace(",", "=2C")


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


def challenge_of(reply: Reply) -> dict[str, Any] | None:
    """An XOAUTH2 error challenge: `334 <base64 JSON with status, schemes, scope>`."""
    if reply.code != 334 or not reply.lines:
        return None
    return decode_challenge(reply.lines[0])


def _bearer(wire: Wire, mechanism: str, user: str, payload: str, abort: str) -> Exchange:
    """XOAUTH2 / OAUTHBEARER: the token in the initial response; an error comes as a 334 JSON challenge."""
    ex = Exchange()
    shown = f"AUTH {mechanism} [user {user}, bearer token hidden]"
    reply = wire.command(f"AUTH {mechanism} {_b64(payload)}", shown=shown)
    ex.replies.append(reply)
    if reply.code == 334:
        ex.challenge = challenge_of(reply)
        if ex.challenge is not None:
            wire.transcript.info(f"{mechanism} error challenge: {json.dumps(ex.challenge, separators=(',', ':'))}")
        # The client must answer the error challenge (XOAUTH2: an empty line; OAUTHBEARER: a single ^A,
        # RFC 7628 §3.2.3) and the server then sends the real reply.
        reply = wire.command(abort, shown="(response to the error challenge)")
        ex.replies.append(reply)
    return _finish(wire, ex, reply)
