"""Lab scoping in one place: a session bound to a lab reads and writes only that lab's rows."""

from __future__ import annotations

import uuid

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from gateway.db.base import LabOwned
from gateway.errors import CrossLabAccess

LAB_KEY = "dentgate_lab_id"


def bind_to_lab(session: Session, lab_id: uuid.UUID) -> Session:
    """Scope `session` to `lab_id`: every ORM query on a lab-owned table gets `lab_id = :lab`."""
    session.info[LAB_KEY] = lab_id
    return session


def require_lab(session: Session, lab_id: uuid.UUID) -> None:
    """Raise CrossLabAccess when `session` is bound to a lab other than `lab_id`."""
    bound = session.info.get(LAB_KEY)
    if bound is not None and bound != lab_id:
        raise CrossLabAccess(f"a session of lab {bound} cannot act on lab {lab_id}")


@event.listens_for(Session, "do_orm_execute")
def _filter_by_lab(state: ORMExecuteState) -> None:
    lab_id = state.session.info.get(LAB_KEY)
    if lab_id is None or not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return
    state.statement = state.statement.options(
        with_loader_criteria(LabOwned, lambda cls: cls.lab_id == lab_id, include_aliases=True)
    )


@event.listens_for(Session, "before_flush")
def _refuse_other_labs_rows(session: Session, flush_context: object, instances: object) -> None:
    lab_id = session.info.get(LAB_KEY)
    if lab_id is None:
        return
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if not isinstance(obj, LabOwned):
            continue
        if obj.lab_id is None and obj in session.new:
            obj.lab_id = lab_id
        elif obj.lab_id != lab_id:
            require_lab(session, obj.lab_id)
