"""The probe's exit codes: cheap to import, so `preflight probe --help` can show them."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """In the spirit of swaks' phase codes; 2 stays "bad input" as everywhere in preflight."""

    OK = 0
    USAGE = 2
    CONNECT = 20
    BANNER = 21
    EHLO = 22
    MAIL = 23
    RCPT = 24
    DATA = 25
    MESSAGE = 26
    AUTH = 28
    TLS = 29
    EHLO_TLS = 32
    TOKEN = 40  # not a swaks code: swaks has no OAuth sign-in of its own


EXIT_HELP = (
    "Exit codes: 0 every phase that ran succeeded; 2 bad input (bad option, unresolvable host, port out of "
    "range, missing secret); 20 TCP connect failed (refused, timed out, unreachable); 21 banner; "
    "22 EHLO; 29 TLS (STARTTLS missing or refused, handshake or certificate verification failed); "
    "32 EHLO after TLS; 28 AUTH (mechanism not offered or credentials rejected); 23 MAIL FROM; "
    "24 RCPT TO; 25 DATA; 26 message rejected after DATA; 40 no token from --token-from (the provider's "
    "sign-in refused the sending app's credentials, or could not be reached)."
)
