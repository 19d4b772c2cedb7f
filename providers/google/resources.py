"""The documented shape of every resource the Google checks read (preflight.resources explains the rules).

Sources: the Admin SDK Directory API (users, groups, orgunits, domains, tokens, members.hasMember), the
Cloud Identity Policy API (policies: policyQuery, setting) and the Gmail API (users.settings.sendAs)
discovery documents, the Enterprise License Manager API (licenseAssignment), and /work/shared/reference
google.md. Fields the checks decide on are required; labels are optional. The spellings of Policy API
enum values are facts the checks read from data/settings.toml (an unrecognised one makes the check
`unknown`), so here those values are only typed as text.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, RootModel, StringConstraints, ValidationError, field_validator, model_validator

from preflight.resources import Payload, describe

NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class DirectoryUser(Payload):
    id: NonEmpty
    primaryEmail: NonEmpty
    orgUnitPath: Annotated[str, StringConstraints(pattern=r"^/")]
    suspended: bool
    suspensionReason: str | None = None  # present only for a suspended user
    archived: bool
    changePasswordAtNextLogin: bool
    isMailboxSetup: bool
    isEnrolledIn2Sv: bool
    isEnforcedIn2Sv: bool
    aliases: list[str] = Field(default_factory=list)  # absent when the user has none
    nonEditableAliases: list[str] = Field(default_factory=list)


class DirectoryGroup(Payload):
    id: NonEmpty
    email: NonEmpty
    name: str | None = None
    directMembersCount: Annotated[str, StringConstraints(pattern=r"^[0-9]+$")] | int | None = None  # int64 as text


class UserGroups(RootModel[list[DirectoryGroup]]):
    pass


class HasMember(Payload):
    isMember: bool


class ErrorRecord(Payload):
    """One entry the collector could not read ({"error": {...}}): that group stays undecided."""

    error: Any


class GroupMembership(RootModel[dict[str, HasMember | ErrorRecord]]):
    pass


class LicenseAssignment(Payload):
    productId: NonEmpty
    skuId: NonEmpty
    skuName: str | None = None


class Licenses(RootModel[list[LicenseAssignment]]):
    pass


class LicenseErrors(RootModel[dict[str, ErrorRecord]]):
    """productId -> why its assignments could not be read (the collector lists each product once)."""


class SendAs(Payload):
    sendAsEmail: NonEmpty
    isPrimary: bool = False  # absent for every address but the primary
    # Absent for the primary address; read-only, for custom "from" aliases only.
    verificationStatus: Literal["verificationStatusUnspecified", "accepted", "pending"] | None = None


class SendAsList(RootModel[list[SendAs]]):
    pass


class Token(Payload):
    clientId: NonEmpty
    scopes: list[str]
    displayText: str | None = None


class Tokens(RootModel[list[Token]]):
    pass


class Asp(Payload):
    """Directory users.asps.list item. Times are Unix epoch milliseconds as text, "0" when unknown/never (GAM)."""

    codeId: int
    name: str | None = None
    creationTime: Annotated[str, StringConstraints(pattern=r"^[0-9]+$")] | None = None
    lastTimeUsed: Annotated[str, StringConstraints(pattern=r"^[0-9]+$")] | None = None


class Asps(RootModel[list[Asp]]):
    pass


class ActivityParameter(Payload):
    name: NonEmpty
    value: str | None = None
    multiValue: list[str] | None = None


class ActivityEvent(Payload):
    name: NonEmpty
    type: str | None = None
    parameters: list[ActivityParameter] = Field(default_factory=list)


class ActivityId(Payload):
    time: NonEmpty  # RFC 3339
    applicationName: str | None = None


class ActivityActor(Payload):
    email: str | None = None  # absent for some system actors


class Activity(Payload):
    """Reports API activities.list item (admin.reports_v1 discovery, schema Activity)."""

    id: ActivityId
    actor: ActivityActor | None = None
    events: list[ActivityEvent]


class Activities(RootModel[list[Activity]]):
    pass


class OrgUnit(Payload):
    orgUnitId: Annotated[str, StringConstraints(pattern=r"^id:.+")]
    orgUnitPath: Annotated[str, StringConstraints(pattern=r"^/")]
    parentOrgUnitPath: str | None = None  # absent for the root
    parentOrgUnitId: str | None = None


class OrgUnits(RootModel[list[OrgUnit]]):
    pass


class DomainAlias(Payload):
    domainAliasName: NonEmpty


class Domain(Payload):
    domainName: NonEmpty
    domainAliases: list[DomainAlias] = Field(default_factory=list)  # absent when the domain has none


class Domains(RootModel[list[Domain]]):
    pass


# --- Cloud Identity Policy API --------------------------------------------------------------------------


class ServiceStatus(Payload):
    serviceState: str


class TwoStepEnrollment(Payload):
    allowEnrollment: bool


class TwoStepFactor(Payload):
    allowedSignInFactorSet: str


class AdvancedProtection(Payload):
    enableAdvancedProtectionSelfEnrollment: bool


class UnconfiguredApps(Payload):
    # A Merge setting: a policy may set only one of its fields, but it sets at least one.
    accessLevel: str | None = None
    accessLevelUnder18: str | None = None

    @model_validator(mode="after")
    def _sets_one(self) -> UnconfiguredApps:
        if self.accessLevel is None and self.accessLevelUnder18 is None:
            raise ValueError("neither accessLevel nor accessLevelUnder18 is set")
        return self


class ServiceEntry(Payload):
    scopesGroup: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$")]  # GMAIL_ALL, DRIVE_ALL, ...
    isEnabled: bool


class GoogleServices(Payload):
    services: list[ServiceEntry]


# The value of each setting type a check reduces; other types are read by no check and only typed as objects.
SETTING_VALUES: dict[str, type[BaseModel]] = {
    "settings/gmail.service_status": ServiceStatus,
    "settings/security.two_step_verification_enrollment": TwoStepEnrollment,
    "settings/security.two_step_verification_enforcement_factor": TwoStepFactor,
    "settings/security.advanced_protection_program": AdvancedProtection,
    "settings/api_controls.unconfigured_third_party_apps": UnconfiguredApps,
    "settings/api_controls.google_services": GoogleServices,
}


class PolicyQuery(Payload):
    query: str | None = None  # the CEL query; authoritative when present
    orgUnit: Annotated[str, StringConstraints(pattern=r"^orgUnits/.+")] | None = None
    group: str | None = None  # "groups/<id>", though Google also returns other values (ScubaGoggles)
    sortOrder: int | float


class Setting(Payload):
    type: Annotated[str, StringConstraints(pattern=r"^settings/[a-z0-9_]+\.[a-z0-9_]+$")]
    value: dict[str, Any]

    @field_validator("value")
    @classmethod
    def _value(cls, value: dict[str, Any], info: Any) -> dict[str, Any]:
        model = SETTING_VALUES.get(str(info.data.get("type")))
        if model is not None:
            try:
                model.model_validate(value)
            except ValidationError as exc:
                raise ValueError(describe("value", exc)) from None
        return value


class Policy(Payload):
    name: NonEmpty
    policyQuery: PolicyQuery
    setting: Setting
    type: Literal["ADMIN", "SYSTEM", "POLICY_TYPE_UNSPECIFIED"] | None = None


class Policies(RootModel[list[Policy]]):
    pass


RESOURCES: dict[str, type[BaseModel]] = {
    "user": DirectoryUser,
    "group": DirectoryGroup,
    "userGroups": UserGroups,
    "groupMembership": GroupMembership,
    "licenses": Licenses,
    "licenseErrors": LicenseErrors,
    "sendAs": SendAsList,
    "tokens": Tokens,
    "asps": Asps,
    "advancedProtectionEvents": Activities,
    "delegationEvents": Activities,
    "orgUnits": OrgUnits,
    "domains": Domains,
    "policies": Policies,
}
