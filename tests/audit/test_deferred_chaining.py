"""Entries join the chain at commit: a transaction that has recorded something does not hold the lab's chain
head while it goes on working, so other requests of the lab are not held up behind it (the load benchmark's
stall: a request holding the head waited for a server thread that every other request, queued on the head,
was holding)."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.audit.models import AuditEvent
from gateway.audit.service import AuditEntry, record, verify
from gateway.db.engine import transaction
from gateway.db.scoping import bind_to_lab


def entry(lab_id, action: str) -> AuditEntry:
    return AuditEntry(lab_id=lab_id, category="operation", action=action, actor_type="operator")


def actions(sessions, lab_id) -> list[str]:
    with sessions() as session:
        query = sa.select(AuditEvent.action).where(AuditEvent.lab_id == lab_id).order_by(AuditEvent.seq)
        return list(session.scalars(query))


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite has one writer at a time anyway
def test_a_long_transaction_that_recorded_does_not_hold_up_other_writers_of_the_lab(sessions, make_lab, keys):
    lab = make_lab()
    other_committed = threading.Event()

    def other_request() -> None:
        with transaction(sessions) as session:
            bind_to_lab(session, lab.id)
            record(session, entry(lab.id, "other.request"))
        other_committed.set()

    with transaction(sessions) as session:
        bind_to_lab(session, lab.id)
        record(session, entry(lab.id, "long.request"))
        session.execute(sa.text("SELECT 1"))  # the long request goes on working in its transaction…
        writer = threading.Thread(target=other_request)
        writer.start()
        assert other_committed.wait(timeout=5), "another request of the lab waited for this open transaction"
    writer.join()

    assert actions(sessions, lab.id)[-2:] == ["other.request", "long.request"], "chained in commit order"
    with sessions() as session:
        assert verify(session, lab.id, keys.public_key()).count == 3


def test_an_entry_recorded_in_a_savepoint_that_rolls_back_never_reaches_the_chain(sessions, make_lab, keys):
    lab = make_lab()
    with transaction(sessions) as session:
        bind_to_lab(session, lab.id)
        record(session, entry(lab.id, "kept.before"))
        savepoint = session.begin_nested()
        record(session, entry(lab.id, "undone"))
        savepoint.rollback()
        record(session, entry(lab.id, "kept.after"))

    assert actions(sessions, lab.id) == ["lab.create", "kept.before", "kept.after"]
    with sessions() as session:
        assert verify(session, lab.id, keys.public_key()).count == 3


def test_a_transaction_that_reads_the_chain_sees_what_it_recorded(sessions, make_lab, keys):
    lab = make_lab()
    with transaction(sessions) as session:
        bind_to_lab(session, lab.id)
        record(session, entry(lab.id, "seen.at.once"))
        latest = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
        assert (latest.seq, latest.action) == (2, "seen.at.once")
        assert verify(session, lab.id, keys.public_key()).head_seq == 2


def test_entries_of_one_transaction_keep_their_order_and_time_never_runs_backwards(sessions, make_lab, keys):
    lab = make_lab()
    with transaction(sessions) as session:
        bind_to_lab(session, lab.id)
        for number in range(5):
            record(session, entry(lab.id, f"step.{number}"))
            time.sleep(0.002)
    with sessions() as session:
        rows = session.scalars(sa.select(AuditEvent).where(AuditEvent.lab_id == lab.id).order_by(AuditEvent.seq)).all()
    assert [row.action for row in rows[1:]] == [f"step.{number}" for number in range(5)]
    assert [row.occurred_at for row in rows] == sorted(row.occurred_at for row in rows)


def test_a_session_that_would_never_chain_the_entry_is_refused(engine, make_lab):
    lab = make_lab()
    with Session(engine) as plain, pytest.raises(TypeError, match="GatewaySession"):
        record(plain, entry(lab.id, "would.be.lost"))
