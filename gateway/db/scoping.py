"""Lab scoping in one place: a session bound to a lab reads and writes only that lab's rows.

Lab-owned tables are reached through their ORM entities. In a lab-bound `GatewaySession`, every
ORM select, update and delete of a lab-owned entity gets `lab_id = :lab`; the unit of work refuses
another lab's rows; and the bulk paths that bypass both (executemany INSERT/UPDATE, the legacy
`bulk_*` methods) are refused outright.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from gateway.db.base import LabOwned
from gateway.errors import CrossLabAccess

LAB_KEY = "dentgate_lab_id"


class GatewaySession(Session):
    """The session every gateway transaction uses; lab-bound ones refuse unscoped bulk writes."""

    def bulk_save_objects(self, *args: Any, **kwargs: Any) -> None:
        _refuse_bulk(self, "bulk_save_objects")
        super().bulk_save_objects(*args, **kwargs)

    def bulk_insert_mappings(self, *args: Any, **kwargs: Any) -> None:
        _refuse_bulk(self, "bulk_insert_mappings")
        super().bulk_insert_mappings(*args, **kwargs)

    def bulk_update_mappings(self, *args: Any, **kwargs: Any) -> None:
        _refuse_bulk(self, "bulk_update_mappings")
        super().bulk_update_mappings(*args, **kwargs)


def bind_to_lab(session: Session, lab_id: uuid.UUID) -> Session:
    """Scope `session` to `lab_id`: every ORM query on a lab-owned table gets `lab_id = :lab`."""
    session.info[LAB_KEY] = lab_id
    return session


def require_lab(session: Session, lab_id: uuid.UUID) -> None:
    """Raise CrossLabAccess when `session` is bound to a lab other than `lab_id`."""
    bound = session.info.get(LAB_KEY)
    if bound is not None and bound != lab_id:
        raise CrossLabAccess(f"a session of lab {bound} cannot act on lab {lab_id}")


def _refuse_bulk(session: Session, operation: str) -> None:
    if session.info.get(LAB_KEY) is not None:
        raise CrossLabAccess(f"{operation} bypasses lab scoping; add objects to the lab session instead")


def _touches_lab_owned(state: ORMExecuteState) -> bool:
    return any(issubclass(mapper.class_, LabOwned) for mapper in state.all_mappers)


@event.listens_for(GatewaySession, "do_orm_execute")
def _filter_by_lab(state: ORMExecuteState) -> None:
    lab_id = state.session.info.get(LAB_KEY)
    if lab_id is None or state.is_column_load or state.is_relationship_load:
        return
    if (state.is_insert or (state.is_executemany and not state.is_select)) and _touches_lab_owned(state):
        raise CrossLabAccess("bulk INSERT/UPDATE statements bypass lab scoping; use the unit of work")
    if state.is_select or state.is_update or state.is_delete:
        state.statement = state.statement.options(
            with_loader_criteria(LabOwned, lambda cls: cls.lab_id == lab_id, include_aliases=True)
        )


@event.listens_for(GatewaySession, "before_flush")
def _refuse_other_labs_rows(session: Session, flush_context: object, instances: object) -> None:
    lab_id = session.info.get(LAB_KEY)
    if lab_id is None:
        return
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if not isinstance(obj, LabOwned):
            continue
        if obj.lab_id is None and obj in session.new:
            obj.lab_id = lab_id
        else:
            require_lab(session, obj.lab_id)
