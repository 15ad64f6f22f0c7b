"""Identity rules. For now: creating a lab, which opens its audit chain."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.audit.service import AuditEntry, record, start_chain
from gateway.errors import DentGateError
from gateway.identity.models import Lab


class LabNameTaken(DentGateError):
    code = "lab-name-taken"
    status = 409
    title = "A lab with this name exists"


class InvalidArchiveKey(DentGateError):
    code = "invalid-archive-key"
    status = 422
    title = "Not an age recipient"


def create_lab(session: Session, name: str, actor_type: str = "operator", actor_id: str | None = None) -> Lab:
    """Create a lab with an empty audit chain whose first event records the creation."""
    name = name.strip()
    if not name:
        raise ValueError("a lab needs a name")
    if session.scalar(sa.select(Lab.id).where(Lab.name == name)) is not None:
        raise LabNameTaken(f"a lab named {name!r} already exists")
    lab = Lab(name=name)
    session.add(lab)
    session.flush()
    start_chain(session, lab.id)
    record(
        session,
        AuditEntry(
            lab_id=lab.id,
            category="operation",
            action="lab.create",
            actor_type=actor_type,
            actor_id=actor_id,
            target=f"lab:{lab.id}",
            details={"name": name},
        ),
    )
    return lab


def set_archive_recipient(session: Session, lab: Lab, recipient: str, actor_type: str, actor_id: str) -> None:
    """Register the lab's archive key (its public age recipient); the private half stays offline with the manager."""
    recipient = recipient.strip()
    if not recipient.startswith("age1") or len(recipient) > 100 or recipient.lower() != recipient:
        raise InvalidArchiveKey("the archive key must be an age X25519 recipient (age1…)")
    previous = lab.archive_recipient
    lab.archive_recipient = recipient
    record(
        session,
        AuditEntry(
            lab_id=lab.id,
            category="operation",
            action="lab.archive-key",
            actor_type=actor_type,
            actor_id=actor_id,
            target=f"lab:{lab.id}",
            details={"recipient": recipient, "previous": previous},
        ),
    )
