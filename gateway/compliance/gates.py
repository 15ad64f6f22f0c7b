"""What the guideline forbids, refused before it happens: a technician uploads, and a manager approves remote
workers, devices and stations, only while every condition holds. Each unmet condition is a `Failure` naming
its rule and G-id, so a refusal lists every reason at once and the compliance report reuses the same rules."""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.compliance.documents import current_document, find_acknowledgement, lab_policy
from gateway.compliance.models import Attestation, RosterExport, TrainingAttendance, TrainingSession
from gateway.errors import DentGateError
from gateway.identity.models import Account, Device, PostureRecord
from gateway.identity.profiles import current_profile
from gateway.policy import SecurityPolicy


@dataclass(frozen=True)
class Failure:
    """One unmet condition: a stable rule id, the requirement it serves and a readable message."""

    rule: str
    requirement: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "requirement": self.requirement, "message": self.message}


class RemoteWorkRefused(DentGateError):
    code = "remote-work-refused"
    status = 403
    title = "The guideline's conditions for remote work are not met"

    def __init__(self, failures: list[Failure]) -> None:
        super().__init__("; ".join(f"{f.message} ({f.requirement})" for f in failures))
        self.failures = [f.as_dict() for f in failures]


class ApprovalRefused(RemoteWorkRefused):
    code = "approval-refused"
    title = "The manager's training is not current (G21)"


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class TrainingStatus:
    """Per required topic, the newest training that covered it and until when it counts (G21)."""

    role: str
    covered: dict[str, date]  # topic -> date the newest covering training was held
    valid_until: dict[str, date]
    missing: tuple[str, ...]  # required topics with no current training
    due_on: date | None  # the earliest date a required topic runs out (None: some topic never trained)

    @property
    def current(self) -> bool:
        return not self.missing


def training_status(session: Session, account: Account, policy: SecurityPolicy, today: date) -> TrainingStatus:
    required = policy.training.required_topics(account.role)
    held = session.execute(
        sa.select(TrainingSession.held_on, TrainingSession.topics)
        .join(TrainingAttendance, TrainingAttendance.session_id == TrainingSession.id)
        .where(TrainingAttendance.account_id == account.id, TrainingSession.lab_id == account.lab_id)
    ).all()
    covered: dict[str, date] = {}
    for held_on, topics in held:
        for topic in topics:
            if topic in required and (topic not in covered or covered[topic] < held_on):
                covered[topic] = held_on
    valid_until = {t: add_months(d, policy.training.validity_months) for t, d in covered.items()}
    missing = tuple(t for t in required if t not in valid_until or valid_until[t] < today)
    due_on = min((valid_until[t] for t in required), default=None) if all(t in valid_until for t in required) else None
    return TrainingStatus(account.role, covered, valid_until, missing, due_on)


def training_failures(status: TrainingStatus, policy: SecurityPolicy) -> list[Failure]:
    if status.current:
        return []
    titles = {t.id: t.title_en for t in policy.training.topics}
    missing = ", ".join(titles[t] for t in status.missing)
    expired = [t for t in status.missing if t in status.valid_until]
    rule = "training-expired" if expired else "training-missing"
    when = f" (ran out {min(status.valid_until[t] for t in expired).isoformat()})" if expired else ""
    return [Failure(rule, "G21", f"no current training of the {status.role} covering: {missing}{when}")]


@dataclass(frozen=True)
class AttestationState:
    kind: str
    attested_on: date | None
    valid_until: date | None

    def current(self, today: date) -> bool:
        return self.valid_until is not None and self.valid_until >= today


def required_attestations(policy: SecurityPolicy, device: Device | None) -> tuple[str, ...]:
    personal = device is not None and device.ownership == "personal"
    return policy.attestation.required + (("personal-device-administration",) if personal else ())


def attestation_states(
    session: Session, account: Account, policy: SecurityPolicy, device: Device | None
) -> list[AttestationState]:
    """The newest attestation of each kind the account (and its device, for a personal one) needs."""
    states = []
    for kind in required_attestations(policy, device):
        query = sa.select(sa.func.max(Attestation.attested_on)).where(
            Attestation.account_id == account.id, Attestation.lab_id == account.lab_id, Attestation.kind == kind
        )
        if kind == "personal-device-administration" and device is not None:
            query = query.where(Attestation.device_id == device.id)
        newest = session.scalar(query)
        until = None if newest is None else date.fromordinal(newest.toordinal() + policy.attestation.validity_days)
        states.append(AttestationState(kind, newest, until))
    return states


ATTESTATION_REQUIREMENT = {"privacy-filter": "G5", "screen-lock": "G5", "removable-media": "G15",
                           "personal-device-administration": "G8"}  # fmt: skip


def attestation_failures(states: list[AttestationState], today: date) -> list[Failure]:
    failures = []
    for state in states:
        if state.current(today):
            continue
        requirement = ATTESTATION_REQUIREMENT[state.kind]
        if state.attested_on is None:
            failures.append(Failure("attestation-missing", requirement, f"no {state.kind} attestation"))
        else:
            assert state.valid_until is not None
            message = f"the {state.kind} attestation of {state.attested_on} expired on {state.valid_until}"
            failures.append(Failure("attestation-expired", requirement, message))
    return failures


def unfiled_roster_change(session: Session, account: Account) -> bool:
    """True when the technician's current profile is not the one the latest roster export carried (G3)."""
    profile = current_profile(session, account)
    if profile is None:
        return False
    latest = session.scalar(
        sa.select(RosterExport.entries)
        .where(RosterExport.lab_id == account.lab_id)
        .order_by(RosterExport.id.desc())
        .limit(1)
    )
    filed = {e["account_id"]: e["profile_id"] for e in latest or []}
    return filed.get(str(account.id)) != profile.id


def roster_failure(session: Session, account: Account) -> Failure | None:
    """G3: the prefecture was told of the technician's current remote location and contact details."""
    if not unfiled_roster_change(session, account):
        return None
    message = "the remote location or contact details changed after the last roster export for the prefecture"
    return Failure("roster-unfiled", "G3", message)


def profile_failures(session: Session, account: Account, policy: SecurityPolicy) -> list[Failure]:
    """G1: licence, employing lab and a registered remote location in Japan; G3: the prefecture was told."""
    profile = current_profile(session, account)
    if profile is None:
        return [Failure("profile-missing", "G1", "no licence number and remote location are registered")]
    failures = []
    if not profile.employed_by_lab:
        failures.append(Failure("not-employed", "G1", "the technician is not recorded as working for this lab"))
    unfiled = roster_failure(session, account) if policy.roster.unfiled_change_blocks_upload else None
    return failures + ([unfiled] if unfiled else [])


def policy_failures(session: Session, account: Account) -> list[Failure]:
    """G16: the technician acknowledged the security policy version in force."""
    document = current_document(session, account.lab_id, "security-policy")
    if document is None:
        return [Failure("policy-not-published", "G16", "the lab has published no security policy")]
    if find_acknowledgement(session, account.id, document) is None:
        return [Failure("policy-not-acknowledged", "G16",
                        f"security policy version {document.version} is not acknowledged")]  # fmt: skip
    return []


def posture_failures(session: Session, device: Device | None) -> list[Failure]:
    """G7, G9, G15: the failing checks of the device's newest posture report (at login or reported since)."""
    if device is None:
        return []
    newest = session.scalar(
        sa.select(PostureRecord.failures)
        .where(PostureRecord.device_id == device.id, PostureRecord.lab_id == device.lab_id)
        .order_by(PostureRecord.id.desc())
        .limit(1)
    )
    return [Failure(f["rule"], f["requirement"], f["message"]) for f in newest or []]


def remote_work_failures(
    session: Session, account: Account, device: Device | None, policy: SecurityPolicy, today: date
) -> list[Failure]:
    """Everything that stands between this technician, on this device, and an upload today."""
    return (
        posture_failures(session, device)
        + profile_failures(session, account, policy)
        + policy_failures(session, account)
        + training_failures(training_status(session, account, policy, today), policy)
        + attestation_failures(attestation_states(session, account, policy, device), today)
    )


def require_remote_work(
    session: Session, account_id: uuid.UUID, device_id: uuid.UUID | None, policy: SecurityPolicy, today: date
) -> None:
    """Raise RemoteWorkRefused naming every unmet condition (G1, G3, G5, G8, G15, G16, G21)."""
    account = session.get(Account, account_id)
    assert account is not None
    device = session.get(Device, device_id) if device_id is not None else None
    failures = remote_work_failures(session, account, device, policy, today)
    if failures:
        raise RemoteWorkRefused(failures)


def require_approver_training(session: Session, manager_id: uuid.UUID | None, today: date) -> None:
    """A manager approves remote workers, devices and stations only with current manager training (G21)."""
    manager = session.get(Account, manager_id) if manager_id is not None else None
    if manager is None:
        raise ApprovalRefused([Failure("not-a-manager", "G21", "only a trained manager approves")])
    policy = lab_policy(session, manager.lab_id)
    failures = training_failures(training_status(session, manager, policy, today), policy)
    if failures:
        raise ApprovalRefused(failures)
