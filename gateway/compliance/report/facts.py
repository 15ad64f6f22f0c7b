"""The lab as the compliance report sees it, read once: its people, remote workers, devices with their latest
posture, and the upload gate's verdict on each remote worker (G1–G21). Every row's evidence starts here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.compliance.documents import lab_policy
from gateway.compliance.gates import (
    AttestationState,
    Failure,
    attestation_states,
    posture_failures,
    remote_work_failures,
)
from gateway.compliance.report.model import Person
from gateway.identity.models import Account, Device, Lab, PostureRecord, TechnicianProfile
from gateway.japan import japan_today
from gateway.policy import SecurityPolicy


@dataclass(frozen=True)
class DeviceFacts:
    """An approved device of an active account and its latest posture report (at login, enrolment or a check)."""

    device: Device
    owner: Person
    posture: PostureRecord | None
    failures: tuple[Failure, ...]  # gates.posture_failures: the latest report's failing checks, each with its G-id

    def failures_for(self, requirement: str) -> list[Failure]:
        return [failure for failure in self.failures if failure.requirement == requirement]


@dataclass(frozen=True)
class RemoteWorker:
    """A technician approved for remote work (active, identity verified) and what the upload gate says of them."""

    person: Person
    devices: tuple[DeviceFacts, ...]
    failures: tuple[Failure, ...]  # gates.remote_work_failures with each of their devices, less the posture's
    attestations: tuple[AttestationState, ...]

    def failures_for(self, requirement: str) -> list[Failure]:
        return [failure for failure in self.failures if failure.requirement == requirement]


@dataclass(frozen=True)
class LabFacts:
    lab: Lab
    policy: SecurityPolicy
    today: date
    now: datetime
    people: dict[uuid.UUID, Person]  # every account of the lab
    workers: tuple[RemoteWorker, ...]
    managers: tuple[Person, ...]  # active managers
    onboarding: tuple[Person, ...]  # active technicians not yet identity-verified: they may only enrol a device
    devices: tuple[DeviceFacts, ...]

    def active(self, role: str | None = None) -> list[Person]:
        return [p for p in self.people.values() if p.account.status == "active" and role in (None, p.account.role)]


def _profiles(session: Session) -> dict[uuid.UUID, TechnicianProfile]:
    newest = sa.select(sa.func.max(TechnicianProfile.id)).group_by(TechnicianProfile.account_id)
    current = session.scalars(sa.select(TechnicianProfile).where(TechnicianProfile.id.in_(newest)))
    return {profile.account_id: profile for profile in current}


def _latest_posture(session: Session) -> dict[uuid.UUID, PostureRecord]:
    newest = sa.select(sa.func.max(PostureRecord.id)).group_by(PostureRecord.device_id)
    return {r.device_id: r for r in session.scalars(sa.select(PostureRecord).where(PostureRecord.id.in_(newest)))}


def _devices(session: Session, people: dict[uuid.UUID, Person]) -> tuple[DeviceFacts, ...]:
    postures = _latest_posture(session)
    active = session.scalars(sa.select(Device).where(Device.status == "active").order_by(Device.created_at))
    owned = [(device, people[device.account_id]) for device in active]
    return tuple(
        DeviceFacts(device, owner, postures.get(device.id), tuple(posture_failures(session, device)))
        for device, owner in owned
        if owner.account.status == "active"
    )


def _worker(
    session: Session, person: Person, devices: tuple[DeviceFacts, ...], policy: SecurityPolicy, today: date
) -> RemoteWorker:
    """The gate's failures with each of the worker's devices (a personal one needs more), merged; the device's
    posture failures are left to the device rows, which name the device."""
    mine = tuple(d for d in devices if d.device.account_id == person.account.id)
    failures: dict[Failure, None] = {}
    states: dict[tuple[str, date | None], AttestationState] = {}
    for owned in mine or (None,):
        device = owned.device if owned else None
        posture = owned.failures if owned else ()
        for failure in remote_work_failures(session, person.account, device, policy, today):
            if failure not in posture:
                failures.setdefault(failure)
        for state in attestation_states(session, person.account, policy, device):
            states.setdefault((state.kind, state.attested_on), state)
    return RemoteWorker(person, mine, tuple(failures), tuple(states.values()))


def lab_facts(session: Session, lab_id: uuid.UUID, now: datetime) -> LabFacts:
    """Read the lab (the session is bound to it) as of `now`. Validity is counted on Japan's date, as the upload
    gate counts it (docs/compliance.md), so the report and the gate agree to the day."""
    lab = session.get(Lab, lab_id)
    assert lab is not None
    policy = lab_policy(session, lab_id)
    today = japan_today(now)
    profiles = _profiles(session)
    accounts = session.scalars(sa.select(Account).order_by(Account.username))
    people = {a.id: Person(a, profiles.get(a.id)) for a in accounts}
    devices = _devices(session, people)
    technicians = [p for p in people.values() if p.account.status == "active" and p.account.role == "technician"]
    workers = tuple(_worker(session, p, devices, policy, today) for p in technicians if p.account.identity_verified)
    return LabFacts(
        lab=lab,
        policy=policy,
        today=today,
        now=now,
        people=people,
        workers=workers,
        managers=tuple(p for p in people.values() if p.account.status == "active" and p.account.role == "manager"),
        onboarding=tuple(p for p in technicians if not p.account.identity_verified),
        devices=devices,
    )
