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
