"""Transfer tables: resumable uploads, committed designs and their delivery jobs (G11–G13)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, LabOwned, UTCDateTime, utcnow


class Upload(LabOwned, Base):
    """An encrypted design on its way in: the signed manifest, and how many bytes are durably staged."""

    __tablename__ = "uploads"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    design_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    device_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("devices.id"))
    signed_manifest: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    length: Mapped[int] = mapped_column(sa.BigInteger)
    offset: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    object_key: Mapped[str] = mapped_column(sa.String(200))
    staging: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16), default="open")  # open | committed | rejected | aborted
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Design(LabOwned, Base):
    """A committed design: its verified manifest, the ciphertext in storage, and the gateway's receipt."""

    __tablename__ = "designs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    case_reference: Mapped[str] = mapped_column(sa.String(64), index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    device_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("devices.id"))
    signed_manifest: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    signed_receipt: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    object_key: Mapped[str] = mapped_column(sa.String(200))
    ciphertext_size: Mapped[int] = mapped_column(sa.BigInteger)
    ciphertext_sha256: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16), default="available")
    committed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeliveryJob(LabOwned, Base):
    """One design for one target station: available → claimed → delivered → acknowledged (or not)."""

    __tablename__ = "delivery_jobs"
    __table_args__ = (sa.UniqueConstraint("design_id", "station_id", name="uq_delivery_jobs_design_station"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    design_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("designs.id", ondelete="CASCADE"), index=True)
    station_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("stations.id"), index=True)
    state: Mapped[str] = mapped_column(sa.String(16), default="available")
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    acknowledgement: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)  # the station's signed acknowledgement
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DesignGrant(LabOwned, Base):
    """A per-design permission given by a manager to one account or station, until it expires or is revoked."""

    __tablename__ = "design_grants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    design_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("designs.id", ondelete="CASCADE"), index=True)
    subject_type: Mapped[str] = mapped_column(sa.String(16))  # account | station
    subject_id: Mapped[uuid.UUID] = mapped_column(index=True)
    permission: Mapped[str] = mapped_column(sa.String(32))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    granted_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    reason: Mapped[str] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("accounts.id"))
