"""Request and response bodies of the transfer API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class UploadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signed_manifest: dict[str, Any]


class UploadOut(BaseModel):
    upload_id: uuid.UUID
    design_id: uuid.UUID
    offset: int
    length: int
    expires_at: datetime


class CommittedOut(BaseModel):
    design_id: uuid.UUID
    receipt: dict[str, Any]


class JobStateOut(BaseModel):
    """Where one station's delivery stands: available, claimed, acknowledged, declined, rejected or cancelled."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    station_id: uuid.UUID
    state: str
    reason: str | None
    attempts: int
    updated_at: datetime


class DesignFileOut(BaseModel):
    name: str
    media_type: str
    size: int


class DesignOut(BaseModel):
    """A design's metadata (never its content) and each delivery job's state."""

    id: uuid.UUID
    case_reference: str
    account_id: uuid.UUID
    device_id: uuid.UUID
    status: str
    ciphertext_size: int
    ciphertext_sha256: str
    committed_at: datetime
    process: str
    remote_location: str
    material: str | None
    teeth: list[int]
    files: list[DesignFileOut]
    jobs: list[JobStateOut]


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_type: Literal["account", "station"]
    subject_id: uuid.UUID
    permission: Literal["read-metadata", "read-status", "download"]
    expires_at: AwareDatetime
    reason: str = Field(min_length=1, max_length=500)


class GrantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    design_id: uuid.UUID
    subject_type: str
    subject_id: uuid.UUID
    permission: str
    expires_at: datetime
    granted_by: uuid.UUID
    reason: str
    created_at: datetime
    revoked_at: datetime | None


class ArchiveKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    age_recipient: str = Field(min_length=10, max_length=100)


class StationRecipientOut(BaseModel):
    id: uuid.UUID
    name: str
    age_recipient: str


class RecipientsOut(BaseModel):
    """What a technician's client encrypts to: the lab's active stations and its archive key."""

    lab_id: uuid.UUID
    archive_recipient: str | None
    stations: list[StationRecipientOut]
