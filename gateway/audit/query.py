"""The auditor's questions over a lab's chain (G19): filters, keyset pagination by sequence number.

"Who touched case X, from where?" is a query by design or case; each filter maps to an indexed column
(migration 0005), so a query by design answers from `(lab_id, target, seq)` without a scan.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.audit.models import AuditEvent
from gateway.transfer.models import Design

MAX_PAGE = 1000
STREAM_BATCH = 2000


@dataclass(frozen=True)
class EventFilter:
    """Every field narrows the result; None means "any". `action` ending in `*` matches a prefix."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    role: str | None = None
    device: str | None = None
    station: str | None = None
    design: uuid.UUID | None = None
    case: str | None = None
    action: str | None = None
    category: str | None = None
    outcome: str | None = None
    client_address: str | None = None

    def as_details(self) -> dict[str, Any]:
        """The filters that were set, as an audit event records them."""
        return {
            key: (value.isoformat() if isinstance(value, datetime) else str(value))
            for key, value in asdict(self).items()
            if value is not None
        }


def _conditions(session: Session, lab_id: uuid.UUID, where: EventFilter) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = [AuditEvent.lab_id == lab_id]
    if where.since is not None:
        conditions.append(AuditEvent.occurred_at >= where.since)
    if where.until is not None:
        conditions.append(AuditEvent.occurred_at < where.until)
    if where.actor is not None:
        conditions.append(AuditEvent.actor_id == where.actor)
    if where.role is not None:
        conditions.append(AuditEvent.actor_type == where.role)
    if where.device is not None:
        conditions.append(AuditEvent.device_id == where.device)
    if where.station is not None:
        conditions.append(sa.and_(AuditEvent.actor_type == "station", AuditEvent.actor_id == where.station))
    targets: list[str] = []
    if where.design is not None:
        targets.append(f"design:{where.design}")
    if where.case is not None:
        designs = session.scalars(
            sa.select(Design.id).where(Design.lab_id == lab_id, Design.case_reference == where.case)
        ).all()
        case_targets = [f"design:{design_id}" for design_id in designs]
        targets = [t for t in targets if t in case_targets] if where.design is not None else case_targets
        if not targets:
            conditions.append(sa.false())
    if targets:
        conditions.append(AuditEvent.target.in_(targets))
    if where.action is not None:
        if where.action.endswith("*"):
            prefix = where.action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append(AuditEvent.action.like(f"{prefix}%", escape="\\"))
        else:
            conditions.append(AuditEvent.action == where.action)
    if where.category is not None:
        conditions.append(AuditEvent.category == where.category)
    if where.outcome is not None:
        conditions.append(AuditEvent.outcome == where.outcome)
    if where.client_address is not None:
        conditions.append(AuditEvent.client_address == where.client_address)
    return conditions


def query_events(
    session: Session, lab_id: uuid.UUID, where: EventFilter, after_seq: int = 0, limit: int = 100
) -> list[AuditEvent]:
    """One page of matching events in chain order, strictly after `after_seq` (the previous page's last)."""
    limit = max(1, min(limit, MAX_PAGE))
    query = (
        sa.select(AuditEvent)
        .where(*_conditions(session, lab_id, where), AuditEvent.seq > after_seq)
        .order_by(AuditEvent.seq)
        .limit(limit)
    )
    return list(session.scalars(query))


def stream_events(session: Session, lab_id: uuid.UUID, where: EventFilter) -> Iterator[AuditEvent]:
    """Every matching event in chain order, fetched in batches (server-side cursor on PostgreSQL)."""
    query = (
        sa.select(AuditEvent)
        .where(*_conditions(session, lab_id, where))
        .order_by(AuditEvent.seq)
        .execution_options(yield_per=STREAM_BATCH)
    )
    for row in session.scalars(query):
        yield row
        session.expunge(row)
