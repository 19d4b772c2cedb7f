"""The provider's checks, in the order a sign-in meets them."""

from preflight.checks import Check

from .account import account_state, gmail_service, password_change
from .address import address_type
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
