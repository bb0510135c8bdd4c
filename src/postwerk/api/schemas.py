"""Request bodies as Postwerk accepts them, and response shapes for its own OpenAPI document.

Shapes only: what the values mean is decided in `postwerk.domain`. Field names are mittwald's (camelCase).
Scalars are strict (a quota of "5" is a type error, as for mittwald's own validation).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

Email = Annotated[StrictStr, Field(json_schema_extra={"format": "idn-email"})]
SenderPattern = Annotated[
    StrictStr,
    Field(
        description="local@domain, `*` wildcards in domain labels; internationalised domains are stored "
        "and returned as A-labels"
    ),
]


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


# --- requests -----------------------------------------------------------------------------------------


class MailboxIn(Body):
    password: StrictStr = Field(description="Write-only: never returned by any route.")
    quotaInBytes: StrictInt = Field(
        ge=-1,
        description="-1 (unlimited) or at least 209715200 (200 MiB).",
        json_schema_extra={"format": "int64"},
    )
    enableSpamProtection: StrictBool = Field(default=True, description="Defaults to true when omitted.")


class CreateMailAddressIn(Body):
    """A mailbox (with `mailbox`, optionally forwarding copies) or a forwarding address (without)."""

    address: Email
    forwardAddresses: list[Email] = Field(default_factory=list)
    isCatchAll: StrictBool = Field(default=False, description="Defaults to false when omitted.")
    mailbox: MailboxIn | None = None


class AddressIn(Body):
    address: Email


class ActiveIn(Body):
    active: StrictBool


class ForwardAddressesIn(Body):
    forwardAddresses: list[Email]


class PasswordIn(Body):
    password: StrictStr = Field(description="Write-only: never returned by any route.")


class QuotaIn(Body):
    quotaInBytes: StrictInt = Field(ge=-1, json_schema_extra={"format": "int64"})


class SpamProtectionSettings(Body):
    active: StrictBool
    autoDeleteSpam: StrictBool
    folder: Literal["inbox", "spam"]
    relocationMinSpamScore: StrictInt = Field(ge=0, le=10)


class SpamProtectionIn(Body):
    spamProtection: SpamProtectionSettings


class AutoResponderSettings(Body):
    active: StrictBool
    message: StrictStr
    startsAt: datetime | None = None
    expiresAt: datetime | None = None


class AutoResponderIn(Body):
    autoResponder: AutoResponderSettings | None = Field(description="null switches the autoresponder off.")


class RateLimitChangeIn(Body):
    rateLimitId: StrictStr = Field(json_schema_extra={"format": "uuid"})


class CreateDeliveryBoxIn(Body):
    description: StrictStr
    password: StrictStr = Field(description="Write-only: never returned by any route.")


class DescriptionIn(Body):
    description: StrictStr


class MailSettingIn(Body):
    """The body of `.../mail-settings/{mailSetting}`: the list the path names (the other is ignored)."""

    blacklist: list[SenderPattern] | None = None
    whitelist: list[SenderPattern] | None = None


class BlacklistIn(Body):
    blacklist: list[SenderPattern]


class WhitelistIn(Body):
    whitelist: list[SenderPattern]


# --- responses (documentation; bodies are built in `views`) -------------------------------------------


class CreatedOut(BaseModel):
    id: str = Field(json_schema_extra={"format": "uuid"})


class ErrorOut(BaseModel):
    type: str
    message: str


class ValidationIssueOut(BaseModel):
    message: str
    path: str
    type: str
    context: dict[str, str] = Field(default_factory=dict)


class ValidationErrorsOut(BaseModel):
    type: Literal["ValidationError"]
    message: str
    validationErrors: list[ValidationIssueOut]


class StorageCurrentOut(BaseModel):
    value: int
    updatedAt: datetime


class StorageOut(BaseModel):
    limit: int
    current: StorageCurrentOut


class SpamProtectionOut(BaseModel):
    active: bool
    autoDeleteSpam: bool
    folder: Literal["spam", "inbox"]
    relocationMinSpamScore: int


class MailsystemSettingsOut(BaseModel):
    rateLimitId: str


class MailboxOut(BaseModel):
    name: str
    sendingEnabled: bool
    passwordUpdatedAt: datetime
    spamProtection: SpamProtectionOut
    storageInBytes: StorageOut
    mailsystemSettings: MailsystemSettingsOut


class AutoResponderOut(BaseModel):
    active: bool
    message: str | None = None
    startsAt: datetime | None = None
    expiresAt: datetime | None = None


class ArchiveOut(BaseModel):
    active: bool
    quota: int
    usedBytes: int


class RateLimitRequestOut(BaseModel):
    rateLimitId: str


class MailAddressOut(BaseModel):
    id: str
    address: str
    projectId: str
    receivingDisabled: bool
    isCatchAll: bool
    forwardAddresses: list[str]
    updatedAt: datetime
    autoResponder: AutoResponderOut
    isArchived: bool
    isBackupInProgress: bool
    archive: ArchiveOut
    mailbox: MailboxOut | None = None
    rateLimitChangeRequest: RateLimitRequestOut | None = None


class DeliveryBoxOut(BaseModel):
    id: str
    name: str
    projectId: str
    description: str
    authenticationEnabled: bool
    sendingEnabled: bool
    passwordUpdatedAt: datetime
    updatedAt: datetime


class MailSettingsOut(BaseModel):
    projectId: str
    blacklist: list[str]
    whitelist: list[str]


class RateLimitOut(BaseModel):
    id: str
    rateLimit: int


class ProjectOut(BaseModel):
    id: str
    shortId: str
    description: str
    enabled: bool
    customerId: str
    directories: dict[str, str]
    createdAt: datetime
    isReady: bool
    readiness: Literal["creating", "ready", "unready"]
    status: Literal["pending", "ready", "preparingForVolumeMigration", "migratingVolume", "error", "disabled"]
    statusSetAt: datetime
    webStorageUsageInBytes: int
    webStorageUsageInBytesSetAt: datetime
    backupStorageUsageInBytes: int
    backupStorageUsageInBytesSetAt: datetime
    supportedFeatures: list[str]
    serverGroupId: str
    deletionRequested: bool = False


class CustomerMetaOut(BaseModel):
    id: str


class ProjectListItemOut(ProjectOut):
    customerMeta: CustomerMetaOut
