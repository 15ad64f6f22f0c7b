"""Automatic checkpoints (G19), on SQLite and PostgreSQL: every N events in the recording transaction, and
a housekeeping chore for events left unsigned T minutes."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from importlib import resources

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from gateway.audit.checkpoints import checkpoint_due_labs, enable_checkpoints
from gateway.audit.models import AuditChainHead, AuditCheckpoint
from gateway.audit.service import AuditEntry, record, verify
from gateway.db.base import utcnow
from gateway.db.engine import transaction
from gateway.policy import AuditPolicy, default_policy, parse_policy
from tests.audit.events import add_events


def audit_policy(every_events: int = 1000, every_minutes: int = 10, **years: int) -> AuditPolicy:
    return AuditPolicy(
        checkpoint_every_events=every_events,
        checkpoint_every_minutes=every_minutes,
        retention_years_access=years.get("access", 5),
        retention_years_auth=years.get("auth", 5),
        retention_years_operation=years.get("operation", 5),
    )


def checkpoint_seqs(sessions, lab_id) -> list[int]:
    with sessions() as session:
        return list(
            session.scalars(
                sa.select(AuditCheckpoint.seq).where(AuditCheckpoint.lab_id == lab_id).order_by(AuditCheckpoint.seq)
            )
        )


def default_toml() -> str:
    return resources.files("policies").joinpath("default.toml").read_text(encoding="utf-8")


def test_the_default_policy_checkpoints_and_keeps_logs_five_years():
    audit = default_policy().audit
    assert (audit.checkpoint_every_events, audit.checkpoint_every_minutes) == (1000, 10)
    assert audit.longest_retention_years >= 5
    section = default_toml().split("[audit]", 1)[1].split("\n[", 1)[0]
    settings = [line for line in section.splitlines() if line and not line.startswith("#")]
    assert len(settings) == 5
    assert all(re.search(r"#\s*G19\b", line) for line in settings)


@pytest.mark.parametrize("category", ["access", "auth", "operation"])
def test_retention_under_five_years_is_refused(category):
    shorter = re.sub(rf"retention_years_{category} = \d+", f"retention_years_{category} = 4", default_toml())
    with pytest.raises(ValidationError, match=f"retention_years_{category}"):
        parse_policy(shorter)


def test_record_signs_a_checkpoint_at_every_multiple_of_n(sessions, make_lab, keys):
    enable_checkpoints(sessions, keys, audit_policy(every_events=5), None)
    lab = make_lab()  # lab.create is event 1
    add_events(sessions, lab.id, 3)
    assert checkpoint_seqs(sessions, lab.id) == []
    add_events(sessions, lab.id, 8)  # up to 12, one transaction crossing 5 and 10
    assert checkpoint_seqs(sessions, lab.id) == [5, 10]
    add_events(sessions, lab.id, 3)
    assert checkpoint_seqs(sessions, lab.id) == [5, 10, 15]
    with sessions() as session:
        assert verify(session, lab.id, keys.public_key()).head_seq == 15
        assert session.scalar(sa.select(AuditCheckpoint.published_at).where(AuditCheckpoint.seq == 5)) is None


def test_the_checkpoint_commits_with_its_event_or_not_at_all(sessions, make_lab, keys):
    enable_checkpoints(sessions, keys, audit_policy(every_events=3), None)
    lab = make_lab()
    with pytest.raises(RuntimeError), transaction(sessions) as session:
        for _ in range(4):
            record(session, AuditEntry(lab_id=lab.id, category="operation", action="x", actor_type="technician"))
        raise RuntimeError("the operation failed")
    assert checkpoint_seqs(sessions, lab.id) == []
    add_events(sessions, lab.id, 2)
    assert checkpoint_seqs(sessions, lab.id) == [3]


def test_time_based_checkpoint_signs_events_left_unsigned_too_long(sessions, make_lab, keys):
    policy = audit_policy(every_events=1000, every_minutes=10)
    busy, idle = make_lab(), make_lab()
    add_events(sessions, busy.id, 3)
    now = utcnow()
    assert checkpoint_due_labs(sessions, keys, now, policy) == 0  # nothing has waited 10 minutes yet
    later = now + timedelta(minutes=11)
    assert checkpoint_due_labs(sessions, keys, later, policy) == 2
    assert checkpoint_seqs(sessions, busy.id) == [4]
    assert checkpoint_seqs(sessions, idle.id) == [1]
    assert checkpoint_due_labs(sessions, keys, later, policy) == 0  # covered: nothing new to sign
    add_events(sessions, busy.id, 2)
    assert checkpoint_due_labs(sessions, keys, utcnow(), policy) == 0  # the new events are not 10 minutes old
    assert checkpoint_due_labs(sessions, keys, utcnow() + timedelta(minutes=10), policy) == 1
    assert checkpoint_seqs(sessions, busy.id) == [4, 6]
    assert checkpoint_seqs(sessions, idle.id) == [1]
    with sessions() as session:
        head = session.scalars(sa.select(AuditChainHead).where(AuditChainHead.lab_id == busy.id)).one()
        assert verify(session, busy.id, keys.public_key()).head_hash == head.last_hash


def test_replicas_running_the_chore_together_sign_each_head_once(sessions, make_lab, keys):
    policy = audit_policy(every_minutes=1)
    lab = make_lab()
    add_events(sessions, lab.id, 4)
    later = utcnow() + timedelta(minutes=2)
    errors: list[BaseException] = []

    def replica() -> None:
        try:
            checkpoint_due_labs(sessions, keys, later, policy)
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert checkpoint_seqs(sessions, lab.id) == [5]
