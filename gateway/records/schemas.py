"""Request and response bodies of the 歯科技工録 API (G20). The patient's name is only ever in a case's detail,
for a manager or the case's technician; lists carry the pseudonymous patient reference."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints


def _plain(value: str) -> str:
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\r\t" for c in value):
        raise ValueError("control characters are not allowed")
    return value


def _one_line(value: str) -> str:
    if any(c in value for c in "\n\r\t"):
        raise ValueError("one line only")
    return _plain(value)


def _length(max_length: int) -> StringConstraints:
    """Stripped, non-empty, at most `max_length` characters."""
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


Line64 = Annotated[str, _length(64), AfterValidator(_one_line)]
Line100 = Annotated[str, _length(100), AfterValidator(_one_line)]
Text500 = Annotated[str, _length(500), AfterValidator(_plain)]
Text10k = Annotated[str, _length(10_000), AfterValidator(_plain)]


class MaterialIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Line100
    product: Line100 | None = None
    lot: Line64 | None = None


class RecordPatch(BaseModel):
    """The items to set on the case's draft; an item sent as null is cleared, an item not sent is kept."""

    model_config = ConfigDict(extra="forbid")

    model_received_on: date | None = None
    form_received_on: date | None = None
    patient_name: Line100 | None = None
    site_and_design: Text500 | None = None
    method: Text500 | None = None
    materials: list[MaterialIn] | None = Field(default=None, max_length=30)
    process_record: Text10k | None = None
    final_inspection_on: date | None = None
    delivered_on: date | None = None

    def changes(self) -> dict[str, Any]:
        """Only the items the caller sent, materials as plain dictionaries."""
        sent = {name: getattr(self, name) for name in self.model_fields_set}
        if "materials" in sent:
            sent["materials"] = [m.model_dump() for m in self.materials or []]
        return sent


class AmendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text500


class MaterialOut(BaseModel):
    name: str
    product: str | None = None
    lot: str | None = None


class RecordOut(BaseModel):
    """One version of the record. `patient_name` is given only in a case's detail to a manager or the case's
    technician; `patient_name_recorded` tells everyone else whether it is there."""

    case_reference: str
    version: int
    status: str
    patient_reference: str
    patient_name: str | None
    patient_name_recorded: bool
    model_received_on: date | None
    form_received_on: date | None
    site_and_design: str | None
    method: str | None
    materials: list[MaterialOut]
    process_record: str | None
    final_inspection_on: date | None
    delivered_on: date | None
    amendment_reason: str | None
    updated_by: uuid.UUID
    updated_at: datetime
    finalized_by: uuid.UUID | None
    finalized_at: datetime | None
    missing: list[str]
    remote_processes: list[uuid.UUID]  # design ids of the remote processes this version covers


class RemoteProcessOut(BaseModel):
    design_id: uuid.UUID
    account_id: uuid.UUID
    technician_name: str
    process: str
    location_label: str
    location_address: str
    device_id: uuid.UUID
    device_name: str
    started_at: datetime
    ended_at: datetime


class CaseOut(BaseModel):
    case_reference: str
    patient_reference: str
    current: RecordOut
    versions: list[RecordOut]  # oldest first
    remote_processes: list[RemoteProcessOut]


class RecordSummaryOut(BaseModel):
    """A case's newest version in a list: never the patient's name."""

    case_reference: str
    version: int
    status: str
    patient_reference: str
    updated_at: datetime
    last_remote_process_at: datetime | None
    missing: list[str]
