"""歯科技工録 tables (G20): one record per case, in versions, and the remote processes uploads add to it."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, LabOwned, UTCDateTime, utcnow


class TechnicianRecord(LabOwned, Base):
    """One version of a case's 歯科技工録 (instruction-form number = case reference). A finalized version is
    immutable; an amendment is a new version that supersedes it."""

    __tablename__ = "technician_records"
    __table_args__ = (
        sa.UniqueConstraint("lab_id", "case_reference", "version", name="uq_technician_records_lab_case_version"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    case_reference: Mapped[str] = mapped_column(sa.String(64), index=True)
    version: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(sa.String(16), default="draft")  # draft | finalized | superseded
    patient_reference: Mapped[str] = mapped_column(sa.String(32))
    patient_name_sealed: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    model_received_on: Mapped[date | None] = mapped_column(sa.Date)
    form_received_on: Mapped[date | None] = mapped_column(sa.Date)
    site_and_design: Mapped[str | None] = mapped_column(sa.String(500))
    method: Mapped[str | None] = mapped_column(sa.String(500))
    materials: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)  # [{name, product, lot}]
    process_record: Mapped[str | None] = mapped_column(sa.Text)
    final_inspection_on: Mapped[date | None] = mapped_column(sa.Date)
    delivered_on: Mapped[date | None] = mapped_column(sa.Date)
    amendment_reason: Mapped[str | None] = mapped_column(sa.String(500))
    updated_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finalized_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("accounts.id"))
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RemoteProcess(LabOwned, Base):
    """A process done remotely for a case, taken from a committed design's signed manifest (G20)."""

    __tablename__ = "remote_processes"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    case_reference: Mapped[str] = mapped_column(sa.String(64), index=True)
    design_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("designs.id", ondelete="CASCADE"), unique=True)
    account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    device_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("devices.id"))
    process: Mapped[str] = mapped_column(sa.String(200))
    location_label: Mapped[str] = mapped_column(sa.String(100))
    location_address: Mapped[str] = mapped_column(sa.String(300))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
