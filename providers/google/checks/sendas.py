"""Send-as: sending From an address other than the signed-in user's needs it as a verified send-as address.

Otherwise Gmail rewrites the From to the signed-in user (google.md §5). The From is the --from address for
the mailbox, or, for an alias, the alias itself (the service signs in as the owner and sends as the alias).
"""

from __future__ import annotations

from typing import Any

from preflight.checks import Context, Outcome, check, failed, passed, unknown
from preflight.model import Severity

from ..resources import SendAsList
from .common import User, for_users, only_users, primary, subject


@only_users
@check(
    "google.send-as",
    "The From address is the user's or a verified send-as address",
    severity=Severity.HIGH,
    cause="send-as-denied",
    order=90,
    reads=("user", "sendAs"),
)
@for_users
def send_as(ctx: Context, user: User) -> Outcome | None:
    address = subject(ctx)
    owner = primary(user)
    sender = str(ctx.options.from_addresses.get(address) or address).lower()
    if sender == owner:
        return None  # sending as itself: nothing to check
    send_as_list = ctx.mailbox_as("sendAs", SendAsList).root
    entry = next((s for s in send_as_list if s.sendAsEmail.lower() == sender), None)
    evidence: dict[str, Any] = {
        "from": sender,
        "signs in as": owner,
        "sendAs": [s.sendAsEmail for s in send_as_list],
    }
    if entry is None:
        return failed(
            f"{sender} is not a send-as address of {owner} (Gmail sendAs list): Gmail rewrites the From of mail "
            f"{owner} sends to {owner}.",
            evidence,
        )
    status = entry.verificationStatus
    evidence.update({"sendAs.verificationStatus": status, "sendAs.isPrimary": entry.isPrimary})
    if entry.isPrimary or status == "accepted":
        return passed(f"{owner} may send as {sender} (send-as address, verificationStatus {status}).", evidence)
    if status == "pending":
        return failed(
            f"{sender} is a send-as address of {owner} awaiting verification (verificationStatus pending): until "
            "it is verified, Gmail rewrites the From.",
            evidence,
        )
    return unknown(
        f"{sender} is listed as a send-as address of {owner} with verificationStatus {status!r}, which does not say "
        "whether it is usable.",
        evidence,
    )
