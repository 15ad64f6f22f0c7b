"""Retention (G19), on SQLite and PostgreSQL: only whole closed segments past their retention go, the purge
is itself on record, and what remains verifies from the signed checkpoint the purge ended at."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.audit import service
from gateway.audit.chain import ChainBroken
from gateway.audit.checkpoints import enable_checkpoints
from gateway.audit.models import AuditCheckpoint, AuditEvent
from gateway.audit.publication import FilePublisher, verify_against_published
from gateway.audit.retention import PurgeRefused, plan_purge, purge_expired
from gateway.audit.service import verify
from gateway.db.engine import transaction
from tests.audit.events import add_events
from tests.audit.test_checkpoints import audit_policy

NOW = datetime.now(UTC)
POLICY = audit_policy(every_events=5)


@pytest.fixture
def clock(monkeypatch):
    """The time `record` and `write_checkpoint` stamp on what they write; set `clock.now` to travel."""

    class Clock:
        now = NOW

    monkeypatch.setattr(service, "utcnow", lambda: Clock.now)
    return Clock


def seqs(sessions, lab_id, model=AuditEvent) -> list[int]:
    with sessions() as session:
        return list(session.scalars(sa.select(model.seq).where(model.lab_id == lab_id).order_by(model.seq)))


def purge(sessions, lab_id, keys, now=NOW, policy=POLICY, **options):
    with transaction(sessions) as session:
        return purge_expired(session, lab_id, policy, now, keys, **options)


@pytest.fixture
def aged_lab(sessions, make_lab, keys, clock):
    """Events 1..10 seven years old (checkpoints at 5 and 10), 11..15 two years old (checkpoint at 15),
    16..17 two years old after the last checkpoint."""
    enable_checkpoints(sessions, keys, POLICY, None)
    clock.now = NOW - timedelta(days=7 * 366)
    lab = make_lab()
    add_events(sessions, lab.id, 9)
    clock.now = NOW - timedelta(days=2 * 366)
    add_events(sessions, lab.id, 7)
    clock.now = NOW
    assert seqs(sessions, lab.id, AuditCheckpoint) == [5, 10, 15]
    return lab


def test_purge_removes_only_closed_expired_segments_and_verify_passes(sessions, aged_lab, keys):
    assert purge(sessions, aged_lab.id, keys).through_seq == 10
    assert seqs(sessions, aged_lab.id) == list(range(11, 19))  # 18 is the purge, signed at once
    assert seqs(sessions, aged_lab.id, AuditCheckpoint) == [5, 10, 15, 18]  # purged segments keep theirs
    with sessions() as session:
        event = session.scalars(sa.select(AuditEvent).where(AuditEvent.seq == 18)).one()
        anchor = session.scalars(sa.select(AuditCheckpoint).where(AuditCheckpoint.seq == 10)).one()
        first = session.scalars(sa.select(AuditEvent).where(AuditEvent.seq == 11)).one()
        verified = verify(session, aged_lab.id, keys.public_key())
    assert (event.action, event.actor_type, event.category) == ("audit.purge", "gateway", "operation")
    assert event.details["count"] == 10
    assert (event.details["first_seq"], event.details["through_seq"]) == (1, 10)
    assert event.details["checkpoint"]["seq"] == 10 and event.details["checkpoint"]["hash"] == anchor.hash
    assert first.prev_hash == anchor.hash
    assert (verified.count, verified.head_seq) == (8, 18)


def test_a_later_purge_moves_the_anchor_and_the_chain_still_verifies(sessions, aged_lab, keys, clock):
    purge(sessions, aged_lab.id, keys)
    add_events(sessions, aged_lab.id, 2)  # 19, 20 (20 is a checkpoint)
    later = NOW + timedelta(days=4 * 366)  # 11..17 are now past five years; 18..20 are not
    assert purge(sessions, aged_lab.id, keys, now=later).through_seq == 15
    assert seqs(sessions, aged_lab.id)[0] == 16
    with sessions() as session:
        assert verify(session, aged_lab.id, keys.public_key()).head_seq == 21  # 21 records the second purge
    assert purge(sessions, aged_lab.id, keys, now=later) is None  # 16..18 holds the first purge, 4 years old


def test_open_segment_is_never_purged_however_old(sessions, make_lab, keys, clock):
    enable_checkpoints(sessions, keys, POLICY, None)
    clock.now = NOW - timedelta(days=9 * 366)
    lab = make_lab()
    add_events(sessions, lab.id, 6)  # 1..7, checkpoint at 5; 6 and 7 follow it unsigned
    clock.now = NOW
    assert purge(sessions, lab.id, keys).through_seq == 5
    assert seqs(sessions, lab.id)[:3] == [6, 7, 8]
    with pytest.raises(PurgeRefused, match="does not end a closed segment"), transaction(sessions) as session:
        purge_expired(session, lab.id, POLICY, NOW, keys, through_seq=7)


def test_purge_refuses_to_cut_into_a_segment_that_is_not_closed_or_not_expired(sessions, aged_lab, keys):
    with pytest.raises(PurgeRefused, match="does not end a closed segment"):
        purge(sessions, aged_lab.id, keys, through_seq=12)
    with pytest.raises(PurgeRefused, match=r"events 11\.\.15 are not all past their retention"):
        purge(sessions, aged_lab.id, keys, through_seq=15)
    assert seqs(sessions, aged_lab.id) == list(range(1, 18))
    assert purge(sessions, aged_lab.id, keys, through_seq=5).through_seq == 5
    assert seqs(sessions, aged_lab.id)[0] == 6


def test_a_segment_waits_for_the_longest_retention_of_its_categories(sessions, make_lab, keys, clock):
    enable_checkpoints(sessions, keys, POLICY, None)
    policy = audit_policy(every_events=5, auth=8)
    clock.now = NOW - timedelta(days=6 * 366)
    lab = make_lab()
    add_events(sessions, lab.id, 3, category="access")  # 2..4
    add_events(sessions, lab.id, 1, category="auth")  # 5: segment 1..5 holds an auth event (8 years)
    add_events(sessions, lab.id, 5, category="access")  # 6..10: access only (5 years)
    clock.now = NOW
    with sessions() as session:
        assert plan_purge(session, lab.id, policy, NOW) is None  # the oldest segment is not expired
        assert plan_purge(session, lab.id, audit_policy(every_events=5), NOW).through_seq == 10
    assert purge(sessions, lab.id, keys, policy=policy) is None
    assert seqs(sessions, lab.id)[0] == 1


def test_dry_run_plan_deletes_nothing(sessions, aged_lab, keys):
    with sessions() as session:
        plan = plan_purge(session, aged_lab.id, POLICY, NOW)
    assert (plan.first_seq, plan.through_seq, plan.count) == (1, 10, 10)
    assert seqs(sessions, aged_lab.id) == list(range(1, 18))


def test_a_broken_chain_is_not_purged_so_the_evidence_stays(sessions, aged_lab, keys):
    with transaction(sessions) as session:
        session.execute(sa.update(AuditEvent).where(AuditEvent.seq == 3).values(actor_id="someone-else"))
    with pytest.raises(ChainBroken) as broken:
        purge(sessions, aged_lab.id, keys)
    assert broken.value.seq == 3
    assert seqs(sessions, aged_lab.id) == list(range(1, 18))


def test_events_deleted_without_a_recorded_purge_are_found(sessions, aged_lab, keys):
    with transaction(sessions) as session:  # a whole segment removed, as a purge would, but unrecorded
        session.execute(sa.delete(AuditEvent).where(AuditEvent.seq <= 5))
    with sessions() as session, pytest.raises(ChainBroken) as broken:
        verify(session, aged_lab.id, keys.public_key())
    assert broken.value.seq == 1


def test_events_deleted_beyond_the_recorded_purge_are_found(sessions, aged_lab, keys):
    purge(sessions, aged_lab.id, keys)
    with transaction(sessions) as session:
        session.execute(sa.delete(AuditEvent).where(AuditEvent.seq <= 15))
    with sessions() as session, pytest.raises(ChainBroken) as broken:
        verify(session, aged_lab.id, keys.public_key())
    assert broken.value.seq == 11


def test_a_forged_anchor_is_found(sessions, aged_lab, keys):
    purge(sessions, aged_lab.id, keys)
    with transaction(sessions) as session:
        session.execute(sa.update(AuditCheckpoint).where(AuditCheckpoint.seq == 10).values(hash="0" * 64))
    with sessions() as session, pytest.raises(ChainBroken) as broken:
        verify(session, aged_lab.id, keys.public_key())
    assert broken.value.seq == 10  # its signature no longer verifies


def test_after_a_purge_the_published_checkpoints_still_agree(sessions, make_lab, keys, clock, tmp_path):
    publisher = FilePublisher(tmp_path / "checkpoints.jsonl")
    background = enable_checkpoints(sessions, keys, POLICY, publisher)
    clock.now = NOW - timedelta(days=7 * 366)
    lab = make_lab()
    add_events(sessions, lab.id, 11)  # checkpoints at 5 and 10
    clock.now = NOW
    with transaction(sessions) as session:
        assert purge_expired(session, lab.id, POLICY, NOW, keys, publisher=publisher).through_seq == 10
    background.wait(timeout=60)
    with sessions() as session:
        result = verify_against_published(session, lab.id, keys.public_key(), publisher)
    assert (result.chain.count, result.chain.head_seq, result.published) == (3, 13, 3)


def test_admin_audit_purge_command_plans_and_refuses(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from clients.cli import main

    monkeypatch.delenv("DENTGATE_CONFIG_FILE", raising=False)
    data = str(tmp_path / "data")
    runner = CliRunner()
    created = runner.invoke(main, ["admin", "init", "--lab", "Lab", "--manager", "boss", "--data-dir", data])
    assert created.exit_code == 0, created.output
    planned = runner.invoke(main, ["admin", "audit-purge", "--data-dir", data, "--dry-run", "--json"])
    assert planned.exit_code == 0, planned.output
    [row] = json.loads(planned.output)
    assert (row["dry_run"], row["through_seq"], row["count"]) == (True, None, 0)
    refused = runner.invoke(main, ["admin", "audit-purge", "--data-dir", data, "--lab", row["lab"], "--through", "1"])
    assert refused.exit_code == 1
    assert "does not end a closed segment" in refused.output
