"""Request and response bodies of the transfer API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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


class DesignOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    case_reference: str
    account_id: uuid.UUID
    device_id: uuid.UUID
    status: str
    ciphertext_size: int
    ciphertext_sha256: str
    committed_at: datetime


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
