"""Training of managers and technicians (G21): the sessions the lab held or sent people to, and who is due again."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.audit.service import AuditEntry, record
from gateway.compliance.gates import training_status
from gateway.compliance.models import TrainingAttendance, TrainingSession
from gateway.errors import DentGateError
from gateway.identity.errors import NotFound
from gateway.identity.models import Account
from gateway.japan import japan_today
from gateway.policy import SecurityPolicy

TRAINED_ROLES = ("manager", "technician")
DUE_SOON_DAYS = 30
MAX_DURATION_MINUTES = 7 * 24 * 60

DueStatus = Literal["current", "due-soon", "overdue", "never"]


class TrainingInvalid(DentGateError):
    code = "training-invalid"
    status = 422
    title = "The training record is not valid"


@dataclass(frozen=True)
class HeldTraining:
    """A recorded training session with the people who attended it."""

    training: TrainingSession
    attendees: list[Account]


@dataclass(frozen=True)
class TrainingDue:
    """Where one manager or technician stands against the curriculum of their role (G21)."""

    account: Account
    status: DueStatus
    due_on: date | None  # when the first required topic runs out; None when a topic was never covered
    missing: tuple[str, ...]  # required topics without a current training
    last_trained_on: date | None


def _text(value: str, what: str) -> str:
    value = value.strip()
    if not value or len(value) > 200:
        raise TrainingInvalid(f"the {what} must be 1-200 characters")
    return value


def _topics(topics: list[str], policy: SecurityPolicy) -> list[str]:
    known = [t.id for t in policy.training.topics]
    unknown = [t for t in topics if t not in known]
    if not topics or unknown:
        wrong = f"unknown topic {', '.join(map(repr, unknown))}; " if unknown else "name at least one topic; "
        raise TrainingInvalid(f"{wrong}the lab's curriculum has {', '.join(known)}")
    return [t for t in known if t in topics]  # curriculum order, each once


def _attendees(session: Session, actor: Account, attendee_ids: list[uuid.UUID]) -> list[Account]:
    if not attendee_ids:
        raise TrainingInvalid("name at least one attendee")
    people = []
    for account_id in dict.fromkeys(attendee_ids):
        account = session.get(Account, account_id)
        if account is None or account.lab_id != actor.lab_id:
            raise NotFound(f"no account {account_id} in this lab")
        if account.role not in TRAINED_ROLES:
            raise TrainingInvalid(f"{account.username} is an {account.role}; training is recorded for "
                                  "managers and technicians")  # fmt: skip
        if account.status == "disabled":
            raise TrainingInvalid(f"{account.username}'s account is disabled")
        people.append(account)
    return people


def record_training(
    session: Session,
    actor: Account,
    held_on: date,
    title: str,
    provider: str,
    topics: list[str],
    duration_minutes: int,
    attendee_ids: list[uuid.UUID],
    policy: SecurityPolicy,
    *,
    today: date | None = None,
) -> TrainingSession:
    """Record a training held on `held_on` (not in the future) covering curriculum `topics`, and who attended (G21)."""
    today = today or japan_today()
    if held_on > today:
        raise TrainingInvalid(f"the training date {held_on} is in the future; record a training once it was held")
    if not 1 <= duration_minutes <= MAX_DURATION_MINUTES:
        raise TrainingInvalid(f"the duration is 1-{MAX_DURATION_MINUTES} minutes")
    covered = _topics(topics, policy)
    people = _attendees(session, actor, attendee_ids)
    training = TrainingSession(
        lab_id=actor.lab_id, held_on=held_on, title=_text(title, "title"), provider=_text(provider, "provider"),
        topics=covered, duration_minutes=duration_minutes, recorded_by=actor.id,
    )  # fmt: skip
    session.add(training)
    session.flush()
    session.add_all(TrainingAttendance(lab_id=actor.lab_id, session_id=training.id, account_id=p.id) for p in people)
    session.flush()
    record(session, AuditEntry(
        lab_id=actor.lab_id, category="operation", action="training.record", actor_type=actor.role,
        actor_id=str(actor.id), target=f"training:{training.id}",
        details={"held_on": held_on.isoformat(), "title": training.title, "provider": training.provider,
                 "topics": covered, "duration_minutes": duration_minutes,
                 "attendees": [{"account_id": str(p.id), "username": p.username} for p in people]},
    ))  # fmt: skip
    return training


def list_trainings(session: Session, lab_id: uuid.UUID) -> list[HeldTraining]:
    """The lab's training sessions, newest first, each with its attendees (G21)."""
    trainings = session.scalars(
        sa.select(TrainingSession)
        .where(TrainingSession.lab_id == lab_id)
        .order_by(TrainingSession.held_on.desc(), TrainingSession.recorded_at.desc())
    ).all()
    attended = session.execute(
        sa.select(TrainingAttendance.session_id, Account)
        .join(Account, Account.id == TrainingAttendance.account_id)
        .where(TrainingAttendance.lab_id == lab_id)
        .order_by(Account.username)
    ).all()
    by_training: dict[uuid.UUID, list[Account]] = {}
    for training_id, account in attended:
        by_training.setdefault(training_id, []).append(account)
    return [HeldTraining(t, by_training.get(t.id, [])) for t in trainings]


def held_training(session: Session, training: TrainingSession) -> HeldTraining:
    """One recorded training with its attendees, by username."""
    attendees = session.scalars(
        sa.select(Account)
        .join(TrainingAttendance, TrainingAttendance.account_id == Account.id)
        .where(TrainingAttendance.session_id == training.id)
        .order_by(Account.username)
    ).all()
    return HeldTraining(training, list(attendees))


def training_due(session: Session, lab_id: uuid.UUID, policy: SecurityPolicy, today: date) -> list[TrainingDue]:
    """Per manager and technician (disabled accounts aside): current, due soon (within 30 days), overdue or never
    trained, the topics missing and the date the training runs out (G21)."""
    people = session.scalars(
        sa.select(Account)
        .where(Account.lab_id == lab_id, Account.role.in_(TRAINED_ROLES), Account.status != "disabled")
        .order_by(Account.role, Account.username)
    ).all()
    return [_due(session, account, policy, today) for account in people]


def _due(session: Session, account: Account, policy: SecurityPolicy, today: date) -> TrainingDue:
    status = training_status(session, account, policy, today)
    last = max(status.covered.values(), default=None)
    if not status.covered:
        state: DueStatus = "never"
    elif not status.current:
        state = "overdue"
    elif status.due_on is not None and status.due_on <= today + timedelta(days=DUE_SOON_DAYS):
        state = "due-soon"
    else:
        state = "current"
    return TrainingDue(account, state, status.due_on, status.missing, last)
