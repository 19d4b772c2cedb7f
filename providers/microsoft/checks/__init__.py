"""The provider's checks, in the order a sign-in meets them."""

from preflight.checks import Check

ALL_CHECKS: list[Check] = []
