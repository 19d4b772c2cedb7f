"""The provider's checks, in the order a sign-in meets them: the account, Entra ID (security defaults,
Conditional Access), Exchange Online (authentication policy, SMTP AUTH), OAuth permissions, then send-as."""

from preflight.checks import Check

from . import (
    account,
    apprbac,
    appsignins,
    exchange,
    identity,
    oauth,
    peruser,
    sendas,
    signins,
    tenantsignins,
    values,
    whatif,
    workload,
)

ALL_CHECKS: list[Check] = [
    account.mailbox_exists,
    account.shared,
    account.alias,
    account.sign_in_enabled,
    account.licence,
    identity.security_defaults,
    whatif.user_check(identity.ca_legacy_auth, whatif.LEGACY),
    whatif.user_check(identity.ca_location, whatif.LOCATION),
    whatif.app_check(workload.workload_identity, whatif.WORKLOAD),
    whatif.user_check(identity.ca_mfa, whatif.CONTROLS),
    peruser.per_user_mfa,
    exchange.auth_policy,
    exchange.smtp_auth,
    exchange.basic_retirement,
    oauth.delegated_consent,
    apprbac.with_rbac(oauth.app_role),
    oauth.exchange_service_principal,
    apprbac.with_rbac(oauth.mailbox_permission, entra_role=oauth.app_role),
    appsignins.app_sign_ins,
    tenantsignins.tenant_sign_ins,
    signins.log_vs_configuration,
    signins.smtp_sign_ins,
    sendas.send_as,
]


def preload() -> None:
    """Read now what the checks otherwise read on first use in each process (their data files): an audit calls
    this before it forks its worker processes, which then share what was read instead of each reading it again."""
    for name in ("wellknown", "retirement"):
        values.data(name)
