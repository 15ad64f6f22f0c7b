"""Incident tables (G17, G18): reports with their timeline, and the notifications owed to the plan's contacts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, LabOwned, UTCDateTime, utcnow


class Incident(LabOwned, Base):
    """A reported incident: reported → contained → resolved, each instant kept (G18)."""

    __tablename__ = "incidents"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    type: Mapped[str] = mapped_column(sa.String(16))  # lost-device | malware | suspicious | other
    status: Mapped[str] = mapped_column(sa.String(16), default="reported")  # reported | contained | resolved
    subject_account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    device_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("devices.id"))
    reported_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    description: Mapped[str] = mapped_column(sa.String(2000))
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    contained_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IncidentEvent(LabOwned, Base):
    """One entry of an incident's timeline: reported, contained, note, notified, resolved."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("accounts.id"))
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)


class Notification(LabOwned, Base):
    """A message owed to one of the plan's contacts; written with the incident, sent after commit and
    retried until delivered, so a crash between the two loses nothing."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(sa.String(16))  # webhook | email
    recipient: Mapped[str] = mapped_column(sa.String(300))
    subject: Mapped[str] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending", index=True)  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a sender's lease, then the retry time
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
