"""Compliance tables: the lab's versioned documents and their acknowledgements (G16, G17), training (G21),
attestations (G5, G8, G15) and the prefecture roster's filings (G3)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, LabOwned, UTCDateTime, utcnow


class LabDocument(LabOwned, Base):
    """One published version of a lab document: its security policy or its incident response plan.
    The newest of a kind is in force; earlier versions stay as history (G16, G17)."""

    __tablename__ = "lab_documents"
    __table_args__ = (sa.UniqueConstraint("lab_id", "kind", "version", name="uq_lab_documents_lab_kind_version"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32))  # security-policy | incident-plan
    version: Mapped[str] = mapped_column(sa.String(32))
    body: Mapped[str] = mapped_column(sa.Text)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    published_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Acknowledgement(LabOwned, Base):
    """A person confirmed they read a version of a lab document (G16)."""

    __tablename__ = "acknowledgements"
    __table_args__ = (sa.UniqueConstraint("account_id", "document_id", name="uq_acknowledgements_account_document"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    document_id: Mapped[int] = mapped_column(sa.ForeignKey("lab_documents.id", ondelete="CASCADE"))
    acknowledged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TrainingSession(LabOwned, Base):
    """A training the lab held or sent people to: when, what, by whom, which curriculum topics (G21)."""

    __tablename__ = "training_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    held_on: Mapped[date] = mapped_column(sa.Date)
    title: Mapped[str] = mapped_column(sa.String(200))
    provider: Mapped[str] = mapped_column(sa.String(200))
    topics: Mapped[list[str]] = mapped_column(sa.JSON)
    duration_minutes: Mapped[int] = mapped_column()
    recorded_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TrainingAttendance(LabOwned, Base):
    """A person attended a training session (G21)."""

    __tablename__ = "training_attendances"
    __table_args__ = (sa.UniqueConstraint("session_id", "account_id", name="uq_training_attendances_session_account"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("training_sessions.id", ondelete="CASCADE"))
    account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)


class Attestation(LabOwned, Base):
    """A dated statement that a remote-work measure is in place (privacy filter, screen lock, removable
    media, administrable personal device), renewed as the policy says (G5, G8, G15)."""

    __tablename__ = "attestations"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    device_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("devices.id", ondelete="CASCADE"))
    attested_on: Mapped[date] = mapped_column(sa.Date)
    statement: Mapped[str] = mapped_column(sa.String(1000))
    recorded_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RosterExport(LabOwned, Base):
    """An export of the prefecture roster for filing (G3): which profile version of each worker it carried."""

    __tablename__ = "roster_exports"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    exported_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    exported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    format: Mapped[str] = mapped_column(sa.String(8))
    entries: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)  # [{"account_id", "profile_id"}]
    sha256: Mapped[str] = mapped_column(sa.String(64))
