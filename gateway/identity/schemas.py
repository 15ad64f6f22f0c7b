"""Request and response bodies of the identity API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.identity.posture import PostureReport


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActivationStart(_In):
    lab: str = Field(max_length=200)
    username: str = Field(max_length=64)
    activation_secret: str = Field(max_length=64)
    password: str = Field(max_length=256)


class ActivationConfirm(_In):
    lab: str = Field(max_length=200)
    username: str = Field(max_length=64)
    activation_secret: str = Field(max_length=64)
    totp: str = Field(max_length=12)


class TotpEnrolmentOut(BaseModel):
    totp_secret: str
    totp_uri: str


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str]


class LoginIn(_In):
    lab: str = Field(max_length=200)
    username: str = Field(max_length=64)
    password: str = Field(max_length=256)
    totp: str | None = Field(default=None, max_length=12)
    recovery_code: str | None = Field(default=None, max_length=32)
    posture: PostureReport | None = None

    @model_validator(mode="after")
    def _one_second_factor(self) -> LoginIn:
        if bool(self.totp) == bool(self.recovery_code):
            raise ValueError("give either a TOTP code or a recovery code")
        return self


class SessionOut(BaseModel):
    token: str
    token_type: Literal["DPoP"] = "DPoP"  # noqa: S105 (the token scheme, not a secret)
    scope: str
    role: str
    expires_at: datetime
    device_id: uuid.UUID | None = None


class PrincipalOut(BaseModel):
    lab_id: uuid.UUID
    role: str
    scope: str
    account_id: uuid.UUID | None
    station_id: uuid.UUID | None
    device_id: uuid.UUID | None


class AccountIn(_In):
    username: str = Field(min_length=1, max_length=64)
    role: Literal["manager", "technician", "auditor"]


class AccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    role: str
    status: str
    identity_verified: bool
    locked_until: datetime | None
    failed_logins: int


class IssuedAccountOut(BaseModel):
    account: AccountOut
    activation_secret: str


class IdentityVerificationIn(_In):
    method: Literal["in-person", "video-call", "document-copy"]
    document_type: str = Field(min_length=1, max_length=64)
    verified_on: date


class PasswordChangeIn(_In):
    current_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256)


class DeviceEnrolIn(_In):
    name: str = Field(min_length=1, max_length=100)
    posture: PostureReport


class PostureIn(_In):
    posture: PostureReport


class PostureFailureOut(BaseModel):
    rule: str
    message: str
    requirement: str


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    account_id: uuid.UUID
    name: str
    thumbprint: str
    status: str
    ownership: str | None
    manager_can_administer: bool | None
    created_at: datetime
    approved_at: datetime | None
    revoked_at: datetime | None


class DeviceEnrolledOut(BaseModel):
    device: DeviceOut
    posture_failures: list[PostureFailureOut]


class PostureResultOut(BaseModel):
    compliant: bool
    failures: list[PostureFailureOut]


class DeviceApproveIn(_In):
    ownership: Literal["lab-lent", "personal"]
    manager_can_administer: bool = False


class RevokeIn(_In):
    reason: str = Field(min_length=1, max_length=300)


class StationInviteIn(_In):
    name: str = Field(min_length=1, max_length=100)
    maker: str = Field(min_length=1, max_length=100)
    model: str = Field(min_length=1, max_length=100)
    serial_number: str = Field(min_length=1, max_length=100)
    location: str = Field(min_length=1, max_length=200)


class StationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    maker: str
    model: str
    serial_number: str
    location: str
    status: str
    age_recipient: str | None
    fingerprint: str | None = None


class StationInvitedOut(BaseModel):
    station: StationOut
    enrolment_code: str


class StationEnrolIn(_In):
    enrolment_code: str = Field(max_length=64)
    age_recipient: str = Field(max_length=100)


class StationApproveIn(_In):
    fingerprint: str = Field(max_length=80)


class ProfileIn(_In):
    full_name: str = Field(min_length=1, max_length=200)
    licence_number: str = Field(min_length=1, max_length=32)
    phone: str = Field(min_length=5, max_length=32, pattern=r"^[0-9+()\- ]+$")
    location_label: str = Field(min_length=1, max_length=100)
    location_address: str = Field(min_length=1, max_length=300)
    prefecture: str = Field(min_length=2, max_length=8)
    employed_by_lab: bool = True


class ProfileOut(ProfileIn):
    model_config = ConfigDict(from_attributes=True)

    changed_by: uuid.UUID
    changed_at: datetime
