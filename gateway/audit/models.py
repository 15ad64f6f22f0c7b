"""Audit tables: the per-lab event chain, its head, and signed checkpoints (G19)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, LabOwned, UTCDateTime


class AuditEvent(LabOwned, Base):
    """One access, authentication or operation event, hash-chained to its predecessor in the lab."""

    __tablename__ = "audit_events"
    __table_args__ = (
        sa.UniqueConstraint("lab_id", "seq", name="uq_audit_events_lab_seq"),
        # The auditor's questions: who touched this design or case, what did this person do, when, which action.
        sa.Index("ix_audit_events_lab_target_seq", "lab_id", "target", "seq"),
        sa.Index("ix_audit_events_lab_actor_seq", "lab_id", "actor_id", "seq"),
        sa.Index("ix_audit_events_lab_action_seq", "lab_id", "action", "seq"),
        sa.Index("ix_audit_events_lab_occurred_at", "lab_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_type: Mapped[str] = mapped_column(sa.String(32))
    actor_id: Mapped[str | None] = mapped_column(sa.String(64))
    category: Mapped[str] = mapped_column(sa.String(16))
    action: Mapped[str] = mapped_column(sa.String(64))
    target: Mapped[str | None] = mapped_column(sa.String(200))
    outcome: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    client_address: Mapped[str | None] = mapped_column(sa.String(64))
    device_id: Mapped[str | None] = mapped_column(sa.String(64))
    request_id: Mapped[str | None] = mapped_column(sa.String(64))
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))


class AuditChainHead(LabOwned, Base):
    """The last sequence number and hash of a lab's chain; writers lock this row to append."""

    __tablename__ = "audit_chain_heads"
    __table_args__ = (sa.UniqueConstraint("lab_id", name="uq_audit_chain_heads_lab"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(sa.String(64))


class AuditCheckpoint(LabOwned, Base):
    """A gateway-signed statement of a lab's chain head at `seq`."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = (sa.UniqueConstraint("lab_id", "seq", name="uq_audit_checkpoints_lab_seq"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    hash: Mapped[str] = mapped_column(sa.String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[str] = mapped_column(sa.String(200))
    signature: Mapped[str] = mapped_column(sa.String(128))
    # When the checkpoint was published outside the database (None: not yet; the publication chore retries).
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
