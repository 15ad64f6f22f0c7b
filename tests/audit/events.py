"""Audit-chain test material: events recorded straight through the service, as any domain records them."""

from __future__ import annotations

from gateway.audit.service import AuditEntry, record
from gateway.db.engine import transaction


def add_events(sessions, lab_id, count: int, category: str = "operation") -> None:
    """`count` design uploads by one technician in the lab's chain, in one transaction."""
    with transaction(sessions) as session:
        for n in range(count):
            entry = AuditEntry(
                lab_id=lab_id,
                category=category,  # type: ignore[arg-type]
                action="design.upload",
                actor_type="technician",
                actor_id="tech-1",
                target=f"design:{n}",
                details={"n": n},
            )
            record(session, entry)
