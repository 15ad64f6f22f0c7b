"""Retention of the audit chain (G19): whole expired segments go, the rest stays verifiable.

A segment is the run of events after one checkpoint up to and including the next. The rule, kept
simple on purpose: a segment may go only when it is closed (it ends at a signed checkpoint) and
every event in it is older than the longest retention of the categories present in it. Segments go
oldest first, so what remains is one unbroken chain starting right after a checkpoint; that
checkpoint row is kept, and its hash is the `prev_hash` of the first retained event, which is how
`verify` anchors the rest. Each purge is itself recorded (`audit.purge`) and signed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.audit.chain import format_instant
from gateway.audit.models import AuditCheckpoint, AuditEvent
from gateway.audit.publication import Publisher, add_years, verify_against_published
from gateway.audit.service import PURGE_ACTION, AuditEntry, locked_head, record, write_checkpoint
from gateway.db.scoping import require_lab
from gateway.errors import DentGateError
from gateway.keys import KeyProvider
from gateway.policy import AuditPolicy


class PurgeRefused(DentGateError):
    code = "audit-purge-refused"
    status = 409
    title = "These audit events may not be purged"


@dataclass(frozen=True)
class PurgePlan:
    """Events `first_seq`..`through_seq` go; the checkpoint at `through_seq` anchors what remains."""

    lab_id: uuid.UUID
    first_seq: int
    through_seq: int
    count: int
    checkpoint_hash: str
    checkpoint_signed_at: datetime


def _segment_expired(
    session: Session, lab_id: uuid.UUID, after: int, through: int, policy: AuditPolicy, now: datetime
) -> bool:
    """Every event in (after, through] is older than the longest retention of the categories present."""
    rows = session.execute(
        sa.select(AuditEvent.category, sa.func.max(AuditEvent.occurred_at))
        .where(AuditEvent.lab_id == lab_id, AuditEvent.seq > after, AuditEvent.seq <= through)
        .group_by(AuditEvent.category)
    ).all()
    if not rows:
        return False
    years = max(policy.retention_years(category) for category, _ in rows)
    newest = max(at for _, at in rows)
    return add_years(newest, years) <= now


def plan_purge(
    session: Session, lab_id: uuid.UUID, policy: AuditPolicy, now: datetime, through_seq: int | None = None
) -> PurgePlan | None:
    """The oldest closed, expired segments (None: nothing may go). With `through_seq`, exactly up to it,
    or PurgeRefused when it is not the end of a closed segment or a segment up to it has not expired."""
    first, head_seq = session.execute(
        sa.select(sa.func.min(AuditEvent.seq), sa.func.max(AuditEvent.seq)).where(AuditEvent.lab_id == lab_id)
    ).one()
    if first is None:
        return None
    checkpoints = session.execute(
        sa.select(AuditCheckpoint.seq, AuditCheckpoint.hash, AuditCheckpoint.signed_at)
        .where(AuditCheckpoint.lab_id == lab_id, AuditCheckpoint.seq >= first, AuditCheckpoint.seq <= head_seq)
        .order_by(AuditCheckpoint.seq)
    ).all()
    if through_seq is not None and through_seq not in {c.seq for c in checkpoints}:
        raise PurgeRefused(f"event {through_seq} does not end a closed segment: purges stop only at a checkpoint")
    plan, after = None, first - 1
    for checkpoint in checkpoints:
        if through_seq is not None and checkpoint.seq > through_seq:
            break
        if not _segment_expired(session, lab_id, after, checkpoint.seq, policy, now):
            if through_seq is not None:
                raise PurgeRefused(f"events {after + 1}..{checkpoint.seq} are not all past their retention")
            break
        after = checkpoint.seq
        plan = PurgePlan(lab_id, first, checkpoint.seq, checkpoint.seq - first + 1, checkpoint.hash,
                         checkpoint.signed_at)  # fmt: skip
    return plan


def purge_expired(
    session: Session,
    lab_id: uuid.UUID,
    policy: AuditPolicy,
    now: datetime,
    keys: KeyProvider,
    *,
    through_seq: int | None = None,
    publisher: Publisher | None = None,
    actor_type: str = "gateway",
    actor_id: str | None = None,
) -> PurgePlan | None:
    """Delete the oldest closed, expired segments in the caller's transaction, record `audit.purge`
    and sign a checkpoint over it. The chain is verified first (against the published checkpoints
    when a publisher is given): a purge never destroys the evidence of tampering."""
    require_lab(session, lab_id)
    locked_head(session, lab_id)
    verify_against_published(session, lab_id, keys.public_key(), publisher)
    plan = plan_purge(session, lab_id, policy, now, through_seq)
    if plan is None:
        return None
    session.execute(
        sa.delete(AuditEvent)
        .where(AuditEvent.lab_id == lab_id, AuditEvent.seq >= plan.first_seq, AuditEvent.seq <= plan.through_seq)
        .execution_options(synchronize_session=False)
    )
    record(
        session,
        AuditEntry(
            lab_id=lab_id,
            category="operation",
            action=PURGE_ACTION,
            actor_type=actor_type,
            actor_id=actor_id,
            target=f"audit:{plan.first_seq}-{plan.through_seq}",
            reason="past retention",
            details={
                "count": plan.count,
                "first_seq": plan.first_seq,
                "through_seq": plan.through_seq,
                "checkpoint": {"seq": plan.through_seq, "hash": plan.checkpoint_hash,
                               "signed_at": format_instant(plan.checkpoint_signed_at)},
                "retention_years": {c: policy.retention_years(c) for c in ("access", "auth", "operation")},
            },
        ),
    )  # fmt: skip
    write_checkpoint(session, lab_id, keys)
    return plan
