"""A lab whose audit chain holds a million realistic, correctly chained events, written fast for benchmarks.

The events are what a busy lab produces: each design gets an upload, a commit, a claim, a download and an
acknowledgement, among access events and logins. Every event is hashed and linked exactly as
`gateway.audit.service.record` would, so the chain verifies; they are only inserted in bulk (COPY on
PostgreSQL, executemany on SQLite) instead of one transaction each.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from gateway.audit.chain import ChainedEvent, event_hash
from gateway.audit.models import AuditChainHead, AuditEvent

COLUMNS = ("lab_id", "seq", "occurred_at", "actor_type", "actor_id", "category", "action", "target", "outcome",
           "reason", "client_address", "device_id", "request_id", "details", "prev_hash", "hash")  # fmt: skip
DESIGN_STEPS = (
    ("operation", "upload.start", "technician"),
    ("operation", "design.commit", "technician"),
    ("operation", "job.claim", "station"),
    ("operation", "design.download", "station"),
    ("operation", "job.acknowledge", "station"),
)
BATCH = 5000


def _events(lab_id: uuid.UUID, first_seq: int, prev_hash: str, count: int, designs: list[uuid.UUID]):
    rng = random.Random(20261125)  # noqa: S311 (reproducible sample data, not secrets)
    technicians = [str(uuid.uuid4()) for _ in range(40)]
    stations = [str(uuid.uuid4()) for _ in range(6)]
    start = datetime.now(UTC) - timedelta(milliseconds=10 * count)
    for offset in range(count):
        seq = first_seq + offset
        kind = rng.random()
        design = designs[rng.randrange(len(designs))]
        if kind < 0.35:
            category, action, role = DESIGN_STEPS[rng.randrange(len(DESIGN_STEPS))]
            target, details = f"design:{design}", {"case": f"K-{design.int % 100000:05d}"}
        elif kind < 0.45:
            category, action, role, target, details = "auth", "login", "technician", None, {"method": "totp"}
        else:
            category, action, role = "access", "http.request", rng.choice(("technician", "station", "manager"))
            target, details = None, {"method": "GET", "route": "/api/v1/designs", "status": 200, "ms": 4}
        actor = rng.choice(stations) if role == "station" else rng.choice(technicians)
        event = ChainedEvent(
            lab_id=lab_id, seq=seq, occurred_at=start + timedelta(milliseconds=10 * offset), actor_type=role,
            actor_id=actor, category=category, action=action, target=target, outcome="success", reason=None,
            client_address=f"10.0.{rng.randrange(4)}.{rng.randrange(250)}", device_id=None,
            request_id=uuid.UUID(int=rng.getrandbits(128)).hex, details=details, prev_hash=prev_hash,
        )  # fmt: skip
        digest = event_hash(event)
        yield event, digest
        prev_hash = digest


def _batches(events: Iterator[tuple[ChainedEvent, str]]) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for event, digest in events:
        batch.append((
            event.lab_id, event.seq, event.occurred_at, event.actor_type, event.actor_id, event.category,
            event.action, event.target, event.outcome, event.reason, event.client_address, event.device_id,
            event.request_id, event.details, event.prev_hash, digest,
        ))  # fmt: skip
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def populate(engine: sa.Engine, lab_id: uuid.UUID, count: int, design_count: int = 10_000) -> list[uuid.UUID]:
    """Append `count` events to the lab's chain (after its current head); returns the design ids used."""
    designs = [uuid.uuid4() for _ in range(design_count)]
    with engine.begin() as connection:
        head_seq, head_hash = connection.execute(
            sa.select(AuditChainHead.last_seq, AuditChainHead.last_hash).where(AuditChainHead.lab_id == lab_id)
        ).one()
    events = _events(lab_id, head_seq + 1, head_hash, count, designs)
    last_seq, last_hash = head_seq, head_hash
    for batch in _batches(events):
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                raw = connection.connection.dbapi_connection
                with (
                    raw.cursor() as cursor,
                    cursor.copy(f"COPY audit_events ({', '.join(COLUMNS)}) FROM STDIN") as copy,
                ):
                    for row in batch:
                        copy.write_row((*row[:13], json.dumps(row[13]), *row[14:]))
            else:
                connection.execute(
                    sa.insert(AuditEvent.__table__), [dict(zip(COLUMNS, row, strict=True)) for row in batch]
                )
        last_seq, last_hash = batch[-1][1], batch[-1][15]
    with engine.begin() as connection:
        connection.execute(
            sa.update(AuditChainHead)
            .where(AuditChainHead.lab_id == lab_id)
            .values(last_seq=last_seq, last_hash=last_hash)
        )
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text("ANALYZE audit_events"))
    return designs
