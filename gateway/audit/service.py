"""Recording and verifying a lab's audit chain inside the caller's transaction (G19)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from gateway.audit.chain import (
    Category,
    ChainBroken,
    ChainedEvent,
    Outcome,
    VerifiedChain,
    checkpoint_statement,
    event_hash,
    genesis_hash,
    verify_events,
)
from gateway.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from gateway.db.base import utcnow
from gateway.db.scoping import GatewaySession, require_lab
from gateway.errors import DentGateError
from gateway.keys import KeyProvider
from gateway.request_context import current_request

VERIFY_BATCH = 1000
PURGE_ACTION = "audit.purge"
# Session.info key of the `Checkpointing` that `gateway.audit.checkpoints.enable_checkpoints` puts on a factory.
CHECKPOINTING = "dentgate_audit_checkpointing"
_PUBLICATION_SCHEDULED = "dentgate_audit_publication_scheduled"
_PENDING = "dentgate_audit_pending"  # Session.info key of the entries `record` queued for the commit
_CHAIN_TABLES = (AuditEvent, AuditChainHead, AuditCheckpoint)


class UnknownAuditChain(DentGateError):
    code = "unknown-audit-chain"
    status = 404
    title = "No audit chain for this lab"


@dataclass(frozen=True)
class AuditEntry:
    """What happened, as a service describes it; the chain adds time, sequence and hashes."""

    lab_id: uuid.UUID
    category: Category
    action: str
    actor_type: str
    actor_id: str | None = None
    outcome: Outcome = "success"
    target: str | None = None
    reason: str | None = None
    device_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    client_address: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class Checkpointing:
    """How `record` signs automatic checkpoints, and what runs once a checkpoint has committed."""

    keys: KeyProvider
    every_events: int
    after_commit: Callable[[], None] | None = None


def start_chain(session: Session, lab_id: uuid.UUID) -> AuditChainHead:
    """Create a new lab's empty chain; call in the transaction that creates the lab."""
    head = AuditChainHead(lab_id=lab_id, last_seq=0, last_hash=genesis_hash(lab_id))
    session.add(head)
    session.flush()
    return head


def locked_head(session: Session, lab_id: uuid.UUID) -> AuditChainHead:
    """The lab's chain head, locked for the rest of the transaction (writers, checkpoints and purges queue)."""
    head = session.execute(
        sa.select(AuditChainHead)
        .where(AuditChainHead.lab_id == lab_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if head is None:
        raise UnknownAuditChain(f"lab {lab_id} has no audit chain")
    return head


def record(session: Session, entry: AuditEntry) -> None:
    """Put `entry` on its lab's chain in the caller's transaction: both commit or neither does.

    The entry is queued on the session and chained when the transaction commits (or sooner, when the same
    transaction reads the chain): the lab's chain head row is locked (SELECT … FOR UPDATE on PostgreSQL;
    SQLite transactions begin IMMEDIATE) only for the commit itself, so concurrent writers queue instead of
    forking the chain, and a transaction never holds the head while it waits for anything else, such as a
    thread of the server's pool to validate its response (bench/README.md, the load benchmark).
    """
    if not isinstance(session, GatewaySession):  # only its commit hook chains the entry: never lose one silently
        raise TypeError("audit entries need a GatewaySession (gateway.db.engine.session_factory)")
    require_lab(session, entry.lab_id)
    request = current_request()
    if request is not None:
        entry = replace(
            entry,
            client_address=entry.client_address or request.client_address,
            request_id=entry.request_id or request.request_id,
        )
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append(_Pending(entry, transaction))


@dataclass(frozen=True)
class _Pending:
    entry: AuditEntry
    transaction: SessionTransaction | None  # where it was recorded: a rolled-back savepoint drops it


def chain_pending(session: Session) -> None:
    """Chain and insert the entries `record` queued on `session`, lab by lab, in the order they were recorded."""
    pending: list[_Pending] = session.info.pop(_PENDING, [])
    labs = list(dict.fromkeys(item.entry.lab_id for item in pending))
    for lab_id in labs:
        head = locked_head(session, lab_id)
        for item in pending:
            if item.entry.lab_id == lab_id:
                _append(session, head, item.entry)


def _append(session: Session, head: AuditChainHead, entry: AuditEntry) -> None:
    chained = ChainedEvent(
        lab_id=entry.lab_id,
        seq=head.last_seq + 1,
        occurred_at=utcnow(),
        actor_type=entry.actor_type,
        actor_id=entry.actor_id,
        category=entry.category,
        action=entry.action,
        target=entry.target,
        outcome=entry.outcome,
        reason=entry.reason,
        client_address=entry.client_address,
        device_id=entry.device_id,
        request_id=entry.request_id,
        details=entry.details,
        prev_hash=head.last_hash,
    )
    digest = event_hash(chained)
    row = AuditEvent(
        lab_id=chained.lab_id,
        seq=chained.seq,
        occurred_at=chained.occurred_at,
        actor_type=chained.actor_type,
        actor_id=chained.actor_id,
        category=chained.category,
        action=chained.action,
        target=chained.target,
        outcome=chained.outcome,
        reason=chained.reason,
        client_address=chained.client_address,
        device_id=chained.device_id,
        request_id=chained.request_id,
        details=chained.details,
        prev_hash=chained.prev_hash,
        hash=digest,
    )
    session.add(row)
    head.last_seq = chained.seq
    head.last_hash = digest
    session.flush()
    checkpointing = session.info.get(CHECKPOINTING)
    if checkpointing is not None and chained.seq % checkpointing.every_events == 0:
        write_checkpoint(session, entry.lab_id, checkpointing.keys)


@event.listens_for(GatewaySession, "before_commit")
def _chain_before_commit(session: Session) -> None:
    if session.info.get(_PENDING):
        chain_pending(session)


@event.listens_for(GatewaySession, "after_soft_rollback")
def _drop_rolled_back(session: Session, rolled_back: SessionTransaction) -> None:
    """Entries recorded in a transaction (or savepoint) that rolled back never reach the chain."""
    pending: list[_Pending] = session.info.get(_PENDING, [])
    if pending:
        session.info[_PENDING] = [item for item in pending if not _inside(item.transaction, rolled_back)]


def _inside(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    """Whether an entry recorded in `transaction` goes with `outer`'s rollback (a root rollback takes them all)."""
    if outer.parent is None:
        return True
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(GatewaySession, "do_orm_execute")
def _chain_before_reading_it(state: ORMExecuteState) -> None:
    """A transaction that reads the chain (verify, export, checkpoint, purge) sees its own entries on it."""
    if state.session.info.get(_PENDING) and any(mapper.class_ in _CHAIN_TABLES for mapper in state.all_mappers):
        chain_pending(state.session)


def as_chained(row: AuditEvent) -> ChainedEvent:
    return ChainedEvent(
        lab_id=row.lab_id,
        seq=row.seq,
        occurred_at=row.occurred_at,
        actor_type=row.actor_type,
        actor_id=row.actor_id,
        category=row.category,
        action=row.action,
        target=row.target,
        outcome=row.outcome,
        reason=row.reason,
        client_address=row.client_address,
        device_id=row.device_id,
        request_id=row.request_id,
        details=row.details,
        prev_hash=row.prev_hash,
    )


def write_checkpoint(session: Session, lab_id: uuid.UUID, keys: KeyProvider) -> AuditCheckpoint:
    """Sign the lab's current chain head with the gateway key and store the checkpoint."""
    head = locked_head(session, lab_id)
    existing = session.execute(
        sa.select(AuditCheckpoint).where(AuditCheckpoint.lab_id == lab_id, AuditCheckpoint.seq == head.last_seq)
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    signed_at = utcnow()
    signature = keys.sign(checkpoint_statement(lab_id, head.last_seq, head.last_hash, signed_at))
    checkpoint = AuditCheckpoint(
        lab_id=lab_id,
        seq=head.last_seq,
        hash=head.last_hash,
        signed_at=signed_at,
        key_id=keys.key_id,
        signature=base64.b64encode(signature).decode("ascii"),
    )
    session.add(checkpoint)
    session.flush()
    _publish_after_commit(session)
    return checkpoint


def _publish_after_commit(session: Session) -> None:
    """Run the factory's publication hook once the transaction that wrote a checkpoint commits."""
    checkpointing = session.info.get(CHECKPOINTING)
    if checkpointing is None or checkpointing.after_commit is None or session.info.get(_PUBLICATION_SCHEDULED):
        return
    session.info[_PUBLICATION_SCHEDULED] = True
    hook = checkpointing.after_commit

    def committed(committed_session: Session) -> None:
        committed_session.info.pop(_PUBLICATION_SCHEDULED, None)
        hook()

    event.listen(session, "after_commit", committed, once=True)


def _signed_hashes(session: Session, lab_id: uuid.UUID, public_key: bytes) -> dict[int, str]:
    """Every checkpoint of the lab by sequence number, each signature checked (RFC 8032)."""
    verifier = Ed25519PublicKey.from_public_bytes(public_key)
    hashes: dict[int, str] = {}
    for checkpoint in session.scalars(
        sa.select(AuditCheckpoint).where(AuditCheckpoint.lab_id == lab_id).order_by(AuditCheckpoint.seq)
    ):
        statement = checkpoint_statement(lab_id, checkpoint.seq, checkpoint.hash, checkpoint.signed_at)
        try:
            verifier.verify(base64.b64decode(checkpoint.signature), statement)
        except (InvalidSignature, ValueError) as error:
            raise ChainBroken(checkpoint.seq, "checkpoint signature does not verify") from error
        hashes[checkpoint.seq] = checkpoint.hash
    return hashes


def _with_published(signed: dict[int, str], published: Iterable[tuple[int, str]]) -> dict[int, str]:
    """The database's signed hashes plus the published ones (signatures already checked); they must agree."""
    merged = dict(signed)
    for seq, digest in sorted(published):
        if merged.setdefault(seq, digest) != digest:
            raise ChainBroken(seq, "signed checkpoints disagree: the chain was rewritten and signed again")
    return merged


def _anchor(session: Session, lab_id: uuid.UUID, signed: dict[int, str]) -> tuple[int, str]:
    """Where verification starts: the genesis, or the signed checkpoint the last recorded purge ended at.

    Events before the first stored one may be missing only if the latest `audit.purge` event (itself
    in the verified chain) says it removed exactly those, and a signed checkpoint fixes the hash the
    first retained event links to.
    """
    first = session.scalar(sa.select(sa.func.min(AuditEvent.seq)).where(AuditEvent.lab_id == lab_id))
    if first is None or first <= 1:
        return 0, genesis_hash(lab_id)
    boundary = first - 1
    purge = session.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.lab_id == lab_id, AuditEvent.action == PURGE_ACTION)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    through = purge.details.get("through_seq") if purge is not None else None
    if not isinstance(through, int) or through < boundary:
        missing_from = through + 1 if isinstance(through, int) else 1
        raise ChainBroken(missing_from, f"events up to {boundary} are missing and no purge records their removal")
    if through > boundary:
        raise ChainBroken(first, f"event stored although a purge removed every event up to {through}")
    if boundary not in signed:
        raise ChainBroken(first, f"no signed checkpoint at {boundary} anchors the first retained event")
    return boundary, signed[boundary]


def _stored_events(session: Session, lab_id: uuid.UUID, after: int, up_to: int) -> Iterator[tuple[ChainedEvent, str]]:
    rows = session.execute(
        sa.select(AuditEvent)
        .where(AuditEvent.lab_id == lab_id, AuditEvent.seq > after, AuditEvent.seq <= up_to)
        .order_by(AuditEvent.seq)
        .execution_options(yield_per=VERIFY_BATCH)
    ).scalars()
    for row in rows:
        yield as_chained(row), row.hash
        session.expunge(row)


def _head(session: Session, lab_id: uuid.UUID) -> tuple[int, str]:
    head = session.execute(
        sa.select(AuditChainHead.last_seq, AuditChainHead.last_hash).where(AuditChainHead.lab_id == lab_id)
    ).one_or_none()
    if head is None:
        raise UnknownAuditChain(f"lab {lab_id} has no audit chain")
    return head.last_seq, head.last_hash


def verify(
    session: Session, lab_id: uuid.UUID, public_key: bytes, *, published: Iterable[tuple[int, str]] = ()
) -> VerifiedChain:
    """Recompute the lab's chain against its head and its signed checkpoints.

    Returns the verified head, or raises ChainBroken naming the first bad sequence number. Safe
    while writers append (PostgreSQL READ COMMITTED): it verifies up to the head it first reads,
    and checks the tail against a head read after everything else, which a legitimate append
    always updates in the same transaction as its event. After a purge it starts at the first
    retained event, anchored on the signed checkpoint the purge ended at. `published` adds
    `(seq, hash)` pairs of checkpoints published outside the database, their signatures checked
    by the caller (`gateway.audit.publication.verify_against_published`).
    """
    head_seq, head_hash = _head(session, lab_id)
    signed = _with_published(_signed_hashes(session, lab_id, public_key), published)
    anchor = _anchor(session, lab_id, signed)
    verified = verify_events(
        lab_id,
        _stored_events(session, lab_id, anchor[0], head_seq),
        {seq: digest for seq, digest in signed.items() if anchor[0] < seq <= head_seq},
        anchor,
    )
    if verified.head_seq < head_seq:
        raise ChainBroken(verified.head_seq + 1, f"events missing up to the chain head {head_seq}")
    if verified.head_hash != head_hash:
        raise ChainBroken(head_seq, "chain head does not match the last event")
    last_stored = session.scalar(sa.select(sa.func.max(AuditEvent.seq)).where(AuditEvent.lab_id == lab_id)) or 0
    final_seq, _ = _head(session, lab_id)
    if last_stored > final_seq:
        raise ChainBroken(final_seq + 1, "events stored beyond the chain head")
    beyond = [seq for seq in signed if seq > final_seq]
    if beyond:
        raise ChainBroken(final_seq + 1, f"events up to the signed checkpoint {max(beyond)} are missing")
    return verified
