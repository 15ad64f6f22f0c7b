"""Request and response bodies of the compliance API: lab documents, training, attestations, roster, readiness."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PersonOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    role: str


class DocumentIn(_In):
    body: str = Field(min_length=1, max_length=1_000_000, description="The document as TOML.")


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    version: str
    sha256: str
    published_by: uuid.UUID
    published_at: datetime
    body: str


class DocumentInForceOut(BaseModel):
    """The version in force; before the lab publishes one, `published` is false and `template` is the shipped text."""

    kind: str
    published: bool
    message: str
    document: DocumentOut | None
    template_version: str
    template: str | None


class AcknowledgeIn(_In):
    version: str = Field(min_length=1, max_length=32)


class AcknowledgementOut(BaseModel):
    kind: str
    version: str
    account_id: uuid.UUID
    acknowledged_at: datetime


class ReaderOut(PersonOut):
    acknowledged_at: datetime | None


class AcknowledgementsOut(BaseModel):
    kind: str
    version: str
    acknowledged: list[ReaderOut]
    not_acknowledged: list[ReaderOut]


class TrainingIn(_In):
    held_on: date
    title: str = Field(max_length=200)
    provider: str = Field(max_length=200)
    topics: list[str] = Field(max_length=50)
    duration_minutes: int
    attendees: list[uuid.UUID] = Field(max_length=500)


class TrainingOut(BaseModel):
    id: uuid.UUID
    held_on: date
    title: str
    provider: str
    topics: list[str]
    duration_minutes: int
    recorded_by: uuid.UUID
    recorded_at: datetime
    attendees: list[PersonOut]


class TrainingDueOut(PersonOut):
    status: str  # current | due-soon | overdue | never
    due_on: date | None
    missing_topics: list[str]
    last_trained_on: date | None


class AttestationIn(_In):
    kind: str = Field(max_length=40)
    attested_on: date | None = Field(default=None, description="Default: today (in Japan).")
    statement: str | None = Field(default=None, max_length=1000, description="Default: the standard text.")
    device_id: uuid.UUID | None = None


class AttestationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    account_id: uuid.UUID
    kind: str
    device_id: uuid.UUID | None
    attested_on: date
    statement: str
    recorded_by: uuid.UUID
    recorded_at: datetime


class AttestationStatusOut(BaseModel):
    account_id: uuid.UUID
    username: str
    kind: str
    requirement: str
    device_id: uuid.UUID | None
    status: str  # current | expired | missing
    attested_on: date | None
    valid_until: date | None


class RosterExportIn(_In):
    format: str = Field(default="pdf", description="pdf or csv")
    lang: str = Field(default="ja", description="ja or en")


class RosterRowOut(BaseModel):
    account_id: uuid.UUID
    username: str
    profile_id: int
    full_name: str
    remote_work: bool
    phone: str
    location: str
    licence_number: str
    unfiled: bool


class RosterExportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    format: str
    exported_by: uuid.UUID
    exported_at: datetime
    sha256: str


class RosterOut(BaseModel):
    lab: str
    rows: list[RosterRowOut]
    unfiled_changes: int
    last_export: RosterExportOut | None
    no_longer_listed: list[PersonOut]


class FailureOut(BaseModel):
    rule: str
    requirement: str
    message: str


class ReadinessOut(BaseModel):
    ready: bool
    failures: list[FailureOut]
    training_due_on: date | None
    attestations: list[AttestationStatusOut]
