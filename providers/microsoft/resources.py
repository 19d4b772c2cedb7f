"""The documented shape of every resource the Microsoft checks read (preflight.resources explains the rules).

Sources: Microsoft Graph v1.0 resource pages (conditionalAccessPolicy and its conditionalAccess* types,
namedLocation, user, assignedPlan, directoryObject, servicePrincipal, appRoleAssignment,
oauth2PermissionGrant, authorizationPolicy, identitySecurityDefaultsEnforcementPolicy, mailboxSettings),
the enum members of msgraph-sdk-python's generated models, and the Exchange Online cmdlets' output as the
Exchange admin API returns it (Get-Mailbox, Get-CASMailbox, Get-User, Get-TransportConfig,
Get-OrganizationConfig, Get-AuthenticationPolicy, Get-MailboxPermission, Get-RecipientPermission,
Get-ServicePrincipal). Fields the checks decide on are required; labels (displayName...) are optional.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, RootModel, StringConstraints, model_validator

from preflight.resources import Payload

_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
Guid = Annotated[str, StringConstraints(pattern=f"^{_GUID}$")]


def _exchange_bool(value: object) -> object:
    """Exchange booleans arrive as JSON booleans or as the text PowerShell gives ("True", "$false")."""
    if isinstance(value, str):
        text = value.strip().lower().removeprefix("$")
        if text in ("true", "false"):
            return text == "true"
    return value  # anything else is then refused as not a boolean


ExchangeBool = Annotated[bool, BeforeValidator(_exchange_bool)]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]


# --- Entra ID: security defaults, Conditional Access, named locations -----------------------------------


class SecurityDefaults(Payload):
    isEnabled: bool


ClientApp = Literal["all", "browser", "mobileAppsAndDesktopClients", "exchangeActiveSync", "easSupported", "other",
                    "unknownFutureValue"]
RiskLevel = Literal["low", "medium", "high", "hidden", "none", "unknownFutureValue"]
# conditionalAccessInsiderRiskLevels is a flags enum: "minor", "minor,moderate", ...
InsiderRisk = Annotated[str, StringConstraints(
    pattern=r"^(minor|moderate|elevated|unknownFutureValue)(, ?(minor|moderate|elevated|unknownFutureValue))*$")]
Platform = Literal["android", "iOS", "windows", "windowsPhone", "macOS", "all", "unknownFutureValue", "linux"]
GrantControl = Literal["block", "mfa", "compliantDevice", "domainJoinedDevice", "approvedApplication",
                       "compliantApplication", "passwordChange", "unknownFutureValue", "riskRemediation"]
# includeUsers/excludeUsers: object ids, or All, None, GuestsOrExternalUsers (conditionalAccessUsers).
UserRef = Annotated[str, StringConstraints(pattern=f"^(All|None|GuestsOrExternalUsers|{_GUID})$")]
# includeApplications: app ids, or All, None, Office365, MicrosoftAdminPortals (conditionalAccessApplications).
AppRef = Annotated[str, StringConstraints(pattern=f"^(All|None|Office365|MicrosoftAdminPortals|{_GUID})$")]
# includeLocations: named location ids, or All, AllTrusted (conditionalAccessLocations).
LocationRef = Annotated[str, StringConstraints(pattern=f"^(All|AllTrusted|{_GUID})$")]


# conditionalAccessGuestOrExternalUserTypes, a flags enum ("internalGuest,b2bCollaborationGuest").
_GUEST_TYPE = ("(none|internalGuest|b2bCollaborationGuest|b2bCollaborationMember|b2bDirectConnectUser|"
               "otherExternalUser|serviceProvider|unknownFutureValue)")
GuestTypes = Annotated[str, StringConstraints(pattern=f"^{_GUEST_TYPE}(, ?{_GUEST_TYPE})*$")]


class ExternalTenants(Payload):
    """conditionalAccessExternalTenants: conditionalAccessAllExternalTenants (membershipKind all) or
    conditionalAccessEnumeratedExternalTenants (enumerated, with members)."""

    membershipKind: Literal["all", "enumerated", "unknownFutureValue"]


class GuestsOrExternalUsers(Payload):
    """conditionalAccessGuestsOrExternalUsers (api-reference/v1.0/resources/conditionalaccessguestsorexternalusers.md);
    externalTenants is null when the rule names no tenants: every tenant."""

    guestOrExternalUserTypes: GuestTypes
    externalTenants: ExternalTenants | None


class CaUsers(Payload):
    includeUsers: list[UserRef]
    excludeUsers: list[UserRef]
    includeGroups: list[Guid]
    excludeGroups: list[Guid]
    includeRoles: list[Guid]
    excludeRoles: list[Guid]
    includeGuestsOrExternalUsers: GuestsOrExternalUsers | None
    excludeGuestsOrExternalUsers: GuestsOrExternalUsers | None


class CaFilter(Payload):
    mode: Literal["include", "exclude"]
    rule: str


class CaApplications(Payload):
    includeApplications: list[AppRef]
    excludeApplications: list[AppRef]
    applicationFilter: CaFilter | None = None  # absent from older payloads


class CaLocations(Payload):
    includeLocations: list[LocationRef]
    excludeLocations: list[LocationRef]


class CaPlatforms(Payload):
    includePlatforms: list[Platform]
    excludePlatforms: list[Platform] = Field(default_factory=list)  # absent when the policy excludes none


class CaDevices(Payload):
    deviceFilter: CaFilter | None = None


# conditionalAccessTransferMethods, a flags enum ("deviceCodeFlow,authenticationTransfer"); unknownFutureValue
# and members Graph adds later are not read as any flow (the check would not know what they narrow to).
TransferMethods = Annotated[str, StringConstraints(
    pattern=r"^(none|deviceCodeFlow|authenticationTransfer)(, ?(none|deviceCodeFlow|authenticationTransfer))*$")]


class CaClientApplications(Payload):
    """conditionalAccessClientApplications: the service principals a workload-identity policy covers
    (api-reference/v1.0/resources/conditionalaccessclientapplications.md)."""

    includeServicePrincipals: list[NonEmpty]  # service principal ids, or ServicePrincipalsInMyTenant
    excludeServicePrincipals: list[NonEmpty]
    servicePrincipalFilter: CaFilter | None = None  # absent from older payloads


class CaAuthenticationFlows(Payload):
    transferMethods: TransferMethods


class CaConditions(Payload):
    """Graph returns every property of the condition set, null when the policy does not use it; only the
    newer insiderRiskLevels and authenticationFlows may be absent."""

    # Required, and Graph gives ["all"] when a policy does not narrow client apps: an empty list covers no
    # sign-in, so reading it as such could only turn a blocking policy into none (peers' mocks use []).
    clientAppTypes: Annotated[list[ClientApp], Field(min_length=1)]
    applications: CaApplications
    users: CaUsers | None  # null only for a workload-identity policy, which has clientApplications instead
    clientApplications: CaClientApplications | None
    locations: CaLocations | None
    platforms: CaPlatforms | None
    devices: CaDevices | None
    signInRiskLevels: list[RiskLevel]
    userRiskLevels: list[RiskLevel]
    servicePrincipalRiskLevels: list[RiskLevel]
    insiderRiskLevels: InsiderRisk | None = None  # a flags enum: "minor,moderate"
    authenticationFlows: CaAuthenticationFlows | None = None  # narrows the policy to these sign-in flows

    @model_validator(mode="after")
    def _users_or_apps(self) -> CaConditions:
        if self.users is None and self.clientApplications is None:
            raise ValueError("users or clientApplications (one is required)")
        return self


class AuthenticationStrength(Payload):
    id: str | None = None
    displayName: str | None = None


class CaGrantControls(Payload):
    operator: Literal["AND", "OR"]
    builtInControls: list[GrantControl]
    customAuthenticationFactors: list[str]
    termsOfUse: list[str]
    authenticationStrength: AuthenticationStrength | None


class ConditionalAccessPolicy(Payload):
    id: NonEmpty
    displayName: str
    state: Literal["enabled", "disabled", "enabledForReportingButNotEnforced"]
    conditions: CaConditions
    grantControls: CaGrantControls | None  # null: a policy with session controls only


class ConditionalAccessPolicies(RootModel[list[ConditionalAccessPolicy]]):
    pass


def _network(text: str) -> str:
    ipaddress.ip_network(text.strip(), strict=False)  # ValueError -> a shape error naming the value
    return text


class IpRange(Payload):
    cidrAddress: Annotated[str, AfterValidator(_network)]


class IpNamedLocation(Payload):
    odata_type: Literal["#microsoft.graph.ipNamedLocation"] = Field(alias="@odata.type")
    id: NonEmpty
    displayName: str | None = None
    isTrusted: bool
    ipRanges: list[IpRange]


class CountryNamedLocation(Payload):
    odata_type: Literal["#microsoft.graph.countryNamedLocation"] = Field(alias="@odata.type")
    id: NonEmpty
    displayName: str | None = None
    countriesAndRegions: list[str]


class CompliantNetworkNamedLocation(Payload):
    odata_type: Literal["#microsoft.graph.compliantNetworkNamedLocation"] = Field(alias="@odata.type")
    id: NonEmpty
    displayName: str | None = None


NamedLocation = Annotated[IpNamedLocation | CountryNamedLocation | CompliantNetworkNamedLocation,
                          Field(discriminator="odata_type")]


class NamedLocations(RootModel[list[NamedLocation]]):
    pass


# --- Entra ID: the user, its memberships, apps and consent ----------------------------------------------


class AssignedPlan(Payload):
    service: str
    capabilityStatus: Literal["Enabled", "Warning", "Suspended", "Deleted", "LockedOut"]
    servicePlanId: Guid


class GraphUser(Payload):
    id: NonEmpty
    userPrincipalName: NonEmpty
    mail: str | None  # null when the user has no mailbox address
    accountEnabled: bool
    # Selected, so always present; null for some synced users, whom a guest rule then cannot place.
    userType: Literal["Member", "Guest"] | None
    assignedPlans: list[AssignedPlan]
    proxyAddresses: list[str]


class UserRefItem(Payload):
    id: NonEmpty


class UserLookup(RootModel[list[UserRefItem]]):
    pass


class GroupMember(Payload):
    odata_type: Literal["#microsoft.graph.group"] = Field(alias="@odata.type")
    id: NonEmpty


class RoleMember(Payload):
    odata_type: Literal["#microsoft.graph.directoryRole"] = Field(alias="@odata.type")
    id: NonEmpty
    roleTemplateId: Guid | None = None  # absent with limited permissions: memberships then undecided


class UnitMember(Payload):
    odata_type: Literal["#microsoft.graph.administrativeUnit"] = Field(alias="@odata.type")
    id: NonEmpty


MemberOfItem = Annotated[GroupMember | RoleMember | UnitMember, Field(discriminator="odata_type")]


class MemberOf(RootModel[list[MemberOfItem]]):
    pass


def _purpose(value: object) -> object:
    # The docs show userPurpose both as a plain string and as {"value": ...}: accept both.
    if isinstance(value, dict) and set(value) == {"value"}:
        return value["value"]
    return value


UserPurpose = Annotated[Literal["user", "linked", "shared", "room", "equipment", "others", "unknownFutureValue"],
                        BeforeValidator(_purpose)]


class MailboxSettings(Payload):
    userPurpose: UserPurpose


class ServicePrincipal(Payload):
    id: NonEmpty
    appId: NonEmpty
    appOwnerOrganizationId: str | None = None  # the tenant the app is registered in
    signInAudience: str | None = None  # AzureADMyOrg: a single-tenant app


class RedirectUris(Payload):
    redirectUris: list[str] = Field(default_factory=list)


class Application(Payload):
    """The sending app's registration (Graph application), read for its client type only."""

    appId: Guid
    isFallbackPublicClient: bool | None = None
    publicClient: RedirectUris | None = None  # publicClientApplication
    web: RedirectUris | None = None  # webApplication (confidential client)
    spa: RedirectUris | None = None  # spaApplication


class AppRole(Payload):
    id: Guid
    value: str | None  # null for roles with no claim value


class ResourceServicePrincipal(Payload):
    id: NonEmpty
    appRoles: list[AppRole]


class AppRoleAssignment(Payload):
    appRoleId: Guid
    resourceId: Guid
    principalId: Guid


class AppRoleAssignments(RootModel[list[AppRoleAssignment]]):
    pass


class PermissionGrant(Payload):
    clientId: NonEmpty
    consentType: Literal["AllPrincipals", "Principal"]
    principalId: str | None  # null for AllPrincipals
    resourceId: NonEmpty
    scope: str | None  # space-separated scope values

    @model_validator(mode="after")
    def _principal(self) -> PermissionGrant:
        if self.consentType == "Principal" and not self.principalId:
            raise ValueError("a principalId for a Principal grant")
        return self


class PermissionGrants(RootModel[list[PermissionGrant]]):
    pass


class DefaultUserRolePermissions(Payload):
    permissionGrantPoliciesAssigned: list[str]


class AuthorizationPolicy(Payload):
    defaultUserRolePermissions: DefaultUserRolePermissions


# --- Exchange Online cmdlets ----------------------------------------------------------------------------

# Get-Mailbox / Get-User RecipientTypeDetails (Microsoft.Exchange.Data.Directory.Recipient.RecipientTypeDetails).
RecipientTypeDetails = Literal[
    "None", "UserMailbox", "LinkedMailbox", "SharedMailbox", "LegacyMailbox", "RoomMailbox", "EquipmentMailbox",
    "MailContact", "MailUser", "MailUniversalDistributionGroup", "MailNonUniversalGroup",
    "MailUniversalSecurityGroup", "DynamicDistributionGroup", "PublicFolder", "SystemAttendantMailbox",
    "SystemMailbox", "MailForestContact", "User", "Contact", "UniversalDistributionGroup",
    "UniversalSecurityGroup", "NonUniversalGroup", "DisabledUser", "MicrosoftExchange", "ArbitrationMailbox",
    "MailboxPlan", "LinkedUser", "RoomList", "DiscoveryMailbox", "RoleGroup", "RemoteUserMailbox", "Computer",
    "RemoteRoomMailbox", "RemoteEquipmentMailbox", "RemoteSharedMailbox", "PublicFolderMailbox", "TeamMailbox",
    "RemoteTeamMailbox", "MonitoringMailbox", "GroupMailbox", "LinkedRoomMailbox", "AuditLogMailbox",
    "RemoteGroupMailbox", "SchedulingMailbox", "GuestMailUser", "AuxAuditLogMailbox",
    "SupervisoryReviewPolicyMailbox", "ExchangeSecurityGroup", "SubstrateGroup", "SubstrateADGroup",
    "WorkspaceMailbox", "ServicePrincipal", "ServicePrinciple", "DataEncryptionPolicy", "AllUniqueRecipientTypes",
]


def _ref_name(value: object) -> object:
    """An object reference is its name, or serialised as an object with a Name (or Identity)."""
    if isinstance(value, dict):
        name = value.get("Name") or value.get("Identity")
        if not isinstance(name, str):
            raise ValueError("a reference object with neither Name nor Identity")
        return name
    return value


# The referenced object's name. Never "": Exchange shows an unset reference as null.
Ref = Annotated[str, StringConstraints(pattern=r"\S"), BeforeValidator(_ref_name)]
PolicyRef = Ref | None  # null: not set


class Mailbox(Payload):
    RecipientTypeDetails: RecipientTypeDetails
    Identity: str | None = None
    Name: str | None = None
    Alias: str | None = None
    UserPrincipalName: str | None = None
    PrimarySmtpAddress: str | None = None


class CasMailbox(Payload):
    SmtpClientAuthenticationDisabled: ExchangeBool | None  # null: inherit the organisation's setting


class ExchangeUser(Payload):
    AuthenticationPolicy: PolicyRef


class TransportConfig(Payload):
    SmtpClientAuthenticationDisabled: ExchangeBool


class OrganizationConfig(Payload):
    DefaultAuthenticationPolicy: PolicyRef
    SendFromAliasEnabled: ExchangeBool | None = None


class AuthenticationPolicy(Payload):
    Name: NonEmpty
    Identity: str | None = None
    DistinguishedName: str | None = None
    Guid: str | None = None
    ExchangeObjectId: str | None = None
    AllowBasicAuthSmtp: ExchangeBool


class AuthenticationPolicies(RootModel[list[AuthenticationPolicy]]):
    pass


MailboxRight = Literal["FullAccess", "SendAs", "ExternalAccount", "DeleteItem", "ReadPermission",
                       "ChangePermission", "ChangeOwner"]
# Multi-valued: a JSON list, or the "FullAccess, ReadPermission" text PowerShell serialisation gives.


def _rights(value: object) -> object:
    return [part.strip() for part in value.split(",")] if isinstance(value, str) else value


Rights = Annotated[list[MailboxRight], BeforeValidator(_rights)]


class MailboxPermission(Payload):
    User: NonEmpty
    AccessRights: Rights
    Deny: ExchangeBool


class MailboxPermissions(RootModel[list[MailboxPermission]]):
    pass


class RecipientPermission(Payload):
    Trustee: NonEmpty
    AccessRights: list[Literal["SendAs"]] | Literal["SendAs"]
    AccessControlType: Literal["Allow", "Deny"]

    @property
    def rights(self) -> list[str]:
        return [self.AccessRights] if isinstance(self.AccessRights, str) else list(self.AccessRights)


class RecipientPermissions(RootModel[list[RecipientPermission]]):
    pass


class ExchangeServicePrincipal(Payload):
    AppId: Guid
    # The docs have called the registered object id ObjectId and ServiceId: accept both.
    ObjectId: str | None = None
    ServiceId: str | None = None
    Identity: str | None = None
    Name: str | None = None
    DisplayName: str | None = None


class ExchangeServicePrincipals(RootModel[list[ExchangeServicePrincipal]]):
    pass


# --- Graph beta: per-user MFA and Conditional Access What If (providers/microsoft/beta.py) -----------------


class AuthenticationRequirements(Payload):
    """strongAuthenticationRequirements (api-reference/beta/resources/strongauthenticationrequirements.md)."""

    perUserMfaState: Literal["disabled", "enabled", "enforced", "unknownFutureValue"]


class WhatIfResult(ConditionalAccessPolicy):
    """whatIfAnalysisResult: a conditionalAccessPolicy with policyApplies and analysisReasons
    (api-reference/beta/resources/whatifanalysisresult.md; state adds partiallyEnabled there)."""

    state: Literal["enabled", "disabled", "enabledForReportingButNotEnforced", "partiallyEnabled",  # type: ignore[assignment]
                   "unknownFutureValue"]
    policyApplies: bool
    analysisReasons: str | None = None  # a flags enum: "users,location"


class WhatIfAnswer(Payload):
    value: list[WhatIfResult]


class ErrorRecord(Payload):
    error: dict[str, object]


class WhatIfQuestion(Payload):
    """The evaluate request body preflight sent (api-reference/beta/api/conditionalaccessroot-evaluate.md)."""

    signInIdentity: dict[str, object]
    signInContext: dict[str, object]
    signInConditions: dict[str, object]
    appliedPoliciesOnly: bool | None = None


class WhatIfItem(Payload):
    request: WhatIfQuestion
    response: WhatIfAnswer | ErrorRecord


class ConditionalAccessWhatIf(RootModel[list[WhatIfItem]]):
    pass


class SignInStatus(Payload):
    errorCode: int
    failureReason: str | None = None


class SignIn(Payload):
    """Graph signIn (api-reference/v1.0/resources/signin.md): the fields the sign-in evidence reads."""

    createdDateTime: NonEmpty
    userPrincipalName: str | None = None
    ipAddress: str | None = None
    clientAppUsed: str | None = None
    status: SignInStatus


class SignIns(RootModel[list[SignIn]]):
    pass


class AppSignIn(Payload):
    """Graph beta signIn of a service principal (api-reference/beta/resources/signin.md)."""

    createdDateTime: NonEmpty
    appId: str | None = None
    servicePrincipalId: str | None = None
    resourceId: str | None = None
    ipAddress: str | None = None
    signInEventTypes: list[str] | None = None
    status: SignInStatus


class AppSignIns(RootModel[list[AppSignIn]]):
    pass


class SignInWindow(Payload):
    """What preflight read of the sign-in log (providers/microsoft/signins.py); a flag is absent when that
    read was not asked for."""

    since: NonEmpty
    days: int
    truncated: bool
    appTruncated: bool | None = None
    tenantTruncated: bool | None = None


class ManagementRoleAssignment(Payload):
    """Get-ManagementRoleAssignment -RoleAssigneeType ServicePrincipal (RBAC for Applications): the role, who
    holds it (RoleAssignee / RoleAssigneeName, the Exchange service principal) and its resource scope."""

    Role: Ref
    RoleAssignee: str | None = None
    RoleAssigneeName: str | None = None
    RoleAssigneeType: str | None = None
    CustomResourceScope: Ref | None = None  # null: the whole organisation
    Enabled: ExchangeBool | None = None
    Name: str | None = None


class ManagementRoleAssignments(RootModel[list[ManagementRoleAssignment]]):
    pass


RESOURCES: dict[str, type[BaseModel]] = {
    "securityDefaults": SecurityDefaults,
    "conditionalAccessPolicies": ConditionalAccessPolicies,
    "namedLocations": NamedLocations,
    "user": GraphUser,
    "userLookup": UserLookup,
    "memberOf": MemberOf,
    "mailboxSettings": MailboxSettings,
    "servicePrincipal": ServicePrincipal,
    "application": Application,
    "exchangeOnlineServicePrincipal": ResourceServicePrincipal,
    "servicePrincipalAppRoles": AppRoleAssignments,
    "oauth2PermissionGrants": PermissionGrants,
    "authorizationPolicy": AuthorizationPolicy,
    "mailbox": Mailbox,
    "casMailbox": CasMailbox,
    "exchangeUser": ExchangeUser,
    "transportConfig": TransportConfig,
    "organizationConfig": OrganizationConfig,
    "authenticationPolicies": AuthenticationPolicies,
    "mailboxPermissions": MailboxPermissions,
    "recipientPermissions": RecipientPermissions,
    "fromRecipientPermissions": RecipientPermissions,
    "exchangeServicePrincipals": ExchangeServicePrincipals,
    "applicationRoleAssignments": ManagementRoleAssignments,
    "smtpSignIns": SignIns,
    "smtpSignInWindow": SignInWindow,
    "tenantSmtpSignIns": SignIns,
    "appSignIns": AppSignIns,
    "authenticationRequirements": AuthenticationRequirements,
    "conditionalAccessWhatIf": ConditionalAccessWhatIf,
    "workloadConditionalAccessWhatIf": ConditionalAccessWhatIf,
}
