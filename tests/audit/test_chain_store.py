"""The audit chain in the database, on SQLite and PostgreSQL: atomic with its operation, tamper-evident."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from gateway.audit.chain import ChainBroken
from gateway.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from gateway.audit.service import AuditEntry, record, verify, write_checkpoint
from gateway.db.engine import transaction
from gateway.identity.models import Lab
from tests.audit.events import add_events


def broken_seq(sessions, lab_id, public_key) -> int:
    with sessions() as session, pytest.raises(ChainBroken) as broken:
        verify(session, lab_id, public_key)
    return broken.value.seq


def test_lab_creation_opens_a_chain_whose_first_event_records_it(sessions, make_lab, keys):
    lab = make_lab("Osaka Dental Lab")
    with sessions() as session:
        first = session.scalars(sa.select(AuditEvent).where(AuditEvent.lab_id == lab.id)).one()
        assert (first.seq, first.action, first.details) == (1, "lab.create", {"name": "Osaka Dental Lab"})
        assert verify(session, lab.id, keys.public_key()).count == 1


def test_event_commits_with_its_operation_or_not_at_all(sessions, make_lab, keys):
    lab = make_lab()
    with pytest.raises(RuntimeError), transaction(sessions) as session:
        session.add(Lab(name="created then abandoned"))
        record(session, AuditEntry(lab_id=lab.id, category="operation", action="lab.create", actor_type="operator"))
        raise RuntimeError("the operation failed after recording")
    with sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 1
        assert session.scalar(sa.select(Lab).where(Lab.name == "created then abandoned")) is None
        head = session.scalars(sa.select(AuditChainHead).where(AuditChainHead.lab_id == lab.id)).one()
        assert head.last_seq == 1
    add_events(sessions, lab.id, 2)
    with sessions() as session:
        assert verify(session, lab.id, keys.public_key()).head_seq == 3


def test_modified_field_is_found_at_its_sequence_number(sessions, make_lab, keys):
    lab = make_lab()
    add_events(sessions, lab.id, 9)
    with transaction(sessions) as session:
        session.execute(
            sa.update(AuditEvent)
            .where(AuditEvent.lab_id == lab.id, AuditEvent.seq == 6)
            .values(actor_id="someone-else")
        )
    assert broken_seq(sessions, lab.id, keys.public_key()) == 6


def test_deleted_event_is_found_at_the_gap(sessions, make_lab, keys):
    lab = make_lab()
    add_events(sessions, lab.id, 9)
    with transaction(sessions) as session:
        session.execute(sa.delete(AuditEvent).where(AuditEvent.lab_id == lab.id, AuditEvent.seq == 4))
    assert broken_seq(sessions, lab.id, keys.public_key()) == 4


def test_inserted_event_is_found_where_it_was_inserted(sessions, make_lab, keys):
    lab = make_lab()
    add_events(sessions, lab.id, 9)
    with transaction(sessions) as session:
        rows = session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.lab_id == lab.id, AuditEvent.seq >= 5)
            .order_by(AuditEvent.seq.desc())
        ).all()
        for row in rows:  # make room at 5, highest first so (lab, seq) stays unique
            row.seq += 1
            session.flush()
        template = rows[-1]
        session.add(
            AuditEvent(
                lab_id=lab.id,
                seq=5,
                occurred_at=template.occurred_at,
                actor_type="manager",
                actor_id="m",
                category="operation",
                action="design.delete",
                target=None,
                outcome="success",
                reason=None,
                client_address=None,
                device_id=None,
                request_id=None,
                details={},
                prev_hash=template.prev_hash,
                hash="0" * 64,
            )
        )
    assert broken_seq(sessions, lab.id, keys.public_key()) == 5


def test_reordered_events_are_found_at_the_first_swapped_position(sessions, make_lab, keys):
    lab = make_lab()
    add_events(sessions, lab.id, 9)
    with transaction(sessions) as session:
        a = session.scalars(sa.select(AuditEvent).where(AuditEvent.lab_id == lab.id, AuditEvent.seq == 7)).one()
        b = session.scalars(sa.select(AuditEvent).where(AuditEvent.lab_id == lab.id, AuditEvent.seq == 8)).one()
        a.seq = -1
        session.flush()
        b.seq = 7
        session.flush()
        a.seq = 8
    assert broken_seq(sessions, lab.id, keys.public_key()) == 7


def test_truncated_tail_is_found_against_the_chain_head(sessions, make_lab, keys):
    lab = make_lab()
    add_events(sessions, lab.id, 9)
    with transaction(sessions) as session:
        session.execute(sa.delete(AuditEvent).where(AuditEvent.lab_id == lab.id, AuditEvent.seq >= 8))
    assert broken_seq(sessions, lab.id, keys.public_key()) == 8


def test_rewritten_history_is_found_by_a_signed_checkpoint(sessions, make_lab, keys):
    lab = make_lab()
    add_events(sessions, lab.id, 5)
    with transaction(sessions) as session:
        checkpoint = write_checkpoint(session, lab.id, keys)
        assert checkpoint.seq == 6
    with transaction(sessions) as session:  # rewrite event 3 and recompute every hash after it
        from gateway.audit.chain import event_hash, genesis_hash
        from gateway.audit.service import as_chained

        prev = genesis_hash(lab.id)
        for row in session.scalars(sa.select(AuditEvent).where(AuditEvent.lab_id == lab.id).order_by(AuditEvent.seq)):
            if row.seq == 3:
                row.actor_id = "forger"
            row.prev_hash = prev
            row.hash = prev = event_hash(as_chained(row))
        session.execute(sa.update(AuditChainHead).where(AuditChainHead.lab_id == lab.id).values(last_hash=prev))
    assert broken_seq(sessions, lab.id, keys.public_key()) == 6


def test_forged_checkpoint_signature_is_refused(sessions, make_lab, keys, tmp_path):
    from gateway.keys.local import LocalKeyProvider

    lab = make_lab()
    other_gateway = LocalKeyProvider.open(tmp_path / "other" / "key.json")
    with transaction(sessions) as session:
        write_checkpoint(session, lab.id, other_gateway)
    assert broken_seq(sessions, lab.id, keys.public_key()) == 1
    with sessions() as session:
        assert verify(session, lab.id, other_gateway.public_key()).count == 1


def test_checkpoint_is_signed_over_the_current_head(sessions, make_lab, keys):
    lab = make_lab()
    add_events(sessions, lab.id, 3)
    with transaction(sessions) as session:
        first = write_checkpoint(session, lab.id, keys)
        again = write_checkpoint(session, lab.id, keys)
        head = session.scalars(sa.select(AuditChainHead).where(AuditChainHead.lab_id == lab.id)).one()
        assert (first.id, first.seq, first.hash) == (again.id, head.last_seq, head.last_hash)
    with sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditCheckpoint)) == 1


def test_tampering_in_one_lab_leaves_another_labs_chain_verifiable(sessions, make_lab, keys):
    lab_a, lab_b = make_lab(), make_lab()
    add_events(sessions, lab_a.id, 3)
    add_events(sessions, lab_b.id, 3)
    with transaction(sessions) as session:
        session.execute(
            sa.update(AuditEvent).where(AuditEvent.lab_id == lab_a.id, AuditEvent.seq == 2).values(outcome="failure")
        )
    assert broken_seq(sessions, lab_a.id, keys.public_key()) == 2
    with sessions() as session:
        assert verify(session, lab_b.id, keys.public_key()).count == 4


def test_concurrent_writers_never_fork_the_chain(sessions, make_lab, keys):
    """8 writers × 500 events, each in its own transaction, give one unbroken chain of 4,000."""
    lab = make_lab()
    writers, per_writer = 8, 500
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(writer: int) -> None:
        try:
            start.wait()
            for n in range(per_writer):
                with transaction(sessions) as session:
                    record(
                        session,
                        AuditEntry(
                            lab_id=lab.id,
                            category="access",
                            action="api.request",
                            actor_type="technician",
                            actor_id=f"w{writer}",
                            details={"n": n},
                        ),
                    )
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sessions() as session:
        verified = verify(session, lab.id, keys.public_key())
        assert verified.count == writers * per_writer + 1  # plus the lab.create event
        per_actor = dict(
            session.execute(
                sa.select(AuditEvent.actor_id, sa.func.count())
                .where(AuditEvent.action == "api.request")
                .group_by(AuditEvent.actor_id)
            ).all()
        )
        assert per_actor == {f"w{w}": per_writer for w in range(writers)}


def test_verify_while_writers_append_reports_no_false_tampering(sessions, make_lab, keys):
    lab = make_lab()
    stop = threading.Event()

    def append_until_stopped() -> None:
        while not stop.is_set():
            add_events(sessions, lab.id, 1)

    writer = threading.Thread(target=append_until_stopped)
    writer.start()
    try:
        for _ in range(40):
            with sessions() as session:
                verify(session, lab.id, keys.public_key())
            with transaction(sessions) as session:
                write_checkpoint(session, lab.id, keys)
    finally:
        stop.set()
        writer.join()
    with sessions() as session:
        assert verify(session, lab.id, keys.public_key()).count > 1


def test_event_appended_behind_the_heads_back_is_found(sessions, make_lab, keys):
    lab = make_lab()
    add_events(sessions, lab.id, 4)
    with transaction(sessions) as session:
        last = session.scalars(sa.select(AuditEvent).where(AuditEvent.lab_id == lab.id, AuditEvent.seq == 5)).one()
        from gateway.audit.chain import event_hash
        from gateway.audit.service import as_chained

        forged = AuditEvent(
            lab_id=lab.id, seq=6, occurred_at=last.occurred_at, actor_type="manager", actor_id="m",
            category="operation", action="design.release", target=None, outcome="success", reason=None,
            client_address=None, device_id=None, request_id=None, details={}, prev_hash=last.hash, hash="",
        )  # fmt: skip
        forged.hash = event_hash(as_chained(forged))
        session.add(forged)
    assert broken_seq(sessions, lab.id, keys.public_key()) == 6


def test_tail_cut_with_the_head_rewound_is_found_by_a_checkpoint(sessions, make_lab, keys):
    lab = make_lab()
    add_events(sessions, lab.id, 8)
    with transaction(sessions) as session:
        write_checkpoint(session, lab.id, keys)
    with transaction(sessions) as session:
        kept = session.scalars(sa.select(AuditEvent).where(AuditEvent.lab_id == lab.id, AuditEvent.seq == 6)).one()
        session.execute(sa.delete(AuditEvent).where(AuditEvent.lab_id == lab.id, AuditEvent.seq > 6))
        session.execute(
            sa.update(AuditChainHead).where(AuditChainHead.lab_id == lab.id).values(last_seq=6, last_hash=kept.hash)
        )
    assert broken_seq(sessions, lab.id, keys.public_key()) == 7
