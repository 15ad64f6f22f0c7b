"""The one way a transfer step is audited: an operation on a design, by the calling principal (G19)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from gateway.audit.service import AuditEntry, record
from gateway.identity.sessions import Principal, principal_entry


def design_entry(
    principal: Principal,
    action: str,
    design_id: uuid.UUID,
    outcome: str = "success",
    reason: str | None = None,
    **details: object,
) -> AuditEntry:
    """`action` on the design by the caller, as an entry of the caller's lab chain."""
    return principal_entry(principal, "operation", action, f"design:{design_id}", outcome, reason, details)


def design_event(
    session: Session,
    principal: Principal,
    action: str,
    design_id: uuid.UUID,
    outcome: str = "success",
    reason: str | None = None,
    **details: object,
) -> None:
    """Record `action` on the design in the caller's lab chain, in the caller's transaction."""
    record(session, design_entry(principal, action, design_id, outcome, reason, **details))
