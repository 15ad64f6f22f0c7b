"""The auditor's API (G19): query the lab's chain, export it with a signed manifest, verify it.

Auditors and managers only; events are metadata, never design content. Every query, export and
verification is itself an audited operation.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from gateway.audit.chain import ChainBroken
from gateway.audit.export import export_lines
from gateway.audit.models import AuditEvent
from gateway.audit.publication import verify_against_published
from gateway.audit.query import EventFilter, query_events
from gateway.audit.service import AuditEntry, as_chained, record
from gateway.backends import Backends
from gateway.db.scoping import bind_to_lab
from gateway.deps import BackendsDep
from gateway.identity.auth import AuditReader, LabSession
from gateway.identity.sessions import Principal, principal_entry
from gateway.routing import TransactionalRoute

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], route_class=TransactionalRoute)
EXPORT_CHUNK_BYTES = 256 * 1024
EXPORT_BATCH = 2000


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    occurred_at: datetime
    actor_type: str
    actor_id: str | None
    category: str
    action: str
    target: str | None
    outcome: str
    reason: str | None
    client_address: str | None
    device_id: str | None
    request_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class EventPage(BaseModel):
    events: list[AuditEventOut]
    next_after: int | None  # pass as `after` for the next page; None when this was the last


class VerifiedOut(BaseModel):
    ok: bool
    count: int
    head_seq: int
    head_hash: str | None
    first_bad_seq: int | None
    reason: str | None
    published: str | None  # what the published checkpoints said, e.g. "12 published checkpoints agree, …"


def _operation(principal: Principal, action: str, outcome: str = "success", **details: object) -> AuditEntry:
    return principal_entry(principal, "operation", action, f"lab:{principal.lab_id}", outcome, None, details)


def event_filter(
    since: Annotated[datetime | None, Query(alias="from", description="Events at or after (RFC 3339).")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="Events before (RFC 3339).")] = None,
    actor: str | None = Query(default=None, max_length=64),
    role: str | None = Query(default=None, max_length=32),
    device: str | None = Query(default=None, max_length=64),
    station: str | None = Query(default=None, max_length=64),
    design: uuid.UUID | None = None,
    case: str | None = Query(default=None, max_length=64),
    action: str | None = Query(default=None, max_length=64, description="Exact, or a prefix ending in `*`."),
    category: Literal["access", "auth", "operation"] | None = None,
    outcome: Literal["success", "failure", "denied", "error"] | None = None,
    client_address: str | None = Query(default=None, max_length=64),
) -> EventFilter:
    return EventFilter(since, until, actor, role, device, station, design, case, action, category, outcome,
                       client_address)  # fmt: skip


@router.get("/events", response_model=EventPage)
def query(
    reader: AuditReader,
    session: LabSession,
    where: Annotated[EventFilter, Depends(event_filter)],
    after: int = Query(default=0, ge=0, description="The `next_after` of the previous page."),
    limit: int = Query(default=100, ge=1, le=1000),
) -> EventPage:
    """Matching events in chain order, one page at a time (keyset pagination on the sequence number)."""
    events = query_events(session, reader.lab_id, where, after, limit)
    record(session, _operation(reader, "audit.query", filters=where.as_details(), after=after, returned=len(events)))
    next_after = events[-1].seq if len(events) == limit else None
    return EventPage(events=[AuditEventOut.model_validate(e) for e in events], next_after=next_after)


def _seq_range(session: Session, lab_id: uuid.UUID, since: datetime | None, until: datetime | None):
    """The contiguous run of sequence numbers from the first event at/after `since` to the last before `until`."""
    first = sa.select(sa.func.min(AuditEvent.seq)).where(AuditEvent.lab_id == lab_id)
    last = sa.select(sa.func.max(AuditEvent.seq)).where(AuditEvent.lab_id == lab_id)
    if since is not None:
        first = first.where(AuditEvent.occurred_at >= since)
    if until is not None:
        last = last.where(AuditEvent.occurred_at < until)
    return session.scalar(first), session.scalar(last)


def _export_bytes(backends: Backends, reader: Principal, first: int, last: int, file_format, about) -> Iterator[bytes]:
    with backends.sessions() as session:
        bind_to_lab(session, reader.lab_id)
        table = AuditEvent.__table__  # plain rows, not ORM objects: a million of them stream several times faster
        rows = session.execute(
            sa.select(table)
            .where(table.c.lab_id == reader.lab_id, table.c.seq >= first, table.c.seq <= last)
            .order_by(table.c.seq)
            .execution_options(yield_per=EXPORT_BATCH)
        )

        def events() -> Iterator[tuple[Any, str]]:
            for row in rows:
                yield as_chained(row), row.hash  # type: ignore[arg-type]

        keys = backends.keys
        lines = export_lines(reader.lab_id, events(), file_format, about, keys.sign, keys.key_id, keys.public_key(),
                             backends.clock)  # fmt: skip
        pending = bytearray()
        for line in lines:  # one thread hop per chunk, not per line
            pending += line
            if len(pending) >= EXPORT_CHUNK_BYTES:
                yield bytes(pending)
                pending.clear()
        yield bytes(pending)


@router.get("/export")
def export(
    reader: AuditReader,
    session: LabSession,
    backends: BackendsDep,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    file_format: Literal["jsonl", "csv"] = Query(default="jsonl", alias="format"),
) -> StreamingResponse:
    """A contiguous run of the chain, streamed, ending in a `#dentgate-export-manifest` trailer line."""
    first, last = _seq_range(session, reader.lab_id, since, until)
    if first is None or last is None or first > last:
        first, last = 1, 0  # nothing in range: an empty export, still signed
    about = {
        "from": since.isoformat() if since else None,
        "to": until.isoformat() if until else None,
        "exported_by": reader.actor_id,
    }
    # Committed when this function returns, before a byte of the export leaves (a function-scoped dependency).
    record(session, _operation(reader, "audit.export", format=file_format, first_seq=first, last_seq=last, **about))
    media = "application/x-ndjson" if file_format == "jsonl" else "text/csv; charset=utf-8"
    return StreamingResponse(
        _export_bytes(backends, reader, first, last, file_format, about),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="audit-{reader.lab_id}.{file_format}"'},
    )


@router.get("/verify", response_model=VerifiedOut)
def verify_chain(reader: AuditReader, session: LabSession, backends: BackendsDep, request: Request) -> VerifiedOut:
    """Recompute the lab's chain against its head, its signed checkpoints and the checkpoints published outside
    the database; name the first failing sequence number."""
    try:
        checked = verify_against_published(
            session, reader.lab_id, backends.keys.public_key(), request.app.state.publisher
        )
    except ChainBroken as broken:
        record(session, _operation(reader, "audit.verify", "failure", first_bad_seq=broken.seq, reason=broken.reason))
        return VerifiedOut(ok=False, count=0, head_seq=0, head_hash=None, first_bad_seq=broken.seq,
                           reason=broken.reason, published=None)  # fmt: skip
    chain = checked.chain
    record(
        session, _operation(reader, "audit.verify", count=chain.count, head_seq=chain.head_seq, published=checked.note)
    )
    return VerifiedOut(ok=True, count=chain.count, head_seq=chain.head_seq, head_hash=chain.head_hash,
                       first_bad_seq=None, reason=None, published=checked.note)  # fmt: skip
