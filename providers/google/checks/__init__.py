"""The provider's checks, in the order a sign-in meets them."""

from preflight.checks import Check

from .account import account_state, gmail_service, password_change
from .address import address_type
from .facts import facts as _facts
from .oauth import api_controls, dwd_grant
from .security import app_passwords, password_sign_in, two_step
from .sendas import send_as

ALL_CHECKS: list[Check] = [
    address_type,
    account_state,
    password_change,
    gmail_service,
    password_sign_in,
    two_step,
    app_passwords,
    api_controls,
    dwd_grant,
    send_as,
]


def preload() -> None:
    """Read now what the checks otherwise read on first use in each process (their data files): an audit calls
    this before it forks its worker processes, which then share what was read instead of each reading it again."""
    _facts()
