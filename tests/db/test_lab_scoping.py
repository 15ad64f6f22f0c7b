"""A session bound to a lab sees and writes only that lab's rows (on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gateway.audit.models import AuditEvent
from gateway.audit.service import AuditEntry, record
from gateway.db.engine import transaction
from gateway.db.scoping import bind_to_lab
from gateway.errors import CrossLabAccess


def test_lab_session_sees_only_its_own_labs_events(sessions, make_lab):
    lab_a, lab_b = make_lab(), make_lab()
    with sessions() as session:
        other_labs_event = session.scalars(sa.select(AuditEvent.id).where(AuditEvent.lab_id == lab_b.id)).one()
    with sessions() as session:
        bind_to_lab(session, lab_a.id)
        assert [e.lab_id for e in session.scalars(sa.select(AuditEvent))] == [lab_a.id]
        assert session.scalars(sa.select(AuditEvent).where(AuditEvent.lab_id == lab_b.id)).all() == []
        assert session.get(AuditEvent, other_labs_event) is None


def test_lab_session_cannot_update_or_delete_another_labs_rows(sessions, make_lab):
    lab_a, lab_b = make_lab(), make_lab()
    with transaction(sessions) as session:
        bind_to_lab(session, lab_a.id)
        session.execute(sa.update(AuditEvent).values(reason="touched"))
        session.execute(sa.delete(AuditEvent).where(AuditEvent.lab_id == lab_b.id))
    with sessions() as session:
        rows = {e.lab_id: e.reason for e in session.scalars(sa.select(AuditEvent))}
        assert rows == {lab_a.id: "touched", lab_b.id: None}


def test_lab_session_refuses_to_write_another_labs_event(sessions, make_lab):
    lab_a, lab_b = make_lab(), make_lab()
    with pytest.raises(CrossLabAccess), transaction(sessions) as session:
        bind_to_lab(session, lab_a.id)
        record(
            session, AuditEntry(lab_id=lab_b.id, category="operation", action="design.upload", actor_type="technician")
        )
    with sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 2


def test_lab_session_refuses_bulk_writes_that_bypass_scoping(sessions, make_lab):
    lab_a, lab_b = make_lab(), make_lab()
    with sessions() as session:
        other = session.scalars(sa.select(AuditEvent).where(AuditEvent.lab_id == lab_b.id)).one()
        row = {c.key: getattr(other, c.key) for c in sa.inspect(AuditEvent).column_attrs if c.key != "id"}
    attempts = {
        "update by primary key": lambda s: s.execute(sa.update(AuditEvent), [{"id": other.id, "reason": "x"}]),
        "ORM insert": lambda s: s.execute(sa.insert(AuditEvent), [{**row, "seq": 2}]),
        "bulk_save_objects": lambda s: s.bulk_save_objects([AuditEvent(**{**row, "seq": 3})]),
        "bulk_insert_mappings": lambda s: s.bulk_insert_mappings(AuditEvent, [{**row, "seq": 4}]),
        "bulk_update_mappings": lambda s: s.bulk_update_mappings(AuditEvent, [{"id": other.id, "reason": "x"}]),
    }
    for name, attempt in attempts.items():
        with pytest.raises(CrossLabAccess), transaction(sessions) as session:
            bind_to_lab(session, lab_a.id)
            attempt(session)
            pytest.fail(f"{name} was allowed")
    with sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 2
        assert session.get(AuditEvent, other.id).reason is None
