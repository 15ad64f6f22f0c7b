"""Automatic checkpoints (every N events, or once an event waited T minutes) and their publication (G19).

`enable_checkpoints` puts the signing key and N on a session factory: `record` then signs a
checkpoint in the same transaction when the new sequence number is a multiple of N, and once that
transaction commits the pending checkpoints are published on a background thread. The chores here
may run on every replica at once: signing the same head twice returns the existing checkpoint,
and publishing a checkpoint twice is harmless.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta

import sqlalchemy as sa
import structlog
from sqlalchemy.orm import sessionmaker

from gateway.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from gateway.audit.publication import PublicationFailed, PublicationUnusable, PublishedCheckpoint, Publisher
from gateway.audit.service import CHECKPOINTING, Checkpointing, write_checkpoint
from gateway.db.base import utcnow
from gateway.db.engine import transaction
from gateway.keys import KeyProvider
from gateway.policy import AuditPolicy, default_policy

PUBLISH_BATCH = 200
log = structlog.get_logger("dentgate.audit.checkpoints")


def checkpoint_due_labs(
    sessions: sessionmaker, keys: KeyProvider, now: datetime, policy: AuditPolicy | None = None
) -> int:
    """Sign a checkpoint for every lab whose first event after its last checkpoint is T minutes old."""
    policy = policy or default_policy().audit
    cutoff = now - timedelta(minutes=policy.checkpoint_every_minutes)
    covered = (
        sa.select(AuditCheckpoint.lab_id, sa.func.max(AuditCheckpoint.seq).label("seq"))
        .group_by(AuditCheckpoint.lab_id)
        .subquery()
    )
    with sessions() as session:
        due = session.scalars(
            sa.select(AuditChainHead.lab_id)
            .outerjoin(covered, covered.c.lab_id == AuditChainHead.lab_id)
            .join(
                AuditEvent,
                sa.and_(
                    AuditEvent.lab_id == AuditChainHead.lab_id,
                    AuditEvent.seq == sa.func.coalesce(covered.c.seq, 0) + 1,
                ),
            )
            .where(AuditEvent.occurred_at <= cutoff)
        ).all()
    for lab_id in due:
        with transaction(sessions) as session:
            write_checkpoint(session, lab_id, keys)
    return len(due)


def publish_pending(sessions: sessionmaker, publisher: Publisher) -> int:
    """Publish every checkpoint not yet published, oldest first; a failure is logged and the rest wait
    for the next round (nothing is lost: `published_at` is set only once the publisher has it)."""
    published = 0
    while True:
        with sessions() as session:
            pending = [
                (row.id, PublishedCheckpoint.of(row))
                for row in session.scalars(
                    sa.select(AuditCheckpoint)
                    .where(AuditCheckpoint.published_at.is_(None))
                    .order_by(AuditCheckpoint.signed_at, AuditCheckpoint.id)
                    .limit(PUBLISH_BATCH)
                )
            ]
        for row_id, checkpoint in pending:
            try:
                publisher.publish(checkpoint)
            except (PublicationFailed, PublicationUnusable) as error:
                log.warning("checkpoint not published; retried later", lab=str(checkpoint.lab_id),
                            seq=checkpoint.seq, destination=publisher.describe(), error=error.detail)  # fmt: skip
                return published
            with transaction(sessions) as session:
                session.execute(
                    sa.update(AuditCheckpoint)
                    .where(AuditCheckpoint.id == row_id, AuditCheckpoint.published_at.is_(None))
                    .values(published_at=utcnow())
                )
            published += 1
        if len(pending) < PUBLISH_BATCH:
            return published


class BackgroundPublication:
    """Runs `publish_pending` on one worker thread; a round not yet started absorbs later requests."""

    def __init__(self, sessions: sessionmaker, publisher: Publisher) -> None:
        self._sessions, self._publisher = sessions, publisher
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dentgate-checkpoint-publication")
        self._lock = threading.Lock()
        self._latest: Future[None] | None = None

    def request(self) -> None:
        """Called after a checkpoint commits; never raises into the committing thread."""
        with self._lock:
            latest = self._latest
            if latest is not None and not latest.running() and not latest.done():
                return  # queued and not started: it will read this checkpoint too
            self._latest = self._executor.submit(self._run)

    def _run(self) -> None:
        try:
            publish_pending(self._sessions, self._publisher)
        except Exception:  # a database error: logged, and housekeeping publishes the checkpoint later
            log.exception("checkpoint publication round failed")

    def wait(self, timeout: float | None = None) -> None:
        """Block until the latest requested round has finished (tests, shutdown)."""
        with self._lock:
            latest = self._latest
        if latest is not None:
            latest.result(timeout)


def enable_checkpoints(
    sessions: sessionmaker, keys: KeyProvider, policy: AuditPolicy, publisher: Publisher | None
) -> BackgroundPublication | None:
    """Make `record` on sessions of this factory sign a checkpoint every `checkpoint_every_events`
    events, and publish it after its transaction commits when a publisher is configured."""
    background = BackgroundPublication(sessions, publisher) if publisher is not None else None
    info = dict(sessions.kw.get("info") or {})
    info[CHECKPOINTING] = Checkpointing(
        keys=keys,
        every_events=policy.checkpoint_every_events,
        after_commit=background.request if background is not None else None,
    )
    sessions.configure(info=info)
    return background
