"""What a case's 歯科技工録 shows (G20): its versions, each with the remote processes it covers (technician's full
name, device, registered location) and the patient's name only where the caller may see it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.audit.service import record as audit
from gateway.identity.models import Account, Device, TechnicianProfile
from gateway.identity.sessions import Principal, principal_entry
from gateway.keys import KeyProvider
from gateway.records.items import missing_items
from gateway.records.models import RemoteProcess, TechnicianRecord
from gateway.records.service import case_versions, may_see_patient_name, patient_name, processes_of, remote_processes


@dataclass(frozen=True)
class ProcessLine:
    process: RemoteProcess
    technician_name: str
    device_name: str


@dataclass(frozen=True)
class VersionView:
    record: TechnicianRecord
    patient_name: str | None  # None: not recorded, or not shown to this caller
    processes: list[ProcessLine]
    missing: list[str]


@dataclass(frozen=True)
class CaseView:
    versions: list[VersionView]  # oldest first
    processes: list[ProcessLine]  # every remote process of the case, including any after the newest finalizing
    names_shown: bool

    @property
    def current(self) -> VersionView:
        return self.versions[-1]


def technician_name(session: Session, account_id: uuid.UUID, at: datetime) -> str:
    """The full name in the technician's profile as it was at `at` (else the current one, else the username)."""
    newest_first = (
        sa.select(TechnicianProfile.full_name)
        .where(TechnicianProfile.account_id == account_id)
        .order_by(TechnicianProfile.id.desc())
        .limit(1)
    )
    name = session.scalar(newest_first.where(TechnicianProfile.changed_at <= at)) or session.scalar(newest_first)
    return name or session.scalar(sa.select(Account.username).where(Account.id == account_id)) or str(account_id)


def process_lines(session: Session, processes: list[RemoteProcess]) -> list[ProcessLine]:
    device_ids = {p.device_id for p in processes}
    devices = dict(session.execute(sa.select(Device.id, Device.name).where(Device.id.in_(device_ids))).all())
    names: dict[tuple[uuid.UUID, datetime], str] = {}
    lines = []
    for process in processes:
        key = (process.account_id, process.recorded_at)
        if key not in names:
            names[key] = technician_name(session, process.account_id, process.recorded_at)
        lines.append(ProcessLine(process, names[key], devices.get(process.device_id, "")))
    return lines


def build_case_view(
    session: Session, keys: KeyProvider, versions: list[TechnicianRecord], names_shown: bool
) -> CaseView:
    """Every version of one case with what it covers; patient names decrypted only when `names_shown`."""
    lines = process_lines(session, remote_processes(session, versions[0].case_reference))
    views = []
    for record in versions:
        covered = {p.id for p in processes_of(record, [line.process for line in lines])}
        views.append(
            VersionView(
                record=record,
                patient_name=patient_name(keys, record) if names_shown else None,
                processes=[line for line in lines if line.process.id in covered],
                missing=missing_items(record),
            )
        )
    return CaseView(views, lines, names_shown)


def view_case(session: Session, principal: Principal, keys: KeyProvider, case_reference: str) -> CaseView:
    """A case with every version, for a member who may see it; the reading is audited, naming whether the
    patient's name was shown, never the name (G20)."""
    versions = case_versions(session, principal, case_reference, "record.view")
    view = build_case_view(session, keys, versions, may_see_patient_name(principal))
    shown = any(v.patient_name is not None for v in view.versions)
    details = {"case": case_reference, "versions": len(versions), "patient_name_shown": shown}
    audit(session, principal_entry(principal, "access", "record.view", f"record:{versions[-1].id}", details=details))
    return view
